"""Sending the message outbox (`send_due`) on the real store, both engines.

A recording sender stands in for the network (the real senders have their own loopback
tests); it fails as told, so the retry schedule can be followed at explicit times.

Under concurrency: `send_due` claims messages in one short transaction and sends outside
any, so a slow gateway holds no lock the API's writes wait for, and a claim never recorded
(the worker died) lapses after the lease. Queueing a key, or putting a contact, that a
concurrent transaction is writing too waits for it and then succeeds, without failing the
whole causing transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from handover.adapters.messaging import ConsoleEmailSender
from handover.cli import app as cli
from handover.domain.contacts import Contact
from handover.domain.messages import Channel, Message
from handover.services.messages import GIVEN_UP, LEASE, RetryPolicy, send_due
from handover.services.ports import SendFailed, UnitOfWorkFactory

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


@dataclass
class Gateway:
    """Fails the next `failures` sends (permanently when told), then delivers."""

    failures: int = 0
    permanent: bool = False
    sent: list[tuple[str, str]] = field(default_factory=list)

    def send(self, recipient: str, text: str) -> None:
        if self.failures:
            self.failures -= 1
            raise SendFailed("gateway answered 503", permanent=self.permanent)
        self.sent.append((recipient, text))


def message(key: str, template: str = "sign_in_code", **changes: object) -> Message:
    fields: dict[str, object] = {
        "dedupe_key": key,
        "channel": Channel.SMS,
        "recipient": "+8613800138000",
        "template": template,
        "params": {"code": "123456", "long_code": "ABCD-EFGH-JKMN-PQRS", "minutes": 5},
        "language": "en",
        "created_at": T0,
        "send_after": T0,
    }
    return Message(**(fields | changes))  # type: ignore[arg-type]


def queue(uow_factory: UnitOfWorkFactory, *messages: Message) -> None:
    with uow_factory() as uow:
        uow.messages.add(messages)
        uow.commit()


def stored(uow_factory: UnitOfWorkFactory, key: str) -> Message:
    with uow_factory() as uow:
        found = uow.messages.for_key(key)
    assert found is not None
    return found


def test_due_messages_are_rendered_sent_and_marked(uow_factory: UnitOfWorkFactory) -> None:
    gateway, mail = Gateway(), ConsoleEmailSender()
    later = message("later", send_after=T0 + timedelta(hours=1))
    email = message("mail", channel=Channel.EMAIL, recipient="li.na@example.com", language="zh-CN")
    queue(uow_factory, message("now"), later, email)
    report = send_due(uow_factory, {Channel.SMS: gateway, Channel.EMAIL: mail}, T0)
    assert (report.sent, report.failed, report.given_up) == (2, 0, 0)
    assert gateway.sent == [
        (
            "+8613800138000",
            "Handover sign-in code: 123456 (or the long code ABCD-EFGH-JKMN-PQRS). "
            "It expires in 5 minutes. Never share it: Handover will never ask you for it.",
        )
    ]
    assert "123456" in (mail.last("li.na@example.com") or "")
    assert stored(uow_factory, "now").sent_at == T0
    assert stored(uow_factory, "later").sent_at is None
    assert send_due(uow_factory, {Channel.SMS: gateway}, T0).handled == 0


def test_failures_back_off_exponentially_up_to_the_ceiling_then_give_up(
    uow_factory: UnitOfWorkFactory,
) -> None:
    policy = RetryPolicy(attempts=4, base_delay=timedelta(minutes=20), max_delay=timedelta(hours=1))
    gateway = Gateway(failures=10)
    queue(uow_factory, message("m"))
    now, delays = T0, []
    for _ in range(3):
        assert send_due(uow_factory, {Channel.SMS: gateway}, now, policy=policy).failed == 1
        retry = stored(uow_factory, "m").send_after
        delays.append(retry - now)
        assert (
            send_due(uow_factory, {Channel.SMS: gateway}, retry - timedelta(seconds=1)).handled == 0
        )
        now = retry
    assert delays == [timedelta(minutes=20), timedelta(minutes=40), timedelta(hours=1)]
    assert send_due(uow_factory, {Channel.SMS: gateway}, now, policy=policy).given_up == 1
    dead = stored(uow_factory, "m")
    assert (dead.attempts, dead.sent_at, dead.send_after) == (4, None, GIVEN_UP)
    assert dead.last_error == "given up: gateway answered 503"
    with uow_factory() as uow:
        assert [m.dedupe_key for m in uow.messages.recent("+8613800138000", 5)] == ["m"]


def test_a_permanent_failure_or_an_unknown_template_gives_up_at_once(
    uow_factory: UnitOfWorkFactory,
) -> None:
    queue(uow_factory, message("refused"), message("garbled", template="no_such_template"))
    report = send_due(uow_factory, {Channel.SMS: Gateway(failures=1, permanent=True)}, T0)
    assert (report.sent, report.given_up) == (0, 2)
    assert "no_such_template" in (stored(uow_factory, "garbled").last_error or "")
    assert stored(uow_factory, "refused").send_after == GIVEN_UP


def test_handover_work_sends_due_messages(
    uow_factory: UnitOfWorkFactory, store_url: str, tmp_path: Path
) -> None:
    queue(uow_factory, message("now", send_after=datetime.now(UTC) - timedelta(seconds=1)))
    env = {
        "HANDOVER_DATABASE_URL": store_url,
        "HANDOVER_SPOOL_DIR": str(tmp_path),
        "HANDOVER_ENVIRONMENT": "test",
    }
    result = CliRunner().invoke(cli, ["work", "--once"], env=env)
    assert result.exit_code == 0, (result.output, result.exception)
    assert "messages: 1 sent" in result.stderr
    assert stored(uow_factory, "now").sent_at is not None


WAIT = 10.0


class BlockingGateway:
    """Delivers, but only once `release` is set; `sending` tells that a send began."""

    def __init__(self) -> None:
        self.sending = threading.Event()
        self.release = threading.Event()
        self.sent: list[str] = []

    def send(self, recipient: str, text: str) -> None:
        self.sending.set()
        assert self.release.wait(WAIT), "the test never released the gateway"
        self.sent.append(recipient)


class DyingGateway:
    """The worker dies mid-send: no failure is recorded."""

    def send(self, recipient: str, text: str) -> None:
        raise RuntimeError("worker killed")


def in_thread(work: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """Run `work` in a thread; its result, or the exception it raised, lands in the list."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as exc:  # reported to the test thread
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_a_slow_send_holds_no_transaction(uow_factory: UnitOfWorkFactory) -> None:
    queue(uow_factory, message("slow"))
    gateway = BlockingGateway()
    worker, report = in_thread(lambda: send_due(uow_factory, {Channel.SMS: gateway}, T0))
    writer: threading.Thread | None = None
    try:
        assert gateway.sending.wait(WAIT)
        # The API writes while the gateway takes its time (on SQLite: needs the write lock).
        later = message("meanwhile", send_after=T0 + timedelta(hours=1))
        writer, written = in_thread(lambda: queue(uow_factory, later))
        writer.join(5)
        assert not writer.is_alive(), "a write waited for the send to finish"
        assert written == [None]
        # Another worker finds the message taken, without waiting either.
        assert send_due(uow_factory, {Channel.SMS: Gateway()}, T0, limit=1).handled == 0
    finally:
        gateway.release.set()
        worker.join(WAIT)
        if writer is not None:
            writer.join(WAIT)
    assert [(r.sent, r.failed) for r in report] == [(1, 0)]  # type: ignore[attr-defined]
    assert gateway.sent == ["+8613800138000"]
    assert stored(uow_factory, "slow").sent_at == T0
    assert stored(uow_factory, "meanwhile").sent_at is None


def test_a_claim_never_recorded_is_due_again_after_the_lease(
    uow_factory: UnitOfWorkFactory,
) -> None:
    queue(uow_factory, message("m"))
    with pytest.raises(RuntimeError, match="worker killed"):
        send_due(uow_factory, {Channel.SMS: DyingGateway()}, T0)
    gateway = Gateway()
    assert send_due(uow_factory, {Channel.SMS: gateway}, T0 + timedelta(seconds=1)).handled == 0
    just_before = T0 + LEASE - timedelta(seconds=1)
    assert send_due(uow_factory, {Channel.SMS: gateway}, just_before).handled == 0
    assert send_due(uow_factory, {Channel.SMS: gateway}, T0 + LEASE).sent == 1
    again = stored(uow_factory, "m")
    assert (again.sent_at, again.attempts, len(gateway.sent)) == (T0 + LEASE, 1, 1)


def _postgres_only(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs one writer at a time (BEGIN IMMEDIATE): no race to lose")


def test_one_key_queued_by_two_transactions_at_once_is_stored_once(
    engine: Engine, uow_factory: UnitOfWorkFactory
) -> None:
    _postgres_only(engine)
    with uow_factory() as first:
        assert first.messages.add([message("k")]) == 1

        def second() -> int:
            with uow_factory() as uow:
                added = uow.messages.add([message("k", recipient="+8613900139000")])
                uow.commit()
            return added

        thread, outcome = in_thread(second)
        thread.join(0.5)
        assert thread.is_alive(), "the second insert should wait for the first's row"
        first.commit()
    thread.join(WAIT)
    assert outcome == [0]
    assert stored(uow_factory, "k").recipient == "+8613800138000"
    with uow_factory() as uow:
        assert len(uow.messages.recent(None, 10)) == 1


def test_one_contact_put_by_two_transactions_at_once_keeps_the_last(
    engine: Engine, uow_factory: UnitOfWorkFactory
) -> None:
    _postgres_only(engine)
    email = Contact("cm", "s1", Channel.EMAIL, "s1@example.com", "zh-CN", T0)
    sms = Contact("cm", "s1", Channel.SMS, "+8613900139000", "en", T0 + timedelta(minutes=1))
    with uow_factory() as first:
        first.contacts.put(email)

        def second() -> None:
            with uow_factory() as uow:
                uow.contacts.put(sms)
                uow.commit()

        thread, outcome = in_thread(second)
        thread.join(0.5)
        assert thread.is_alive(), "the second put should wait for the first's row"
        first.commit()
    thread.join(WAIT)
    assert outcome == [None]
    with uow_factory() as uow:
        assert uow.contacts.get("cm", "s1") == sms
