"""Sending the message outbox (`send_due`) on the real store, both engines.

A recording sender stands in for the network (the real senders have their own loopback
tests); it fails as told, so the retry schedule can be followed at explicit times.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from handover.adapters.messaging import ConsoleEmailSender
from handover.cli import app as cli
from handover.domain.messages import Channel, Message
from handover.services.messages import GIVEN_UP, RetryPolicy, send_due
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
        "params": {"code": "123456", "minutes": 5},
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
            "Handover sign-in code: 123456. "
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
