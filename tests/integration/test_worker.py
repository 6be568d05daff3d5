"""`handover work`'s round and loop (`services.worker`) on the real store, both engines.

The timers run on a clock the test moves; push delivery has no streams to serve here (its
rounds are tested in test_delivery.py), and a recording gateway stands in for SMS.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from test_messages import Gateway, message, queue, stored

from carrier_events import activation
from handover import bootstrap
from handover.config import Settings
from handover.domain.freeze_policy import FreezePolicy
from handover.domain.messages import Channel
from handover.services import health, reporting
from handover.services.ports import PushResult, StoreUnavailable, UnitOfWork, UnitOfWorkFactory
from handover.services.ssf.delivery import DeliveryPolicy, PushWorker, RoundReport
from handover.services.worker import (
    Backoff,
    Worker,
    WorkPolicy,
    WorkReport,
    work,
    work_round,
)


class NoSigner:
    def sign(self, claims: Any, algorithm: Any) -> str:
        raise AssertionError("no stream, nothing to sign")

    def algorithms(self) -> list[str]:
        return ["ES256"]

    def jwks(self) -> dict[str, Any]:
        return {"keys": []}


class NoSender:
    def push(self, url: str, authorization: str | None, token: str) -> PushResult:
        raise AssertionError("no stream, nothing to push")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def gateway() -> Gateway:
    return Gateway()


@pytest.fixture
def worker(uow_factory: UnitOfWorkFactory, clock: Clock, gateway: Gateway) -> Worker:
    pusher = PushWorker(
        uow_factory, NoSigner(), NoSender(), "https://h.example", DeliveryPolicy(workers=1)
    )
    return Worker(
        uow_factory,
        pusher,
        bootstrap.checkpoint_signer(Settings()),
        {Channel.SMS: gateway},
        FreezePolicy(),
        "https://h.example",
        WorkPolicy(checkpoint_interval=60, deadline_interval=5, idle=0.01),
        monotonic=clock,
    )


def test_a_round_signs_on_its_timers_and_sends_what_is_due(
    uow_factory: UnitOfWorkFactory,
    carriers: tuple[str, str],
    worker: Worker,
    clock: Clock,
    gateway: Gateway,
) -> None:
    reporting.report_events(
        uow_factory, "cm", [activation("a1", "+8613800138000")], policy=FreezePolicy()
    )
    queue(uow_factory, message("due", send_after=datetime.now(UTC) - timedelta(seconds=1)))

    first = work_round(worker)
    assert first.checkpoint is not None and first.checkpoint.size == 1
    assert (first.reminded, first.escalated, first.push.streams) == (0, 0, 0)
    assert first.messages.sent == 1 and not first.idle
    assert stored(uow_factory, "due").sent_at is not None and len(gateway.sent) == 1

    reporting.report_events(
        uow_factory, "cm", [activation("a2", "+8613800138001")], policy=FreezePolicy()
    )
    clock.now += 59
    second = work_round(worker)
    assert second.checkpoint is None, "the checkpoint timer is not due yet"
    assert second.idle

    clock.now += 1
    third = work_round(worker)
    assert third.checkpoint is not None and third.checkpoint.size == 2


def test_the_loop_reports_every_round_until_stopped(worker: Worker) -> None:
    once: list[WorkReport] = []
    work(worker, once=True, report=once.append)
    assert len(once) == 1

    stop = threading.Event()
    rounds: list[WorkReport] = []

    def report(done: WorkReport) -> None:
        rounds.append(done)
        if len(rounds) == 3:
            stop.set()

    work(worker, report=report, stop=stop)
    assert len(rounds) == 3 and all(done.idle for done in rounds)
    work(worker, report=rounds.append, stop=stop)
    assert len(rounds) == 3, "a stopped loop does no round"


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_a_failing_step_is_logged_and_waits_its_backoff_while_the_others_run(
    uow_factory: UnitOfWorkFactory,
    worker: Worker,
    clock: Clock,
    gateway: Gateway,
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[int] = []

    def broken() -> RoundReport:
        calls.append(1)
        raise RuntimeError("a bug in push delivery")

    worker.pusher.run_once = broken  # type: ignore[method-assign]
    queue(uow_factory, message("due", send_after=datetime.now(UTC) - timedelta(seconds=1)))
    with caplog.at_level(logging.ERROR, "handover.worker"):
        first = work_round(worker)
    assert first.failed == ("push",) and first.messages.sent == 1 and len(gateway.sent) == 1
    assert first.checkpoint is not None, "the other steps ran"
    assert "a bug in push delivery" in caplog.text and "Traceback" in caplog.text
    assert worker.health.last_error == "RuntimeError: a bug in push delivery"

    second = work_round(worker)
    assert len(calls) == 1 and second.failed == (), "the step waits out its backoff"
    clock.now += Backoff().delay(1)
    third = work_round(worker)
    assert len(calls) == 2 and third.failed == ("push",)
    assert worker.steps["push"].failures == 2


class Flaky:
    """A unit-of-work factory whose store can be taken away."""

    def __init__(self, inner: UnitOfWorkFactory) -> None:
        self.inner = inner
        self.down = threading.Event()

    def __call__(self) -> UnitOfWork:
        if self.down.is_set():
            raise StoreUnavailable("the store is not answering: connection refused")
        return self.inner()


def test_the_loop_outlives_the_store_going_away_and_says_so_in_its_heartbeat(
    uow_factory: UnitOfWorkFactory, worker: Worker, caplog: pytest.LogCaptureFixture
) -> None:
    flaky = Flaky(uow_factory)
    worker.uow_factory = worker.pusher.uow_factory = flaky
    worker.policy = WorkPolicy(idle=0.01, backoff=Backoff(initial=0.01, cap=0.05))
    worker.monotonic = time.monotonic
    rounds: list[WorkReport] = []
    stop = threading.Event()
    loop = threading.Thread(
        target=work, args=(worker,), kwargs={"report": rounds.append, "stop": stop}
    )
    with caplog.at_level(logging.WARNING, "handover.worker"):
        loop.start()
        try:
            wait_until(lambda: len(rounds) >= 1, "a first round")
            flaky.down.set()
            wait_until(lambda: worker.health.consecutive_failures >= 3, "three failed rounds")
            assert loop.is_alive()
            assert "store unavailable" in caplog.text
            flaky.down.clear()
            done = len(rounds)
            wait_until(lambda: len(rounds) > done, "a round after the store came back")
            wait_until(lambda: worker.health.consecutive_failures == 0, "the recovery")
        finally:
            stop.set()
            loop.join(30)
    assert "worker recovered after" in caplog.text
    (beat,) = health.readiness(uow_factory, datetime.now(UTC), timedelta(minutes=1)).workers
    assert beat.worker_id == worker.health.worker_id and beat.consecutive_failures == 0
    assert beat.last_error is not None and beat.last_error.startswith("StoreUnavailable")
