"""Sending the message outbox: what `handover work` does with queued messages to people.

Each call takes a small batch of due messages (locked against other workers where the
store can), renders each in its language just before sending, and marks it sent, or
failed with a retry time that doubles per attempt up to a ceiling. After the last attempt
a message stays failed, with its error, where `recent` shows it: it is parked at
`GIVEN_UP`, never retried and never lost. Sending is at least once: a crash between the
send and the commit sends that batch again.
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
) -> SendReport:
    """Send up to `limit` due messages through the sender of each one's channel."""
    sent = failed = given_up = 0
    with uow_factory() as uow:
        for message in uow.messages.due(now, limit):
            try:
                _send(message, senders)
            except SendFailed as exc:
                retry = None if exc.permanent else policy.retry_at(message.attempts + 1, now)
                _failed(uow, message, str(exc), retry)
                failed += retry is not None
                given_up += retry is None
            else:
                uow.messages.sent(message.id, now)
                sent += 1
        uow.commit()
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
