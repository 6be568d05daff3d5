"""A PostgreSQL restart, for real: a private server (`pg_server.start_embedded`) is halted
under a running worker and an in-process API, then started again.

The worker keeps going, says so in its log and heartbeat, and does its work once the store is
back; the API answers 503 with Retry-After while the store is away and 200 after.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from ssf_servers import wait_until

import pg_server
from handover import bootstrap
from handover.api.app import create_app
from handover.config import Settings
from handover.domain.messages import Channel, Message
from handover.services import access, health
from handover.services.model import Role, WorkerHeartbeat
from handover.services.ports import StoreUnavailable, UnitOfWorkFactory
from handover.services.worker import Backoff, WorkReport, work

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        "postgresql" not in os.environ.get("HANDOVER_TEST_STORES", "postgresql"),
        reason="HANDOVER_TEST_STORES leaves PostgreSQL out",
    ),
]

SECRET_KEY = "outage-test-secret-key-that-is-long-enough-0123456789"
#: Generous: the machine is shared; every wait is for a condition, never for this long.
TIMEOUT = 120.0


@pytest.fixture(scope="module")
def server() -> Iterator[pg_server.Server]:
    """A private server this module may halt and resume, migrated; removed at the end."""
    server = pg_server.start_embedded()
    try:
        engine = bootstrap.engine_for(Settings(database_url=server.url))
        bootstrap.upgrade_store(engine)
        engine.dispose()
        yield server
    finally:
        server.stop()


@pytest.fixture
def settings(server: pg_server.Server, tmp_path: Path) -> Iterator[Settings]:
    yield Settings(
        database_url=server.url,
        environment="test",
        secret_key=SECRET_KEY,
        spool_dir=str(tmp_path),
        worker_stale_seconds=30.0,
    )
    server.resume()  # the next test's store is up, whatever happened in this one


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, recipient: str, text: str) -> None:
        self.sent.append((recipient, text))


def _queue(uow_factory: UnitOfWorkFactory, key: str) -> None:
    now = datetime.now(UTC)
    with uow_factory() as uow:
        uow.messages.add(
            [
                Message(
                    dedupe_key=key,
                    channel=Channel.SMS,
                    recipient="+8613800138000",
                    template="sign_in_code",
                    params={"code": "123456", "long_code": "ABCD-EFGH-JKMN-PQRS", "minutes": 5},
                    language="en",
                    created_at=now,
                    send_after=now,
                )
            ]
        )
        uow.commit()


def test_the_worker_outlives_a_postgresql_restart_and_does_its_work_after(
    server: pg_server.Server, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    engine = bootstrap.engine_for(settings)
    uow_factory = bootstrap.uow_factory(settings, engine)
    worker = bootstrap.worker(settings, engine)
    sms = Recorder()
    worker.senders = {Channel.SMS: sms, Channel.EMAIL: sms}
    worker.policy = replace(worker.policy, idle=0.05, backoff=Backoff(initial=0.05, cap=1.0))
    rounds: list[WorkReport] = []
    stop = threading.Event()
    loop = threading.Thread(
        target=work, args=(worker,), kwargs={"report": rounds.append, "stop": stop}
    )
    caplog.set_level(logging.WARNING, "handover.worker")
    loop.start()
    try:
        _queue(uow_factory, "before")
        wait_until(lambda: len(sms.sent) == 1, TIMEOUT, "the message queued before the outage")

        server.halt()
        wait_until(lambda: worker.health.consecutive_failures >= 3, TIMEOUT, "three failed rounds")
        assert loop.is_alive(), "the worker survives the store going away"
        assert "store unavailable" in caplog.text
        assert (worker.health.last_error or "").startswith("StoreUnavailable")
        with pytest.raises(StoreUnavailable):
            health.readiness(uow_factory, datetime.now(UTC), None)

        server.resume()
        back = time.monotonic()
        wait_until(lambda: worker.health.consecutive_failures == 0, TIMEOUT, "the recovery")
        recovered = time.monotonic() - back
        _queue(uow_factory, "after")
        wait_until(lambda: len(sms.sent) == 2, TIMEOUT, "the message queued after the outage")
        print(f"\nthe worker's first good round came {recovered:.2f} s after the server was back")
    finally:
        stop.set()
        loop.join(TIMEOUT)
        worker.pusher.close()
    assert not loop.is_alive()
    assert "worker recovered after" in caplog.text
    (beat,) = health.readiness(uow_factory, datetime.now(UTC), timedelta(minutes=5)).workers
    assert beat.worker_id == worker.health.worker_id and beat.consecutive_failures == 0
    assert beat.last_error is not None and beat.last_error.startswith("StoreUnavailable")
    assert beat.last_error_at is not None
    engine.dispose()


def test_the_api_answers_503_with_retry_after_while_the_store_is_away(
    server: pg_server.Server, settings: Settings
) -> None:
    app = create_app(settings)
    now = datetime.now(UTC)
    beat = WorkerHeartbeat("w1", "host", 1, now, now)
    health.beat(app.state.uow_factory, beat, timedelta(days=1))
    regulator = access.register_client(app.state.uow_factory, Role.REGULATOR, "The regulator")
    try:
        with TestClient(app) as http:
            form = {"grant_type": "client_credentials"}
            auth = (regulator.client_id, regulator.client_secret)
            issued = http.post("/oauth/token", data=form, auth=auth).json()["access_token"]
            bearer = {"Authorization": f"Bearer {issued}"}
            number = "/v1/numbers/+8613800138000"
            assert http.get("/readyz").status_code == 200
            assert http.get(number, headers=bearer).status_code == 404

            server.halt()
            for path in ("/readyz", "/log/checkpoint", number):
                away = http.get(path, headers=bearer)
                assert away.status_code == 503, (path, away.text)
                assert away.headers["retry-after"] == "5"
                assert away.headers["content-type"] == "application/problem+json"
                body = away.json()
                assert body["type"].endswith("/store-unavailable") and body["status"] == 503
                assert "not answering" in body["detail"]
            assert http.get("/healthz").status_code == 200, "liveness does not ask the store"

            server.resume()
            wait_until(lambda: http.get("/readyz").status_code == 200, TIMEOUT, "ready again")
            assert http.get(number, headers=bearer).status_code == 404
    finally:
        app.state.engine.dispose()
