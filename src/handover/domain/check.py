"""The reassigned-number check: did number N change hands since date D?

Given what Handover knows of a number now (`NumberFacts`, derived from its lifecycle) and
the moment D the caller last verified that N belonged to its user, the answer says:

- `recycled` (CAMARA NumberRecycling): the subscriber changed after D, or N had none on D;
- `disconnected` (FCC RND): N was permanently disconnected (cancelled and not restored)
  at or after D; porting and suspension are not disconnection;
- `rnd`: RND's `yes` / `no` / `no_data`;
- a `verdict` for an SMS-code login to an account bound on D: `deny` when recycled,
  `step_up` when frozen, suspended, ported within 30 days or without data, else `allow`;
- without data, why there is no `recycled` (`unanswered`): the question is outside the
  service (a date before the carrier's coverage, a country no reporting carrier serves)
  or the number is unknown.

Everything is compared in whole seconds (UTC), so an in-memory index holding second
timestamps answers exactly as this module does from the store. A date without a time
means its first second (00:00 UTC): a change on that day counts as "since D".
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from handover.domain.lifecycle import Number, State

RECENT_PORT = timedelta(days=30)


class Verdict(StrEnum):
    ALLOW = "allow"
    STEP_UP = "step_up"
    DENY = "deny"


class Rnd(StrEnum):
    YES = "yes"
    NO = "no"
    NO_DATA = "no_data"


class Reason(StrEnum):
    RECYCLED = "recycled_since_date"
    NO_SUBSCRIBER = "no_subscriber_now"
    DISCONNECTED = "disconnected_since_date"
    FROZEN = "frozen"
    SUSPENDED = "suspended"
    PORTED_RECENTLY = "ported_within_30_days"
    NEVER_REPORTED = "never_reported"
    BEFORE_COVERAGE = "date_before_coverage"


class Unanswered(StrEnum):
    """Why a check cannot say whether a number was recycled."""

    #: Outside the service: the date is before the holding carrier's reports begin.
    BEFORE_COVERAGE = "before_coverage"
    #: Outside the service: no carrier reporting to Handover serves the number's country.
    COUNTRY_NOT_SERVED = "country_not_served"
    #: A country the service covers, but the number was never reported.
    NEVER_REPORTED = "never_reported"


class FutureDate(ValueError):
    """The date asked about is after now (CAMARA OUT_OF_RANGE)."""


@dataclass(frozen=True, slots=True)
class NumberFacts:
    """All a check needs to know about one number, in whole seconds since the epoch."""

    state: State
    carrier: str
    tenure_start: int | None
    last_disconnected: int | None
    ported_at: int | None
    reassigned_at: int | None


@dataclass(frozen=True, slots=True)
class CheckAnswer:
    state: State | None
    recycled: bool | None
    disconnected: bool | None
    rnd: Rnd
    verdict: Verdict
    reasons: tuple[Reason, ...]
    last_disconnected: int | None
    reassigned_at: int | None


def seconds(moment: datetime) -> int:
    """Whole seconds since the epoch (UTC), rounding down."""
    return int(moment.astimezone(UTC).timestamp() // 1)


def facts_of(number: Number) -> NumberFacts:
    """The check facts of a number's current lifecycle position."""
    assert number.state is not None and number.carrier is not None
    open_tenure = number.tenure if number.state is not State.RELEASED else None
    disconnected = number.cancelled_at if number.state is State.FROZEN else number.disconnected_at
    return NumberFacts(
        state=number.state,
        carrier=number.carrier,
        tenure_start=seconds(open_tenure.start) if open_tenure else None,
        last_disconnected=seconds(disconnected) if disconnected else None,
        ported_at=seconds(number.ported_at) if number.ported_at else None,
        reassigned_at=seconds(number.reassigned_at) if number.reassigned_at else None,
    )


def answer(
    facts: NumberFacts | None, since: int, coverage_start: int | None, now: int
) -> CheckAnswer:
    """Answer for a number with `facts` (None: never reported), asked about `since`.

    `coverage_start` is the first second the holding carrier's reports cover.
    """
    if since > now:
        raise FutureDate("the date is in the future")
    if facts is None:
        return _no_data(None, Reason.NEVER_REPORTED)
    if coverage_start is not None and since < coverage_start:
        return _no_data(facts, Reason.BEFORE_COVERAGE)
    reasons: list[Reason] = []
    recycled = facts.tenure_start is None or since < facts.tenure_start
    if recycled:
        reasons.append(Reason.NO_SUBSCRIBER if facts.tenure_start is None else Reason.RECYCLED)
    disconnected = facts.last_disconnected is not None and facts.last_disconnected >= since
    if disconnected:
        reasons.append(Reason.DISCONNECTED)
    if facts.state is State.FROZEN:
        reasons.append(Reason.FROZEN)
    if facts.state is State.SUSPENDED:
        reasons.append(Reason.SUSPENDED)
    if facts.ported_at is not None and now - facts.ported_at <= RECENT_PORT.total_seconds():
        reasons.append(Reason.PORTED_RECENTLY)
    if recycled:
        verdict = Verdict.DENY
    elif reasons:
        verdict = Verdict.STEP_UP
    else:
        verdict = Verdict.ALLOW
    return CheckAnswer(
        facts.state,
        recycled,
        disconnected,
        Rnd.YES if disconnected else Rnd.NO,
        verdict,
        tuple(reasons),
        facts.last_disconnected,
        facts.reassigned_at,
    )


def _no_data(facts: NumberFacts | None, reason: Reason) -> CheckAnswer:
    return CheckAnswer(
        state=facts.state if facts else None,
        recycled=None,
        disconnected=None,
        rnd=Rnd.NO_DATA,
        verdict=Verdict.STEP_UP,
        reasons=(reason,),
        last_disconnected=facts.last_disconnected if facts else None,
        reassigned_at=facts.reassigned_at if facts else None,
    )


def unanswered(answer: CheckAnswer, region: str | None, served: Collection[str]) -> Unanswered:
    """Why `answer`, one without data (`recycled` None), cannot say whether the number was
    recycled. The service does not apply to a date before the holding carrier's coverage,
    nor to a number of a country (`region`) no reporting carrier serves (`served`); any
    other number without data is unknown."""
    if Reason.BEFORE_COVERAGE in answer.reasons:
        return Unanswered.BEFORE_COVERAGE
    if region not in served:
        return Unanswered.COUNTRY_NOT_SERVED
    return Unanswered.NEVER_REPORTED
