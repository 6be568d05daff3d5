"""The number lifecycle state machine (docs/design.md): every row, every refusal, properties."""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import hypothesis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handover.domain.freeze_policy import FreezePolicy
from handover.domain.lifecycle import (
    ALLOWED_FROM,
    EventKind,
    LifecycleReport,
    Number,
    NumberActivated,
    NumberCancelled,
    NumberEvent,
    NumberPorted,
    NumberReleased,
    NumberRestored,
    NumberResumed,
    NumberSuspended,
    State,
    Tenure,
)
from handover.domain.rejections import Reason, Rejected

POLICY = FreezePolicy()
T0 = datetime(2024, 1, 1, tzinfo=UTC)
E164 = "+8613812345678"
K = EventKind


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def report(
    kind: EventKind,
    at: datetime,
    carrier: str = "cm",
    subscriber: str | None = None,
    to_carrier: str | None = None,
) -> LifecycleReport:
    return LifecycleReport(kind, at, carrier, subscriber, to_carrier)


def fresh(region: str = "CN") -> Number:
    return Number(e164=E164, region=region)


def rejects(number: Number, r: LifecycleReport, reason: Reason) -> Rejected:
    """Apply `r`, expect `reason`, and check the number did not change at all."""
    before = copy.deepcopy(number)
    with pytest.raises(Rejected) as caught:
        number.apply(r, POLICY)
    assert caught.value.reason is reason, caught.value
    assert caught.value.detail
    assert number == before
    return caught.value


def active(subscriber: str = "s1", carrier: str = "cm", region: str = "CN") -> Number:
    number = fresh(region)
    number.apply(report(K.ACTIVATED, day(0), carrier, subscriber), POLICY)
    return number


def suspended() -> Number:
    number = active()
    number.apply(report(K.SUSPENDED, day(10)), POLICY)
    return number


def frozen(region: str = "CN") -> Number:
    number = active(region=region)
    number.apply(report(K.CANCELLED, day(20)), POLICY)
    return number


def released() -> Number:
    number = frozen()
    number.apply(report(K.RELEASED, day(200)), POLICY)
    return number


# -- every row of the lifecycle table -------------------------------------------------------


def test_activated_on_a_never_reported_number_opens_the_first_tenure() -> None:
    number = fresh()
    event = number.apply(report(K.ACTIVATED, day(0), "cm", "s1"), POLICY)
    tenure = Tenure("s1", "cm", day(0))
    assert event == NumberActivated(E164, day(0), "cm", tenure, reassigned=False)
    assert number == Number(E164, "CN", State.ACTIVE, "cm", tenure, last_event_at=day(0), version=1)


def test_suspended_and_resumed_keep_the_tenure() -> None:
    number = active()
    tenure = number.tenure
    assert number.apply(report(K.SUSPENDED, day(1)), POLICY) == NumberSuspended(E164, day(1), "cm")
    assert (number.state, number.tenure) == (State.SUSPENDED, tenure)
    assert number.apply(report(K.RESUMED, day(2)), POLICY) == NumberResumed(E164, day(2), "cm")
    assert (number.state, number.tenure, number.version) == (State.ACTIVE, tenure, 3)


@pytest.mark.parametrize("start", [active, suspended])
def test_cancelled_from_active_or_suspended_starts_the_freeze(start) -> None:  # type: ignore[no-untyped-def]
    number = start()
    event = number.apply(report(K.CANCELLED, day(30)), POLICY)
    assert event == NumberCancelled(E164, day(30), "cm", release_not_before=day(120))
    assert number.state is State.FROZEN
    assert (number.cancelled_at, number.release_not_before) == (day(30), day(120))
    assert number.tenure == Tenure("s1", "cm", day(0))  # still open during the freeze


def test_restored_during_the_freeze_keeps_the_tenure() -> None:
    number = frozen()
    tenure = number.tenure
    event = number.apply(report(K.RESTORED, day(50), "cm", "s1"), POLICY)
    assert event == NumberRestored(E164, day(50), "cm", frozen_since=day(20))
    assert number.state is State.ACTIVE
    assert number.tenure == tenure and tenure is not None and tenure.end is None
    assert number.cancelled_at is None and number.release_not_before is None


def test_released_only_once_the_freeze_is_over_and_closes_the_tenure_at_cancellation() -> None:
    number = frozen()  # cancelled on day 20, CN: 90 days -> day 110
    rejects(
        number, report(K.RELEASED, day(110) - timedelta(microseconds=1)), Reason.FREEZE_NOT_OVER
    )
    event = number.apply(report(K.RELEASED, day(110)), POLICY)
    closed = Tenure("s1", "cm", day(0), end=day(20))
    assert event == NumberReleased(E164, day(110), "cm", closed)
    assert number.state is State.RELEASED
    assert number.tenure == closed
    assert number.cancelled_at is None and number.release_not_before is None
    assert number.carrier == "cm"  # stays in the carrier's pool


def test_activated_after_release_is_a_reassignment_with_a_new_tenure() -> None:
    number = released()
    event = number.apply(report(K.ACTIVATED, day(300), "cm", "s2"), POLICY)
    assert isinstance(event, NumberActivated)
    assert event.reassigned is True
    assert event.tenure == Tenure("s2", "cm", day(300))
    assert number.state is State.ACTIVE and number.tenure == event.tenure


def test_reactivation_by_the_same_subscriber_is_still_a_new_tenure() -> None:
    number = released()
    event = number.apply(report(K.ACTIVATED, day(300), "cm", "s1"), POLICY)
    assert isinstance(event, NumberActivated) and event.reassigned is True
    assert event.tenure.start == day(300)


def test_ported_moves_the_number_to_another_carrier_in_the_same_tenure() -> None:
    number = active()
    tenure = number.tenure
    event = number.apply(report(K.PORTED, day(5), "cm", to_carrier="cu"), POLICY)
    assert event == NumberPorted(E164, day(5), "cm", "cu")
    assert (number.state, number.carrier, number.tenure) == (State.ACTIVE, "cu", tenure)
    # the new carrier now reports the whole lifecycle
    number.apply(report(K.SUSPENDED, day(6), "cu"), POLICY)
    number.apply(report(K.RESUMED, day(7), "cu"), POLICY)
    number.apply(report(K.CANCELLED, day(8), "cu"), POLICY)
    # after a port, the new carrier's pseudonym cannot be compared with the old one's
    number.apply(report(K.RESTORED, day(9), "cu", "cu-pseudonym"), POLICY)
    number.apply(report(K.CANCELLED, day(10), "cu"), POLICY)
    event = number.apply(report(K.RELEASED, day(100), "cu"), POLICY)
    assert event == NumberReleased(E164, day(100), "cu", Tenure("s1", "cm", day(0), day(10)))
    activated = number.apply(report(K.ACTIVATED, day(101), "cu", "t1"), POLICY)
    assert isinstance(activated, NumberActivated) and activated.reassigned


def test_porting_back_and_forth() -> None:
    number = active()
    number.apply(report(K.PORTED, day(1), "cm", to_carrier="cu"), POLICY)
    number.apply(report(K.PORTED, day(2), "cu", to_carrier="cm"), POLICY)
    assert number.carrier == "cm" and number.tenure == Tenure("s1", "cm", day(0))


def test_events_at_the_same_moment_as_the_last_are_in_order() -> None:
    number = active()
    number.apply(report(K.SUSPENDED, day(0)), POLICY)
    number.apply(report(K.RESUMED, day(0)), POLICY)
    assert number.state is State.ACTIVE and number.version == 3


def test_extending_the_freeze_delays_the_release() -> None:
    number = frozen()
    number.extend_freeze(day(200))
    number.extend_freeze(day(150))  # never shortens
    assert number.release_not_before == day(200)
    rejects(number, report(K.RELEASED, day(199)), Reason.FREEZE_NOT_OVER)
    number.apply(report(K.RELEASED, day(200)), POLICY)


@pytest.mark.parametrize("start", [fresh, active, suspended, released])
def test_only_a_frozen_number_can_have_its_freeze_extended(start) -> None:  # type: ignore[no-untyped-def]
    number = start()
    before = copy.deepcopy(number)
    with pytest.raises(Rejected) as caught:
        number.extend_freeze(day(500))
    assert caught.value.reason is Reason.ILLEGAL_TRANSITION
    assert number == before


# -- every illegal transition -------------------------------------------------------------

STARTS = {None: fresh, State.ACTIVE: active, State.SUSPENDED: suspended}
STARTS |= {State.FROZEN: frozen, State.RELEASED: released}
ILLEGAL = [
    (state, kind) for state in STARTS for kind in EventKind if state not in ALLOWED_FROM[kind]
]


def _valid_report_of(kind: EventKind, at: datetime) -> LifecycleReport:
    return report(kind, at, "cm", "s1", "cu" if kind is K.PORTED else None)


def test_the_allowed_table_is_the_design_table() -> None:
    assert {kind: set(states) for kind, states in ALLOWED_FROM.items()} == {
        K.ACTIVATED: {None, State.RELEASED},
        K.SUSPENDED: {State.ACTIVE},
        K.RESUMED: {State.SUSPENDED},
        K.CANCELLED: {State.ACTIVE, State.SUSPENDED},
        K.RESTORED: {State.FROZEN},
        K.RELEASED: {State.FROZEN},
        K.PORTED: {State.ACTIVE},
    }


@pytest.mark.parametrize(("state", "kind"), ILLEGAL, ids=[f"{s}-{k}" for s, k in ILLEGAL])
def test_illegal_transitions_are_rejected_and_change_nothing(
    state: State | None, kind: EventKind
) -> None:
    number = STARTS[state]()
    assert number.state is state
    error = rejects(number, _valid_report_of(kind, day(1000)), Reason.ILLEGAL_TRANSITION)
    assert str(kind) in error.detail


def test_port_to_the_holding_carrier_is_illegal() -> None:
    rejects(active(), report(K.PORTED, day(1), "cm", to_carrier="cm"), Reason.ILLEGAL_TRANSITION)


def test_restore_by_another_subscriber_is_a_mismatch() -> None:
    rejects(frozen(), report(K.RESTORED, day(30), "cm", "s2"), Reason.SUBSCRIBER_MISMATCH)


@pytest.mark.parametrize(
    ("start", "r", "reason"),
    [
        (fresh, report(K.ACTIVATED, day(0), "cm", None), Reason.MISSING_SUBSCRIBER),
        (fresh, report(K.ACTIVATED, day(0), "cm", ""), Reason.MISSING_SUBSCRIBER),
        (frozen, report(K.RESTORED, day(30), "cm", None), Reason.MISSING_SUBSCRIBER),
        (active, report(K.PORTED, day(1), "cm", to_carrier=None), Reason.MISSING_TO_CARRIER),
        (active, report(K.PORTED, day(1), "cm", to_carrier=""), Reason.MISSING_TO_CARRIER),
    ],
)
def test_missing_fields_are_rejected(start, r: LifecycleReport, reason: Reason) -> None:  # type: ignore[no-untyped-def]
    rejects(start(), r, reason)


# -- order and holder ---------------------------------------------------------------------


def test_an_event_dated_before_the_last_one_is_out_of_order() -> None:
    number = suspended()  # last event on day 10
    error = rejects(number, report(K.RESUMED, day(9)), Reason.OUT_OF_ORDER)
    assert day(10).isoformat() in error.detail
    rejects(number, report(K.RESUMED, day(10) - timedelta(microseconds=1)), Reason.OUT_OF_ORDER)
    number.apply(report(K.RESUMED, day(10)), POLICY)


def test_another_carrier_is_not_the_number_holder() -> None:
    number = active(carrier="cm")
    for kind in EventKind:
        rejects(number, report(kind, day(1), "cu", "s1", "cm"), Reason.NOT_NUMBER_HOLDER)


def test_after_a_port_the_old_carrier_is_refused_and_the_new_one_accepted() -> None:
    number = active(carrier="cm")
    number.apply(report(K.PORTED, day(1), "cm", to_carrier="cu"), POLICY)
    rejects(number, report(K.SUSPENDED, day(2), "cm"), Reason.NOT_NUMBER_HOLDER)
    rejects(number, report(K.PORTED, day(2), "cm", to_carrier="ct"), Reason.NOT_NUMBER_HOLDER)
    number.apply(report(K.SUSPENDED, day(2), "cu"), POLICY)
    assert (number.state, number.carrier) == (State.SUSPENDED, "cu")


def test_a_released_number_stays_with_its_carrier() -> None:
    number = released()
    rejects(number, report(K.ACTIVATED, day(300), "cu", "x"), Reason.NOT_NUMBER_HOLDER)


# -- freeze minimum per country -----------------------------------------------------------


@pytest.mark.parametrize(("region", "days"), [("CN", 90), ("US", 45), ("GB", 90), ("001", 90)])
def test_freeze_minimum_per_country(region: str, days: int) -> None:
    number = frozen(region)
    assert number.release_not_before == day(20 + days)
    rejects(number, report(K.RELEASED, day(20 + days - 1)), Reason.FREEZE_NOT_OVER)
    number.apply(report(K.RELEASED, day(20 + days)), POLICY)


def test_a_custom_policy_is_honoured() -> None:
    policy = FreezePolicy(minimum_days={"CN": 180}, default_days=30)
    assert policy.minimum_freeze("CN") == timedelta(days=180)
    assert policy.minimum_freeze("FR") == timedelta(days=30)
    number = active()
    number.apply(report(K.CANCELLED, day(1)), policy)
    assert number.release_not_before == day(181)


# -- properties ---------------------------------------------------------------------------

EVENT_TYPES: dict[EventKind, type[NumberEvent]] = {
    K.ACTIVATED: NumberActivated,
    K.SUSPENDED: NumberSuspended,
    K.RESUMED: NumberResumed,
    K.CANCELLED: NumberCancelled,
    K.RESTORED: NumberRestored,
    K.RELEASED: NumberReleased,
    K.PORTED: NumberPorted,
}
CARRIERS = ["cm", "cu", "ct"]


@st.composite
def report_sequences(draw: st.DrawFn) -> tuple[str, list[LifecycleReport]]:
    """Random reports, mostly moving forward in time, from a few carriers and subscribers."""
    region = draw(st.sampled_from(["CN", "US", "GB"]))
    steps = draw(st.integers(min_value=1, max_value=40))
    at = T0
    reports = []
    if draw(st.integers(0, 9)) > 1:  # most walks start lawfully, the rest anywhere
        reports.append(report(K.ACTIVATED, at, "cm", "s1"))
    for _ in range(steps):
        at += draw(
            st.one_of(
                st.just(timedelta(0)),
                st.timedeltas(timedelta(hours=-36), timedelta(days=3)),
                st.timedeltas(timedelta(days=30), timedelta(days=120)),
            )
        )
        reports.append(
            report(
                draw(st.sampled_from(list(EventKind))),
                at,
                draw(st.sampled_from(["cm", "cm", "cm", "cu", "ct"])),
                draw(st.sampled_from([None, "", "s1", "s2"])),
                draw(st.sampled_from([None, *CARRIERS])),
            )
        )
    return region, reports


@dataclass
class Model:
    """What must be true of a number, tracked independently of `Number`."""

    accepted: list[LifecycleReport] = field(default_factory=list)
    events: list[NumberEvent] = field(default_factory=list)
    cancelled_at: datetime | None = None
    activations: int = 0

    def expect_accept(self, number: Number, r: LifecycleReport) -> bool:
        """An independent reading of the lifecycle table (docs/design.md)."""
        if number.carrier is not None and r.carrier != number.carrier:
            return False
        if number.last_event_at is not None and r.occurred_at < number.last_event_at:
            return False
        state = number.state
        match r.kind:
            case K.ACTIVATED:
                return state in (None, State.RELEASED) and bool(r.subscriber)
            case K.SUSPENDED:
                return state is State.ACTIVE
            case K.RESUMED:
                return state is State.SUSPENDED
            case K.CANCELLED:
                return state in (State.ACTIVE, State.SUSPENDED)
            case K.RESTORED:
                assert number.tenure is not None or state is not State.FROZEN
                return (
                    state is State.FROZEN
                    and bool(r.subscriber)
                    and number.tenure is not None
                    and (
                        r.carrier != number.tenure.carrier
                        or r.subscriber == number.tenure.subscriber
                    )
                )
            case K.RELEASED:
                return (
                    state is State.FROZEN
                    and number.release_not_before is not None
                    and r.occurred_at >= number.release_not_before
                )
            case K.PORTED:
                return state is State.ACTIVE and bool(r.to_carrier) and r.to_carrier != r.carrier
        raise AssertionError(r.kind)


def check_invariants(number: Number, region: str, model: Model) -> None:
    state, tenure = number.state, number.tenure
    assert number.version == len(model.accepted)
    if not model.accepted:
        assert number == Number(E164, region)
        return
    assert number.last_event_at == model.accepted[-1].occurred_at
    assert number.carrier is not None
    if state in (State.ACTIVE, State.SUSPENDED):
        assert tenure is not None and tenure.end is None and tenure.subscriber
        assert number.cancelled_at is None and number.release_not_before is None
    if state is State.FROZEN:
        assert tenure is not None and tenure.end is None
        assert number.cancelled_at is not None
        assert number.cancelled_at == model.cancelled_at
        assert number.release_not_before == number.cancelled_at + POLICY.minimum_freeze(region)
    if state is State.RELEASED:
        assert tenure is not None and tenure.end is not None
        assert tenure.end == model.cancelled_at
        assert tenure.start <= tenure.end
        assert number.cancelled_at is None and number.release_not_before is None
    assert tenure is not None and tenure.start <= number.last_event_at


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(report_sequences())
@pytest.mark.slow
def test_no_sequence_of_reports_reaches_an_illegal_state(
    generated: tuple[str, list[LifecycleReport]],
) -> None:
    region, reports = generated
    number = Number(E164, region)
    model = Model()
    last_seen: datetime | None = None
    for r in reports:
        before = copy.deepcopy(number)
        expected = model.expect_accept(number, r)
        try:
            event = number.apply(r, POLICY)
        except Rejected as error:
            assert not expected, f"{r} was refused ({error}) from {before}"
            assert number == before
            assert error.detail
        else:
            assert expected, f"{r} was accepted from {before}"
            assert type(event) is EVENT_TYPES[r.kind]
            assert (event.e164, event.occurred_at, event.carrier) == (
                E164,
                r.occurred_at,
                r.carrier,
            )
            if isinstance(event, NumberActivated):
                assert event.reassigned == (model.activations > 0)
                assert event.tenure == Tenure(str(r.subscriber), r.carrier, r.occurred_at)
                model.activations += 1
            if isinstance(event, NumberCancelled):
                model.cancelled_at = r.occurred_at
                assert event.release_not_before == number.release_not_before
            if isinstance(event, NumberReleased):
                assert event.tenure == number.tenure
            if isinstance(event, NumberPorted):
                assert number.carrier == r.to_carrier == event.to_carrier
            model.accepted.append(r)
            model.events.append(event)
        if number.last_event_at is not None:
            assert last_seen is None or number.last_event_at >= last_seen
            last_seen = number.last_event_at
        check_invariants(number, region, model)
    hypothesis.event(f"final state: {number.state}")
    hypothesis.event(f"reassigned: {model.activations > 1}")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(report_sequences())
@pytest.mark.slow
def test_replaying_the_accepted_reports_reproduces_the_number(
    generated: tuple[str, list[LifecycleReport]],
) -> None:
    region, reports = generated
    number = Number(E164, region)
    accepted, events = [], []
    for r in reports:
        try:
            events.append(number.apply(r, POLICY))
        except Rejected:
            continue
        accepted.append(r)

    replayed = Number(E164, region)
    assert [replayed.apply(r, POLICY) for r in accepted] == events
    assert replayed == number
    # and replaying everything (rejected reports included) changes nothing further
    again = Number(E164, region)
    for r in reports:
        with contextlib.suppress(Rejected):
            again.apply(r, POLICY)
    assert again == number
