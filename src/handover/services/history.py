"""Number history: who held a number when, for its holding carrier and the regulator."""

from __future__ import annotations

from handover.domain.lifecycle import Number
from handover.domain.numbers import parse_number
from handover.services.access import AccessDenied, Principal
from handover.services.model import NumberHistory, Role
from handover.services.ports import UnitOfWork, UnitOfWorkFactory

READ_SCOPE = "numbers:read"


def visible_number(uow: UnitOfWork, principal: Principal, number: str) -> Number | None:
    """The number as the caller may see it: None when unknown, never reported, or held by
    another carrier (the regulator sees all). `AccessDenied` without `numbers:read`,
    `Rejected` for an invalid number."""
    if READ_SCOPE not in principal.scopes:
        raise AccessDenied(f"the {READ_SCOPE} scope is needed")
    e164 = parse_number(number).e164
    found = uow.numbers.current({e164}).get(e164)
    if found is None or found.state is None:
        return None
    if principal.role is Role.CARRIER and found.carrier != principal.carrier_id:
        return None
    return found


def number_history(
    uow_factory: UnitOfWorkFactory, number: str, principal: Principal
) -> NumberHistory | None:
    """The history, or None when unknown *or* held by another carrier (no existence leak).

    `AccessDenied` without `numbers:read`, `Rejected` for an invalid number."""
    if READ_SCOPE not in principal.scopes:
        raise AccessDenied(f"the {READ_SCOPE} scope is needed")
    e164 = parse_number(number).e164
    with uow_factory() as uow:
        history = uow.numbers.history(e164)
    if history is None:
        return None
    if principal.role is Role.CARRIER and history.carrier_id != principal.carrier_id:
        return None
    return history
