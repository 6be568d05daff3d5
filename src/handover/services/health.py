"""Is the deployment ready to serve (`GET /readyz`): the store answers and a `handover work`
process has finished a round recently. And the heartbeat that worker writes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from handover.services.model import WorkerHeartbeat
from handover.services.ports import UnitOfWorkFactory


class NotReady(Exception):
    """The store answers but no worker has finished a round lately: pushes, messages,
    reminders, escalations and checkpoints are not happening."""

    #: Seconds a probe is asked to wait before asking again (HTTP `Retry-After`).
    retry_after: int = 5

    def __init__(self, detail: str, checks: Mapping[str, str]) -> None:
        super().__init__(detail)
        self.detail = detail
        self.checks = checks


@dataclass(frozen=True, slots=True)
class Readiness:
    """Ready: the store answered, and these workers beat within the staleness limit."""

    workers: list[WorkerHeartbeat]


def readiness(
    uow_factory: UnitOfWorkFactory, now: datetime, stale_after: timedelta | None
) -> Readiness:
    """The workers whose heartbeat is fresh. Raises `StoreUnavailable` when the store does
    not answer, `NotReady` when it does but no worker has beat within `stale_after` (None:
    the store alone is checked)."""
    with uow_factory() as uow:
        beats = uow.heartbeats.latest()
    if stale_after is None:
        return Readiness(beats)
    fresh = [beat for beat in beats if now - beat.beat_at <= stale_after]
    if fresh:
        return Readiness(fresh)
    limit = f"{stale_after.total_seconds():g} s"
    if beats:
        last = beats[0].beat_at.isoformat()
        detail = f"no worker has finished a round in {limit} (the last at {last})"
    else:
        detail = "no worker has ever finished a round"
    raise NotReady(detail, {"store": "ok", "worker": "stale" if beats else "missing"})


def beat(uow_factory: UnitOfWorkFactory, heartbeat: WorkerHeartbeat, forget: timedelta) -> None:
    """Store a worker's heartbeat; drop those of workers silent for longer than `forget`."""
    with uow_factory() as uow:
        uow.heartbeats.beat(heartbeat)
        uow.heartbeats.forget_before(heartbeat.beat_at - forget)
        uow.commit()
