"""Reminders to a previous owner while their cancelled number is frozen (docs/freeze.md).

`handover work` calls `send_due_reminders` on its timer. Each due stage (see
`domain.reminders`) is recorded in `freeze_reminders` and appended to the audit log, and
each number with a due stage queues one message to the person's alternative contact (the
latest due stage's, when several are due at once), all in one transaction; the messages are
sent after commit by the message worker. A person without a contact is still logged (with
no channel), so the log shows the attempt and the release advice counts it. Reminders are
kept per freeze, keyed by its start (the number's `cancelled_at`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers.timezone import time_zones_for_number

from handover.domain.audit import freeze_reminder_entry
from handover.domain.contacts import Contact
from handover.domain.freeze import FreezeRecord, release_advice
from handover.domain.freeze_policy import FreezePolicy
from handover.domain.lifecycle import Number
from handover.domain.messages import Message
from handover.domain.platforms import Tier
from handover.domain.reminders import SentReminder, Stage, due_stages, to_send
from handover.services.people import contact_of
from handover.services.ports import UnitOfWork, UnitOfWorkFactory

TEMPLATE = "freeze_reminder"
#: Frozen numbers handled per call (one transaction).
BATCH = 500


@dataclass(frozen=True, slots=True)
class _Due:
    """The stages due for one number's freeze, whom to tell, and what the message says."""

    number: Number
    frozen_at: datetime
    stages: list[Stage]
    contact: Contact | None
    params: dict[str, Any]


def send_due_reminders(
    uow_factory: UnitOfWorkFactory,
    now: datetime,
    policy: FreezePolicy,
    limit: int = BATCH,
    *,
    public_url: str = "",
) -> int:
    """Log every reminder stage due at `now` for up to `limit` numbers, queueing one
    message per number; how many stages were logged."""
    with uow_factory() as uow:
        e164s = uow.freeze.due_candidates(now, policy.maximum_freeze(), limit)
        if not e164s:
            return 0
        numbers = uow.numbers.current(e164s)
        records = uow.freeze.records(e164s)
        names = {p.id: p.name for p in uow.platforms.all()}
        due: list[_Due] = []
        for e164 in e164s:
            number, record = numbers[e164], records[e164]
            assert number.tenure is not None and number.cancelled_at is not None
            advice = release_advice(number, record, policy, now)
            release = advice.freeze_end()
            stages = due_stages(number, release, record.sent(number.cancelled_at), now)
            if not stages:
                continue
            contact = contact_of(uow, number.tenure.carrier, number.tenure.subscriber)
            params = _params(names, number, record, release, public_url)
            due.append(_Due(number, number.cancelled_at, stages, contact, params))
        if due:
            _log(uow, due, now)
            uow.commit()
    return sum(len(d.stages) for d in due)


def _log(uow: UnitOfWork, due: list[_Due], now: datetime) -> None:
    entries, messages, rows = [], [], []
    for d in due:
        channel = d.contact.channel if d.contact else None
        for stage in d.stages:
            entries.append(
                freeze_reminder_entry(
                    uow.log_key,
                    d.number.e164,
                    d.frozen_at,
                    stage.value,
                    channel.value if channel else None,
                    now,
                )
            )
            rows.append((d.number.e164, d.frozen_at, stage, channel))
        told = to_send(d.stages)
        if d.contact is not None and told is not None:
            messages.append(
                Message(
                    dedupe_key=f"reminder:{d.number.e164}:{d.frozen_at.isoformat()}:{told}",
                    channel=d.contact.channel,
                    recipient=d.contact.address,
                    template=TEMPLATE,
                    params=d.params | {"stage": told.value},
                    language=d.contact.language,
                    created_at=now,
                    send_after=now,
                )
            )
    first = uow.log.append(entries, now)
    uow.messages.add(messages)
    uow.freeze.add_reminders(
        [
            SentReminder(e164, frozen_at, stage, now, channel, first + position)
            for position, (e164, frozen_at, stage, channel) in enumerate(rows)
        ]
    )


def _params(
    names: Mapping[str, str],
    number: Number,
    record: FreezeRecord,
    release: datetime,
    public_url: str,
) -> dict[str, Any]:
    """What the reminder says: dates (in the number's own time zone), how many accounts
    are still bound during the cancelled tenure, and which high-value platforms (names
    only, no account data)."""
    assert number.tenure is not None and number.cancelled_at is not None
    mine = [b for b in record.bindings if not b.bound_before(number.tenure.start)]
    high_ids = sorted({b.platform_id for b in mine if b.tier is Tier.HIGH})
    zone = local_zone(number.e164)
    return {
        "number": number.e164,
        "cancelled_on": number.cancelled_at.astimezone(zone).date().isoformat(),
        "release_from": release.astimezone(zone).date().isoformat(),
        "accounts": len(mine),
        "high_value": ", ".join(names[p] for p in high_ids if p in names) or "-",
        "public_url": public_url,
    }


def local_zone(e164: str) -> tzinfo:
    """The time zone a number's holder reads dates in: the first `phonenumbers` knows for
    the number (one per region for most, by area code in the US), else UTC."""
    zones = time_zones_for_number(phonenumbers.parse(e164))
    try:
        return ZoneInfo(zones[0]) if zones else UTC
    except (ZoneInfoNotFoundError, ValueError):  # "Etc/Unknown": no zone for the number
        return UTC
