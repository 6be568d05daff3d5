"""Push delivery (RFC 8935): the transmitter POSTs each SET to an endpoint of ours.

`PushReceiver.handle` is the whole protocol, free of any web framework: give it the request
headers and body, send back what it returns. `PushReceiver.asgi_app()` wraps it as a plain
ASGI application to mount in Starlette, FastAPI, Django or to serve with uvicorn alone.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from handover.receiver.dedupe import JtiStore
from handover.receiver.events import SecurityEvent
from handover.receiver.jwks import KeysUnavailable
from handover.receiver.verify import InvalidSet, SetVerifier

log = logging.getLogger(__name__)

SET_MEDIA_TYPE = "application/secevent+jwt"
#: Far above any SET Handover sends (well under 2 KiB), far below anything that could hurt.
MAX_BODY_BYTES = 64 * 1024

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Response = tuple[int, bytes, dict[str, str]]


def _error(status: int, err: str, description: str, **headers: str) -> Response:
    body = json.dumps({"err": err, "description": description}).encode()
    return status, body, {"Content-Type": "application/json", **headers}


class PushReceiver:
    """Checks, verifies, dedupes and hands over each pushed SET.

    `authorization` is the exact `Authorization` header value given to the transmitter
    in the stream's `delivery.authorization_header` (None accepts any request: only for an
    endpoint protected some other way). `handler` is called once per new `jti`; if it raises,
    the `jti` is given back and the transmitter is answered 500 so that it retries.
    """

    def __init__(
        self,
        verifier: SetVerifier,
        dedupe: JtiStore,
        authorization: str | None,
        handler: Callable[[SecurityEvent], None],
        *,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.verifier = verifier
        self.dedupe = dedupe
        self.authorization = authorization
        self.handler = handler
        self.max_body_bytes = max_body_bytes
        #: SETs being handled now: a retransmission meanwhile must not be taken as done.
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()

    def handle(self, headers: Mapping[str, str], body: bytes) -> Response:
        """(status, body, headers) to answer a push request with these headers and body."""
        lowered = {name.lower(): value for name, value in headers.items()}
        if self.authorization is not None and not hmac.compare_digest(
            lowered.get("authorization", "").encode(), self.authorization.encode()
        ):
            return _error(
                401,
                "authentication_failed",
                "the Authorization header is missing or wrong",
                **{"WWW-Authenticate": "Bearer"},
            )
        media_type = lowered.get("content-type", "").split(";")[0].strip().lower()
        if media_type != SET_MEDIA_TYPE:
            return _error(400, "invalid_request", f"Content-Type must be {SET_MEDIA_TYPE}")
        if len(body) > self.max_body_bytes:
            return _error(400, "invalid_request", "the SET is too large")
        try:
            event = self.verifier.verify(body)
        except InvalidSet as exc:
            log.warning("refused a pushed SET: %s", exc)
            return _error(400, exc.err, exc.description)
        except KeysUnavailable as exc:
            log.warning("cannot verify a pushed SET now: %s", exc)
            return 503, b"", {"Retry-After": "30"}
        with self._lock:
            if event.jti in self._in_flight:
                # Still being handled: if that fails, this copy must not have been accepted.
                return 503, b"", {"Retry-After": "1"}
            first = self.dedupe.first_time(event.jti)
            if first:
                self._in_flight.add(event.jti)
        if not first:
            log.info("duplicate SET %s ignored", event.jti)
            return 202, b"", {}
        try:
            self.handler(event)
        except Exception:
            self.dedupe.forget(event.jti)
            log.exception("handler failed on SET %s; the transmitter will retry", event.jti)
            return 500, b"", {}
        finally:
            with self._lock:
                self._in_flight.discard(event.jti)
        return 202, b"", {}

    def asgi_app(self) -> PushAsgiApp:
        """This receiver as an ASGI application answering POSTs on any path it is given."""
        return PushAsgiApp(self)


class PushAsgiApp:
    """ASGI wrapper of a `PushReceiver`. Verification and the handler run in a worker
    thread (they may fetch keys or write to a database), never on the event loop.
    """

    def __init__(self, receiver: PushReceiver) -> None:
        self.receiver = receiver

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise RuntimeError(f"unsupported ASGI scope {scope['type']!r}")
        if scope["method"] != "POST":
            await self._respond(send, (405, b"", {"Allow": "POST"}))
            return
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            # A repeated header is joined (RFC 9110 §5.3), so a doubled Authorization fails.
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        body = await self._read_body(receive)
        if body is None:
            await self._respond(send, _error(413, "invalid_request", "the SET is too large"))
            return
        response = await asyncio.to_thread(self.receiver.handle, headers, body)
        await self._respond(send, response)

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The request body, or None once it grows past the receiver's limit."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.receiver.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    @staticmethod
    async def _respond(send: Send, response: Response) -> None:
        status, body, headers = response
        raw_headers = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()
        ]
        raw_headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    async def _lifespan(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
