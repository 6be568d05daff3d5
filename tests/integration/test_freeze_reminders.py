"""Reminders to previous owners during a freeze, and the release they hold, on both stores.

The services take the clock as an argument, so a whole freeze runs in a test: reports are
made "at" their own time, and the worker runs at cancellation, mid-freeze and a week before.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.event import listen as event_listen
from sqlalchemy.event import remove as event_remove

from handover.domain.bindings import Binding
from handover.domain.contacts import Contact
from handover.domain.freeze_policy import FreezePolicy
from handover.domain.message_texts import render
from handover.domain.messages import Channel
from handover.domain.people import link_pair
from handover.domain.platforms import Tier
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
    access.register_platform(uow_factory, "lender", "Lender", "lending", "high")
    with uow_factory() as uow:
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


def test_a_contact_set_under_a_linked_ref_is_reminded(
    uow_factory: UnitOfWorkFactory, cancelled: None
) -> None:
    """The person set their contact while signed in with a number held under another ref,
    which the carrier linked to s1: the reminder about the old number reaches them."""
    with uow_factory() as uow:
        uow.contacts.remove("cm", "s1")
        uow.contacts.put(Contact("cm", "s1-new", Channel.SMS, "+8613900139000", "en", at(-1)))
        uow.subscriber_links.link("cm", [link_pair("s1", "s1-new")], at(-1))
        uow.commit()
    assert remind(uow_factory, 0.01) == 1
    with uow_factory() as uow:
        [row] = uow.freeze.reminders(NUMBER)
        [message] = uow.messages.recent("+8613900139000", 10)
    assert row.channel is Channel.SMS and message.language == "en"


def without_binding(uow_factory: UnitOfWorkFactory) -> None:
    with uow_factory() as uow:
        uow.bindings.remove("lender", [Binding("lender", NUMBER, "a1", at(0), Tier.HIGH).key])
        uow.commit()


def test_a_second_freeze_of_the_tenure_is_reminded_and_held_on_its_own(
    uow_factory: UnitOfWorkFactory, cancelled: None
) -> None:
    """Cancelled, reminded twice, restored and cancelled again by the same subscriber: the
    new freeze gets its own reminders, and its release waits for two of them."""
    without_binding(uow_factory)
    assert remind(uow_factory, 0.01) == 1
    assert remind(uow_factory, 45.01) == 1
    assert report(uow_factory, at(50), event("s", "restored", at(50), subscriber="s1")).accepted
    assert report(uow_factory, at(60), event("c2", "cancelled", at(60))).accepted == 1
    assert remind(uow_factory, 60.01) == 1, "the second freeze's cancellation reminder"
    # Its minimum ends on day 150; its mid-freeze reminder (day 105) was never sent.
    held = report(uow_factory, at(151), event("r", "released", at(151))).outcomes[0]
    assert held.reason == "freeze_not_over" and "1 of 2 reminders" in (held.detail or "")
    assert remind(uow_factory, 151) == 2
    assert report(uow_factory, at(151.1), event("r", "released", at(151.1))).accepted == 1
    with uow_factory() as uow:
        rows = uow.freeze.reminders(NUMBER)
        messages = uow.messages.recent("s1@example.com", 10)
    assert [(row.frozen_at, row.stage) for row in rows] == [
        (at(0), Stage.CANCELLATION),
        (at(0), Stage.MID_FREEZE),
        (at(60), Stage.CANCELLATION),
        (at(60), Stage.BEFORE_RELEASE),
        (at(60), Stage.MID_FREEZE),
    ]
    assert len({m.dedupe_key for m in messages}) == 4
    entries = logged_reminders(uow_factory)
    assert [e["frozen_at"] for e in entries] == ["2026-01-10T00:00:00Z"] * 2 + [
        "2026-03-11T00:00:00Z"
    ] * 3


def test_overdue_stages_are_each_logged_but_sent_as_one_message(
    uow_factory: UnitOfWorkFactory, cancelled: None
) -> None:
    without_binding(uow_factory)
    assert remind(uow_factory, 95) == 3, "each late stage is logged, and counts"
    with uow_factory() as uow:
        rows = uow.freeze.reminders(NUMBER)
        [message] = uow.messages.recent("s1@example.com", 10)
    assert {row.stage for row in rows} == set(Stage)
    assert {row.channel for row in rows} == {Channel.EMAIL}
    assert [e["stage"] for e in logged_reminders(uow_factory)] == [s.value for s in Stage]
    assert message.params["stage"] == "before_release"
    assert message.dedupe_key.endswith(":before_release")
    assert remind(uow_factory, 96) == 0


def test_dates_are_written_in_the_numbers_time_zone(
    uow_factory: UnitOfWorkFactory, carriers: tuple[str, str]
) -> None:
    """Cancelled at 17:00 UTC on 10 January: already the 11th in China (UTC+8)."""
    evening = datetime(2026, 1, 10, 17, tzinfo=UTC)
    with uow_factory() as uow:
        uow.contacts.put(Contact("cm", "s2", Channel.EMAIL, "s2@example.com", "en", evening))
        uow.commit()
    activated = event("a", "activated", datetime(2025, 1, 1, tzinfo=UTC), subscriber="s2")
    assert report(uow_factory, evening, activated, event("c", "cancelled", evening)).accepted
    assert send_due_reminders(uow_factory, evening, POLICY, public_url=URL) == 1
    with uow_factory() as uow:
        [message] = uow.messages.recent("s2@example.com", 10)
    assert message.params["cancelled_on"] == "2026-01-11"
    assert message.params["release_from"] == "2026-04-11", "90 days on, 01:00 in Beijing"


def test_platform_names_are_read_once_per_pass(
    uow_factory: UnitOfWorkFactory, engine: Engine, cancelled: None
) -> None:
    """Two frozen numbers, each with high-value accounts at two platforms: one read."""
    other = "+8613800138001"
    access.register_platform(uow_factory, "bank", "Bank", "banking", "high")
    with uow_factory() as uow:
        uow.bindings.add(
            [
                Binding("bank", NUMBER, "b1", at(-100), Tier.HIGH),
                Binding("lender", other, "a2", at(-100), Tier.HIGH),
                Binding("bank", other, "b2", at(-100), Tier.HIGH),
            ],
            at(-100),
        )
        uow.contacts.put(Contact("cm", "s2", Channel.EMAIL, "s2@example.com", "en", at(-1)))
        uow.commit()
    activated = event("a2", "activated", at(-200), subscriber="s2", number=other)
    assert report(uow_factory, at(0), activated, event("c2", "cancelled", at(0), number=other))
    reads: list[str] = []

    def count(*args: Any) -> None:
        statement = args[2]
        if "FROM platforms" in statement:
            reads.append(statement)

    event_listen(engine, "before_cursor_execute", count)
    try:
        assert remind(uow_factory, 0.01) == 2
    finally:
        event_remove(engine, "before_cursor_execute", count)
    assert len(reads) == 1
    with uow_factory() as uow:
        texts = [m.params["high_value"] for m in uow.messages.recent(None, 10)]
    assert sorted(texts) == ["Bank, Lender", "Bank, Lender"]
