"""`GET /readyz`: ready when the store answers and a worker beat within
HANDOVER_WORKER_STALE_SECONDS; 503 problem details saying which check failed otherwise.
(The store away, on a real PostgreSQL: test_outage.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from handover.api.app import create_app
from handover.config import Settings
from handover.services import health
from handover.services.model import WorkerHeartbeat
from handover.services.ports import UnitOfWorkFactory


def beat(uow_factory: UnitOfWorkFactory, worker_id: str, age: timedelta, **changes: object) -> None:
    at = datetime.now(UTC) - age
    heartbeat = WorkerHeartbeat(worker_id, "host-1", 42, at - timedelta(hours=1), at)
    fields = {name: getattr(heartbeat, name) for name in heartbeat.__slots__} | changes
    health.beat(uow_factory, WorkerHeartbeat(**fields), timedelta(days=1))  # type: ignore[arg-type]


def test_no_worker_ever_is_not_ready(http: TestClient) -> None:
    response = http.get("/readyz")
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    body = response.json()
    assert body["type"].endswith("/not-ready") and body["checks"] == {
        "store": "ok",
        "worker": "missing",
    }
    assert body["detail"] == "no worker has ever finished a round"


def test_a_stale_heartbeat_is_not_ready_and_a_fresh_one_is(
    http: TestClient, uow_factory: UnitOfWorkFactory
) -> None:
    beat(uow_factory, "old", timedelta(seconds=45))
    stale = http.get("/readyz")
    assert stale.status_code == 503 and stale.json()["checks"]["worker"] == "stale"
    assert "no worker has finished a round in 30 s" in stale.json()["detail"]

    beat(uow_factory, "new", timedelta(seconds=1), consecutive_failures=2, last_error="boom")
    ready = http.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready" and body["checks"] == {"store": "ok", "worker": "ok"}
    (worker,) = body["workers"]
    assert (worker["worker_id"], worker["consecutive_failures"], worker["last_error"]) == (
        "new",
        2,
        "boom",
    )


def test_a_heartbeat_replaces_the_worker_s_last_and_forgets_long_gone_workers(
    uow_factory: UnitOfWorkFactory,
) -> None:
    beat(uow_factory, "gone", timedelta(days=3))
    beat(uow_factory, "w", timedelta(seconds=10))
    beat(uow_factory, "w", timedelta(seconds=1))
    workers = health.readiness(uow_factory, datetime.now(UTC), timedelta(seconds=5)).workers
    assert [w.worker_id for w in workers] == ["w"]
    every = health.readiness(uow_factory, datetime.now(UTC), None).workers
    assert [w.worker_id for w in every] == ["w"], "the three-day-old heartbeat was dropped"


@pytest.fixture
def unchecked(settings: Settings) -> Iterator[FastAPI]:
    app = create_app(settings.model_copy(update={"worker_stale_seconds": 0}))
    yield app
    app.state.engine.dispose()


def test_a_stale_limit_of_zero_checks_the_store_alone(unchecked: FastAPI) -> None:
    with TestClient(unchecked) as http:
        response = http.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"store": "ok", "worker": "not checked"}
