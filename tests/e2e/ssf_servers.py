"""Loopback servers for the SSF delivery tests: Handover's API and platforms' push receivers
served by uvicorn in threads, and push workers looping in threads.

A platform's receiver is the receiver kit's `PushAsgiApp` (real JWKS fetched from the API,
real verification, real dedupe) behind `FaultyApp`, which records every request and can
answer errors, stall, or refuse SETs for a while, as a misbehaving receiver would.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from handover import bootstrap
from handover.adapters.storage.engine import make_engine
from handover.config import Settings
from handover.receiver import (
    JwksCache,
    MemoryJtiStore,
    PushReceiver,
    SecurityEvent,
    SetVerifier,
    Transmitter,
)
from handover.services.worker import WorkReport, work

Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]


#: Ports `free_port` handed out, each held by a bound socket until a server listens on it.
_reserved: dict[int, socket.socket] = {}


def _bound(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


def free_port() -> int:
    """A free loopback port, kept bound (not listening: connections are refused) until a
    `UvicornThread` serves on it, so no other test process takes it in between."""
    sock = _bound(0)
    port: int = sock.getsockname()[1]
    _reserved[port] = sock
    return port


def _socket_for(port: int) -> socket.socket:
    """The reserved socket of `port`, or a new one bound to it (a restart on the same port)."""
    return _reserved.pop(port, None) or _bound(port)


def wait_until(
    condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.01
) -> float:
    """Poll `condition` until it holds; the seconds it took. Fails after `timeout`."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
    return time.monotonic() - start


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def handover_serve(database_url: str, secret_key: str, log: Path) -> Iterator[str]:
    """`handover serve` in a subprocess on a loopback port, on `database_url`; its base URL
    once `/healthz` answers, until the block ends. Its output goes to `log`."""
    with socket.socket() as sock:  # uvicorn binds it itself: released just before
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    env = os.environ | {
        "HANDOVER_DATABASE_URL": database_url,
        "HANDOVER_ENVIRONMENT": "test",
        "HANDOVER_SECRET_KEY": secret_key,
        "HANDOVER_PUBLIC_URL": base,
    }
    handover = Path(sys.executable).with_name("handover")
    with open(log, "wb") as output:
        server = subprocess.Popen(
            [str(handover), "serve", "--port", str(port)], env=env, stdout=output, stderr=output
        )

        def up() -> bool:
            assert server.poll() is None, f"handover serve exited: {log.read_text()[-2000:]}"
            return _answers(f"{base}/healthz")

        try:
            wait_until(up, 30, "handover serve to answer", interval=0.1)
            yield base
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


class UvicornThread:
    """An ASGI app served by uvicorn on 127.0.0.1:`port` in a daemon thread; restartable."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.app = app
        self.port = port or free_port()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> UvicornThread:
        config = uvicorn.Config(self.app, log_level="warning", timeout_graceful_shutdown=1)
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [_socket_for(self.port)]},  # uvicorn listens, and closes it
            daemon=True,
            name=f"uvicorn-{self.port}",
        )
        thread.start()
        wait_until(lambda: server.started or not thread.is_alive(), timeout, "uvicorn to start")
        assert server.started, f"uvicorn did not start on port {self.port}"
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)
            assert not self._thread.is_alive(), "uvicorn did not stop"
        self._server = self._thread = None


def unverified_jti(token: bytes | str) -> str | None:
    """The `jti` a token claims, read without verifying anything (for bookkeeping only)."""
    text = token.decode("ascii", "replace") if isinstance(token, bytes) else token
    try:
        payload = text.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        jti = claims.get("jti")
    except (IndexError, ValueError, AttributeError):
        return None
    return jti if isinstance(jti, str) else None


def seq_of(jti: str) -> int:
    """The outbox position a Handover `jti` starts with."""
    return int(jti.partition("-")[0])


@dataclass
class Faults:
    """What the receiver does to the next requests, before the kit sees them."""

    #: Answer `fail_status` to this many requests (-1: to every request).
    fail_next: int = 0
    fail_status: int = 500
    #: Hold this many requests until `unstall` is set (the transmitter times out meanwhile),
    #: then handle them: the test decides when, not a sleep that must outlast a timeout.
    stall_next: int = 0
    #: Hold every request after this many (None: none) until `unstall` is set.
    hold_after: int | None = None
    unstall: threading.Event = field(default_factory=threading.Event)
    #: Requests seen so far (for `hold_after`).
    seen: int = 0
    #: Refuse this many requests with RFC 8935 400 `invalid_request`.
    refuse_next: int = 0
    #: Refuse these SETs (by `jti`) with 400 `invalid_request`, every time.
    refuse_jtis: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Arrival:
    #: When the request came (monotonic and wall clock).
    at: float
    wall: float
    jti: str | None
    status: int
    token: bytes


@dataclass
class PlatformReceiver:
    """A platform's push endpoint: the receiver kit, with faults, on its own loopback port."""

    issuer: str
    audience: str
    authorization: str
    #: Seconds the event handler takes (a slow platform).
    handler_delay: float = 0.0
    port: int = field(default_factory=free_port)
    faults: Faults = field(default_factory=Faults)
    #: Every verified, first-time event the kit handed over, with the monotonic time.
    events: list[tuple[float, SecurityEvent]] = field(default_factory=list)
    #: Every POST that reached the server, in arrival order, with our answer.
    arrivals: list[Arrival] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        with httpx.Client(timeout=10) as http:
            metadata = Transmitter.discover(self.issuer, http)
        self.keys = JwksCache(metadata.jwks_uri, min_refresh_interval=0.0)
        self.verifier = SetVerifier(metadata.issuer, self.audience, self.keys)
        self.kit = PushReceiver(self.verifier, MemoryJtiStore(), self.authorization, self._handle)
        self.server = UvicornThread(FaultyApp(self), self.port)

    @property
    def endpoint(self) -> str:
        return f"{self.server.url}/ssf/events"

    def start(self) -> PlatformReceiver:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def _handle(self, event: SecurityEvent) -> None:
        if self.handler_delay:
            time.sleep(self.handler_delay)
        with self._lock:
            self.events.append((time.monotonic(), event))

    def jtis(self) -> list[str]:
        """The `jti`s handled (first deliveries), in the order they were handled."""
        with self._lock:
            return [event.jti for _, event in self.events]

    def numbers(self) -> list[str | None]:
        with self._lock:
            return [event.phone_number for _, event in self.events]

    def record(self, arrival: Arrival) -> None:
        with self._lock:
            self.arrivals.append(arrival)

    def take_fault(self, jti: str | None) -> tuple[str, Any] | None:
        """The fault the next request (for `jti`) gets, if any (counted down atomically)."""
        with self._lock:
            faults = self.faults
            faults.seen += 1
            if faults.hold_after is not None and faults.seen > faults.hold_after:
                return ("stall", faults.unstall)
            if faults.fail_next:
                faults.fail_next -= faults.fail_next > 0
                return ("fail", faults.fail_status)
            if faults.refuse_next or jti in faults.refuse_jtis:
                faults.refuse_next -= faults.refuse_next > 0
                return ("refuse", None)
            if faults.stall_next:
                faults.stall_next -= 1
                return ("stall", faults.unstall)
        return None


class FaultyApp:
    """ASGI middleware in front of the kit's `PushAsgiApp`: records, then maybe misbehaves."""

    def __init__(self, receiver: PlatformReceiver) -> None:
        self.receiver = receiver
        self.inner = receiver.kit.asgi_app()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        started = time.monotonic(), time.time()
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        jti = unverified_jti(body)
        fault = self.receiver.take_fault(jti)
        if fault is not None and fault[0] == "fail":
            await _answer(send, fault[1], b"")
            self.receiver.record(Arrival(*started, jti, fault[1], body))
            return
        if fault is not None and fault[0] == "refuse":
            error = {"err": "invalid_request", "description": "the event is not understood"}
            await _answer(send, 400, json.dumps(error).encode(), "application/json")
            self.receiver.record(Arrival(*started, jti, 400, body))
            return
        if fault is not None and fault[0] == "stall":
            while not fault[1].is_set():  # the transmitter gives up; the kit still handles it
                await asyncio.sleep(0.01)
        status: list[int] = []
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            message: dict[str, Any] = await receive()
            return message

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        await self.inner(scope, replay, capture)
        self.receiver.record(Arrival(*started, jti, status[0] if status else 0, body))


async def _answer(send: Send, status: int, body: bytes, media_type: str | None = None) -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    if media_type:
        headers.append((b"content-type", media_type.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class WorkerLoop:
    """`handover work`'s loop (`services.worker.work`) in a thread, on its own engine."""

    def __init__(self, settings: Settings, idle: float = 0.01) -> None:
        self.engine = make_engine(settings.database_url)
        self.worker = bootstrap.worker(settings, self.engine)
        self.worker.policy = replace(self.worker.policy, idle=idle)
        self.reports: list[WorkReport] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="worker")

    def _run(self) -> None:
        try:
            work(self.worker, report=self.reports.append, stop=self._stop)
        except Exception as exc:  # kept for the test to see
            self.errors.append(exc)

    def __enter__(self) -> WorkerLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        self.worker.pusher.sender.close()  # type: ignore[attr-defined]
        self.engine.dispose()
        assert not self.errors, self.errors
        # The loop outlives a failing step or round (logged): fail the test on one all the same.
        assert self.worker.health.last_error is None, self.worker.health.last_error
