"""The previous owner's checklist and the `migrate` / `unbind` cases it opens.

A person signs in with the number they hold now and sees every number they hold (frozen
ones included: a tenure lasts until release) with the bindings made during their tenure.
"""

from __future__ import annotations

from datetime import UTC, datetime

from handover.domain.cases import (
    Case,
    CaseError,
    CaseKind,
    CasePolicy,
    CaseState,
    Requester,
    open_case,
)
from handover.domain.checklist import NumberChecklist, number_checklist
from handover.domain.lifecycle import IN_SERVICE
from handover.domain.numbers import parse_number
from handover.domain.people import HeldNumber
from handover.domain.platforms import Platform
from handover.domain.rejections import Rejected
from handover.services.cases import CaseNotFound, new_case_id, record
from handover.services.people import numbers_of
from handover.services.ports import UnitOfWork, UnitOfWorkFactory


class NotYourNumber(CaseNotFound):
    """The number named is not one the signed-in person holds now."""


def my_checklist(
    uow_factory: UnitOfWorkFactory, e164: str
) -> tuple[list[NumberChecklist], dict[str, Platform]]:
    """A checklist per number the signed-in person still holds, and the platforms named."""
    with uow_factory() as uow:
        lists = [_checklist(uow, held) for held in numbers_of(uow, e164) if held.current]
        named = {item.platform_id for checklist in lists for item in checklist.items}
        platforms = {p.id: p for p in uow.platforms.all() if p.id in named}
    return lists, platforms


def _checklist(uow: UnitOfWork, held: HeldNumber) -> NumberChecklist:
    return number_checklist(
        held.e164, held.start, uow.bindings.for_number(held.e164), uow.cases.for_number(held.e164)
    )


def open_binding_case(
    uow_factory: UnitOfWorkFactory,
    e164: str,
    number: str,
    platform_id: str,
    account_ref: str,
    kind: str,
    migrate_to: str | None = None,
    *,
    policy: CasePolicy | None = None,
    now: datetime | None = None,
) -> tuple[Case, bool]:
    """Ask a platform to move one of the person's bindings to another number they hold
    (`migrate`) or to unbind it; (the case, whether it was opened now).

    The same request while its case is open returns that case.
    """
    policy, now = policy or CasePolicy(), now or datetime.now(UTC)
    if kind not in (CaseKind.MIGRATE, CaseKind.UNBIND):
        raise CaseError("invalid-kind", "kind: migrate or unbind")
    target = _number(number, "number")
    with uow_factory() as uow:
        held = {h.e164: h for h in numbers_of(uow, e164) if h.current}
        if target not in held:
            raise NotYourNumber(number)
        tenure_start = held[target].start
        move_to = _migrate_to(migrate_to, held, target) if kind == CaseKind.MIGRATE else None
        binding = next(
            (
                b
                for b in uow.bindings.for_number(target)
                if (b.platform_id, b.account_ref) == (platform_id, account_ref)
                and not b.bound_before(tenure_start)
            ),
            None,
        )
        if binding is None:
            raise CaseError("no-such-binding", f"{platform_id} lists no such account of yours")
        for case in uow.cases.for_number(target):
            if (
                case.state is CaseState.OPEN
                and case.requester is Requester.PREVIOUS_OWNER
                and (case.platform_id, case.account_ref) == (platform_id, account_ref)
            ):
                if case.kind != kind or case.migrate_to != move_to:
                    raise CaseError("case-open", f"case {case.id} about this account is open")
                return case, False
        platform = uow.platforms.get(platform_id)
        assert platform is not None
        case, opened = open_case(
            new_case_id(now),
            CaseKind(kind),
            Requester.PREVIOUS_OWNER,
            target,
            platform_id,
            platform.category,
            tenure_start,
            now,
            policy,
            account_ref=account_ref,
            migrate_to=move_to,
        )
        uow.cases.add([case])
        record(uow, [(case, opened)], now)
        uow.commit()
    return case, True


def _number(text: str, field: str) -> str:
    try:
        return parse_number(text).e164
    except Rejected as exc:
        raise CaseError("invalid-number", f"{field}: {exc.detail}") from None


def _migrate_to(migrate_to: str | None, held: dict[str, HeldNumber], target: str) -> str:
    """The number to move to: another number the same person holds and uses now."""
    if migrate_to is None:
        raise CaseError("migrate-to-required", "name the number to move the account to")
    move_to = _number(migrate_to, "migrate_to")
    other = held.get(move_to)
    if move_to == target or other is None or other.state not in IN_SERVICE:
        raise CaseError(
            "migrate-to-not-yours", "migrate_to must be another number you hold and use now"
        )
    return move_to
