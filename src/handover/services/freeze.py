"""The freeze policy's use cases: release advice for carriers, and its enforcement when
releases are reported (see `domain.freeze`)."""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from handover.domain.freeze import FreezeRecord, ReleaseAdvice, ReleaseOverride, release_advice
from handover.domain.freeze_policy import FreezePolicy
from handover.domain.lifecycle import EventKind, NumberReleased, State
from handover.domain.reports import CarrierReport, Fingerprint, Outcome
from handover.services.access import Principal
from handover.services.history import visible_number
from handover.services.ports import UnitOfWork, UnitOfWorkFactory


@dataclass(frozen=True, slots=True)
class AdviceForCarrier:
    advice: ReleaseAdvice
    state: State
    #: Names of the platforms the holds mention, by id (never their accounts).
    platform_names: dict[str, str]


def advice_for(
    uow_factory: UnitOfWorkFactory,
    principal: Principal,
    number: str,
    policy: FreezePolicy,
    now: datetime,
) -> AdviceForCarrier | None:
    """The release advice of a frozen number; None when unknown or another carrier's.

    Raises `Rejected` for an invalid number or one that is not frozen.
    """
    with uow_factory() as uow:
        found = visible_number(uow, principal, number)
        if found is None:
            return None
        advice = release_advice(found, uow.freeze.records({found.e164})[found.e164], policy, now)
        named = {p for hold in advice.reasons for p in hold.platforms}
        platforms = {p: uow.platforms.get(p) for p in named}
    names = {p: found.name for p, found in platforms.items() if found is not None}
    return AdviceForCarrier(advice, State.FROZEN, names)


def release_records(uow: UnitOfWork, reports: Iterable[CarrierReport]) -> dict[str, FreezeRecord]:
    """What may hold the numbers a batch releases; nothing is read for a batch without one."""
    releasing = {report.number.e164 for report in reports if report.kind is EventKind.RELEASED}
    return uow.freeze.records(releasing) if releasing else {}


def with_overrides(
    uow: UnitOfWork, carrier_id: str, recorded: MutableMapping[str, Fingerprint]
) -> None:
    """Complete the fingerprints of recorded releases that carried an override, so that a
    retry with the same override is a duplicate and one without it a conflict."""
    releases = [event_id for event_id, seen in recorded.items() if seen[1] == "released"]
    if not releases:
        return
    for event_id, reason in uow.freeze.overrides(carrier_id, releases).items():
        seen = recorded[event_id]
        recorded[event_id] = (seen[0], seen[1], seen[2], seen[3], seen[4], reason)


def record_overrides(
    uow: UnitOfWork, carrier_id: str, accepted: Sequence[Outcome], now: datetime
) -> None:
    """Keep every accepted release that carried an override, with the advised date."""
    overrides = [
        ReleaseOverride(
            carrier_id,
            outcome.event_id,
            event.e164,
            event.advised_release,
            event.override_reason,
            now,
        )
        for outcome in accepted
        if isinstance(event := outcome.event, NumberReleased)
        and event.override_reason is not None
        and event.advised_release is not None
    ]
    if overrides:
        uow.freeze.add_overrides(overrides)
