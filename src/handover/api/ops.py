"""Probes for operators and orchestrators: liveness (`/healthz`) and readiness (`/readyz`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request

from handover import __version__
from handover.api.deps import UowFactory
from handover.services import health

router = APIRouter(tags=["ops"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the process answers (the store is not asked)."""
    return {"status": "ok", "version": __version__}


@router.get("/readyz")
def readyz(uow_factory: UowFactory, request: Request) -> dict[str, Any]:
    """Readiness: the store answers and a `handover work` process finished a round within
    HANDOVER_WORKER_STALE_SECONDS. Otherwise 503 problem details (with `Retry-After`) saying
    which: `store-unavailable`, or `not-ready` with its `checks`."""
    stale = request.app.state.settings.worker_stale_seconds
    ready = health.readiness(
        uow_factory, datetime.now(UTC), timedelta(seconds=stale) if stale > 0 else None
    )
    return {
        "status": "ready",
        "checks": {"store": "ok", "worker": "ok" if stale > 0 else "not checked"},
        "workers": [
            {
                "worker_id": beat.worker_id,
                "host": beat.host,
                "pid": beat.pid,
                "beat_at": beat.beat_at.isoformat(),
                "consecutive_failures": beat.consecutive_failures,
                "last_error": beat.last_error,
                "last_error_at": beat.last_error_at.isoformat() if beat.last_error_at else None,
            }
            for beat in ready.workers
        ],
    }
