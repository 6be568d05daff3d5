"""The reassigned-number check's semantics (domain/check.py), on real lifecycles.

Every case drives a `Number` through carrier reports, takes `facts_of` it, and asks
`answer` (or `services.check.check` for how dates are read).
"""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handover.domain.check import (
    CheckAnswer,
    FutureDate,
    NumberFacts,
    Reason,
    Rnd,
    Unanswered,
    Verdict,
    answer,
    facts_of,
    seconds,
    unanswered,
)
from handover.domain.freeze_policy import FreezePolicy
from handover.domain.lifecycle import EventKind, LifecycleReport, Number, State
from handover.domain.rejections import Rejected
from handover.services.check import InvalidQuestion, check, parse_since

POLICY = FreezePolicy()
T0 = datetime(2024, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 1, 1, tzinfo=UTC)
E164 = "+8613812345678"
K = EventKind


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def s(moment: datetime) -> int:
    return seconds(moment)


def life(*steps: tuple[EventKind, datetime] | tuple[EventKind, datetime, str]) -> Number:
    """A number moved through `steps` (kind, when[, subscriber or to_carrier])."""
    number = Number(E164, "CN")
    for kind, at, *extra in steps:
        carrier = number.carrier or "cm"
        subscriber = extra[0] if extra and kind is not K.PORTED else None
        if kind in (K.ACTIVATED, K.RESTORED) and subscriber is None:
            subscriber = number.tenure.subscriber if number.tenure else "alice"
        to_carrier = (extra[0] if extra else "cu") if kind is K.PORTED else None
        number.apply(LifecycleReport(kind, at, carrier, subscriber, to_carrier), POLICY)
    return number


def ask(number: Number | None, since: datetime, coverage: datetime | None = None) -> CheckAnswer:
    facts = facts_of(number) if number else None
    return answer(facts, s(since), s(coverage) if coverage else None, s(NOW))


def test_active_number_held_since_the_date_is_allowed() -> None:
    got = ask(life((K.ACTIVATED, day(0))), day(10))
    assert got == CheckAnswer(State.ACTIVE, False, False, Rnd.NO, Verdict.ALLOW, (), None, None)


def test_a_date_before_the_first_activation_means_it_had_no_subscriber_then() -> None:
    got = ask(life((K.ACTIVATED, day(10))), day(0))
    assert (got.recycled, got.verdict, got.reasons) == (True, Verdict.DENY, (Reason.RECYCLED,))
    assert got.reassigned_at is None  # a first tenure is no reassignment


RECYCLED_LIFE = (
    (K.ACTIVATED, day(0), "alice"),
    (K.CANCELLED, day(100)),
    (K.RELEASED, day(200)),
    (K.ACTIVATED, day(250), "bob"),
)


def test_recycled_number_asked_about_the_previous_owner() -> None:
    got = ask(life(*RECYCLED_LIFE), day(50))
    assert got == CheckAnswer(
        State.ACTIVE,
        True,
        True,
        Rnd.YES,
        Verdict.DENY,
        (Reason.RECYCLED, Reason.DISCONNECTED),
        s(day(100)),
        s(day(250)),
    )


def test_recycled_number_asked_after_the_cancellation_is_recycled_not_disconnected() -> None:
    got = ask(life(*RECYCLED_LIFE), day(150))
    assert (got.recycled, got.disconnected, got.rnd, got.reasons) == (
        True,
        False,
        Rnd.NO,
        (Reason.RECYCLED,),
    )
    assert got.verdict is Verdict.DENY


def test_recycled_number_asked_about_the_new_owner_is_allowed() -> None:
    got = ask(life(*RECYCLED_LIFE), day(300))
    assert (got.recycled, got.disconnected, got.rnd, got.verdict) == (
        False,
        False,
        Rnd.NO,
        Verdict.ALLOW,
    )
    # The history stays in the answer: when it was last disconnected and reassigned.
    assert (got.last_disconnected, got.reassigned_at) == (s(day(100)), s(day(250)))


def test_released_number_has_no_subscriber_now() -> None:
    number = life((K.ACTIVATED, day(0)), (K.CANCELLED, day(100)), (K.RELEASED, day(200)))
    before = ask(number, day(50))
    assert before.reasons == (Reason.NO_SUBSCRIBER, Reason.DISCONNECTED)
    assert (before.state, before.recycled, before.rnd, before.verdict) == (
        State.RELEASED,
        True,
        Rnd.YES,
        Verdict.DENY,
    )
    after = ask(number, day(150))  # cancelled before the date: not disconnected since
    assert (after.reasons, after.rnd, after.verdict) == (
        (Reason.NO_SUBSCRIBER,),
        Rnd.NO,
        Verdict.DENY,
    )


def test_frozen_number_is_disconnected_pending_but_not_recycled() -> None:
    number = life((K.ACTIVATED, day(0)), (K.CANCELLED, day(100)))
    got = ask(number, day(50))
    assert got == CheckAnswer(
        State.FROZEN,
        False,
        True,
        Rnd.YES,
        Verdict.STEP_UP,
        (Reason.DISCONNECTED, Reason.FROZEN),
        s(day(100)),
        None,
    )
    later = ask(number, day(101))
    assert (later.disconnected, later.rnd, later.reasons) == (False, Rnd.NO, (Reason.FROZEN,))


def test_cancelled_at_exactly_the_date_counts_as_disconnected_since() -> None:
    got = ask(life((K.ACTIVATED, day(0)), (K.CANCELLED, day(100))), day(100))
    assert got.disconnected is True and got.rnd is Rnd.YES


def test_restore_undoes_the_freeze() -> None:
    number = life((K.ACTIVATED, day(0)), (K.CANCELLED, day(100)), (K.RESTORED, day(120)))
    got = ask(number, day(50))
    assert got == CheckAnswer(State.ACTIVE, False, False, Rnd.NO, Verdict.ALLOW, (), None, None)


def test_restore_after_a_recycling_keeps_the_earlier_disconnection() -> None:
    number = life(*RECYCLED_LIFE, (K.CANCELLED, day(300)), (K.RESTORED, day(310)))
    got = ask(number, day(260))
    assert (got.disconnected, got.verdict, got.last_disconnected) == (
        False,
        Verdict.ALLOW,
        s(day(100)),
    )
    assert ask(number, day(50)).disconnected is True  # the release of alice's tenure


def test_suspension_asks_for_a_step_up_and_resumption_clears_it() -> None:
    suspended = life((K.ACTIVATED, day(0)), (K.SUSPENDED, day(10)))
    got = ask(suspended, day(5))
    assert (got.state, got.recycled, got.disconnected, got.verdict, got.reasons) == (
        State.SUSPENDED,
        False,
        False,
        Verdict.STEP_UP,
        (Reason.SUSPENDED,),
    )
    resumed = life((K.ACTIVATED, day(0)), (K.SUSPENDED, day(10)), (K.RESUMED, day(20)))
    assert ask(resumed, day(5)).verdict is Verdict.ALLOW


@pytest.mark.parametrize(
    ("ported_before_now", "recent"),
    [
        (timedelta(days=1), True),
        (timedelta(days=30), True),
        (timedelta(days=30, seconds=1), False),
        (timedelta(days=400), False),
    ],
)
def test_a_port_within_30_days_asks_for_a_step_up(
    ported_before_now: timedelta, recent: bool
) -> None:
    number = life((K.ACTIVATED, day(0)), (K.PORTED, NOW - ported_before_now, "cu"))
    got = ask(number, day(1))
    assert facts_of(number).carrier == "cu"
    assert got.recycled is False and got.disconnected is False  # porting is no disconnection
    assert got.reasons == ((Reason.PORTED_RECENTLY,) if recent else ())
    assert got.verdict is (Verdict.STEP_UP if recent else Verdict.ALLOW)


def test_a_date_before_the_carrier_coverage_has_no_data() -> None:
    number = life(*RECYCLED_LIFE)
    got = ask(number, day(50), coverage=day(60))
    assert got == CheckAnswer(
        State.ACTIVE,
        None,
        None,
        Rnd.NO_DATA,
        Verdict.STEP_UP,
        (Reason.BEFORE_COVERAGE,),
        s(day(100)),
        s(day(250)),
    )
    assert ask(number, day(60), coverage=day(60)).rnd is not Rnd.NO_DATA  # coverage is inclusive


def test_a_number_never_reported_has_no_data() -> None:
    assert ask(None, day(0)) == CheckAnswer(
        None, None, None, Rnd.NO_DATA, Verdict.STEP_UP, (Reason.NEVER_REPORTED,), None, None
    )


def test_without_data_a_question_is_outside_the_service_or_about_an_unknown_number() -> None:
    """CAMARA's SERVICE_NOT_APPLICABLE versus IDENTIFIER_NOT_FOUND, decided in the domain."""
    early = ask(life(*RECYCLED_LIFE), day(50), coverage=day(60))
    assert unanswered(early, "CN", {"CN"}) is Unanswered.BEFORE_COVERAGE
    unknown = ask(None, day(0))
    assert unanswered(unknown, "CN", {"CN", "US"}) is Unanswered.NEVER_REPORTED
    assert unanswered(unknown, "GB", {"CN", "US"}) is Unanswered.COUNTRY_NOT_SERVED
    assert unanswered(unknown, None, set()) is Unanswered.COUNTRY_NOT_SERVED


def test_a_date_in_the_future_is_refused_even_for_unknown_numbers() -> None:
    with pytest.raises(FutureDate):
        answer(None, s(NOW) + 1, None, s(NOW))
    with pytest.raises(FutureDate):
        answer(facts_of(life((K.ACTIVATED, day(0)))), s(NOW) + 1, None, s(NOW))
    assert answer(None, s(NOW), None, s(NOW)).rnd is Rnd.NO_DATA  # now itself is fine


def test_answers_compare_whole_seconds() -> None:
    number = life((K.ACTIVATED, T0.replace(microsecond=900_000)))
    assert facts_of(number).tenure_start == s(T0)
    # Asked a fraction of a second before the activation, but in the same second: not since.
    assert ask(number, T0.replace(microsecond=100_000)).recycled is False
    assert ask(number, T0 - timedelta(seconds=1)).recycled is True


def test_facts_of_each_state() -> None:
    active = life((K.ACTIVATED, day(0)))
    assert facts_of(active) == NumberFacts(State.ACTIVE, "cm", s(day(0)), None, None, None)
    frozen = life((K.ACTIVATED, day(0)), (K.CANCELLED, day(5)))
    assert facts_of(frozen) == NumberFacts(State.FROZEN, "cm", s(day(0)), s(day(5)), None, None)
    released = life((K.ACTIVATED, day(0)), (K.CANCELLED, day(5)), (K.RELEASED, day(100)))
    assert facts_of(released) == NumberFacts(State.RELEASED, "cm", None, s(day(5)), None, None)


# -- how the question's date is read (services.check) --------------------------------------


class _OneNumber:
    """A CheckIndex over one in-memory number."""

    def __init__(self, number: Number | None, coverage: datetime | None = None) -> None:
        self.number = number
        self.coverage = coverage

    def facts(self, e164: str) -> NumberFacts | None:
        return facts_of(self.number) if self.number and e164 == self.number.e164 else None

    def coverage_start(self, carrier_id: str) -> int | None:
        return s(self.coverage) if self.coverage else None

    @property
    def data_version(self) -> int:
        return 7


def test_a_date_without_a_time_means_its_first_second_utc() -> None:
    assert parse_since("2024-03-01") == datetime(2024, 3, 1, tzinfo=UTC)
    assert parse_since(date(2024, 3, 1)) == datetime(2024, 3, 1, tzinfo=UTC)
    assert parse_since("2024-03-01T08:00:00+08:00") == datetime(2024, 3, 1, tzinfo=UTC)
    assert parse_since("2024-03-01T10:00:00") == datetime(2024, 3, 1, 10, tzinfo=UTC)
    # An activation later that day counts as "since" the date.
    index = _OneNumber(life((K.ACTIVATED, datetime(2024, 3, 1, 10, tzinfo=UTC))))
    result = check(index, E164, "2024-03-01", NOW)
    assert result.answer.recycled is True and result.answer.verdict is Verdict.DENY
    assert check(index, E164, "2024-03-02", NOW).answer.verdict is Verdict.ALLOW
    assert result.data_version == 7 and result.since == datetime(2024, 3, 1, tzinfo=UTC)


def test_check_refuses_bad_numbers_bad_dates_and_future_dates() -> None:
    index = _OneNumber(None)
    for number, since, code in [
        ("+8612", "2024-01-01", "invalid_number"),
        ("13812345678", "2024-01-01", "invalid_number"),  # national, no region
        (E164, "2024-02-30", "invalid_date"),
        (E164, "yesterday", "invalid_date"),
        (E164, "2026-01-01T00:00:01", "future_date"),
    ]:
        with pytest.raises(InvalidQuestion) as caught:
            check(index, number, since, NOW)
        assert caught.value.code == code
    assert check(index, "138 1234 5678", "2024-01-01", NOW, region="CN").e164 == E164


# -- properties over random lives -----------------------------------------------------------

kinds = st.sampled_from(list(EventKind))
gaps = st.integers(0, 200 * 86_400)


@given(st.lists(st.tuples(kinds, gaps), max_size=12), st.integers(-400, 1_000))
def test_verdict_follows_from_the_fields(
    steps: list[tuple[EventKind, int]], since_day: int
) -> None:
    number, at = Number(E164, "CN"), T0
    for kind, gap in steps:
        at += timedelta(seconds=gap)
        carrier = number.carrier or "cm"
        report = LifecycleReport(
            kind,
            at,
            carrier,
            "alice" if kind in (K.ACTIVATED, K.RESTORED) else None,
            ("cu" if carrier == "cm" else "cm") if kind is K.PORTED else None,
        )
        with contextlib.suppress(Rejected):
            number.apply(report, POLICY)
    if number.state is None:
        return
    facts = facts_of(number)
    since = T0 + timedelta(days=since_day)
    now = max(at, since) + timedelta(days=1)
    got = answer(facts, s(since), None, s(now))
    assert (got.verdict is Verdict.DENY) == bool(got.recycled)
    assert (got.rnd is Rnd.YES) == bool(got.disconnected)
    assert got.recycled == (facts.tenure_start is None or s(since) < facts.tenure_start)
    assert (got.verdict is Verdict.ALLOW) == (got.reasons == ())
    assert list(got.reasons) == sorted(got.reasons, key=list(Reason).index)  # a stable order
    if number.state is State.RELEASED:
        assert got.reasons[0] is Reason.NO_SUBSCRIBER
