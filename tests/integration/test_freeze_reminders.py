"""Reminders to previous owners during a freeze, and the release they hold, on both stores.

The services take the clock as an argument, so a whole freeze runs in a test: reports are
made "at" their own time, and the worker runs at cancellation, mid-freeze and a week before.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from handover.domain.bindings import Binding
from handover.domain.contacts import Contact
from handover.domain.message_texts import render
from handover.domain.messages import Channel
from handover.domain.platforms import Tier
from handover.domain.policy import FreezePolicy
from handover.domain.reminders import Stage
from handover.services import access
from handover.services.ports import UnitOfWorkFactory
from handover.services.reminders import send_due_reminders
from handover.services.reporting import report_events

POLICY = FreezePolicy()
NUMBER = "+8613800138000"
CANCELLED = datetime(2026, 1, 10, tzinfo=UTC)
URL = "https://handover.example"


def at(days: float) -> datetime:
    return CANCELLED + timedelta(days=days)


def event(event_id: str, kind: str, when: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "number": extra.pop("number", NUMBER),
        "event": kind,
        "occurred_at": when.isoformat(),
    } | extra


def report(uow_factory: UnitOfWorkFactory, now: datetime, *events: dict[str, Any]) -> Any:
    return report_events(uow_factory, "cm", list(events), policy=POLICY, now=now)


def remind(uow_factory: UnitOfWorkFactory, days: float) -> int:
    return send_due_reminders(uow_factory, at(days), POLICY, public_url=URL)


@pytest.fixture
def cancelled(uow_factory: UnitOfWorkFactory, carriers: tuple[str, str]) -> None:
    """s1 held the number since 2025 and cancelled it on 2026-01-10 (reported at once);
    s1 left an e-mail contact, and a lender still has a high-value account of theirs."""
    with uow_factory() as uow:
        access.register_platform(uow, "lender", "Lender", "lending", "high")
        uow.bindings.add([Binding("lender", NUMBER, "a1", at(-100), Tier.HIGH)], at(-100))
        uow.contacts.put(Contact("cm", "s1", Channel.EMAIL, "s1@example.com", "zh-CN", at(-1)))
        uow.commit()
    activated = event("a", "activated", datetime(2025, 1, 1, tzinfo=UTC), subscriber="s1")
    assert report(uow_factory, at(0), activated, event("c", "cancelled", at(0))).accepted == 2


def logged_reminders(uow_factory: UnitOfWorkFactory) -> list[dict[str, Any]]:
    with uow_factory() as uow:
        entries = [json.loads(data) for _, data, _ in uow.log.leaves()]
    return [entry for entry in entries if entry["type"] == "freeze_reminder"]


def test_three_reminders_each_queued_recorded_and_logged_once(
    uow_factory: UnitOfWorkFactory, cancelled: None
) -> None:
    # With the high binding the freeze may run to the cap: mid at 182.5 days, last at 358.
    assert remind(uow_factory, 0.01) == 1
    assert remind(uow_factory, 0.02) == 0, "nothing new"
    assert remind(uow_factory, 180) == 0
    assert remind(uow_factory, 182.5) == 1
    assert remind(uow_factory, 357) == 0
    assert remind(uow_factory, 358) == 1
    assert remind(uow_factory, 359) == 0
    with uow_factory() as uow:
        rows = uow.freeze.reminders(NUMBER)
        messages = uow.messages.recent("s1@example.com", 10)
    assert [row.stage for row in rows] == list(Stage)
    assert {row.channel for row in rows} == {Channel.EMAIL}
    assert len({m.dedupe_key for m in messages}) == 3
    assert all(m.template == "freeze_reminder" and m.language == "zh-CN" for m in messages)
    text = render("freeze_reminder", "en", messages[0].params)
    assert NUMBER in text and "2026-01-10" in text and "Lender" in text and URL in text
    assert "2027-01-10" in text, "the release it counts down to: the cap"
    assert "a1" not in json.dumps(messages[0].params), "never an account ref"
    entries = logged_reminders(uow_factory)
    assert [e["stage"] for e in entries] == [s.value for s in Stage]
    assert {e["channel"] for e in entries} == {"email"}
    assert NUMBER not in json.dumps(entries), "numbers are pseudonymised in the log"
    assert [row.log_index for row in rows] == sorted(row.log_index or 0 for row in rows)


def test_release_waits_for_two_reminders(uow_factory: UnitOfWorkFactory, cancelled: None) -> None:
    with uow_factory() as uow:
        uow.bindings.remove("lender", [Binding("lender", NUMBER, "a1", at(0), Tier.HIGH).key])
        uow.commit()
    # The worker never ran: the minimum (90 days) is over, but nobody was told.
    held = report(uow_factory, at(95), event("r", "released", at(95))).outcomes[0]
    assert held.reason == "freeze_not_over" and "0 of 2 reminders" in (held.detail or "")
    assert remind(uow_factory, 95) == 3, "late stages are still sent, each once"
    assert report(uow_factory, at(95.1), event("r", "released", at(95.1))).accepted == 1
    assert remind(uow_factory, 100) == 0, "nothing after release"


def test_a_person_without_a_contact_is_logged_without_a_channel(
    uow_factory: UnitOfWorkFactory, cancelled: None
) -> None:
    with uow_factory() as uow:
        uow.contacts.remove("cm", "s1")
        uow.commit()
    assert remind(uow_factory, 0.01) == 1
    with uow_factory() as uow:
        [row] = uow.freeze.reminders(NUMBER)
        assert uow.messages.recent(None, 10) == []
    assert row.channel is None and row.stage is Stage.CANCELLATION
    assert [e["channel"] for e in logged_reminders(uow_factory)] == [None]


def test_a_restored_number_gets_no_more_reminders(
    uow_factory: UnitOfWorkFactory, cancelled: None
) -> None:
    assert remind(uow_factory, 0.01) == 1
    restored = event("s", "restored", at(10), subscriber="s1")
    assert report(uow_factory, at(10), restored).accepted == 1
    assert remind(uow_factory, 183) == 0
    assert remind(uow_factory, 400) == 0


def test_without_held_bindings_the_stages_follow_the_minimum_freeze(
    uow_factory: UnitOfWorkFactory, cancelled: None
) -> None:
    with uow_factory() as uow:
        uow.bindings.remove("lender", [Binding("lender", NUMBER, "a1", at(0), Tier.HIGH).key])
        uow.commit()
    # 90 days: mid-freeze on day 45, the last a week before day 90.
    assert [remind(uow_factory, d) for d in (0.01, 44.9, 45.01, 82.9, 83.01, 89)] == [
        1,
        0,
        1,
        0,
        1,
        0,
    ]
