"""The carrier's word on people: which of its subscriber refs are the same person.

Links let a previous owner, signed in with their current number, see the numbers they held
under other refs ("my numbers"), without Handover ever storing a national ID.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from handover.api.deps import CarrierReporter, UowFactory
from handover.api.edge import Inbound
from handover.api.problems import Problem
from handover.services import people

router = APIRouter(prefix="/v1/carrier", tags=["carrier"])


class SubscriberLinksIn(Inbound):
    """Loosely typed on purpose: every fault comes back as one 422 problem from the domain."""

    subscriber: Any = Field(examples=["S-20240701-0042"])
    same_as: Any = Field(examples=[["S-20190312-7731"]], description="Up to 100 refs")


class SubscriberLinksPublic(BaseModel):
    subscriber: str
    same_as: list[str] = Field(description="Every ref now linked to it, directly or not")
    created: int = Field(description="Links this call added (0 when all were known)")


@router.put("/subscriber-links", response_model=SubscriberLinksPublic)
def link_subscribers(
    body: SubscriberLinksIn, principal: CarrierReporter, uow_factory: UowFactory
) -> SubscriberLinksPublic:
    """Attest that `subscriber` is the same person as each ref in `same_as` (refs of the
    calling carrier only). Links are symmetric and transitive; sending them again changes
    nothing."""
    if principal.carrier_id is None:
        raise Problem(403, "not-a-carrier", "Only a carrier's client may link its subscribers")
    linked = people.link_subscribers(
        uow_factory, principal.carrier_id, body.subscriber, body.same_as, datetime.now(UTC)
    )
    return SubscriberLinksPublic(
        subscriber=linked.subscriber, same_as=linked.same_as, created=linked.created
    )
