"""Sending the message outbox: what `handover work` does with queued messages to people.

Each call claims a small batch of due messages in a short transaction (moving their
`send_after` a lease ahead, so no other worker takes them meanwhile), sends them outside
any transaction (a slow gateway must not hold the store's write lock), rendering each in
its language just before sending, and records each one in its own short transaction: sent,
or failed with a retry time that doubles per attempt up to a ceiling. After the last
attempt a message stays failed, with its error, where `recent` shows it: it is parked at
`GIVEN_UP`, never retried and never lost. Sending is at least once: a message sent by a
worker that crashes before recording it is due again, and sent again, once its lease ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from handover.domain.message_texts import render
from handover.domain.messages import Channel, Message
from handover.services.ports import MessageSender, SendFailed, UnitOfWork, UnitOfWorkFactory

#: Where a message given up on waits: its `send_after`, so it is never due again.
GIVEN_UP = datetime(9999, 1, 1, tzinfo=UTC)
#: How long a claimed message is held for its worker. It must outlast a whole batch at the
#: senders' timeout (50 sends of up to 10 s), or another worker sends it a second time.
LEASE = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries after `base_delay`, doubling to at most `max_delay`; `attempts` in all."""

    attempts: int = 12
    base_delay: timedelta = timedelta(seconds=30)
    max_delay: timedelta = timedelta(hours=1)

    def retry_at(self, attempts_so_far: int, now: datetime) -> datetime | None:
        """When to try again after `attempts_so_far` failed attempts; None to give up."""
        if attempts_so_far >= self.attempts:
            return None
        delay: timedelta = self.base_delay * 2 ** min(attempts_so_far - 1, 30)
        return now + min(delay, self.max_delay)


@dataclass(frozen=True, slots=True)
class SendReport:
    sent: int = 0
    failed: int = 0
    given_up: int = 0

    @property
    def handled(self) -> int:
        return self.sent + self.failed + self.given_up


def send_due(
    uow_factory: UnitOfWorkFactory,
    senders: Mapping[Channel, MessageSender],
    now: datetime,
    limit: int = 50,
    policy: RetryPolicy = RetryPolicy(),
    lease: timedelta = LEASE,
) -> SendReport:
    """Send up to `limit` due messages through the sender of each one's channel."""
    with uow_factory() as uow:
        claimed = uow.messages.claim(now, limit, now + lease)
        uow.commit()
    sent = failed = given_up = 0
    for message in claimed:
        try:
            _send(message, senders)
        except SendFailed as exc:
            retry = None if exc.permanent else policy.retry_at(message.attempts + 1, now)
            with uow_factory() as uow:
                _failed(uow, message, str(exc), retry)
                uow.commit()
            failed += retry is not None
            given_up += retry is None
        else:
            with uow_factory() as uow:
                uow.messages.sent(message.id, now)
                uow.commit()
            sent += 1
    return SendReport(sent, failed, given_up)


def _send(message: Message, senders: Mapping[Channel, MessageSender]) -> None:
    sender = senders.get(message.channel)
    if sender is None:
        raise SendFailed(f"no sender for {message.channel.value}", permanent=True)
    try:
        text = render(message.template, message.language, message.params)
    except (KeyError, IndexError, ValueError) as exc:
        raise SendFailed(f"cannot render {message.template!r}: {exc!r}", permanent=True) from exc
    sender.send(message.recipient, text)


def _failed(uow: UnitOfWork, message: Message, error: str, retry: datetime | None) -> None:
    if retry is None:
        uow.messages.failed(message.id, f"given up: {error}", GIVEN_UP)
    else:
        uow.messages.failed(message.id, error, retry)
