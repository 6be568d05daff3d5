"""The number lifecycle (docs/design.md) as a state machine over carrier reports.

A `Number` is the aggregate: it accepts a `LifecycleReport`, raises `Rejected` on any
illegal move without changing itself, and otherwise returns the past-tense events that
happened. Replaying the accepted reports on a fresh `Number` reproduces its state.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from handover.domain.freeze_policy import FreezePolicy
from handover.domain.rejections import Reason, Rejected


class State(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    FROZEN = "frozen"
    RELEASED = "released"


#: States in which a number has a subscriber using it (a frozen number's tenure lasts
#: until release, but nobody uses the number meanwhile).
IN_SERVICE = frozenset({State.ACTIVE, State.SUSPENDED})


class EventKind(StrEnum):
    ACTIVATED = "activated"
    SUSPENDED = "suspended"
    RESUMED = "resumed"
    CANCELLED = "cancelled"
    RESTORED = "restored"
    RELEASED = "released"
    PORTED = "ported"


#: Which state each report kind may start from; `None` is a number never reported.
ALLOWED_FROM: dict[EventKind, frozenset[State | None]] = {
    EventKind.ACTIVATED: frozenset({None, State.RELEASED}),
    EventKind.SUSPENDED: frozenset({State.ACTIVE}),
    EventKind.RESUMED: frozenset({State.SUSPENDED}),
    EventKind.CANCELLED: frozenset({State.ACTIVE, State.SUSPENDED}),
    EventKind.RESTORED: frozenset({State.FROZEN}),
    EventKind.RELEASED: frozenset({State.FROZEN}),
    EventKind.PORTED: frozenset({State.ACTIVE}),
}


@dataclass(frozen=True, slots=True)
class LifecycleReport:
    """What a carrier says happened to a number (already parsed and validated)."""

    kind: EventKind
    occurred_at: datetime
    carrier: str
    subscriber: str | None = None
    to_carrier: str | None = None
    #: Why the carrier releases a number before its advised release (see `ReleaseHold`).
    override_reason: str | None = None


@dataclass(frozen=True, slots=True)
class ReleaseHold:
    """A freeze extended past its minimum (see `domain.freeze`): until when, and why.

    A release dated before `until` is refused unless it carries an override reason; the
    country's minimum freeze is never overridden.
    """

    until: datetime
    why: str


@dataclass(frozen=True, slots=True)
class Tenure:
    """One subscriber's holding of one number, `[start, end)`.

    `carrier` is the carrier whose pseudonym `subscriber` is. The tenure ends when the
    number is released after a freeze; `end` is then the moment service was cancelled.
    Porting and restoring keep the tenure.
    """

    subscriber: str
    carrier: str
    start: datetime
    end: datetime | None = None


@dataclass(frozen=True, slots=True)
class NumberEvent:
    e164: str
    occurred_at: datetime
    carrier: str


@dataclass(frozen=True, slots=True)
class NumberActivated(NumberEvent):
    tenure: Tenure
    reassigned: bool


@dataclass(frozen=True, slots=True)
class NumberSuspended(NumberEvent):
    pass


@dataclass(frozen=True, slots=True)
class NumberResumed(NumberEvent):
    pass


@dataclass(frozen=True, slots=True)
class NumberCancelled(NumberEvent):
    release_not_before: datetime


@dataclass(frozen=True, slots=True)
class NumberRestored(NumberEvent):
    #: When the freeze this restore ends began (cases opened since are about recycling).
    frozen_since: datetime


@dataclass(frozen=True, slots=True)
class NumberReleased(NumberEvent):
    tenure: Tenure
    #: Set when the report carried an override: the carrier's reason and the release
    #: Handover advised at that moment.
    override_reason: str | None = None
    advised_release: datetime | None = None


@dataclass(frozen=True, slots=True)
class NumberPorted(NumberEvent):
    to_carrier: str


@dataclass(slots=True)
class Number:
    """One number's current lifecycle position; `state is None` until first activated.

    `carrier` is the carrier holding the number: the only one that may report on it. A
    released number stays with its carrier's pool, so the same carrier activates it again.
    """

    e164: str
    region: str
    state: State | None = None
    carrier: str | None = None
    tenure: Tenure | None = None
    last_event_at: datetime | None = None
    cancelled_at: datetime | None = None
    release_not_before: datetime | None = None
    #: When the last tenure that ended (by release) was cancelled: a permanent disconnection.
    disconnected_at: datetime | None = None
    ported_at: datetime | None = None
    #: Start of the current tenure when an earlier tenure exists (the number was recycled).
    reassigned_at: datetime | None = None
    version: int = 0

    def apply(
        self, report: LifecycleReport, policy: FreezePolicy, hold: ReleaseHold | None = None
    ) -> NumberEvent:
        """Accept `report` and return what happened, or raise `Rejected` unchanged.

        `hold` is the advised release of a frozen number whose freeze is extended; only a
        `released` report looks at it.
        """
        self._check(report, hold)
        event = self._transition(report, policy, hold)
        self.last_event_at = report.occurred_at
        self.version += 1
        return event

    def extend_freeze(self, until: datetime) -> None:
        """Keep a frozen number out of the recycling pool until at least `until`."""
        if self.state is not State.FROZEN or self.release_not_before is None:
            raise Rejected(Reason.ILLEGAL_TRANSITION, "only a frozen number's freeze can grow")
        self.release_not_before = max(self.release_not_before, until)

    def _check(self, report: LifecycleReport, hold: ReleaseHold | None) -> None:
        if self.carrier is not None and report.carrier != self.carrier:
            raise Rejected(Reason.NOT_NUMBER_HOLDER, "the reporting carrier does not hold it")
        if self.last_event_at is not None and report.occurred_at < self.last_event_at:
            raise Rejected(
                Reason.OUT_OF_ORDER,
                f"dated before the number's last event ({self.last_event_at.isoformat()})",
            )
        if self.state not in ALLOWED_FROM[report.kind]:
            current = self.state.value if self.state else "never reported"
            raise Rejected(Reason.ILLEGAL_TRANSITION, f"cannot be {report.kind} when {current}")
        if report.kind in (EventKind.ACTIVATED, EventKind.RESTORED) and not report.subscriber:
            raise Rejected(Reason.MISSING_SUBSCRIBER, f"{report.kind} needs a subscriber")
        if report.kind is EventKind.RESTORED:
            self._check_restore(report)
        if report.kind is EventKind.RELEASED:
            self._check_release(report, hold)
        if report.kind is EventKind.PORTED:
            if not report.to_carrier:
                raise Rejected(Reason.MISSING_TO_CARRIER, "ported needs to_carrier")
            if report.to_carrier == self.carrier:
                raise Rejected(Reason.ILLEGAL_TRANSITION, "cannot port to its own carrier")

    def _check_restore(self, report: LifecycleReport) -> None:
        """Only the subscriber who cancelled may restore.

        Subscriber refs are pseudonyms scoped to a carrier, so they can be compared only
        when the restoring carrier is the one that opened the tenure; after a port the
        holding carrier's word that it is the same person stands.
        """
        assert self.tenure is not None
        if report.carrier == self.tenure.carrier and report.subscriber != self.tenure.subscriber:
            raise Rejected(
                Reason.SUBSCRIBER_MISMATCH,
                "only the subscriber who cancelled may restore; a new subscriber is an activation",
            )

    def _check_release(self, report: LifecycleReport, hold: ReleaseHold | None) -> None:
        assert self.release_not_before is not None
        if report.occurred_at < self.release_not_before:
            raise Rejected(
                Reason.FREEZE_NOT_OVER,
                f"frozen until {self.release_not_before.isoformat()}",
            )
        if hold is not None and report.occurred_at < hold.until and not report.override_reason:
            raise Rejected(
                Reason.FREEZE_NOT_OVER,
                f"frozen until {hold.until.isoformat()}: {hold.why}; "
                "a release before then needs an override with a reason",
            )

    def _transition(
        self, report: LifecycleReport, policy: FreezePolicy, hold: ReleaseHold | None
    ) -> NumberEvent:
        at, carrier = report.occurred_at, report.carrier
        match report.kind:
            case EventKind.ACTIVATED:
                assert report.subscriber is not None
                reassigned = self.tenure is not None
                self.reassigned_at = at if reassigned else None
                self.tenure = Tenure(report.subscriber, carrier, at)
                self.state, self.carrier = State.ACTIVE, carrier
                self.cancelled_at = self.release_not_before = None
                return NumberActivated(self.e164, at, carrier, self.tenure, reassigned)
            case EventKind.SUSPENDED:
                self.state = State.SUSPENDED
                return NumberSuspended(self.e164, at, carrier)
            case EventKind.RESUMED:
                self.state = State.ACTIVE
                return NumberResumed(self.e164, at, carrier)
            case EventKind.CANCELLED:
                self.state, self.cancelled_at = State.FROZEN, at
                self.release_not_before = at + policy.minimum_freeze(self.region)
                return NumberCancelled(self.e164, at, carrier, self.release_not_before)
            case EventKind.RESTORED:
                assert self.cancelled_at is not None
                frozen_since = self.cancelled_at
                self.state = State.ACTIVE
                self.cancelled_at = self.release_not_before = None
                return NumberRestored(self.e164, at, carrier, frozen_since)
            case EventKind.RELEASED:
                assert self.tenure is not None and self.cancelled_at is not None
                advised = self.release_not_before
                assert advised is not None
                if hold is not None:
                    advised = max(advised, hold.until)
                self.tenure = replace(self.tenure, end=self.cancelled_at)
                self.disconnected_at = self.cancelled_at
                self.state = State.RELEASED
                self.cancelled_at = self.release_not_before = None
                if report.override_reason:
                    return NumberReleased(
                        self.e164, at, carrier, self.tenure, report.override_reason, advised
                    )
                return NumberReleased(self.e164, at, carrier, self.tenure)
            case EventKind.PORTED:
                assert report.to_carrier is not None
                self.carrier, self.ported_at = report.to_carrier, at
                return NumberPorted(self.e164, at, carrier, report.to_carrier)
        raise AssertionError(report.kind)  # pragma: no cover - the match is exhaustive
