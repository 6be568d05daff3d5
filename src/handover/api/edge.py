"""What may enter at the edge: text no store refuses, JSON no parser recurses into.

The rule for text is `domain.text.text_fault`; it is applied once per kind of input:

- Path and query string: `EdgeMiddleware` (pure ASGI, before any route) refuses a decoded
  path segment or query value holding a control character (C0, DEL) or a lone surrogate, or
  longer than `MAX_PATH_SEGMENT` / `MAX_QUERY_VALUE`: 422 problem details.
- JSON bodies that FastAPI validates: every request model derives from `Inbound`, which
  refuses such a string anywhere in the body (keys too; tab, newline and carriage return
  are text) and any string longer than `MAX_BODY_TEXT`. A model whose items are judged one
  by one (the carrier's event batch) names those fields in `judged_per_item`: the faulty
  item alone is rejected, with its reason (`domain.reports.parse_report`).
- JSON bodies parsed by hand (SSF, the check batch, CAMARA): `load_json`, with orjson's
  depth limit (1024 levels) and the same text rule; each route answers its own error body.

PostgreSQL refuses NUL in text and psycopg cannot encode a lone surrogate: without these
rules such a value became a 500 wherever it reached a query.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar
from urllib.parse import parse_qsl

import orjson
from pydantic import BaseModel, model_validator
from starlette.types import ASGIApp, Receive, Scope, Send

from handover.api.problems import Problem, send_problem
from handover.domain.text import printable, text_fault

#: orjson's own limit, which `load_json` keeps when `json` has the last word.
MAX_JSON_DEPTH = 1024
#: Backstops: routes keep their own, tighter limits (`Query(max_length=...)`); a garbled
#: certificate in the verification page's query (tens of kilobytes) still gets its page.
MAX_PATH_SEGMENT = 1024
MAX_QUERY_VALUE = 32 * 1024
#: The longest string any JSON body field may hold (a certificate or receipt JWS fits).
MAX_BODY_TEXT = 64 * 1024


class UnsafeInput(ValueError):
    """A value that cannot enter: what is wrong with it, and where."""


def check_text(document: Any, where: str = "body") -> None:
    """Raise `UnsafeInput` for the first string (a value or a key, at any depth) of a
    decoded JSON document that holds a refused character or is longer than `MAX_BODY_TEXT`."""
    stack: list[tuple[Any, str]] = [(document, where)]
    while stack:
        value, at = stack.pop()
        if isinstance(value, str):
            fault = text_fault(value)
            if fault is None and len(value) > MAX_BODY_TEXT:
                fault = f"is longer than {MAX_BODY_TEXT:,} characters"
            if fault is not None:
                raise UnsafeInput(f"{at} {fault}")
        elif isinstance(value, dict):
            for key, item in value.items():
                stack.append((key, f"{at}: a key"))
                stack.append((item, f"{at}.{key}" if isinstance(key, str) else at))
        elif isinstance(value, list):
            stack.extend((item, f"{at}[{i}]") for i, item in enumerate(value))


def load_json(body: bytes | str, *, text: bool = True) -> Any:
    """Decode a JSON body parsed by hand: orjson (which stops at `MAX_JSON_DEPTH` levels),
    and `json` only to be lenient where orjson is strict (NaN, a BOM, huge numbers). With
    `text`, every string follows `check_text`. Raises `ValueError` (`UnsafeInput` for a
    body too deep or a refused string) with a message fit for the client."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc) or "recursion" in str(exc).lower():
            raise UnsafeInput(f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels") from None
        try:
            document = json.loads(body)
        except RecursionError:
            raise UnsafeInput(f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels") from None
    if text:
        check_text(document)
    return document


class Inbound(BaseModel):
    """The base of every request body model: no string in the body holds a control
    character or a lone surrogate, or is longer than `MAX_BODY_TEXT` (422 problem details,
    as any validation error)."""

    #: Fields whose items are judged one by one, each rejected with its own reason (the
    #: carrier's events); "*": every field of the model.
    judged_per_item: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _edge_text(cls, data: Any) -> Any:
        if "*" in cls.judged_per_item:
            return data
        if isinstance(data, dict) and cls.judged_per_item:
            check_text({k: v for k, v in data.items() if k not in cls.judged_per_item})
        else:
            check_text(data)
        return data


class EdgeMiddleware:
    """Refuses a request whose decoded path or query string breaks the URL text rule."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            fault = url_fault(scope.get("path", ""), scope.get("query_string", b""))
            if fault is not None:
                await _refuse(send, scope.get("path", ""), fault)
                return
        await self.app(scope, receive, send)


def url_fault(path: str, query_string: bytes) -> str | None:
    """Why a request's path (decoded by the server) or query string cannot enter."""
    for segment in path.split("/"):
        fault = text_fault(segment, line=True)
        if fault is None and len(segment) > MAX_PATH_SEGMENT:
            fault = f"is longer than {MAX_PATH_SEGMENT:,} characters"
        if fault is not None:
            return f"a path segment {fault}"
    if query_string:
        query = query_string.decode("latin-1")
        for name, value in parse_qsl(query, keep_blank_values=True, encoding="utf-8"):
            for part in (name, value):
                fault = text_fault(part, line=True)
                if fault is None and len(part) > MAX_QUERY_VALUE:
                    fault = f"is longer than {MAX_QUERY_VALUE:,} characters"
                if fault is not None:
                    return f"query parameter {name[:64]!r} {fault}"
    return None


async def _refuse(send: Send, path: str, detail: str) -> None:
    problem = Problem(422, "invalid-request", "The request is not valid", detail)
    await send_problem(send, printable(path)[:MAX_PATH_SEGMENT], problem)
