"""Release advice: when a frozen number may be recycled, and what holds it (docs/freeze.md).

A cancelled number rests for its country's minimum freeze. Two things can hold it longer:

- high-value accounts (payment, banking, lending, cloud storage, identity) bound during the
  cancelled tenure and still registered by their platforms: held until the platforms
  remove them, at most until `FreezePolicy.max_freeze_days` after cancellation. Bindings
  from before the tenure belong to an even earlier holder and do not hold this release;
- fewer than two reminders logged to the previous owner during this freeze
  (`domain.reminders`).

The advice is computed on demand from the number, its bindings and the reminders sent, and
enforced when a release is reported (`domain.reports.decide`); it is never written to the
number, so `Number.release_not_before` stays the minimum.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from handover.domain.bindings import Binding
from handover.domain.freeze_policy import FreezePolicy
from handover.domain.lifecycle import Number, ReleaseHold, State
from handover.domain.platforms import Tier
from handover.domain.rejections import Reason, Rejected
from handover.domain.reminders import REQUIRED_BEFORE_RELEASE, Stage, second_due

#: How long a release waits for a late reminder: `handover work` sends it within seconds;
#: longer than the 5 minutes a report may be dated ahead, so none slips through meanwhile.
LATE_REMINDER_WAIT = timedelta(minutes=10)


class NotFrozen(Rejected):
    """Release advice is only for a frozen number."""

    def __init__(self, detail: str) -> None:
        super().__init__(Reason.ILLEGAL_TRANSITION, detail)


class HoldReason(StrEnum):
    MINIMUM_FREEZE = "minimum_freeze"
    UNRESOLVED_HIGH_BINDINGS = "unresolved_high_bindings"
    REMINDERS_PENDING = "reminders_pending"


@dataclass(frozen=True, slots=True)
class Hold:
    """One reason the number stays frozen, and until when it holds."""

    reason: HoldReason
    until: datetime
    detail: str
    #: The platforms whose bindings hold the release, by id.
    platforms: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReleaseAdvice:
    e164: str
    cancelled_at: datetime
    minimum_release: datetime
    earliest_release: datetime
    reasons: list[Hold]

    def freeze_end(self) -> datetime:
        """The release the reminders count down to: the minimum and the binding holds,
        without the reminders' own hold (which depends on it)."""
        return max(h.until for h in self.reasons if h.reason is not HoldReason.REMINDERS_PENDING)

    def extension(self) -> ReleaseHold | None:
        """What holds the number past its minimum freeze, for the lifecycle to enforce."""
        if self.earliest_release <= self.minimum_release:
            return None
        why = "; ".join(h.detail for h in self.reasons if h.until > self.minimum_release)
        return ReleaseHold(self.earliest_release, why)


@dataclass(frozen=True, slots=True)
class ReleaseOverride:
    """A release the carrier reported before the advised date, with its stated reason."""

    carrier_id: str
    event_id: str
    e164: str
    advised_release: datetime
    reason: str
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class FreezeRecord:
    """What the store knows about a number beyond its aggregate, for its release advice."""

    #: Every platform's bindings on the number (any tier, any tenure).
    bindings: Sequence[Binding] = ()
    #: Reminder stages logged, per freeze (keyed by its start: the number's `cancelled_at`).
    reminders: Mapping[datetime, frozenset[Stage]] = field(default_factory=dict)
    #: The current freeze's cancellation: (occurred_at, when Handover recorded it).
    cancellation: tuple[datetime, datetime] | None = None

    def sent(self, frozen_at: datetime) -> frozenset[Stage]:
        """The stages logged for the freeze that started at `frozen_at`."""
        return self.reminders.get(frozen_at, frozenset())

    def known_since(self, cancelled_at: datetime, now: datetime) -> datetime:
        """When Handover learned of the cancellation (`now` when it is not recorded yet)."""
        if self.cancellation is not None and self.cancellation[0] == cancelled_at:
            return self.cancellation[1]
        return now


def unresolved_high(number: Number, bindings: Sequence[Binding]) -> list[Binding]:
    """High-value bindings made during the number's current tenure, still registered."""
    assert number.tenure is not None
    start = number.tenure.start
    return [b for b in bindings if b.tier is Tier.HIGH and not b.bound_before(start)]


def release_advice(
    number: Number, record: FreezeRecord, policy: FreezePolicy, now: datetime
) -> ReleaseAdvice:
    """The earliest release of a frozen number and every hold; `NotFrozen` otherwise."""
    if number.state is not State.FROZEN:
        state = number.state.value if number.state else "never reported"
        raise NotFrozen(f"the number is not frozen ({state})")
    assert number.tenure and number.cancelled_at and number.release_not_before
    cancelled, minimum = number.cancelled_at, number.release_not_before
    holds = [
        Hold(
            HoldReason.MINIMUM_FREEZE,
            minimum,
            f"the minimum freeze for {number.region} is "
            f"{policy.minimum_freeze(number.region).days} days",
        )
    ]
    advised = minimum
    high = unresolved_high(number, record.bindings)
    if high:
        cap = max(minimum, cancelled + policy.maximum_freeze())
        platforms = tuple(sorted({b.platform_id for b in high}))
        holds.append(
            Hold(
                HoldReason.UNRESOLVED_HIGH_BINDINGS,
                cap,
                f"{len(high)} high-value account(s) bound during the cancelled tenure are "
                f"still registered at {len(platforms)} platform(s); held until they are "
                f"unbound, at most until {cap.isoformat()}",
                platforms,
            )
        )
        advised = cap
    reminders = _reminders_hold(number, record, advised, now)
    if reminders is not None:
        holds.append(reminders)
    earliest = max(hold.until for hold in holds)
    return ReleaseAdvice(number.e164, cancelled, minimum, earliest, holds)


def release_hold(
    number: Number, record: FreezeRecord, policy: FreezePolicy, now: datetime
) -> ReleaseHold | None:
    """What holds a frozen number past its minimum when its release is reported, for the
    lifecycle to enforce. Most releases have nothing to check; they skip the full advice."""
    assert number.tenure and number.cancelled_at and number.release_not_before
    # Without a high binding of the tenure, the freeze ends at the minimum.
    if not unresolved_high(number, record.bindings) and (
        len(record.sent(number.cancelled_at)) >= REQUIRED_BEFORE_RELEASE
        or _learned_too_late(number, record, number.release_not_before, now)
    ):
        return None
    return release_advice(number, record, policy, now).extension()


def _learned_too_late(
    number: Number, record: FreezeRecord, freeze_end: datetime, now: datetime
) -> bool:
    """Whether Handover learned of the freeze only once it could have ended (a carrier
    reporting old history): no reminder could have reached the person in time, so the
    reminders do not hold it. `freeze_end` is the advised release without the reminders'
    own hold: the minimum, or later while high-value bindings hold the number."""
    assert number.cancelled_at is not None
    return record.known_since(number.cancelled_at, now) >= freeze_end


def _reminders_hold(
    number: Number, record: FreezeRecord, advised: datetime, now: datetime
) -> Hold | None:
    """Held until the second reminder of this freeze is logged: when it is due, or a little
    after `now` when it is late (the worker is behind, or the cancellation was reported
    late); never for a freeze learned of too late (`_learned_too_late`)."""
    assert number.cancelled_at is not None
    sent = record.sent(number.cancelled_at)
    due = second_due(number.cancelled_at, advised, sent)
    if due is None or _learned_too_late(number, record, advised, now):
        return None
    late = due <= now
    when = "is late; release waits until it is sent" if late else f"is due {due.isoformat()}"
    return Hold(
        HoldReason.REMINDERS_PENDING,
        due if not late else now + LATE_REMINDER_WAIT,
        f"{len(sent)} of {REQUIRED_BEFORE_RELEASE} reminders to the previous owner logged; "
        f"the next {when}",
    )
