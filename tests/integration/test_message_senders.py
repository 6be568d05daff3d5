"""Message senders against real servers on loopback: an SMS gateway (HTTP) and SMTP."""

from __future__ import annotations

import http.server
import json
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy

import pytest

from handover import bootstrap
from handover.adapters.messaging import (
    ConsoleEmailSender,
    ConsoleSmsSender,
    HttpSmsSender,
    SmtpEmailSender,
)
from handover.config import Environment, Settings
from handover.domain.messages import Channel
from handover.services.ports import SendFailed


@dataclass
class Gateway:
    url: str
    answers: list[int] = field(default_factory=list)
    seen: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    state = Gateway("")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.seen.append((dict(self.headers), body))
            status = state.answers.pop(0) if state.answers else 200
            payload = b'{"error": "gateway down"}' if status >= 400 else b'{"id": "m-1"}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/sms"
    yield state
    server.shutdown()
    server.server_close()


def test_the_http_sender_posts_json_with_the_bearer_token(gateway: Gateway) -> None:
    sender = HttpSmsSender(gateway.url, "gw-token", timeout=5)
    sender.send("+8613800138000", "Handover sign-in code: 123456")
    headers, body = gateway.seen[0]
    assert headers["Authorization"] == "Bearer gw-token"
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"to": "+8613800138000", "text": "Handover sign-in code: 123456"}
    sender.close()


def test_the_http_sender_raises_on_an_error_answer_or_no_gateway(gateway: Gateway) -> None:
    sender = HttpSmsSender(gateway.url, "gw-token", timeout=5)
    gateway.answers = [500, 400]
    with pytest.raises(SendFailed, match="500") as failed:
        sender.send("+8613800138000", "x")
    assert not failed.value.permanent
    with pytest.raises(SendFailed, match="400") as refused:
        sender.send("+8613800138000", "x")
    assert refused.value.permanent
    with pytest.raises(SendFailed, match="unreachable"):
        HttpSmsSender("http://127.0.0.1:9/sms", None, timeout=2).send("+8613800138000", "x")


@dataclass
class Mailbox:
    port: int = 0
    refuse: bool = False
    mails: list[bytes] = field(default_factory=list)


@pytest.fixture
def smtp() -> Iterator[Mailbox]:
    """A minimal SMTP server: enough of RFC 5321 for smtplib to hand over one message."""
    box = Mailbox()

    class Handler(socketserver.StreamRequestHandler):
        def reply(self, line: str) -> None:
            self.wfile.write(f"{line}\r\n".encode())

        def handle(self) -> None:
            self.reply("220 loopback ready")
            while line := self.rfile.readline():
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO", b"MAIL", b"RSET", b"NOOP"):
                    self.reply("250 ok")
                elif verb == b"RCPT":
                    self.reply("550 no such user" if box.refuse else "250 ok")
                elif verb == b"DATA":
                    self.reply("354 go ahead")
                    data = b""
                    while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                        data += chunk
                    box.mails.append(data)
                    self.reply("250 queued")
                elif verb == b"QUIT":
                    self.reply("221 bye")
                    return
                else:
                    self.reply("502 not implemented")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    box.port = server.server_address[1]
    yield box
    server.shutdown()
    server.server_close()


def test_the_smtp_sender_hands_the_mail_to_the_server(smtp: Mailbox) -> None:
    sender = SmtpEmailSender("127.0.0.1", smtp.port, "handover@example.org", timeout=5)
    sender.send("li.na@example.com", "您的号码 +8613800138000 已冻结。")
    mail = message_from_bytes(smtp.mails[0], policy=policy.default)
    assert (mail["From"], mail["To"], mail["Subject"]) == (
        "handover@example.org",
        "li.na@example.com",
        "Handover",
    )
    assert mail.get_content().strip() == "您的号码 +8613800138000 已冻结。"  # type: ignore[attr-defined]


def test_the_smtp_sender_raises_when_refused_or_unreachable(smtp: Mailbox) -> None:
    smtp.refuse = True
    with pytest.raises(SendFailed) as refused:
        SmtpEmailSender("127.0.0.1", smtp.port, "h@example.org", timeout=5).send("x@y.org", "t")
    assert refused.value.permanent
    with pytest.raises(SendFailed, match="not sent"):
        SmtpEmailSender("127.0.0.1", 9, "h@example.org", timeout=2).send("x@y.org", "t")


def test_console_senders_log_and_remember_the_last_messages(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sms = ConsoleSmsSender()
    with caplog.at_level("INFO", logger="handover.messages"):
        for i in range(12):
            sms.send("+8613800138000", f"code {i}")
    assert "SMS to +8613800138000: code 11" in caplog.text
    assert sms.last("+8613800138000") == "code 11"
    assert sms.messages("+8613800138000") == [f"code {i}" for i in range(2, 12)]
    assert sms.last("+8613900139000") is None


def test_settings_choose_the_senders_and_production_refuses_the_console() -> None:
    senders = bootstrap.message_senders(Settings(environment="test"))
    assert isinstance(senders[Channel.SMS], ConsoleSmsSender)
    assert isinstance(senders[Channel.EMAIL], ConsoleEmailSender)
    chosen = bootstrap.message_senders(
        Settings(
            environment="test",
            sms_sender="http",
            sms_gateway_url="https://sms.example.net/send",
            email_sender="smtp",
        )
    )
    assert isinstance(chosen[Channel.SMS], HttpSmsSender)
    assert isinstance(chosen[Channel.EMAIL], SmtpEmailSender)
    with pytest.raises(ValueError, match="SMS_GATEWAY_URL"):
        Settings(environment="test", sms_sender="http")
    # Production settings as validated elsewhere; only the senders are left at console.
    production = Settings(environment="test").model_copy(
        update={"environment": Environment.PRODUCTION}
    )
    with pytest.raises(ValueError, match="HANDOVER_SMS_SENDER"):
        bootstrap.message_senders(production)
