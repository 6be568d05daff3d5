"""Notices carriers show subscribers (the activation notice at the counter or in the app)."""

from __future__ import annotations

from dataclasses import dataclass

from handover.domain.notices import ActivationNotice, activation_notice
from handover.domain.platforms import Platform
from handover.services.access import Principal
from handover.services.history import visible_number
from handover.services.ports import UnitOfWorkFactory


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
    with uow_factory() as uow:
        found = visible_number(uow, principal, number)
        if found is None:
            return None
        notice = activation_notice(found, uow.bindings.for_number(found.e164))
        platforms = [uow.platforms.get(platform_id) for platform_id in notice.platforms]
    return NoticeForSubscriber(notice, [p for p in platforms if p is not None])
