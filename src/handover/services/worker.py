"""`handover work`: one worker process's background work, round after round.

A round pushes due SETs to platforms' streams and sends queued messages to people; on their
own timers it also signs an audit-log checkpoint and runs the deadlines (reminders to
previous owners of frozen numbers, escalation of cases past their deadline). `work` repeats
rounds, resting after one that found nothing to deliver. Several workers may run at once.

The loop outlives failures. When the store is away (`StoreUnavailable`) the round stops, the
worker waits (`Backoff`: doubling from half a second up to thirty) and tries again, for as
long as it takes. Any other error is one step's: it is logged with its traceback, that step
backs off on its own and the other steps go on. After each round (at most every
`heartbeat_interval` seconds, and whenever its health changes) the worker writes a heartbeat
(`services.health`) that readiness and operators read.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from handover.domain.freeze_policy import FreezePolicy
from handover.domain.messages import Channel
from handover.services import audit, cases, health
from handover.services.messages import SendReport, send_due
from handover.services.model import StoredCheckpoint, WorkerHeartbeat
from handover.services.ports import MessageSender, StoreUnavailable, UnitOfWorkFactory
from handover.services.reminders import send_due_reminders
from handover.services.ssf.delivery import PushWorker, RoundReport

log = logging.getLogger("handover.worker")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait after `failures` failures in a row: `initial` doubling (`factor`)
    up to `cap`; no wait before the first failure."""

    initial: float = 0.5
    cap: float = 30.0
    factor: float = 2.0

    def delay(self, failures: int) -> float:
        if failures <= 0:
            return 0.0
        # Capping the exponent first keeps a long outage from overflowing the float.
        exponent = min(failures - 1, 64)
        return float(min(self.cap, self.initial * self.factor**exponent))


@dataclass(frozen=True, slots=True)
class WorkPolicy:
    """How often a worker does what."""

    #: Seconds between audit-log checkpoints (HANDOVER_CHECKPOINT_INTERVAL_SECONDS).
    checkpoint_interval: float = 60.0
    #: Seconds between passes over deadlines and reminders.
    deadline_interval: float = 5.0
    #: Seconds to rest after a round with nothing to deliver.
    idle: float = 0.2
    #: Waits after failures: the whole round's while the store is away, a step's own after
    #: it raised.
    backoff: Backoff = field(default_factory=Backoff)
    #: Seconds between heartbeats while nothing changes.
    heartbeat_interval: float = 5.0
    #: Heartbeats older than this are dropped (workers long gone).
    forget_after: timedelta = timedelta(days=1)


@dataclass
class Step:
    """A step's failures in a row, and when (`monotonic`) it may run again after one."""

    failures: int = 0
    retry_at: float = 0.0


@dataclass
class Health:
    """What the worker knows of itself: what its heartbeat says."""

    worker_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: Rounds in a row that failed (the store away, or a step raising).
    consecutive_failures: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None
    #: When (`monotonic`) the heartbeat was last written, and what it said.
    beat_at: float | None = None
    beat_said: tuple[int, datetime | None] = (0, None)

    @property
    def says(self) -> tuple[int, datetime | None]:
        return self.consecutive_failures, self.last_error_at

    def heartbeat(self, now: datetime) -> WorkerHeartbeat:
        return WorkerHeartbeat(
            self.worker_id,
            self.host,
            self.pid,
            self.started_at,
            now,
            self.consecutive_failures,
            self.last_error,
            self.last_error_at,
        )

    def failed(self, error: BaseException) -> None:
        self.last_error = f"{type(error).__name__}: {error}"[:2000]
        self.last_error_at = datetime.now(UTC)


@dataclass
class Worker:
    """What a worker works with (see `bootstrap.worker`), and when its timers are due."""

    uow_factory: UnitOfWorkFactory
    pusher: PushWorker
    checkpoint_signer: audit.CheckpointSigner
    senders: Mapping[Channel, MessageSender]
    freeze_policy: FreezePolicy
    #: Links in reminders point here.
    public_url: str
    policy: WorkPolicy = field(default_factory=WorkPolicy)
    #: Seconds on a clock that only goes forward (times the timers).
    monotonic: Callable[[], float] = time.monotonic
    #: When the next checkpoint and the next pass over deadlines are due (`monotonic`).
    next_checkpoint: float = 0.0
    next_deadlines: float = 0.0
    #: Each step's failures (by name: checkpoint, deadlines, push, messages).
    steps: dict[str, Step] = field(default_factory=dict)
    health: Health = field(default_factory=Health)


@dataclass(frozen=True, slots=True)
class WorkReport:
    """What one round did."""

    #: The latest checkpoint, when the round signed one (or found it current); else None.
    checkpoint: StoredCheckpoint | None
    #: Reminder stages sent to previous owners, and cases escalated (0 between passes).
    reminded: int
    escalated: int
    push: RoundReport
    messages: SendReport
    #: Steps that raised this round (logged; each retries after its own backoff).
    failed: tuple[str, ...] = ()

    @property
    def idle(self) -> bool:
        """Nothing was delivered: neither a stream's turn nor a message."""
        return not self.push.streams and not self.messages.handled


def work_round(worker: Worker) -> WorkReport:
    """One round: the checkpoint and the deadlines when their timers are due, then push
    delivery (up to `DeliveryPolicy.round_seconds`) and the due messages.

    A step that raises is logged and skipped until its backoff passes; the others run.
    `StoreUnavailable` ends the round: every step needs the store."""
    failed: list[str] = []

    def run(name: str, action: Callable[[], T]) -> T | None:
        step = worker.steps.setdefault(name, Step())
        if worker.monotonic() < step.retry_at:
            return None
        try:
            done = action()
        except StoreUnavailable:
            raise
        except Exception as exc:
            step.failures += 1
            wait = worker.policy.backoff.delay(step.failures)
            step.retry_at = worker.monotonic() + wait
            worker.health.failed(exc)
            failed.append(name)
            log.exception(
                "worker step %s failed (%d in a row); retrying in %.1f s",
                name,
                step.failures,
                wait,
            )
            return None
        step.failures = 0
        return done

    checkpoint = None
    if worker.monotonic() >= worker.next_checkpoint:
        checkpoint = run("checkpoint", lambda: _checkpoint(worker))
    reminded = escalated = 0
    if worker.monotonic() >= worker.next_deadlines:
        deadlines = run("deadlines", lambda: _deadlines(worker))
        reminded, escalated = deadlines or (0, 0)
    push = run("push", worker.pusher.run_once) or RoundReport()
    messages = run(
        "messages", lambda: send_due(worker.uow_factory, worker.senders, datetime.now(UTC))
    )
    return WorkReport(
        checkpoint, reminded, escalated, push, messages or SendReport(), tuple(failed)
    )


def _checkpoint(worker: Worker) -> StoredCheckpoint:
    checkpoint = audit.sign_checkpoint(
        worker.uow_factory, worker.checkpoint_signer, datetime.now(UTC)
    )
    worker.next_checkpoint = worker.monotonic() + worker.policy.checkpoint_interval
    return checkpoint


def _deadlines(worker: Worker) -> tuple[int, int]:
    reminded = send_due_reminders(
        worker.uow_factory,
        datetime.now(UTC),
        worker.freeze_policy,
        public_url=worker.public_url,
    )
    escalated = cases.escalate_overdue(worker.uow_factory)
    worker.next_deadlines = worker.monotonic() + worker.policy.deadline_interval
    return reminded, escalated


def heartbeat(worker: Worker) -> bool:
    """Write the worker's heartbeat when `heartbeat_interval` has passed since the last one
    or its health changed; whether it wrote. Raises `StoreUnavailable`."""
    state = worker.health
    now = worker.monotonic()
    due = state.beat_at is None or now - state.beat_at >= worker.policy.heartbeat_interval
    if not due and state.beat_said == state.says:
        return False
    health.beat(worker.uow_factory, state.heartbeat(datetime.now(UTC)), worker.policy.forget_after)
    state.beat_at, state.beat_said = now, state.says
    return True


def work(
    worker: Worker,
    *,
    once: bool = False,
    report: Callable[[WorkReport], None] = lambda _: None,
    stop: threading.Event | None = None,
) -> None:
    """Round after round, each handed to `report`, resting `policy.idle` seconds after an
    idle round, until `stop` is set (after the first round with `once`).

    A round the store was away for, or that failed outside its steps, is logged and followed
    by a wait (`policy.backoff`) that grows with the failures in a row; the first good round
    after them logs the recovery. Nothing but `stop` (or `once`) ends the loop."""
    stop = stop or threading.Event()
    state = worker.health
    while not stop.is_set():
        try:
            done = work_round(worker)
            if done.failed:
                state.consecutive_failures += 1
            elif state.consecutive_failures:
                log.warning("worker recovered after %d failed round(s)", state.consecutive_failures)
                state.consecutive_failures = 0
            heartbeat(worker)
        except Exception as exc:
            if once:
                raise
            state.consecutive_failures += 1
            state.failed(exc)
            wait = worker.policy.backoff.delay(state.consecutive_failures)
            if isinstance(exc, StoreUnavailable):
                log.warning(
                    "store unavailable (%d round(s) in a row); retrying in %.1f s: %s",
                    state.consecutive_failures,
                    wait,
                    exc,
                )
            else:
                log.exception(
                    "worker round failed (%d in a row); retrying in %.1f s",
                    state.consecutive_failures,
                    wait,
                )
            stop.wait(wait)
            continue
        report(done)
        if once:
            return
        if done.idle:
            stop.wait(worker.policy.idle)
