"""Notices carriers show subscribers (the activation notice at the counter or in the app)."""

from __future__ import annotations

from dataclasses import dataclass

from handover.domain.notices import ActivationNotice, activation_notice
from handover.domain.numbers import parse_number
from handover.domain.platforms import Platform
from handover.services.access import AccessDenied, Principal
from handover.services.model import Role
from handover.services.ports import UnitOfWorkFactory

READ_SCOPE = "numbers:read"


@dataclass(frozen=True, slots=True)
class NoticeForSubscriber:
    notice: ActivationNotice
    #: The platforms named in the notice (names and categories only, never accounts).
    platforms: list[Platform]


def notice_for(
    uow_factory: UnitOfWorkFactory, principal: Principal, number: str
) -> NoticeForSubscriber | None:
    """The activation notice of a number; None when unknown or held by another carrier.

    Raises `Rejected` for an invalid number or one without a subscriber now.
    """
    if READ_SCOPE not in principal.scopes:
        raise AccessDenied(f"the {READ_SCOPE} scope is needed")
    e164 = parse_number(number).e164
    with uow_factory() as uow:
        found = uow.numbers.current({e164}).get(e164)
        if found is None or found.state is None:
            return None
        if principal.role is Role.CARRIER and found.carrier != principal.carrier_id:
            return None
        notice = activation_notice(found, uow.bindings.for_number(e164))
        platforms = [uow.platforms.get(platform_id) for platform_id in notice.platforms]
    return NoticeForSubscriber(notice, [p for p in platforms if p is not None])
