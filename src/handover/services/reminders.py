"""Reminders to a previous owner while their cancelled number is frozen (DESIGN.md §3).

`handover work` calls `send_due_reminders` on its timer. Each due stage (see
`domain.reminders`) queues a message to the person's alternative contact, is recorded in
`freeze_reminders` and appended to the audit log, all in one transaction; the messages are
sent after commit by the message worker. A person without a contact is still logged (with
no channel), so the log shows the attempt and the release advice counts it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from handover.domain.audit import freeze_reminder_entry
from handover.domain.contacts import Contact
from handover.domain.freeze import FreezeRecord, release_advice
from handover.domain.lifecycle import Number
from handover.domain.messages import Message
from handover.domain.platforms import Tier
from handover.domain.policy import FreezePolicy
from handover.domain.reminders import SentReminder, Stage, due_stages
from handover.services.ports import UnitOfWork, UnitOfWorkFactory

TEMPLATE = "freeze_reminder"
#: Frozen numbers handled per call (one transaction).
BATCH = 500


def send_due_reminders(
    uow_factory: UnitOfWorkFactory,
    now: datetime,
    policy: FreezePolicy,
    limit: int = BATCH,
    *,
    public_url: str = "",
) -> int:
    """Queue and log every reminder due at `now` for up to `limit` numbers; how many."""
    with uow_factory() as uow:
        e164s = uow.freeze.due_candidates(now, policy.maximum_freeze(), limit)
        if not e164s:
            return 0
        numbers = uow.numbers.current(e164s)
        records = uow.freeze.records(e164s)
        due: list[tuple[Number, Stage, Contact | None, dict[str, Any]]] = []
        for e164 in e164s:
            number, record = numbers[e164], records[e164]
            assert number.tenure is not None
            advice = release_advice(number, record, policy, now)
            stages = due_stages(number, advice.freeze_end(), record.sent(number.tenure.start), now)
            if not stages:
                continue
            contact = uow.contacts.get(number.tenure.carrier, number.tenure.subscriber)
            params = _params(uow, number, record, advice.freeze_end(), public_url)
            due += [(number, stage, contact, params) for stage in stages]
        if due:
            _log(uow, due, now)
            uow.commit()
    return len(due)


def _log(
    uow: UnitOfWork,
    due: list[tuple[Number, Stage, Contact | None, dict[str, Any]]],
    now: datetime,
) -> None:
    entries, messages = [], []
    for number, stage, contact, params in due:
        assert number.tenure is not None
        channel = contact.channel.value if contact else None
        entries.append(
            freeze_reminder_entry(
                uow.log_key, number.e164, number.tenure.start, stage.value, channel, now
            )
        )
        if contact is not None:
            messages.append(
                Message(
                    dedupe_key=f"reminder:{number.e164}:{number.tenure.start.isoformat()}:{stage}",
                    channel=contact.channel,
                    recipient=contact.address,
                    template=TEMPLATE,
                    params=params | {"stage": stage.value},
                    language=contact.language,
                    created_at=now,
                    send_after=now,
                )
            )
    first = uow.log.append(entries, now)
    uow.messages.add(messages)
    uow.freeze.add_reminders(
        [
            SentReminder(
                number.e164,
                number.tenure.start,
                stage,
                now,
                contact.channel if contact else None,
                first + position,
            )
            for position, (number, stage, contact, _) in enumerate(due)
            if number.tenure is not None
        ]
    )


def _params(
    uow: UnitOfWork, number: Number, record: FreezeRecord, release: datetime, public_url: str
) -> dict[str, Any]:
    """What the reminder says: dates, how many accounts are still bound during the
    cancelled tenure, and which high-value platforms (names only, no account data)."""
    assert number.tenure is not None and number.cancelled_at is not None
    mine = [b for b in record.bindings if not b.bound_before(number.tenure.start)]
    high_ids = sorted({b.platform_id for b in mine if b.tier is Tier.HIGH})
    names = [p.name for p in map(uow.platforms.get, high_ids) if p is not None]
    return {
        "number": number.e164,
        "cancelled_on": number.cancelled_at.date().isoformat(),
        "release_from": release.date().isoformat(),
        "accounts": len(mine),
        "high_value": ", ".join(names) or "-",
        "public_url": public_url,
    }
