"""A platform that receives Handover's signals, by push or by poll, and keeps them.

It discovers the transmitter, gets a token with its client credentials, creates its stream,
asks for a verification event, and from then on stores every verified event in SQLite and
prints one line for it. `GET /received` lists what it stored (for the demo and for tests).
Everything SSF-specific is done by `handover.receiver`; this module only wires it up.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from handover.receiver import (
    ClientCredentials,
    JwksCache,
    Poller,
    PushReceiver,
    SecurityEvent,
    SetVerifier,
    SqliteJtiStore,
    StreamClient,
    Transmitter,
    TransmitterError,
)
from handover.receiver.events import NUMBER_EVENTS

log = logging.getLogger(__name__)

Mode = Literal["push", "poll"]


@dataclass(frozen=True)
class Settings:
    issuer: str
    client_id: str
    client_secret: str
    mode: Mode = "push"
    host: str = "127.0.0.1"
    port: int = 0
    db: Path = Path("receiver.db")
    events: tuple[str, ...] = NUMBER_EVENTS
    description: str = "example platform receiver"
    poll_interval: float = 1.0
    #: Leave the stream at the transmitter on stop (by default it is deleted).
    keep_stream: bool = False


class EventLog:
    """Every verified event, one row per `jti`, in the receiver's SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=30.0)
        with self._lock, self._db:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS received_events ("
                " jti TEXT PRIMARY KEY, received_at TEXT NOT NULL, event_type TEXT NOT NULL,"
                " phone_number TEXT, claims TEXT NOT NULL)"
            )

    def record(self, event: SecurityEvent) -> dict[str, Any]:
        row = {
            "jti": event.jti,
            "received_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "event_type": event.event_type,
            "phone_number": event.phone_number,
            "claims": event.claims,
        }
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO received_events VALUES (?, ?, ?, ?, ?)",
                (
                    row["jti"],
                    row["received_at"],
                    row["event_type"],
                    row["phone_number"],
                    json.dumps(event.claims, sort_keys=True),
                ),
            )
        return row

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT jti, received_at, event_type, phone_number, claims"
                " FROM received_events ORDER BY received_at, rowid"
            ).fetchall()
        return [
            {
                "jti": jti,
                "received_at": received_at,
                "event_type": event_type,
                "phone_number": phone_number,
                "claims": json.loads(claims),
            }
            for jti, received_at, event_type, phone_number, claims in rows
        ]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def describe(row: dict[str, Any]) -> str:
    """One line for the console: time, short event type, subject, jti."""
    short_type = row["event_type"].rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    subject = row["phone_number"] or row["claims"]["sub_id"].get("id", "-")
    return f"{row['received_at']}  {short_type:<20} {subject:<16} jti={row['jti']}"


def build_app(events: EventLog, push: PushReceiver | None = None) -> Starlette:
    """`GET /received` and, for a push stream, the RFC 8935 endpoint at `POST /events`."""

    async def received(request: Request) -> JSONResponse:
        return JSONResponse(events.all())

    routes = [Route("/received", received, methods=["GET"])]
    if push is not None:
        routes.append(Route("/events", push.asgi_app(), methods=["POST"]))
    return Starlette(routes=routes)


class Platform:
    """The running example: its stream at the transmitter, its web server and, in poll
    mode, its poller. `start()` returns once everything is up; `stop()` undoes it.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        http: httpx.Client | None = None,
        out: Callable[[str], None] = print,
    ) -> None:
        self.settings = settings
        self.http = http or httpx.Client(timeout=httpx.Timeout(10.0, read=60.0))
        self.out = out
        self.events = EventLog(settings.db)
        self.dedupe = SqliteJtiStore(settings.db)
        self.stream: dict[str, Any] = {}
        self.url = ""
        self._server: uvicorn.Server | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._streams: StreamClient | None = None

    def handle(self, event: SecurityEvent) -> None:
        self.out(describe(self.events.record(event)))

    def start(self) -> None:
        settings = self.settings
        transmitter = Transmitter.discover(settings.issuer, self.http)
        tokens = ClientCredentials(
            transmitter.token_endpoint, settings.client_id, settings.client_secret, http=self.http
        )
        self._streams = StreamClient(transmitter, tokens, self.http)
        # Bind first so the push endpoint's URL (its port) is known before the stream exists;
        # a SET pushed before uvicorn starts waits in the listen backlog.
        sock = socket.create_server((settings.host, settings.port))
        host, port = sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        push: PushReceiver | None = None
        if settings.mode == "push":
            authorization = "Bearer " + secrets.token_urlsafe(32)
            self.stream = self._streams.create_push(
                self.url + "/events", authorization, settings.events, settings.description
            )
            push = PushReceiver(
                self._verifier(transmitter), self.dedupe, authorization, self.handle
            )
        else:
            self.stream = self._streams.create_poll(settings.events, settings.description)
            poller = Poller(
                self.stream["delivery"]["endpoint_url"],
                tokens,
                self._verifier(transmitter),
                self.dedupe,
                self.handle,
                http=self.http,
            )
            self._spawn(poller.run, self._stop, interval=settings.poll_interval)
        self._server = uvicorn.Server(
            uvicorn.Config(build_app(self.events, push), log_level="warning")
        )
        self._spawn(self._server.run, sockets=[sock])
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the web server did not start")
            time.sleep(0.01)
        self.out(
            f"stream {self.stream['stream_id']} ({settings.mode}) ready; see {self.url}/received"
        )
        try:
            self._streams.verify(self.stream["stream_id"], state=secrets.token_hex(8))
        except TransmitterError as exc:
            log.warning("verification not requested: %s", exc)

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.should_exit = True
        for thread in self._threads:
            thread.join(timeout=15)
        if self._streams is not None and self.stream and not self.settings.keep_stream:
            try:
                self._streams.delete(self.stream["stream_id"])
            except (TransmitterError, httpx.HTTPError) as exc:
                log.warning("stream %s not deleted: %s", self.stream["stream_id"], exc)
        self.events.close()
        self.dedupe.close()

    def __enter__(self) -> Platform:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _verifier(self, transmitter: Transmitter) -> SetVerifier:
        aud = self.stream["aud"]
        audience = aud if isinstance(aud, str) else aud[0]
        keys = JwksCache(transmitter.jwks_uri, self.http)
        return SetVerifier(self.stream.get("iss", transmitter.issuer), audience, keys)

    def _spawn(self, target: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        thread = threading.Thread(target=target, args=args, kwargs=kwargs, daemon=True)
        thread.start()
        self._threads.append(thread)


def run(settings: Settings, stop: threading.Event | None = None) -> None:
    """Run the platform until `stop` is set (or Ctrl-C)."""
    stop = stop or threading.Event()
    with Platform(settings), contextlib.suppress(KeyboardInterrupt):
        stop.wait()
