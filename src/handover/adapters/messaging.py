"""Message senders (the services' `MessageSender`): SMS and e-mail, chosen by settings.

In the spirit of PyPI's warehouse: development and the demo use console senders, which
write each message to the server log and keep the last few per recipient in memory (the
demo page shows a sign-in code from there); production sends through a carrier's SMS
gateway over HTTP and a mail server over SMTP, and refuses the console senders.
"""

from __future__ import annotations

import logging
import smtplib
import sys
import threading
from collections import deque
from email.message import EmailMessage

import httpx

from handover.domain.messages import Channel
from handover.services.ports import SendFailed

log = logging.getLogger("handover.messages")

#: Messages a console sender remembers per recipient.
REMEMBERED = 10


def _visible(logger: logging.Logger) -> None:
    """Make the console sender's lines reach stderr when nothing configured logging (the
    API under uvicorn configures only uvicorn's loggers)."""
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
        logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)


class ConsoleSender:
    """Logs each message and keeps the last `REMEMBERED` per recipient (thread-safe)."""

    channel: Channel

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent: dict[str, deque[str]] = {}
        _visible(log)

    def send(self, recipient: str, text: str) -> None:
        log.info("%s to %s: %s", self.channel.value.upper(), recipient, text)
        with self._lock:
            self._sent.setdefault(recipient, deque(maxlen=REMEMBERED)).append(text)

    def messages(self, recipient: str) -> list[str]:
        """What was sent to `recipient`, oldest first."""
        with self._lock:
            return list(self._sent.get(recipient, ()))

    def last(self, recipient: str) -> str | None:
        sent = self.messages(recipient)
        return sent[-1] if sent else None


class ConsoleSmsSender(ConsoleSender):
    channel = Channel.SMS


class ConsoleEmailSender(ConsoleSender):
    channel = Channel.EMAIL


def _permanent(status: int) -> bool:
    """A 4xx other than timeout and rate limiting: the same request will fail again."""
    return 400 <= status < 500 and status not in (408, 429)


class HttpSmsSender:
    """POSTs `{"to": ..., "text": ...}` as JSON to a carrier's SMS gateway with a bearer
    token; any answer but 2xx, or no answer within the timeout, raises `SendFailed`."""

    def __init__(self, url: str, token: str | None, timeout: float) -> None:
        self.url = url
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(timeout=timeout, headers=headers, follow_redirects=False)

    def send(self, recipient: str, text: str) -> None:
        try:
            response = self._client.post(self.url, json={"to": recipient, "text": text})
        except httpx.HTTPError as exc:
            raise SendFailed(f"SMS gateway unreachable: {type(exc).__name__}: {exc}") from exc
        if not response.is_success:
            raise SendFailed(
                f"SMS gateway answered {response.status_code}: {response.text[:200]}",
                permanent=_permanent(response.status_code),
            )

    def close(self) -> None:
        self._client.close()


class SmtpEmailSender:
    """Sends plain-text UTF-8 mail through an SMTP server (STARTTLS and login when set)."""

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float,
        subject: str = "Handover",
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.starttls, self.username, self.password = starttls, username, password
        self.timeout, self.subject = timeout, subject

    def send(self, recipient: str, text: str) -> None:
        mail = EmailMessage()
        mail["From"], mail["To"], mail["Subject"] = self.sender, recipient, self.subject
        mail.set_content(text)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            raise SendFailed(f"mail server refused {recipient}", permanent=True) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise SendFailed(f"mail not sent: {type(exc).__name__}: {exc}") from exc
