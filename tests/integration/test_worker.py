"""`handover work`'s round and loop (`services.worker`) on the real store, both engines.

The timers run on a clock the test moves; push delivery has no streams to serve here (its
rounds are tested in test_delivery.py), and a recording gateway stands in for SMS.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from test_messages import Gateway, message, queue, stored

from handover import bootstrap
from handover.config import Settings
from handover.domain.freeze_policy import FreezePolicy
from handover.domain.messages import Channel
from handover.services import reporting
from handover.services.ports import PushResult, UnitOfWorkFactory
from handover.services.ssf.delivery import DeliveryPolicy, PushWorker
from handover.services.worker import Worker, WorkPolicy, WorkReport, work, work_round


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


def activation(event_id: str, number: str) -> dict[str, str]:
    return {
        "event_id": event_id,
        "number": number,
        "event": "activated",
        "occurred_at": "2024-01-01",
        "subscriber": "s1",
    }


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
