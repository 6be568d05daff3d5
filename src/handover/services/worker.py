"""`handover work`: one worker process's background work, round after round.

A round pushes due SETs to platforms' streams and sends queued messages to people; on their
own timers it also signs an audit-log checkpoint and runs the deadlines (reminders to
previous owners of frozen numbers, escalation of cases past their deadline). `work` repeats
rounds, resting after one that found nothing to deliver. Several workers may run at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from handover.domain.freeze_policy import FreezePolicy
from handover.domain.messages import Channel
from handover.services import audit, cases
from handover.services.messages import SendReport, send_due
from handover.services.model import StoredCheckpoint
from handover.services.ports import MessageSender, UnitOfWorkFactory
from handover.services.reminders import send_due_reminders
from handover.services.ssf.delivery import PushWorker, RoundReport


@dataclass(frozen=True, slots=True)
class WorkPolicy:
    """How often a worker does what."""

    #: Seconds between audit-log checkpoints (HANDOVER_CHECKPOINT_INTERVAL_SECONDS).
    checkpoint_interval: float = 60.0
    #: Seconds between passes over deadlines and reminders.
    deadline_interval: float = 5.0
    #: Seconds to rest after a round with nothing to deliver.
    idle: float = 0.2


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

    @property
    def idle(self) -> bool:
        """Nothing was delivered: neither a stream's turn nor a message."""
        return not self.push.streams and not self.messages.handled


def work_round(worker: Worker) -> WorkReport:
    """One round: the checkpoint and the deadlines when their timers are due, then push
    delivery (up to `DeliveryPolicy.round_seconds`) and the due messages."""
    checkpoint = None
    if worker.monotonic() >= worker.next_checkpoint:
        checkpoint = audit.sign_checkpoint(
            worker.uow_factory, worker.checkpoint_signer, datetime.now(UTC)
        )
        worker.next_checkpoint = worker.monotonic() + worker.policy.checkpoint_interval
    reminded = escalated = 0
    if worker.monotonic() >= worker.next_deadlines:
        reminded = send_due_reminders(
            worker.uow_factory,
            datetime.now(UTC),
            worker.freeze_policy,
            public_url=worker.public_url,
        )
        escalated = cases.escalate_overdue(worker.uow_factory)
        worker.next_deadlines = worker.monotonic() + worker.policy.deadline_interval
    push = worker.pusher.run_once()
    messages = send_due(worker.uow_factory, worker.senders, datetime.now(UTC))
    return WorkReport(checkpoint, reminded, escalated, push, messages)


def work(
    worker: Worker,
    *,
    once: bool = False,
    report: Callable[[WorkReport], None] = lambda _: None,
    stop: threading.Event | None = None,
) -> None:
    """Round after round, each handed to `report`, resting `policy.idle` seconds after an
    idle round, until `stop` is set (after the first round with `once`)."""
    stop = stop or threading.Event()
    while not stop.is_set():
        done = work_round(worker)
        report(done)
        if once:
            return
        if done.idle:
            stop.wait(worker.policy.idle)
