"""Cases: the new owner's renewal, the platform's answer, escalation and complaints.

Every change to a case is appended to the audit log, added to the case's history and,
where the platform must hear of it, written to the signal outbox, all in the transaction
that makes the change: the owner, the platform and the regulator read the same story.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from handover.domain.audit import case_entry
from handover.domain.bindings import BindingKey
from handover.domain.cases import (
    Case,
    CaseAnswered,
    CaseCancelled,
    CaseError,
    CaseEscalated,
    CaseEvent,
    CaseKind,
    CaseOutcome,
    CasePolicy,
    CaseRecord,
    CaseState,
    Complaint,
    Requester,
    new_complaint,
    open_case,
)
from handover.domain.lifecycle import NumberRestored
from handover.domain.message_texts import language_for
from handover.domain.messages import Channel, Message
from handover.domain.numbers import parse_number
from handover.domain.platforms import Platform
from handover.domain.renewals import (
    Renewal,
    RenewalChoice,
    current_tenure,
    platforms_to_ask,
    renewal_choice,
)
from handover.domain.ssf.events import case_signal
from handover.services.people import holder, numbers_of
from handover.services.ports import UnitOfWork, UnitOfWorkFactory

#: Cases one escalation pass takes at most (the next pass takes the rest).
ESCALATION_BATCH = 500


class CaseNotFound(LookupError):
    """No such case for this caller (another party's case is not found, not forbidden);
    the message says which."""


def _not_yours(case_id: str) -> CaseNotFound:
    return CaseNotFound(f"{case_id} is not one of yours")


@dataclass(frozen=True, slots=True)
class PlatformCase:
    case: Case
    platform: Platform


@dataclass(frozen=True, slots=True)
class RenewalProgress:
    renewal: Renewal
    cases: list[PlatformCase]
    #: This request opened the cases (False: they were open already, nothing changed).
    opened: bool = False

    @property
    def done(self) -> bool:
        return all(item.case.state is not CaseState.OPEN for item in self.cases)


@dataclass(frozen=True, slots=True)
class CaseDetail:
    case: Case
    platform: Platform
    history: list[CaseRecord]
    complaints: list[Complaint]


def new_case_id(now: datetime) -> str:
    """Ids that sort by creation time, so a page cursor is just the last id seen."""
    return f"c{int(now.timestamp() * 1000):012x}{secrets.token_hex(6)}"


def record(uow: UnitOfWork, changes: Sequence[tuple[Case, CaseEvent]], now: datetime) -> None:
    """Log, remember and signal what happened to cases, in this transaction."""
    if not changes:
        return
    entries = [case_entry(uow.log_key, case, event, now) for case, event in changes]
    first = uow.log.append(entries, now)
    records, signals = [], []
    for position, (case, event) in enumerate(changes):
        index = first + position
        records.append(CaseRecord(case.id, _what(event), event.at, _detail(event), index))
        signal = case_signal(case, event, f"log:{index}")
        if signal is not None:
            signals.append(signal)
    uow.cases.add_records(records)
    uow.signals.add(signals)


def _what(event: CaseEvent) -> str:
    return type(event).__name__.removeprefix("Case").lower()


def _detail(event: CaseEvent) -> dict[str, str | int | bool | None]:
    match event:
        case CaseAnswered():
            return {"outcome": event.outcome.value, "reason": event.reason, "late": event.late}
        case CaseCancelled():
            return {"why": event.why}
        case CaseEscalated():
            return {"overdue_seconds": int(event.overdue.total_seconds())}
    return {}


def _platforms(uow: UnitOfWork) -> dict[str, Platform]:
    return {platform.id: platform for platform in uow.platforms.all()}


def _with_platforms(uow: UnitOfWork, cases: Iterable[Case]) -> list[PlatformCase]:
    platforms = _platforms(uow)
    return [PlatformCase(case, platforms[case.platform_id]) for case in cases]


# The new owner


def choice_for(uow_factory: UnitOfWorkFactory, e164: str) -> tuple[RenewalChoice, list[Platform]]:
    """What a signed-in owner may renew: platforms by name, never accounts."""
    with uow_factory() as uow:
        number = uow.numbers.current({e164}).get(e164)
        platforms = _platforms(uow)
        choice = renewal_choice(number, uow.bindings.for_number(e164), platforms)
    return choice, [platforms[p] for p in (*choice.listed, *choice.others)]


def request_renewal(
    uow_factory: UnitOfWorkFactory,
    e164: str,
    selected: Collection[str],
    check_all_others: bool,
    *,
    policy: CasePolicy | None = None,
    now: datetime | None = None,
) -> RenewalProgress:
    """Open one case per chosen platform that has none open for this tenure.

    Asking again while cases are open opens nothing new and returns the latest renewal,
    so a retried request is harmless; a platform whose earlier case has ended is asked
    again.
    """
    policy, now = policy or CasePolicy(), now or datetime.now(UTC)
    with uow_factory() as uow:
        number = uow.numbers.lock({e164}).get(e164)
        tenure = current_tenure(number)
        platforms = _platforms(uow)
        choice = renewal_choice(number, uow.bindings.for_number(e164), platforms)
        mine = _owner_cases(uow, e164, tenure.start)
        open_ones = {c.platform_id for c in mine if c.state is CaseState.OPEN}
        to_ask = platforms_to_ask(choice, selected, check_all_others, open_ones)
        if not to_ask:
            latest = uow.cases.renewals_for(e164, tenure.start)[-1]
            return RenewalProgress(latest, _with_platforms(uow, uow.cases.for_renewal(latest.id)))
        renewal = Renewal(f"r{new_case_id(now)[1:]}", e164, tenure.start, now)
        uow.cases.add_renewal(renewal)
        opened = [
            open_case(
                new_case_id(now),
                CaseKind.UNBIND,
                Requester.CURRENT_OWNER,
                e164,
                platform_id,
                platforms[platform_id].category,
                tenure.start,
                now,
                policy,
                renewal_id=renewal.id,
            )
            for platform_id in to_ask
        ]
        uow.cases.add([case for case, _ in opened])
        record(uow, opened, now)
        uow.commit()
        return RenewalProgress(
            renewal, [PlatformCase(c, platforms[c.platform_id]) for c, _ in opened], opened=True
        )


def _owner_cases(uow: UnitOfWork, e164: str, tenure_start: datetime) -> list[Case]:
    return [
        case
        for case in uow.cases.for_number(e164)
        if case.requester is Requester.CURRENT_OWNER and case.tenure_start == tenure_start
    ]


def renewal_progress(uow_factory: UnitOfWorkFactory, e164: str, renewal_id: str) -> RenewalProgress:
    """A renewal of the signed-in owner's current tenure; `CaseNotFound` otherwise."""
    with uow_factory() as uow:
        tenure = current_tenure(uow.numbers.current({e164}).get(e164))
        renewal = uow.cases.renewal(renewal_id)
        if renewal is None or (renewal.e164, renewal.tenure_start) != (e164, tenure.start):
            raise _not_yours(renewal_id)
        return RenewalProgress(renewal, _with_platforms(uow, uow.cases.for_renewal(renewal_id)))


def owner_cases(uow_factory: UnitOfWorkFactory, e164: str) -> list[PlatformCase]:
    """Every case the signed-in person opened: renewals of the number they now hold, and
    `migrate`/`unbind` cases on any number they hold or held. Oldest first."""
    with uow_factory() as uow:
        return _with_platforms(uow, sorted(_cases_of(uow, e164), key=lambda case: case.id))


def _cases_of(uow: UnitOfWork, e164: str) -> list[Case]:
    # A frozen number's tenure (and session) lasts until release: its holder still reads
    # their cases, though they can no longer renew it.
    found = holder(uow, e164, in_service=False)
    mine = _owner_cases(uow, e164, found.tenure_start) if found else []
    for held in numbers_of(uow, e164):
        mine += [
            case
            for case in uow.cases.for_number(held.e164)
            if case.requester is Requester.PREVIOUS_OWNER and case.tenure_start == held.start
        ]
    return mine


def _belongs_to(uow: UnitOfWork, e164: str, case: Case) -> bool:
    """The signed-in holder of `e164` opened this case (the same rule as `_cases_of`)."""
    if case.requester is Requester.CURRENT_OWNER:
        found = holder(uow, e164, in_service=False)
        return found is not None and (case.e164, case.tenure_start) == (e164, found.tenure_start)
    held = {(number.e164, number.start) for number in numbers_of(uow, e164)}
    return case.requester is Requester.PREVIOUS_OWNER and (case.e164, case.tenure_start) in held


def owner_case(uow_factory: UnitOfWorkFactory, e164: str, case_id: str) -> CaseDetail:
    with uow_factory() as uow:
        case = _owned(uow, e164, case_id)
        return _detail_of(uow, case)


def _owned(uow: UnitOfWork, e164: str, case_id: str) -> Case:
    case = uow.cases.get(case_id)
    if case is None or not _belongs_to(uow, e164, case):
        raise _not_yours(case_id)
    return case


def file_complaint(
    uow_factory: UnitOfWorkFactory,
    e164: str,
    case_id: str,
    category: str,
    text: str,
    *,
    now: datetime | None = None,
) -> Complaint:
    """An owner's complaint about one of their cases; it joins the regulator's queue."""
    now = now or datetime.now(UTC)
    with uow_factory() as uow:
        case = _owned(uow, e164, case_id)
        complaint = new_complaint(f"q{new_case_id(now)[1:]}", case, category, text, now)
        uow.cases.add_complaint(complaint)
        detail = {"complaint": complaint.id, "category": complaint.category.value}
        uow.cases.add_records([CaseRecord(case.id, "complaint", now, detail)])
        uow.commit()
    return complaint


# The platform


def platform_cases(
    uow_factory: UnitOfWorkFactory,
    platform_id: str,
    state: CaseState | None,
    after: str | None,
    limit: int,
) -> list[Case]:
    with uow_factory() as uow:
        return uow.cases.for_platform(platform_id, state, after, limit)


def platform_case(uow_factory: UnitOfWorkFactory, platform_id: str, case_id: str) -> CaseDetail:
    with uow_factory() as uow:
        case = uow.cases.get(case_id)
        if case is None or case.platform_id != platform_id:
            raise _not_yours(case_id)
        return _detail_of(uow, case, complaints=False)


def answer_case(
    uow_factory: UnitOfWorkFactory,
    platform_id: str,
    case_id: str,
    outcome: str,
    reason: str | None,
    *,
    now: datetime | None = None,
) -> tuple[Case, bool]:
    """Record the platform's outcome; (the case, whether this call changed it).

    The same answer again changes nothing; a different answer to a closed case is a
    `CaseError`. An outcome that resolves the binding removes it from the registry, and
    the last answer of a renewal tells the owner that every platform has answered.
    """
    now = now or datetime.now(UTC)
    try:
        result = CaseOutcome(outcome)
    except ValueError:
        allowed = ", ".join(o.value for o in CaseOutcome)
        raise CaseError("invalid-outcome", f"outcome: one of {allowed}") from None
    with uow_factory() as uow:
        case = uow.cases.get(case_id, lock=True)
        if case is None or case.platform_id != platform_id:
            raise _not_yours(case_id)
        if case.answered_with(result, reason):
            return case, False
        event = case.answer(result, reason, now)
        uow.cases.update(case)
        record(uow, [(case, event)], now)
        if case.resolves_binding:
            _resolve_bindings(uow, case)
        if case.renewal_id is not None:
            _complete_renewal(uow, case.renewal_id, now)
        uow.commit()
    return case, True


def _resolve_bindings(uow: UnitOfWork, case: Case) -> None:
    """The accounts the case was about are no longer bound to the number."""
    if case.account_ref is not None:
        keys = [BindingKey(case.e164, case.account_ref)]
    else:
        keys = [
            binding.key
            for binding in uow.bindings.for_number(case.e164)
            if binding.platform_id == case.platform_id and binding.bound_before(case.tenure_start)
        ]
    if keys:
        uow.bindings.remove(case.platform_id, keys)


def _complete_renewal(uow: UnitOfWork, renewal_id: str, now: datetime) -> None:
    cases = uow.cases.for_renewal(renewal_id)
    if any(case.state is CaseState.OPEN for case in cases):
        return
    renewal = uow.cases.renewal(renewal_id)
    assert renewal is not None
    uow.cases.complete_renewal(renewal_id, now)
    outcomes = [case.outcome.value for case in cases if case.outcome is not None]
    uow.messages.add(
        [
            Message(
                f"renewal-done:{renewal_id}",
                Channel.SMS,
                renewal.e164,
                "renewal_complete",
                {
                    "number": renewal.e164,
                    "platforms": len(cases),
                    "resolved": sum(o != CaseOutcome.REJECTED for o in outcomes),
                    "rejected": outcomes.count(CaseOutcome.REJECTED.value),
                },
                language_for(parse_number(renewal.e164).region),
                now,
                now,
            )
        ]
    )


# Deadlines and the regulator


def escalate_overdue(
    uow_factory: UnitOfWorkFactory, *, now: datetime | None = None, limit: int = ESCALATION_BATCH
) -> int:
    """Escalate open cases past their deadline (once each); how many were escalated.

    Each escalation reaches the regulator's overdue list and sends the platform a
    reminder event. Run by `handover work` every cycle.
    """
    now = now or datetime.now(UTC)
    with uow_factory() as uow:
        changes = [
            (case, case.escalate(now)) for case in uow.cases.overdue(now, limit, unescalated=True)
        ]
        for case, _ in changes:
            uow.cases.update(case)
        record(uow, changes, now)
        uow.commit()
    return len(changes)


def overdue_cases(
    uow_factory: UnitOfWorkFactory, *, now: datetime | None = None, limit: int = 1000
) -> list[PlatformCase]:
    """Open cases past their deadline, most overdue first (the regulator's list)."""
    now = now or datetime.now(UTC)
    with uow_factory() as uow:
        return _with_platforms(uow, uow.cases.overdue(now, limit))


def case_detail(uow_factory: UnitOfWorkFactory, case_id: str) -> CaseDetail:
    """A case with its whole history and complaints (for the regulator)."""
    with uow_factory() as uow:
        case = uow.cases.get(case_id)
        if case is None:
            raise CaseNotFound(case_id)
        return _detail_of(uow, case)


def complaint_queue(
    uow_factory: UnitOfWorkFactory, state: str | None, limit: int
) -> list[tuple[Complaint, CaseDetail]]:
    with uow_factory() as uow:
        queue = []
        for complaint in uow.cases.complaints(state, limit):
            case = uow.cases.get(complaint.case_id)
            assert case is not None
            queue.append((complaint, _detail_of(uow, case)))
        return queue


def _detail_of(uow: UnitOfWork, case: Case, *, complaints: bool = True) -> CaseDetail:
    platform = uow.platforms.get(case.platform_id)
    assert platform is not None
    found = uow.cases.complaints_for(case.id) if complaints else []
    return CaseDetail(case, platform, uow.cases.history(case.id), found)


# The lifecycle


def cancel_on_restore(uow: UnitOfWork, events: Iterable[NumberRestored], now: datetime) -> None:
    """A number restored during its freeze keeps its subscriber: every case opened since
    the freeze began was about recycling it and is cancelled (`case-cancelled`)."""
    changes = []
    for event in events:
        for case in uow.cases.for_number(event.e164, CaseState.OPEN):
            if case.opened_at >= event.frozen_since:
                changes.append((case, case.cancel("number restored", now)))
    for case, _ in changes:
        uow.cases.update(case)
    record(uow, changes, now)
