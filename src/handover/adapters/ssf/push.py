"""Push delivery over HTTP (RFC 8935).

Pushing is the transmitter's hot path: one POST per SET. It uses the standard library's
`http.client` with one kept-alive connection per receiver per thread rather than httpx:
measured on loopback (bench/fanout.py's notes), an httpx POST cost about 470 µs of CPU
against about 165 µs here, and CPU per POST is what bounds deliveries per second.
Everything else in Handover that speaks HTTP uses httpx.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit

from handover.domain.ssf.streams import internal_address
from handover.services.ports import PushResult

#: RFC 8935 §2.3 error codes after which resending the same SET cannot succeed.
PERMANENT_ERRORS = frozenset({"invalid_request"})
MAX_ANSWER = 65_536
TIMED_OUT = "the receiver did not answer in time"
_Origin = tuple[str, str, int]


class HttpSetSender:
    """The services' `SetSender`; safe to share between threads (each keeps its own
    connections). Redirects are not followed and proxies are not used."""

    def __init__(
        self, timeout: float, max_connections: int = 64, allow_private: bool = False
    ) -> None:
        """`allow_private` False refuses receivers whose name resolves into a private
        network, and connects to the very address it checked (no second DNS answer)."""
        self.timeout = timeout
        self.max_connections = max_connections
        self.allow_private = allow_private
        self._local = threading.local()
        self._tls = ssl.create_default_context()
        self._watchdog = _Watchdog()

    def push(self, url: str, authorization: str | None, token: str) -> PushResult:
        try:
            origin, target = _address(url)
        except ValueError as exc:
            return PushResult(False, None, f"the endpoint URL: {exc}", permanent=True)
        headers = {"Content-Type": "application/secevent+jwt", "Accept": "application/json"}
        if authorization:
            headers["Authorization"] = authorization
        body = token.encode()
        for attempt in (1, 2):
            try:
                connection = self._connection(origin)
            except InternalAddress as exc:
                return PushResult(False, None, str(exc))
            except OSError as exc:
                return PushResult(False, None, f"{type(exc).__name__}: {exc}")
            watch = self._watchdog.watch(connection, self.timeout)
            try:
                connection.request("POST", target, body=body, headers=headers)
                response = connection.getresponse()
                # A receiver answers with a short error document at most; never read more.
                status, reason = response.status, response.reason
                payload = response.read(MAX_ANSWER)
                if response.will_close or not response.isclosed():
                    self._drop(origin)  # closing, or a body we would not read to its end
                if not self._watchdog.release(watch):
                    return _result(status, reason, payload)
            except (http.client.InvalidURL, ValueError) as exc:
                self._watchdog.release(watch)
                return PushResult(False, None, f"the endpoint URL: {exc}", permanent=True)
            except (OSError, http.client.HTTPException) as exc:
                self._drop(origin)
                cut_off = self._watchdog.release(watch)
                if cut_off or isinstance(exc, TimeoutError):
                    return PushResult(False, None, TIMED_OUT)
                kept_alive_closed = isinstance(
                    exc, http.client.RemoteDisconnected | BrokenPipeError | ConnectionResetError
                )
                if attempt == 2 or not kept_alive_closed:  # a stale keep-alive: retry once
                    return PushResult(False, None, f"{type(exc).__name__}: {exc}")
                continue
            self._drop(origin)
            return PushResult(False, None, TIMED_OUT)
        raise AssertionError("unreachable")  # pragma: no cover

    def _connections(self) -> dict[_Origin, http.client.HTTPConnection]:
        connections: dict[_Origin, http.client.HTTPConnection] | None = getattr(
            self._local, "connections", None
        )
        if connections is None:
            connections = self._local.connections = {}
        return connections

    def _connection(self, origin: _Origin) -> http.client.HTTPConnection:
        connections = self._connections()
        connection = connections.get(origin)
        if connection is None:
            if len(connections) >= self.max_connections:
                self._drop(next(iter(connections)))
            scheme, host, port = origin
            address = None if self.allow_private else _public_address(host, port)
            if scheme == "https":
                connection = _PinnedHTTPSConnection(
                    host, port, timeout=self.timeout, context=self._tls
                )
            else:
                connection = _PinnedHTTPConnection(host, port, timeout=self.timeout)
            connection.address = address
            connections[origin] = connection
        return connection

    def _drop(self, origin: _Origin) -> None:
        connection = self._connections().pop(origin, None)
        if connection is not None:
            connection.close()

    def close(self) -> None:
        for origin in list(self._connections()):
            self._drop(origin)


class _Watchdog:
    """Cuts off requests that outlive their deadline.

    A socket timeout bounds each read, not the whole request: a receiver that trickles
    its answer a byte at a time would otherwise hold a delivery thread (and its stream's
    lease) for as long as it likes. One daemon thread shuts such sockets down.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._due: dict[int, tuple[float, http.client.HTTPConnection]] = {}
        self._cut: set[int] = set()
        self._next = 0
        self._thread: threading.Thread | None = None

    def watch(self, connection: http.client.HTTPConnection, seconds: float) -> int:
        with self._lock:
            self._next += 1
            self._due[self._next] = (time.monotonic() + seconds, connection)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name="push-watch")
                self._thread.start()
            return self._next

    def release(self, watch: int) -> bool:
        """Stop watching; True when the request was cut off."""
        with self._lock:
            self._due.pop(watch, None)
            if watch in self._cut:
                self._cut.discard(watch)
                return True
            return False

    def _run(self) -> None:
        while True:
            time.sleep(0.05)
            now = time.monotonic()
            with self._lock:
                late = [(w, c) for w, (due, c) in self._due.items() if due <= now]
                for watch, _ in late:
                    self._due.pop(watch)
                    self._cut.add(watch)
            for _, connection in late:
                sock = connection.sock
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)


class InternalAddress(OSError):
    """The receiver's name resolves into a private network, which pushes may not reach."""


def _public_address(host: str, port: int) -> str:
    """The first address `host` resolves to; refused if any is internal (a name that
    points both out and in is treated as pointing in)."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [str(info[4][0]) for info in found]
    if not addresses or any(internal_address(ipaddress.ip_address(a)) for a in addresses):
        raise InternalAddress(f"{host} resolves into a private network; pushes may not go there")
    return addresses[0]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to `address` when set (the checked one) instead of resolving again."""

    address: str | None = None

    def connect(self) -> None:
        if self.address is None:
            super().connect()
            return
        self.sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to the checked `address`, verified against the receiver's name (SNI)."""

    address: str | None = None

    def connect(self) -> None:
        if self.address is None:
            super().connect()
            return
        raw = socket.create_connection((self.address, self.port), self.timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)  # type: ignore[attr-defined]


def _address(url: str) -> tuple[_Origin, str]:
    """The connection's (scheme, host, port) and the request target; ValueError if unusable."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return (parts.scheme, parts.hostname, port), target


def _result(status: int, reason: str, payload: bytes) -> PushResult:
    if 200 <= status < 300:
        return PushResult(True, status)
    if status == 400:
        err, description = _error(payload)
        return PushResult(False, 400, f"{err}: {description}", err in PERMANENT_ERRORS)
    # 413: the receiver will never take a SET this size; sending it again cannot help.
    return PushResult(False, status, reason or "error", permanent=status == 413)


def _error(payload: bytes) -> tuple[str, str]:
    """RFC 8935 §2.3's `{"err": ..., "description": ...}`, tolerating receivers that differ."""
    try:
        body = json.loads(payload)
    except ValueError:
        return "unknown", payload[:200].decode("utf-8", "replace")
    if not isinstance(body, dict):
        return "unknown", str(body)[:200]
    return str(body.get("err", "unknown")), str(body.get("description", ""))[:500]
