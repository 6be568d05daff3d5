"""Number ranges over HTTP: the regulator's view of activations refused outside them.

Ranges are granted on the command line (`handover carrier grant`); here the regulator
reads who tried to claim numbers outside their ranges (`outside_range`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from handover.api.deps import UowFactory, require_scope
from handover.api.schemas import RangeRefusalPagePublic, RangeRefusalPublic
from handover.services import ranges
from handover.services.access import Principal

regulator = APIRouter(prefix="/v1/regulator", tags=["regulator"])

RegulatorReader = Annotated[Principal, Depends(require_scope("regulator:read"))]


@regulator.get("/range-refusals", response_model=RangeRefusalPagePublic)
def range_refusals(
    principal: RegulatorReader,
    uow_factory: UowFactory,
    carrier: Annotated[str | None, Query(max_length=64)] = None,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1_000,
) -> RangeRefusalPagePublic:
    """Activations refused because the number is outside the reporting carrier's ranges,
    oldest first, a page at a time (follow `next_after`); `carrier` keeps one carrier's."""
    found = ranges.range_refusals(uow_factory, carrier, after, limit)
    return RangeRefusalPagePublic(
        items=[
            RangeRefusalPublic(
                id=r.id or 0,
                carrier=r.carrier_id,
                number=r.e164,
                event=r.event,
                event_id=r.event_id,
                occurred_at=r.occurred_at,
                refused_at=r.refused_at,
                ingest=r.ingest_id,
                line=r.line,
            )
            for r in found
        ],
        next_after=found[-1].id if len(found) == limit else None,
    )
