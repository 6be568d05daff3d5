"""How many bytes a request body may carry, per route: 413 problem details past it.

A pure ASGI middleware, so it sees every request before FastAPI reads a byte: a declared
`Content-Length` over the limit is answered at once, and a body sent without one (chunked)
is counted as it streams in and cut off where it passes the limit. Past that point the
route gets a disconnect and whatever it answers is dropped: the client has its 413.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from handover.api.check_schemas import MAX_BATCH_BYTES
from handover.api.problems import Problem, send_problem
from handover.config import Settings

#: Batches of up to 10,000 items (carrier events, bindings, subscriber links): each item is
#: at most about 1 KB even with every optional text at its longest.
BATCH_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """`default` bytes for any route; `routes` maps (method, path) to its own limit, where
    a path ending in `/` covers everything below it."""

    default: int
    routes: Mapping[tuple[str, str], int]

    def of(self, method: str, path: str) -> int:
        exact = self.routes.get((method, path))
        if exact is not None:
            return exact
        for (route_method, prefix), limit in self.routes.items():
            if route_method == method and prefix.endswith("/") and path.startswith(prefix):
                return limit
        return self.default


def body_limits(settings: Settings) -> BodyLimits:
    """The routes whose bodies may be larger than `settings.max_body_bytes`."""
    return BodyLimits(
        settings.max_body_bytes,
        {
            ("POST", "/v1/check"): MAX_BATCH_BYTES,
            ("POST", "/v1/carrier/files"): settings.max_upload_bytes,
            ("POST", "/v1/carrier/events"): BATCH_BYTES,
            ("PUT", "/v1/carrier/subscriber-links"): BATCH_BYTES,
            ("PUT", "/v1/platform/bindings"): BATCH_BYTES,
            ("DELETE", "/v1/platform/bindings"): BATCH_BYTES,
            ("POST", "/ssf/poll/"): 4 * 1024 * 1024,
        },
    )


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.of(scope["method"], scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _too_large(send, scope["path"], limit)
            return
        received = 0
        answered = False

        async def counted_receive() -> Message:
            nonlocal received, answered
            if answered:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    answered = True
                    await _too_large(send, scope["path"], limit)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not answered:
                await send(message)

        await self.app(scope, counted_receive, guarded_send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(send: Send, path: str, limit: int) -> None:
    problem = Problem(
        413,
        "body-too-large",
        "The request body is too large",
        f"This endpoint accepts at most {limit:,} bytes.",
        headers={"connection": "close"},
    )
    await send_problem(send, path, problem)
