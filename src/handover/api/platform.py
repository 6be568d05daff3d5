"""The platform's own API: the binding registry (`/v1/platform/bindings`).

A platform sees and changes only its own bindings; the registry never shows one
platform's accounts to another.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from fastapi.concurrency import run_in_threadpool

from handover.api.deps import UowFactory, require_platform
from handover.domain.bindings import Binding, InvalidBinding
from handover.services import bindings

router = APIRouter(prefix="/v1/platform", tags=["platform"])
Platform = Annotated[str, Depends(require_platform("bindings"))]

_EXAMPLE = {
    "bindings": [
        {
            "number": "+8613800138000",
            "account_ref": "acct-7f3a",
            "bound_since": "2019-04-01",
            "tier": "high",
        }
    ]
}


def _items(body: Any) -> Any:
    if not isinstance(body, dict) or set(body) != {"bindings"}:
        raise bindings.InvalidBindings([InvalidBinding(0, 'send {"bindings": [...]}')])
    return body["bindings"]


def _public(binding: Binding) -> dict[str, str]:
    return {
        "number": binding.e164,
        "account_ref": binding.account_ref,
        "bound_since": binding.bound_since.isoformat(),
        "tier": binding.tier.value,
    }


@router.put("/bindings")
async def register(
    uow_factory: UowFactory,
    platform_id: Platform,
    body: Annotated[dict[str, Any], Body(examples=[_EXAMPLE])],
) -> dict[str, int]:
    """Register or update up to 10,000 bindings: number, account_ref (opaque), bound_since,
    tier. All or nothing; sending the same batch again changes nothing."""
    result = await run_in_threadpool(
        bindings.register_bindings, uow_factory, platform_id, _items(body)
    )
    return {"created": result.created, "updated": result.updated, "unchanged": result.unchanged}


@router.delete("/bindings")
async def remove(
    uow_factory: UowFactory, platform_id: Platform, body: Annotated[dict[str, Any], Body()]
) -> dict[str, int]:
    """Remove bindings named by number and account_ref (those not registered are ignored)."""
    removed = await run_in_threadpool(
        bindings.remove_bindings, uow_factory, platform_id, _items(body)
    )
    return {"removed": removed}


@router.get("/bindings")
async def listed(
    uow_factory: UowFactory,
    platform_id: Platform,
    number: Annotated[str | None, Query(description="Only this number")] = None,
    cursor: Annotated[str | None, Query(description="From a previous page's next")] = None,
    limit: Annotated[int, Query(ge=1, le=bindings.MAX_PAGE)] = 100,
) -> dict[str, Any]:
    """The platform's own bindings, a page at a time."""
    page, after = await run_in_threadpool(
        bindings.list_bindings, uow_factory, platform_id, number, cursor, limit
    )
    return {"items": [_public(binding) for binding in page], "next": after}
