"""The freeze policy in the domain: release advice, its enforcement, and reminder stages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handover.domain.bindings import Binding
from handover.domain.freeze import (
    LATE_REMINDER_WAIT,
    FreezeRecord,
    HoldReason,
    release_advice,
    release_hold,
)
from handover.domain.freeze_policy import FreezePolicy
from handover.domain.lifecycle import EventKind, LifecycleReport, Number, NumberReleased, State
from handover.domain.numbers import parse_number
from handover.domain.platforms import Tier
from handover.domain.rejections import Reason, Rejected
from handover.domain.reminders import Stage, due_stages, schedule, second_due, to_send
from handover.domain.reports import CarrierReport, Status, decide, parse_report

POLICY = FreezePolicy()
T0 = datetime(2024, 1, 1, tzinfo=UTC)
E164 = "+8613812345678"
K = EventKind


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def frozen(cancelled: float = 100) -> Number:
    """Held by s1 since day 0, cancelled on `cancelled` (CN: 90 days' minimum)."""
    number = Number(e164=E164, region="CN")
    number.apply(LifecycleReport(K.ACTIVATED, day(0), "cm", "s1"), POLICY)
    number.apply(LifecycleReport(K.CANCELLED, day(cancelled), "cm"), POLICY)
    return number


def bound(since: float, tier: Tier = Tier.HIGH, platform: str = "lender") -> Binding:
    return Binding(platform, E164, f"acct-{platform}-{since}", day(since), tier)


def told(*stages: Stage, known: float = 100) -> FreezeRecord:
    """A record of the freeze that began on day 100, learned of on day `known`, with these
    stages sent (reminders are kept per freeze, keyed by its start)."""
    return FreezeRecord((), {day(100): frozenset(stages)}, (day(100), day(known)))


def test_nothing_holds_beyond_the_minimum() -> None:
    advice = release_advice(frozen(), told(Stage.CANCELLATION, Stage.MID_FREEZE), POLICY, day(150))
    assert advice.minimum_release == advice.earliest_release == day(190)
    assert [h.reason for h in advice.reasons] == [HoldReason.MINIMUM_FREEZE]
    assert "90 days" in advice.reasons[0].detail
    assert advice.extension() is None


def test_an_unresolved_high_binding_of_the_tenure_holds_until_the_cap() -> None:
    record = FreezeRecord((bound(5), bound(7, platform="cloud"), bound(8)))
    advice = release_advice(frozen(), record, POLICY, day(200))
    assert advice.earliest_release == day(100 + 365)
    hold = advice.reasons[1]
    assert hold.reason is HoldReason.UNRESOLVED_HIGH_BINDINGS
    assert hold.platforms == ("cloud", "lender")
    assert "3 high-value account(s)" in hold.detail and "2 platform(s)" in hold.detail
    extension = advice.extension()
    assert extension is not None and extension.until == day(465)


def test_the_cap_is_a_setting_and_never_shortens_the_minimum() -> None:
    record = FreezeRecord((bound(5),))
    assert release_advice(
        frozen(), record, FreezePolicy(max_freeze_days=200), day(200)
    ).earliest_release == day(300)
    short = release_advice(frozen(), record, FreezePolicy(max_freeze_days=30), day(200))
    assert short.earliest_release == day(190)


@pytest.mark.parametrize(
    ("binding", "why"),
    [
        (bound(-1), "bound before the tenure: an earlier holder's"),
        (bound(5, Tier.MEDIUM), "medium value"),
        (bound(5, Tier.LOW), "low value"),
    ],
)
def test_bindings_that_do_not_hold(binding: Binding, why: str) -> None:
    number = Number(e164=E164, region="CN")
    number.apply(LifecycleReport(K.ACTIVATED, day(0), "cm", "s1"), POLICY)
    number.apply(LifecycleReport(K.CANCELLED, day(100), "cm"), POLICY)
    advice = release_advice(number, FreezeRecord((binding,)), POLICY, day(200))
    assert advice.earliest_release == day(190), why


def test_reminders_hold_until_the_second_is_due_or_late() -> None:
    # Learned of at cancellation, nothing sent yet: the second (mid-freeze) is due day 145.
    early = release_advice(frozen(), told(), POLICY, day(101))
    pending = early.reasons[-1]
    assert pending.reason is HoldReason.REMINDERS_PENDING and pending.until == day(145)
    assert early.earliest_release == day(190), "the reminders are due well before"
    # The worker never sent them: at day 200 release waits for them.
    late = release_advice(frozen(), told(Stage.CANCELLATION), POLICY, day(200))
    assert late.earliest_release == day(200) + LATE_REMINDER_WAIT
    assert "1 of 2 reminders" in late.reasons[-1].detail and "late" in late.reasons[-1].detail
    # Two sent: no hold.
    done = release_advice(frozen(), told(Stage.CANCELLATION, Stage.MID_FREEZE), POLICY, day(200))
    assert [h.reason for h in done.reasons] == [HoldReason.MINIMUM_FREEZE]


def test_a_freeze_learned_of_after_it_could_end_is_not_held_for_reminders() -> None:
    advice = release_advice(frozen(), told(known=400), POLICY, day(400))
    assert advice.earliest_release == day(190)


def test_reminders_of_an_earlier_freeze_of_the_tenure_do_not_count() -> None:
    """Cancelled on day 100, restored, cancelled again on day 130: the first freeze's two
    reminders are not this freeze's, so its release waits for two of its own."""
    number = frozen()
    number.apply(LifecycleReport(K.RESTORED, day(120), "cm", "s1"), POLICY)
    number.apply(LifecycleReport(K.CANCELLED, day(130), "cm"), POLICY)
    first = frozenset({Stage.CANCELLATION, Stage.MID_FREEZE})
    record = FreezeRecord((), {day(100): first}, (day(130), day(130)))
    assert record.sent(day(130)) == frozenset()
    held = release_hold(number, record, POLICY, day(230))
    assert held is not None and "0 of 2 reminders" in held.why
    second = FreezeRecord((), {day(100): first, day(130): first}, (day(130), day(130)))
    assert release_hold(number, second, POLICY, day(230)) is None


def test_learned_too_late_is_one_rule_for_the_advice_and_the_release() -> None:
    """Learned of on day 300 (after the minimum, before the cap): without bindings neither
    the advice nor the release waits for reminders; with a binding still held, both do."""
    late = told(known=300)
    assert release_advice(frozen(), late, POLICY, day(300)).extension() is None
    assert release_hold(frozen(), late, POLICY, day(300)) is None
    held = FreezeRecord((bound(5),), late.reminders, late.cancellation)
    advice = release_advice(frozen(), held, POLICY, day(300))
    assert advice.reasons[-1].reason is HoldReason.REMINDERS_PENDING
    hold = release_hold(frozen(), held, POLICY, day(300))
    assert hold is not None and hold == advice.extension()


def test_only_a_frozen_number_has_advice() -> None:
    number = Number(e164=E164, region="CN")
    number.apply(LifecycleReport(K.ACTIVATED, day(0), "cm", "s1"), POLICY)
    with pytest.raises(Rejected) as caught:
        release_advice(number, FreezeRecord(), POLICY, day(1))
    assert caught.value.reason is Reason.ILLEGAL_TRANSITION


def carrier_report(
    event_id: str, kind: EventKind, at: float, override: str | None = None
) -> CarrierReport:
    return CarrierReport(
        event_id,
        parse_number(E164),
        kind,
        day(at),
        "s1" if kind is K.ACTIVATED else None,
        None,
        0,
        override,
    )


def released(at: float, override: str | None = None, record: FreezeRecord | None = None) -> tuple:
    numbers = {E164: frozen()}
    holds = {E164: record or FreezeRecord((bound(5),))}
    report = carrier_report("r", K.RELEASED, at, override)
    [outcome] = decide("cm", [report], numbers, {}, {"cm"}, POLICY, holds, day(at))
    return outcome, numbers[E164]


def test_a_release_before_the_advised_date_is_refused_saying_why() -> None:
    outcome, number = released(200)
    assert outcome.status is Status.REJECTED and outcome.reason is Reason.FREEZE_NOT_OVER
    assert day(465).isoformat() in (outcome.detail or "")
    assert "high-value" in (outcome.detail or "") and "override" in (outcome.detail or "")
    assert number.state is State.FROZEN


def test_an_override_with_a_reason_releases_and_says_what_was_advised() -> None:
    outcome, number = released(200, "court order 2024-17")
    assert outcome.status is Status.ACCEPTED and number.state is State.RELEASED
    assert isinstance(outcome.event, NumberReleased)
    assert outcome.event.override_reason == "court order 2024-17"
    assert outcome.event.advised_release == day(465)


def test_the_minimum_freeze_cannot_be_overridden() -> None:
    outcome, _ = released(150, "please")
    assert outcome.reason is Reason.FREEZE_NOT_OVER


def test_without_a_record_only_the_minimum_holds_as_before() -> None:
    numbers = {E164: frozen()}
    [outcome] = decide("cm", [carrier_report("r", K.RELEASED, 190)], numbers, {}, {"cm"}, POLICY)
    assert outcome.status is Status.ACCEPTED


def test_the_override_is_part_of_the_fingerprint() -> None:
    plain, forced = carrier_report("r", K.RELEASED, 1), carrier_report("r", K.RELEASED, 1, "x")
    assert plain.fingerprint != forced.fingerprint
    assert forced.fingerprint == carrier_report("r", K.RELEASED, 1, "x").fingerprint


def test_only_api_releases_carry_an_override() -> None:
    row = {
        "event_id": "e",
        "number": E164,
        "event": "released",
        "occurred_at": "2024-01-01",
        "override_reason": " court order ",
    }
    now = day(10)
    assert parse_report(row, 1, None, now).override_reason is None, "files keep their columns"
    assert parse_report(row, 1, None, now, overrides=True).override_reason == "court order"
    for bad in ({"event": "cancelled"}, {"override_reason": "   "}, {"override_reason": "x" * 501}):
        with pytest.raises(Rejected) as caught:
            parse_report(row | bad, 1, None, now, overrides=True)
        assert caught.value.reason is Reason.MALFORMED_ROW


def test_reminder_stages_at_cancellation_mid_freeze_and_a_week_before() -> None:
    assert schedule(day(100), day(190)) == {
        Stage.CANCELLATION: day(100),
        Stage.MID_FREEZE: day(145),
        Stage.BEFORE_RELEASE: day(183),
    }
    assert schedule(day(0), day(10))[Stage.BEFORE_RELEASE] == day(5), "never before mid"
    number = frozen()
    assert due_stages(number, day(190), (), day(100)) == [Stage.CANCELLATION]
    assert due_stages(number, day(190), [Stage.CANCELLATION], day(144)) == []
    assert due_stages(number, day(190), [Stage.CANCELLATION], day(145)) == [Stage.MID_FREEZE]
    assert due_stages(number, day(190), (), day(184)) == list(Stage), "late ones too, once"
    assert to_send(list(Stage)) is Stage.BEFORE_RELEASE, "late ones: one message, the last"
    assert to_send([Stage.CANCELLATION, Stage.MID_FREEZE]) is Stage.MID_FREEZE
    assert to_send([]) is None
    assert second_due(day(100), day(190), ()) == day(145)
    assert second_due(day(100), day(190), [Stage.CANCELLATION]) == day(145)
    assert second_due(day(100), day(190), [Stage.CANCELLATION, Stage.MID_FREEZE]) is None


def test_nothing_is_due_once_the_number_is_restored_or_released() -> None:
    number = frozen()
    number.apply(LifecycleReport(K.RESTORED, day(120), "cm", "s1"), POLICY)
    assert due_stages(number, day(190), (), day(150)) == []


@given(
    checks=st.lists(st.floats(min_value=100, max_value=500), max_size=30),
    release_at=st.floats(min_value=190, max_value=520),
    freeze_days=st.integers(min_value=90, max_value=365),
)
def test_each_stage_at_most_once_and_never_after_release(
    checks: list[float], release_at: float, freeze_days: int
) -> None:
    number, advised = frozen(), day(100 + freeze_days)
    sent: list[Stage] = []
    released_yet = False
    for at in sorted(checks):
        if not released_yet and at >= release_at:
            number.apply(LifecycleReport(K.RELEASED, day(release_at), "cm"), POLICY)
            released_yet = True
        due = due_stages(number, advised, sent, day(at))
        assert not released_yet or due == []
        sent += due
    assert len(sent) == len(set(sent))
    if any(advised - (advised - day(100)) / 2 <= day(at) < day(release_at) for at in checks):
        assert len(sent) >= 2, "a worker that ran after mid-freeze sent two before release"
