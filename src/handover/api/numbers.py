"""Number history for the holding carrier and the regulator."""

from __future__ import annotations

from fastapi import APIRouter

from handover.api.deps import NumberReader, UowFactory
from handover.api.problems import Problem
from handover.api.schemas import NumberHistoryPublic, RecordedEventPublic, TenurePublic
from handover.domain.rejections import Rejected
from handover.services.history import number_history

router = APIRouter(prefix="/v1/numbers", tags=["numbers"])


@router.get("/{number}", response_model=NumberHistoryPublic)
def get_number(
    number: str, principal: NumberReader, uow_factory: UowFactory
) -> NumberHistoryPublic:
    """State, tenures and events of a number. A carrier that does not hold it gets 404."""
    try:
        with uow_factory() as uow:
            history = number_history(uow, number, principal)
    except Rejected as exc:
        raise Problem(422, "invalid-number", "Not a valid E.164 number", exc.detail) from None
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
