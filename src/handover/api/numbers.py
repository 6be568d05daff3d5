"""Number history for the holding carrier and the regulator."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter

from handover.api.deps import AppSettings, NumberReader, UowFactory
from handover.api.problems import Problem
from handover.api.schemas import NumberHistoryPublic, RecordedEventPublic, TenurePublic
from handover.services.freeze import advice_for
from handover.services.history import number_history
from handover.services.notices import NoticeForSubscriber, notice_for

router = APIRouter(prefix="/v1/numbers", tags=["numbers"])
#: What the holding carrier shows its subscribers.
notices = APIRouter(prefix="/v1/carrier/numbers", tags=["carrier"])


@router.get("/{number}", response_model=NumberHistoryPublic)
def get_number(
    number: str, principal: NumberReader, uow_factory: UowFactory
) -> NumberHistoryPublic:
    """State, tenures and events of a number. A carrier that does not hold it gets 404."""
    history = number_history(uow_factory, number, principal)
    if history is None:
        raise Problem(404, "not-found", "No such number", f"{number} is not known to you")
    return NumberHistoryPublic(
        number=history.e164,
        region=history.region,
        state=history.state.value,
        carrier=history.carrier_id,
        release_not_before=history.release_not_before,
        tenures=[
            TenurePublic(subscriber=t.subscriber, carrier=t.carrier, start=t.start, end=t.end)
            for t in history.tenures
        ],
        events=[
            RecordedEventPublic(
                seq=e.seq,
                event_id=e.event_id,
                carrier=e.carrier_id,
                event=e.kind.value,
                occurred_at=e.occurred_at,
                subscriber=e.subscriber,
                to_carrier=e.to_carrier,
                recorded_at=e.recorded_at,
            )
            for e in history.events
        ],
    )


def _message(found: NoticeForSubscriber) -> dict[str, str]:
    """What the carrier shows the subscriber, in English and Chinese."""
    names = [platform.name for platform in found.platforms]
    if not found.notice.used_before:
        return {
            "en": "This number had no earlier subscriber.",
            "zh-CN": "此号码此前没有其他机主。",
        }
    if not names:
        return {
            "en": "This number was used by someone else before. No platform registered with "
            "Handover still lists it; a renewal also asks the platforms that did not register.",
            "zh-CN": "此号码曾由他人使用。目前没有在 Handover 登记的平台仍绑定该号码；"
            "申请二次号码焕新时，未登记的平台也会被询问。",
        }
    return {
        "en": f"This number was used by someone else before. {len(names)} platform(s) still "
        f"list it: {', '.join(names)}. Renew the number through Handover so they unbind the "
        "previous owner's accounts.",
        "zh-CN": f"此号码曾由他人使用。仍有 {len(names)} 个平台登记了该号码："
        f"{'、'.join(names)}。请通过 Handover 申请二次号码焕新，让这些平台解绑前任机主的账号。",
    }


@notices.get("/{number}/activation-notice")
def get_activation_notice(
    number: str, principal: NumberReader, uow_factory: UowFactory
) -> dict[str, Any]:
    """What to tell a new subscriber at the counter or in the app: was the number used
    before, and which platforms still list it from before this tenure (names only)."""
    found = notice_for(uow_factory, principal, number)
    if found is None:
        raise Problem(404, "not-found", "No such number", f"{number} is not known to you")
    return {
        "number": found.notice.e164,
        "used_before": found.notice.used_before,
        "tenure_start": found.notice.tenure_start.isoformat(),
        "platforms": [
            {"name": platform.name, "category": platform.category.value}
            for platform in found.platforms
        ],
        "message": _message(found),
    }


@notices.get("/{number}/release-advice")
def get_release_advice(
    number: str, principal: NumberReader, uow_factory: UowFactory, settings: AppSettings
) -> dict[str, Any]:
    """When a frozen number may be released, and every hold: the country's minimum freeze,
    high-value accounts still bound from the cancelled tenure (platform names only), and
    reminders to the previous owner not yet sent. A `released` report dated earlier is
    refused with `freeze_not_over` unless it carries an `override_reason`."""
    found = advice_for(uow_factory, principal, number, settings.freeze_policy, datetime.now(UTC))
    if found is None:
        raise Problem(404, "not-found", "No such number", f"{number} is not known to you")
    advice = found.advice
    return {
        "number": advice.e164,
        "state": found.state.value,
        "cancelled_at": advice.cancelled_at.isoformat(),
        "minimum_release": advice.minimum_release.isoformat(),
        "earliest_release": advice.earliest_release.isoformat(),
        "holds": [
            {"reason": hold.reason.value, "until": hold.until.isoformat(), "detail": hold.detail}
            | (
                {"platforms": [found.platform_names.get(p, p) for p in hold.platforms]}
                if hold.platforms
                else {}
            )
            for hold in advice.reasons
        ],
    }
