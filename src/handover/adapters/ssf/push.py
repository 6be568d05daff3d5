"""Push delivery over HTTP (RFC 8935).

Pushing is the transmitter's hot path: one POST per SET. It uses the standard library's
`http.client` with one kept-alive connection per receiver per thread rather than httpx:
measured on loopback (bench/fanout.py's notes), an httpx POST cost about 470 µs of CPU
against about 165 µs here, and CPU per POST is what bounds deliveries per second.
Everything else in Handover that speaks HTTP uses httpx.
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
from urllib.parse import urlsplit

from handover.services.ports import PushResult

#: RFC 8935 §2.3 error codes after which resending the same SET cannot succeed.
PERMANENT_ERRORS = frozenset({"invalid_request"})
_Origin = tuple[str, str, int]


class HttpSetSender:
    """The services' `SetSender`; safe to share between threads (each keeps its own
    connections). Redirects are not followed and proxies are not used."""

    def __init__(self, timeout: float = 5.0, max_connections: int = 64) -> None:
        self.timeout = timeout
        self.max_connections = max_connections
        self._local = threading.local()
        self._tls = ssl.create_default_context()

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
            connection = self._connection(origin)
            try:
                connection.request("POST", target, body=body, headers=headers)
                response = connection.getresponse()
                status, reason, payload = response.status, response.reason, response.read()
                if response.will_close:
                    self._drop(origin)
                return _result(status, reason, payload)
            except TimeoutError:
                self._drop(origin)
                return PushResult(False, None, "the receiver did not answer in time")
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self._drop(origin)
                if attempt == 2:  # a kept-alive connection the receiver closed: retry once
                    return PushResult(False, None, f"{type(exc).__name__}: {exc}")
            except (http.client.InvalidURL, ValueError) as exc:
                return PushResult(False, None, f"the endpoint URL: {exc}", permanent=True)
            except (OSError, http.client.HTTPException) as exc:
                self._drop(origin)
                return PushResult(False, None, f"{type(exc).__name__}: {exc}")
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
            if scheme == "https":
                connection = http.client.HTTPSConnection(
                    host, port, timeout=self.timeout, context=self._tls
                )
            else:
                connection = http.client.HTTPConnection(host, port, timeout=self.timeout)
            connections[origin] = connection
        return connection

    def _drop(self, origin: _Origin) -> None:
        connection = self._connections().pop(origin, None)
        if connection is not None:
            connection.close()

    def close(self) -> None:
        for origin in list(self._connections()):
            self._drop(origin)


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
