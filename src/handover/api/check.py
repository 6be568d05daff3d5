"""The reassigned-number check over HTTP.

- `GET /v1/check` and `POST /v1/check` (JSON or NDJSON, up to 100,000 items; NDJSON answers
  stream): the full answer, for platform clients (scope `check`); errors are RFC 9457.
- `POST /number-recycling/v0.2/check`: CAMARA NumberRecycling v0.2, with CAMARA error
  bodies `{status, code, message}` and the `x-correlator` header echoed.
- Signed receipts: `GET /.well-known/jwks.json` and `POST /v1/receipts/verify` (public).

Answers come only through the `CheckIndex` on `app.state.check_index` (see
`bootstrap.check_index`).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response, StreamingResponse

from handover import bootstrap
from handover.api.check_schemas import (
    MAX_BATCH_BYTES,
    MAX_BATCH_ITEMS,
    CamaraCheckIn,
    CamaraCheckPublic,
    CamaraErrorPublic,
    CheckAnswerPublic,
    CheckBatchIn,
    CheckBatchPublic,
    ReceiptIn,
    ReceiptVerificationPublic,
)
from handover.api.deps import UowFactory, require_scope
from handover.api.edge import UnsafeInput, load_json
from handover.api.problems import Problem
from handover.domain.check import Unanswered
from handover.domain.dates import instant
from handover.services.access import AccessDenied, Principal, TokenIssuer
from handover.services.check import (
    CheckIndex,
    CheckResult,
    InvalidQuestion,
    check,
    recycled_since,
)
from handover.services.receipts import InvalidReceipt, ReceiptSigner, answer_record, sign_receipt

logger = logging.getLogger(__name__)

CHECK_SCOPE = "check"
Checker = Annotated[Principal, Depends(require_scope(CHECK_SCOPE))]
NDJSON = "application/x-ndjson"
_NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")

router = APIRouter(tags=["check"])
camara = APIRouter(prefix="/number-recycling/v0.2", tags=["CAMARA NumberRecycling v0.2"])


def _index(request: Request) -> CheckIndex:
    """The app's check index, refreshed first unless it refreshes itself in the background."""
    index: CheckIndex = request.app.state.check_index
    if request.app.state.check_refresh_each_request:
        bootstrap.fresh(index)
    return index


async def _current_index(request: Request) -> CheckIndex:
    """`_index` as a dependency: no thread-pool hop unless the store must be read first."""
    index: CheckIndex = request.app.state.check_index
    if request.app.state.check_refresh_each_request:
        await run_in_threadpool(bootstrap.fresh, index)
    return index


async def _signer(request: Request) -> ReceiptSigner:
    signer: ReceiptSigner = request.app.state.receipt_signer
    return signer


Index = Annotated[CheckIndex, Depends(_current_index)]
Signer = Annotated[ReceiptSigner, Depends(_signer)]


def _now() -> datetime:
    return datetime.now(UTC)


def _record(
    result: CheckResult, signer: ReceiptSigner | None, client_id: str, now: datetime
) -> dict[str, Any]:
    record = answer_record(result)
    record["checked_at"] = instant(now, whole_seconds=True)
    if signer is not None:
        record["receipt"] = sign_receipt(signer, result, client_id, now)
    return record


# -- /v1/check ---------------------------------------------------------------------------


@router.get(
    "/v1/check",
    response_model=CheckAnswerPublic,
    response_model_exclude_none=False,
    responses={422: {"description": "Bad number or date, or a date in the future"}},
)
async def get_check(
    principal: Checker,
    index: Index,
    signer: Signer,
    number: Annotated[str, Query(description="E.164", examples=["+8613812345678"])],
    since: Annotated[
        str,
        Query(description="When you last verified the number: ISO 8601 date or date-time (UTC)"),
    ],
    receipt: Annotated[bool, Query(description="Sign a receipt of this answer")] = False,
) -> Response:
    """Did `number` change hands since `since`? The full answer: CAMARA `recycled`, RND
    `disconnected`/`rnd`, a login `verdict` with its reasons, and the data version."""
    now = _now()
    in_memory = _in_memory(index)
    if in_memory:
        result = bootstrap.check_one(index, number, since, now)
    else:  # the store-reading index: off the event loop
        result = await run_in_threadpool(check, index, number, since, now)
    if receipt:
        record = await run_in_threadpool(_record, result, signer, principal.client_id, now)
    else:
        record = _record(result, None, principal.client_id, now)
    return Response(orjson.dumps(record), media_type="application/json")


def _in_memory(index: CheckIndex) -> bool:
    """Whether the index answers from memory (no store access): `NumpyCheckIndex`."""
    return callable(getattr(index, "resolve", None))


def _item_error(index: int, item: Any, code: str, message: str) -> dict[str, Any]:
    error: dict[str, Any] = {"index": index}
    if isinstance(item, dict):
        for key in ("number", "since"):
            if isinstance(item.get(key), str):
                error[key] = item[key]
    error["error"] = {"code": code, "message": message}
    return error


def _question(item: Any) -> tuple[str, str] | str:
    """(number, since) of a batch item, or why it is not one."""
    if not isinstance(item, dict):
        return "an item is an object with `number` and `since`"
    unknown = sorted(set(item) - {"number", "since"})
    if unknown:
        return f"unknown field(s): {', '.join(unknown)}"
    number, since = item.get("number"), item.get("since")
    if not isinstance(number, str) or not isinstance(since, str):
        return "`number` and `since` are required strings"
    return number, since


async def _read_body(request: Request) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BATCH_BYTES:
            raise Problem(
                413,
                "batch-too-large",
                "The batch is too large",
                f"a batch holds at most {MAX_BATCH_ITEMS:,} items and {MAX_BATCH_BYTES:,} bytes",
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _too_many(count: int) -> Problem:
    return Problem(
        413,
        "batch-too-large",
        "The batch is too large",
        f"a batch holds at most {MAX_BATCH_ITEMS:,} items, got {count:,}",
        max_items=MAX_BATCH_ITEMS,
    )


def _parse_ndjson(body: bytes) -> list[Any]:
    items: list[Any] = []
    append, fast = items.append, orjson.loads
    for line in body.splitlines():
        if not line.strip():
            continue
        if len(items) >= MAX_BATCH_ITEMS:
            raise _too_many(sum(1 for raw in body.splitlines() if raw.strip()))
        try:
            append(fast(line))
        except orjson.JSONDecodeError:
            try:
                append(load_json(line, text=False))
            except ValueError as exc:
                append(_Unparsed(str(exc)))
    return items


class _Unparsed:
    """An NDJSON line that is not JSON (answered with an `invalid_item` error)."""

    def __init__(self, message: str) -> None:
        self.message = f"not JSON: {message}"


def _parse_json(body: bytes) -> tuple[list[Any], bool]:
    try:
        # Strings are the items' own business: a faulty one is that item's error.
        document = load_json(body, text=False)
    except ValueError as exc:
        raise Problem(400, "invalid-json", "The body is not JSON", str(exc)) from None
    if not isinstance(document, dict) or not isinstance(document.get("items"), list):
        raise Problem(
            422,
            "invalid-request",
            "The request is not valid",
            'the body is {"items": [{"number": ..., "since": ...}, ...], "receipt": false}',
        )
    unknown = sorted(set(document) - {"items", "receipt"})
    if unknown:
        raise Problem(
            422, "invalid-request", "The request is not valid", f"unknown field(s): {unknown}"
        )
    receipt = document.get("receipt", False)
    if not isinstance(receipt, bool):
        raise Problem(422, "invalid-request", "The request is not valid", "receipt is a boolean")
    items: list[Any] = document["items"]
    if len(items) > MAX_BATCH_ITEMS:
        raise _too_many(len(items))
    return items, receipt


def _answer_batch(
    index: CheckIndex,
    items: list[Any],
    signer: ReceiptSigner | None,
    client_id: str,
    now: datetime,
) -> Iterator[dict[str, Any]]:
    """One result per item, in order; bad items are answered with their error."""
    parsed: list[tuple[int, tuple[str, str]]] = []
    errors: dict[int, dict[str, Any]] = {}
    for i, item in enumerate(items):
        question = item.message if isinstance(item, _Unparsed) else _question(item)
        if isinstance(question, str):
            errors[i] = _item_error(i, item, "invalid_item", question)
        else:
            parsed.append((i, question))
    questions: Iterable[tuple[str, str | date | datetime]] = (q for _, q in parsed)
    answers = bootstrap.check_many(index, questions, now)
    position = 0
    for (i, (number, since)), result in zip(parsed, answers, strict=True):
        while position < i:
            yield errors[position]
            position += 1
        if isinstance(result, InvalidQuestion):
            yield _item_error(i, {"number": number, "since": since}, result.code, str(result))
        else:
            yield {"index": i, **_record(result, signer, client_id, now)}
        position = i + 1
    while position < len(items):
        yield errors[position]
        position += 1


# -- the batch without per-answer objects --------------------------------------------------

#: Items answered (and, for NDJSON, written) at a time: bounds the working memory.
BATCH_CHUNK = 10_000


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _split(items: Sequence[Any], start: int) -> tuple[list[int], list[str], list[str], list[str]]:
    """The well-formed questions among `items` (positions from `start`), and the JSON of
    each malformed item's error (None where the item is a question)."""
    positions: list[int] = []
    numbers: list[str] = []
    since: list[str] = []
    texts: list[Any] = [None] * len(items)
    for offset, item in enumerate(items):
        if type(item) is dict and len(item) == 2:
            number, moment = item.get("number"), item.get("since")
            if type(number) is str and type(moment) is str:
                positions.append(offset)
                numbers.append(number)
                since.append(moment)
                continue
        question = item.message if isinstance(item, _Unparsed) else _question(item)
        if isinstance(question, str):
            texts[offset] = _dumps(_item_error(start + offset, item, "invalid_item", question))
        else:
            positions.append(offset)
            numbers.append(question[0])
            since.append(question[1])
    return positions, numbers, since, texts


def _stamps(epoch: Any, none: bool) -> list[str]:
    """JSON strings of epoch seconds, as `answer_record` writes them (`null` for 0 when
    `none`): formatted once per distinct value by numpy (years 0001-9999 as datetime)."""
    import numpy as np

    distinct, where = np.unique(epoch, return_inverse=True)
    texts = np.datetime_as_string(distinct.astype("datetime64[s]"), unit="s").tolist()
    table = np.array([f'"{text}Z"' for text in texts], dtype=object)
    if none and len(distinct) and distinct[0] == 0:
        table[0] = "null"
    stamps: list[str] = table[where].tolist()
    return stamps


def _answer_fragments(resolved: bootstrap.BatchResults) -> list[str]:
    """The `state` ... `reasons` members of each answer's JSON, built once per distinct
    combination from the domain's own answer object and `answer_record`."""
    import numpy as np

    a = resolved.answers
    code = a.state.astype(np.int64)
    for column, size in ((a.recycled + 1, 3), (a.disconnected + 1, 3), (a.rnd, 3), (a.verdict, 3)):
        code = code * size + column
    code = (code * 256 + a.reasons) * 2 + a.future
    _, first, where = np.unique(code, return_index=True, return_inverse=True)
    table = []
    for i in first.tolist():
        if a.future[i]:
            table.append("")  # a future date: refused, never written
            continue
        record = answer_record(CheckResult("", _SOME_MOMENT, a.answer(i), 0))
        table.append(_dumps({key: record[key] for key in _ANSWER_KEYS})[1:-1])
    fragments: list[str] = np.array(table, dtype=object)[where].tolist()
    return fragments


_ANSWER_KEYS = ("state", "recycled", "disconnected", "rnd", "verdict", "reasons")
_SOME_MOMENT = datetime(2000, 1, 1, tzinfo=UTC)


def _fast_texts(
    index: Any, items: Sequence[Any], start: int, now: datetime
) -> tuple[list[str], int]:
    """The JSON of each item's result (`{"index", ...record}` or its error), in order, and
    how many are errors: the same as `_answer_batch` without receipts, written from the
    index's answer arrays (`NumpyCheckIndex.resolve`)."""
    positions, numbers, since, texts = _split(items, start)
    if not numbers:
        return texts, len(texts)
    resolved: bootstrap.BatchResults = index.resolve(numbers, since, now)
    a = resolved.answers
    shown = list(numbers)
    for i, e164 in resolved.e164s.items():
        shown[i] = e164
    fragments = _answer_fragments(resolved)
    moments = _stamps(resolved.since, none=False)
    last = _stamps(a.last_disconnected, none=True)
    reassigned = _stamps(a.reassigned_at, none=True)
    checked_at = instant(now, whole_seconds=True)
    tail = f',"data_version":{resolved.data_version},"checked_at":"{checked_at}"}}'
    problems = resolved.problems
    for i, (offset, number, moment, fragment, gone, again) in enumerate(
        zip(positions, shown, moments, fragments, last, reassigned, strict=True)
    ):
        if i in problems:
            problem = problems[i]
            error = {"number": numbers[i], "since": since[i]}
            texts[offset] = _dumps(_item_error(start + offset, error, problem.code, str(problem)))
        else:
            # `number` is canonical E.164 here ("+" and digits): no escaping needed.
            texts[offset] = (
                f'{{"index":{start + offset},"number":"{number}","since":{moment},{fragment},'
                f'"last_disconnected":{gone},"reassigned_at":{again}{tail}'
            )
    return texts, len(texts) - len(positions) + len(problems)


def _fast_chunks(
    index: Any, items: Sequence[Any], now: datetime
) -> Iterator[tuple[list[str], int]]:
    for start in range(0, len(items), BATCH_CHUNK):
        yield _fast_texts(index, items[start : start + BATCH_CHUNK], start, now)


def _fast_ndjson(index: Any, items: Sequence[Any], now: datetime) -> Iterator[bytes]:
    for texts, _ in _fast_chunks(index, items, now):
        yield ("\n".join(texts) + "\n").encode()


def _fast_json(index: Any, items: Sequence[Any], now: datetime) -> bytes:
    parts: list[bytes] = []
    count = errors = 0
    for texts, bad in _fast_chunks(index, items, now):
        if texts:
            parts.append(",".join(texts).encode())
        count += len(texts)
        errors += bad
    head = f'{{"count":{count},"answered":{count - errors},"errors":{errors},"results":['
    return b"".join((head.encode(), b",".join(parts), b"]}"))


def _wants_ndjson(request: Request, ndjson_in: bool) -> bool:
    accept = request.headers.get("accept", "")
    if any(kind in accept for kind in (*_NDJSON_TYPES, "ndjson", "jsonl")):
        return True
    return ndjson_in and "application/json" not in accept


@router.post(
    "/v1/check",
    response_model=CheckBatchPublic,
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "A JSON batch, or NDJSON: one `{number, since}` object per line",
            "content": {
                "application/json": {"schema": CheckBatchIn.model_json_schema()},
                NDJSON: {
                    "schema": {
                        "type": "string",
                        "description": 'lines like {"number": "+86...", "since": "2024-01-01"}',
                    }
                },
            },
        }
    },
    responses={
        200: {
            "content": {
                NDJSON: {
                    "schema": {
                        "type": "string",
                        "description": "one result per line, in request order",
                    }
                }
            }
        },
        413: {"description": "More than 100,000 items"},
        415: {"description": "Neither JSON nor NDJSON"},
    },
)
async def post_check(
    request: Request,
    principal: Checker,
    index: Index,
    signer: Signer,
    receipt: Annotated[bool, Query(description="Sign a receipt for each answer")] = False,
) -> Any:
    """Check up to 100,000 `(number, since)` questions. Send JSON `{"items": [...]}` or
    NDJSON lines; ask for `Accept: application/x-ndjson` (the default for an NDJSON request)
    to get results streamed one per line. A bad item gets its own `error` and does not fail
    the batch."""
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip()
    ndjson_in = content_type in _NDJSON_TYPES
    if not ndjson_in and content_type != "application/json":
        raise Problem(
            415,
            "unsupported-media-type",
            "Send application/json or application/x-ndjson",
            f"got {content_type!r}",
        )
    body = await _read_body(request)
    if ndjson_in:
        items = await run_in_threadpool(_parse_ndjson, body)
    else:
        items, receipt_in_body = await run_in_threadpool(_parse_json, body)
        receipt = receipt or receipt_in_body
    del body
    now = _now()
    if not receipt and _in_memory(index):
        if _wants_ndjson(request, ndjson_in):
            return StreamingResponse(_fast_ndjson(index, items, now), media_type=NDJSON)
        content = await run_in_threadpool(_fast_json, index, items, now)
        return Response(content, media_type="application/json")
    results = _answer_batch(index, items, signer if receipt else None, principal.client_id, now)
    if _wants_ndjson(request, ndjson_in):
        return StreamingResponse(_lines(results), media_type=NDJSON)

    def collect() -> list[dict[str, Any]]:
        return list(results)

    collected = await run_in_threadpool(collect)
    errors = sum(1 for r in collected if "error" in r)
    return JSONResponse(
        {
            "count": len(collected),
            "answered": len(collected) - errors,
            "errors": errors,
            "results": collected,
        }
    )


def _lines(results: Iterator[dict[str, Any]], per_chunk: int = 500) -> Iterator[bytes]:
    buffer: list[str] = []
    for result in results:
        buffer.append(json.dumps(result, separators=(",", ":")))
        if len(buffer) >= per_chunk:
            yield ("\n".join(buffer) + "\n").encode()
            buffer.clear()
    if buffer:
        yield ("\n".join(buffer) + "\n").encode()


# -- receipts ----------------------------------------------------------------------------


@router.get("/.well-known/jwks.json", tags=["receipts"])
def jwks(signer: Signer) -> JSONResponse:
    """The public keys that sign check receipts (RFC 7517 JWK Set)."""
    return JSONResponse(
        signer.jwks(),
        media_type="application/jwk-set+json",
        headers={"Cache-Control": "public, max-age=3600"},
    )


@router.post("/v1/receipts/verify", response_model=ReceiptVerificationPublic, tags=["receipts"])
def post_verify_receipt(body: ReceiptIn, signer: Signer) -> ReceiptVerificationPublic:
    """Is this receipt signed by Handover's receipt key? Anyone may ask; the answer carries
    the signed claims (number, date, answer, data version, time, caller)."""
    try:
        claims = bootstrap.verify_receipt(body.receipt, signer.jwks())
    except InvalidReceipt as exc:
        return ReceiptVerificationPublic(valid=False, error=str(exc))
    return ReceiptVerificationPublic(valid=True, kid=signer.kid, claims=claims)


# -- CAMARA NumberRecycling v0.2 ---------------------------------------------------------

#: CAMARA Commonalities' `XCorrelator` schema.
_X_CORRELATOR = re.compile(r"^[a-zA-Z0-9\-_:;.\/<>{}]{0,256}$")
_PHONE_NUMBER = re.compile(r"^\+[1-9][0-9]{4,14}$")
_FULL_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CAMARA_PROPERTIES = frozenset({"phoneNumber", "specifiedDate"})


class CamaraError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _camara_response(
    status: int, body: dict[str, Any], correlator: str | None, extra: dict[str, str] | None = None
) -> JSONResponse:
    headers = dict(extra or {})
    if correlator is not None:
        headers["x-correlator"] = correlator
    return JSONResponse(body, status_code=status, headers=headers)


def _camara_error(error: CamaraError, correlator: str | None) -> JSONResponse:
    extra = {"WWW-Authenticate": 'Bearer realm="handover"'} if error.status == 401 else None
    body = {"status": error.status, "code": error.code, "message": error.message}
    return _camara_response(error.status, body, correlator, extra)


def _camara_principal(request: Request) -> Principal:
    authorization = request.headers.get("authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise CamaraError(
            401,
            "UNAUTHENTICATED",
            "Request not authenticated due to missing, invalid, or expired credentials.",
        )
    tokens: TokenIssuer = request.app.state.tokens
    try:
        principal = tokens.verify(credentials.strip())
    except AccessDenied:
        raise CamaraError(
            401,
            "UNAUTHENTICATED",
            "Request not authenticated due to missing, invalid, or expired credentials.",
        ) from None
    if CHECK_SCOPE not in principal.scopes:
        raise CamaraError(
            403,
            "PERMISSION_DENIED",
            "Client does not have sufficient permissions to perform this action.",
        )
    return principal


def _invalid(message: str) -> CamaraError:
    return CamaraError(400, "INVALID_ARGUMENT", message)


def _camara_question(body: bytes, today: date) -> tuple[str, date]:
    """Validate a `CreateCheckNumRecycling` body: (phoneNumber, specifiedDate)."""
    if not body.strip():
        raise _invalid("The request body is missing.")
    try:
        document = load_json(body)
    except UnsafeInput as exc:
        raise _invalid(f"The request body cannot be used: {exc}.") from None
    except ValueError:
        raise _invalid("The request body is not valid JSON.") from None
    if not isinstance(document, dict):
        raise _invalid("The request body must be a JSON object.")
    unknown = sorted(set(document) - _CAMARA_PROPERTIES)
    if unknown:
        raise _invalid(f"Unknown property: {', '.join(unknown)}.")
    raw_date = document.get("specifiedDate")
    if raw_date is None:
        raise _invalid("specifiedDate is required.")
    if not isinstance(raw_date, str) or not _FULL_DATE.match(raw_date):
        raise _invalid("specifiedDate must be an RFC 3339 calendar date (YYYY-MM-DD).")
    try:
        specified = date.fromisoformat(raw_date)
    except ValueError:
        raise _invalid("specifiedDate is not a valid calendar date.") from None
    if "phoneNumber" in document:
        number = document["phoneNumber"]
        if not isinstance(number, str) or not _PHONE_NUMBER.match(number):
            raise _invalid("phoneNumber must be in E.164 format, e.g. +8613812345678.")
    if specified > today:
        raise CamaraError(400, "OUT_OF_RANGE", "specifiedDate must not be in the future.")
    if "phoneNumber" not in document:
        # Handover's tokens are two-legged (client credentials): they identify no number.
        raise CamaraError(422, "MISSING_IDENTIFIER", "The phone number cannot be identified.")
    phone: str = document["phoneNumber"]
    return phone, specified


_NOT_FOUND = (404, "IDENTIFIER_NOT_FOUND", "Phone number not found.")
#: CAMARA's error for each reason a check cannot say whether a number was recycled.
_UNANSWERED = {
    Unanswered.BEFORE_COVERAGE: (
        422,
        "SERVICE_NOT_APPLICABLE",
        "The service has no data for this phone number on the specified date.",
    ),
    Unanswered.COUNTRY_NOT_SERVED: (
        422,
        "SERVICE_NOT_APPLICABLE",
        "The service is not available for the provided phone number.",
    ),
    Unanswered.NEVER_REPORTED: _NOT_FOUND,
}


def _camara_answer(
    request: Request, uow_factory: UowFactory, number: str, specified: date, now: datetime
) -> bool:
    try:
        found = recycled_since(_index(request), uow_factory, number, specified, now)
    except InvalidQuestion as exc:
        if exc.code == "future_date":
            raise CamaraError(
                400, "OUT_OF_RANGE", "specifiedDate must not be in the future."
            ) from None
        raise CamaraError(*_NOT_FOUND) from None
    if isinstance(found, Unanswered):
        raise CamaraError(*_UNANSWERED[found])
    return found


@camara.post(
    "/check",
    operation_id="checkNumberRecycling",
    summary="Check whether the subscriber of the phone number has changed",
    response_model=CamaraCheckPublic,
    openapi_extra={
        "parameters": [
            {
                "name": "x-correlator",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "pattern": _X_CORRELATOR.pattern},
            }
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": CamaraCheckIn.model_json_schema()}},
        },
    },
    responses={
        status: {"model": CamaraErrorPublic, "description": description}
        for status, description in {
            400: "INVALID_ARGUMENT or OUT_OF_RANGE",
            401: "UNAUTHENTICATED",
            403: "PERMISSION_DENIED",
            404: "IDENTIFIER_NOT_FOUND",
            422: "MISSING_IDENTIFIER or SERVICE_NOT_APPLICABLE",
            500: "INTERNAL",
        }.items()
    },
)
async def camara_check(request: Request, uow_factory: UowFactory) -> JSONResponse:
    """CAMARA NumberRecycling v0.2 `checkNumberRecycling`: `phoneNumberRecycled` is true when
    the subscriber changed after `specifiedDate` (or the number had none on it). Tokens here
    are two-legged, so `phoneNumber` is required (`422 MISSING_IDENTIFIER` otherwise)."""
    correlator = request.headers.get("x-correlator")
    try:
        if correlator is not None and not _X_CORRELATOR.match(correlator):
            correlator = None
            raise _invalid("The x-correlator header does not match its schema.")
        _camara_principal(request)
        now = _now()
        number, specified = _camara_question(await request.body(), now.date())
        recycled = await run_in_threadpool(
            _camara_answer, request, uow_factory, number, specified, now
        )
    except CamaraError as error:
        return _camara_error(error, correlator)
    except Exception:
        logger.exception("CAMARA check failed")
        return _camara_error(CamaraError(500, "INTERNAL", "Unknown server error."), correlator)
    return _camara_response(200, {"phoneNumberRecycled": recycled}, correlator)
