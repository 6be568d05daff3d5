"""A platform that receives Handover's signals, by push or by poll, and keeps them.

It discovers the transmitter, gets a token with its client credentials, creates its stream,
asks for a verification event, and from then on stores every verified event in SQLite and
prints one line for it. `GET /received` lists what it stored (for the demo and for tests).
With `answer` set, it also answers every `case-opened` event at once with that outcome
(`POST /v1/platform/cases/{id}/outcome`), as a platform that has looked the number up would,
and keeps the answer with the event.
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
from urllib.parse import quote

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
from handover.receiver.events import CASE_OPENED, NUMBER_EVENTS

log = logging.getLogger(__name__)

Mode = Literal["push", "poll"]
#: The outcomes the example can give a case (Handover checks which fit the case's kind).
OUTCOMES = ("unbound", "no_account", "frozen", "migrated", "rejected")
#: The reason sent with `rejected` (Handover requires one the owner can read).
REJECT_REASON = "The example platform rejects every case (--answer rejected)."


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
    #: Answer each `case-opened` event with this outcome (one of OUTCOMES); None: do not.
    answer: str | None = None


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
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS case_answers ("
                " jti TEXT PRIMARY KEY, case_id TEXT NOT NULL, outcome TEXT NOT NULL,"
                " answered_at TEXT NOT NULL, status INTEGER NOT NULL, detail TEXT)"
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

    def record_answer(self, jti: str, answer: dict[str, Any]) -> None:
        """What the platform answered to the case an event opened (the latest attempt)."""
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO case_answers VALUES (?, ?, ?, ?, ?, ?)",
                (
                    jti,
                    answer["case_id"],
                    answer["outcome"],
                    answer["answered_at"],
                    answer["status"],
                    answer["detail"],
                ),
            )

    def all(self) -> list[dict[str, Any]]:
        """Every event, oldest first; a `case-opened` one the platform answered carries
        `answer`: {case_id, outcome, answered_at, status (Handover's HTTP status), detail}."""
        with self._lock:
            rows = self._db.execute(
                "SELECT e.jti, e.received_at, e.event_type, e.phone_number, e.claims,"
                " a.case_id, a.outcome, a.answered_at, a.status, a.detail"
                " FROM received_events e LEFT JOIN case_answers a ON a.jti = e.jti"
                " ORDER BY e.received_at, e.rowid"
            ).fetchall()
        found = []
        for jti, received_at, event_type, phone_number, claims, *answer in rows:
            row = {
                "jti": jti,
                "received_at": received_at,
                "event_type": event_type,
                "phone_number": phone_number,
                "claims": json.loads(claims),
            }
            if answer[0] is not None:
                keys = ("case_id", "outcome", "answered_at", "status", "detail")
                row["answer"] = dict(zip(keys, answer, strict=True))
            found.append(row)
        return found

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


class CaseAnswerer:
    """Answers a `case-opened` event with one outcome, as the platform, with its own token.

    A refusal (4xx: the case is closed, or the outcome does not fit its kind) is kept and
    logged; Handover down or a 5xx raises, so the SET is not acknowledged and comes again.
    """

    def __init__(
        self, api: str, tokens: ClientCredentials, http: httpx.Client, outcome: str
    ) -> None:
        if outcome not in OUTCOMES:
            raise ValueError(f"answer: one of {', '.join(OUTCOMES)}, not {outcome!r}")
        self.api, self.tokens, self.http, self.outcome = api.rstrip("/"), tokens, http, outcome

    def answer(self, event: SecurityEvent) -> dict[str, Any]:
        case_id = str(event.event["case_id"])
        body: dict[str, str] = {"outcome": self.outcome}
        if self.outcome == "rejected":
            body["reason"] = REJECT_REASON
        url = f"{self.api}/v1/platform/cases/{quote(case_id, safe='')}/outcome"
        response = self._post(url, body)
        if response.status_code == 401:  # a token revoked or expired early: once more
            self.tokens.invalidate()
            response = self._post(url, body)
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise TransmitterError.from_response(response)
        detail = None
        if not response.is_success:
            detail = _problem_detail(response)
            log.warning(
                "case %s: Handover refused %s (%s): %s",
                case_id,
                self.outcome,
                response.status_code,
                detail,
            )
        return {
            "case_id": case_id,
            "outcome": self.outcome,
            "answered_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "status": response.status_code,
            "detail": detail,
        }

    def _post(self, url: str, body: dict[str, str]) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens.token()}"}
        return self.http.post(url, json=body, headers=headers)


def _problem_detail(response: httpx.Response) -> str:
    try:
        problem = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(problem, dict):
        return str(problem.get("detail") or problem.get("title") or problem)[:200]
    return str(problem)[:200]


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
        self._answerer: CaseAnswerer | None = None

    def handle(self, event: SecurityEvent) -> None:
        self.out(describe(self.events.record(event)))
        if self._answerer is not None and event.event_type == CASE_OPENED:
            answer = self._answerer.answer(event)
            self.events.record_answer(event.jti, answer)
            refused = f": {answer['detail']}" if answer["detail"] else ""
            self.out(
                f"  answered case {answer['case_id']}: {answer['outcome']}"
                f" (Handover answered {answer['status']}{refused})"
            )

    def start(self) -> None:
        settings = self.settings
        transmitter = Transmitter.discover(settings.issuer, self.http)
        tokens = ClientCredentials(
            transmitter.token_endpoint, settings.client_id, settings.client_secret, http=self.http
        )
        self._streams = StreamClient(transmitter, tokens, self.http)
        if settings.answer is not None:
            self._answerer = CaseAnswerer(settings.issuer, tokens, self.http, settings.answer)
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
