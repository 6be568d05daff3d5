"""Errors as HTTP problem details (RFC 9457), mapped here and nowhere else.

Domain and service errors say what went wrong in their own words: a class, and a `code`
where one class covers several refusals (`StreamError.code`, `CaseError.code`,
`InvalidQuestion.code`, `Rejected.reason`). `ERRORS` says how each is answered over HTTP
(status, problem type, title); `install` registers one handler for all of them, so routes
let these errors pass and never build their problem details by hand. `Problem` is for what
only HTTP knows (no bearer token, a media type, a body too large). Answers whose body a
specification fixes (OAuth token errors, CAMARA) are written where they are answered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message, Send

from handover.domain.cases import CaseError, CaseRule
from handover.domain.certificates import NotInService
from handover.domain.contacts import InvalidContact
from handover.domain.freeze import NotFrozen
from handover.domain.notices import NoSubscriber
from handover.domain.people import InvalidLinks
from handover.domain.rejections import Reason, Rejected
from handover.domain.sign_in import (
    CodeBurnt,
    CodeExpired,
    MalformedCode,
    NoCodeWaiting,
    SignInRefused,
    TooManyCodes,
    WrongCode,
)
from handover.domain.ssf.streams import Refusal, StreamError
from handover.services import audit, bindings, reporting
from handover.services.access import AccessDenied, InvalidToken
from handover.services.cases import CaseNotFound
from handover.services.check import InvalidQuestion
from handover.services.checklist import NotYourNumber
from handover.services.health import NotReady
from handover.services.ports import StoreUnavailable
from handover.services.sign_in import MalformedNumber, NotSignedIn

PROBLEM_TYPES = "https://handover.example/problems/"
MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status, self.slug, self.title, self.detail = status, slug, title, detail
        self.headers = headers
        self.extra = extra


@dataclass(frozen=True, slots=True)
class ProblemType:
    """How one error is answered: its status, problem type (a slug under `PROBLEM_TYPES`;
    None: the error's own code names it) and title. The detail is the error's."""

    status: int
    slug: str | None
    title: str


#: An error class, or an error class with one of its codes.
ErrorKey = type[Exception] | tuple[type[Exception], str]


def _case(status: int, *rules: CaseRule) -> dict[ErrorKey, ProblemType]:
    return {
        (CaseError, rule): ProblemType(status, None, "The case cannot do that") for rule in rules
    }


#: Every domain and service error the API answers, by class, or by (class, code) where one
#: class covers several refusals. A subclass's own entry wins over its base's.
ERRORS: Mapping[ErrorKey, ProblemType] = {
    # Streams (SSF 1.0 §8 gives the statuses)
    (StreamError, Refusal.INVALID_REQUEST): ProblemType(400, "ssf", "The request cannot be used"),
    (StreamError, Refusal.FORBIDDEN): ProblemType(403, "ssf", "This client may not do that"),
    (StreamError, Refusal.NOT_FOUND): ProblemType(404, "ssf", "No such stream"),
    (StreamError, Refusal.TOO_MANY_STREAMS): ProblemType(409, "ssf", "Too many streams"),
    (StreamError, Refusal.TOO_SOON): ProblemType(429, "ssf", "Too many requests"),
    # Cases: another party's case is not found, never forbidden
    **_case(
        422,
        CaseRule.UNKNOWN_PLATFORM,
        CaseRule.NOTHING_SELECTED,
        CaseRule.INVALID_KIND,
        CaseRule.INVALID_NUMBER,
        CaseRule.INVALID_OUTCOME,
        CaseRule.OUTCOME_NOT_ALLOWED,
        CaseRule.REASON_REQUIRED,
        CaseRule.INVALID_REASON,
        CaseRule.MIGRATE_TO_REQUIRED,
        CaseRule.MIGRATE_TO_NOT_YOURS,
        CaseRule.MIGRATE_TO_SAME,
        CaseRule.INVALID_COMPLAINT,
    ),
    **_case(404, CaseRule.NO_SUCH_BINDING),
    **_case(
        409,
        CaseRule.NOT_IN_SERVICE,
        CaseRule.CASE_OPEN,
        CaseRule.CASE_CLOSED,
        CaseRule.NOT_OVERDUE,
        CaseRule.ALREADY_ESCALATED,
    ),
    CaseNotFound: ProblemType(404, "not-found", "No such case"),
    NotYourNumber: ProblemType(404, "not-found", "Not a number you hold"),
    # The check (the problem also carries the error's `code`)
    (InvalidQuestion, "invalid_number"): ProblemType(422, None, "Not a valid E.164 number"),
    (InvalidQuestion, "invalid_date"): ProblemType(422, None, "Not an ISO 8601 date"),
    (InvalidQuestion, "future_date"): ProblemType(422, None, "The date is in the future"),
    InvalidQuestion: ProblemType(422, None, "The question cannot be answered"),
    # Numbers, lifecycle rules
    (Rejected, Reason.INVALID_NUMBER): ProblemType(
        422, "invalid-number", "Not a valid E.164 number"
    ),
    Rejected: ProblemType(422, None, "The request breaks a lifecycle rule"),
    NoSubscriber: ProblemType(409, "no-subscriber", "The number has no subscriber now"),
    NotFrozen: ProblemType(409, "not-frozen", "The number is not frozen"),
    NotInService: ProblemType(409, "not-in-service", "The number is not in service"),
    # Carriers' reports and files
    reporting.FileRejected: ProblemType(422, "unreadable-file", "The file cannot be read"),
    reporting.BatchTooLarge: ProblemType(413, "batch-too-large", "The batch is too large"),
    reporting.UnknownCarrier: ProblemType(
        403, "unknown-carrier", "This client's carrier no longer exists"
    ),
    # The binding registry (the problem also lists each fault)
    bindings.InvalidBindings: ProblemType(
        422, "invalid-bindings", "Some bindings cannot be used; nothing was written"
    ),
    bindings.BatchTooLarge: ProblemType(413, "batch-too-large", "The batch is too large"),
    # The audit log
    audit.NoSuchEntry: ProblemType(422, "out-of-range", "No such entry in that tree"),
    audit.NoSuchTreeSizes: ProblemType(422, "out-of-range", "No such tree sizes"),
    audit.OutOfRange: ProblemType(422, "out-of-range", "No such entry or tree size"),
    audit.NoLogEntry: ProblemType(404, "not-found", "No such log entry"),
    audit.NoCheckpoint: ProblemType(409, "no-checkpoint", "No checkpoint covers any entry yet"),
    audit.NotAParty: ProblemType(403, "not-a-party", "The entry is not about this client"),
    # People: links, contacts, sign-in (a refusal that passes with time says when)
    InvalidLinks: ProblemType(422, "invalid-links", "The links cannot be used"),
    InvalidContact: ProblemType(422, "invalid-contact", "The contact cannot be used"),
    MalformedNumber: ProblemType(400, "invalid-number", "The number is not valid"),
    MalformedCode: ProblemType(400, "invalid-code", "The code is not valid"),
    TooManyCodes: ProblemType(429, "too-many-codes", "Too many codes asked for"),
    WrongCode: ProblemType(401, "wrong-code", "The code is not right"),
    CodeBurnt: ProblemType(401, "code-burnt", "Too many wrong guesses at the code's digits"),
    CodeExpired: ProblemType(401, "code-expired", "The code has expired"),
    NoCodeWaiting: ProblemType(401, "no-code", "No code is waiting for this number"),
    SignInRefused: ProblemType(400, "sign-in-refused", "Sign-in refused"),
    NotSignedIn: ProblemType(401, "not-signed-in", "The session is not valid"),
    # Operations: the store away (any route), readiness
    StoreUnavailable: ProblemType(503, "store-unavailable", "The store is not answering"),
    NotReady: ProblemType(503, "not-ready", "This service is not ready"),
    # Machine clients (the token endpoint answers OAuth's own errors itself)
    InvalidToken: ProblemType(401, "unauthenticated", "The bearer token is not valid"),
    AccessDenied: ProblemType(403, "access-denied", "This client may not do that"),
}


#: RFC 9457 problem details as the OpenAPI document describes them.
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
    "additionalProperties": True,
}
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for a route that answers these statuses with problem details
    (besides the ones `document` gives every route of its kind)."""
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {MEDIA_TYPE: {"schema": _PROBLEM_REF}},
        }
        for status in statuses
    }


def document(openapi: dict[str, Any]) -> dict[str, Any]:
    """Add to every operation of an OpenAPI document the problems the whole app answers:
    401 and 403 where a bearer token is required, 404 where the path names something, 400
    (an unreadable body) and 413 (too large) where a body is read, 422 (the request does
    not validate) everywhere, and 503 (the store is away, or `/readyz` not ready) wherever
    the store may be asked (all but `/healthz`); the token endpoint and CAMARA's operation
    document their own.
    A route's own descriptions and statuses (`responses`) are kept. Idempotent."""
    openapi.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for path, item in openapi.get("paths", {}).items():
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            if path == "/oauth/token" or path.startswith("/number-recycling/"):
                continue
            statuses = [422] if path == "/healthz" else [422, 503]
            if operation.get("security"):
                statuses += [401, 403]
            if any(p.get("in") == "path" for p in operation.get("parameters", [])):
                statuses.append(404)
            if "requestBody" in operation:
                statuses += [400, 413]
            found = operation["responses"]
            # A route's own 4xx without a body described: a problem too.
            statuses += [int(s) for s in found if s.startswith("4") and "content" not in found[s]]
            for status, response in responses(*statuses).items():
                # A route's own description stays; the body is a problem (FastAPI's 422
                # says HTTPValidationError, but the app answers problem details).
                found[str(status)] = response | {
                    k: v for k, v in found.get(str(status), {}).items() if k == "description"
                }
    return openapi


def code_of(error: Exception) -> str | None:
    """What went wrong, in the error's own words: its `code` (a `Rejected`'s reason)."""
    code = error.reason if isinstance(error, Rejected) else getattr(error, "code", None)
    return code if isinstance(code, str) else None


def problem_type(error: Exception) -> ProblemType | None:
    """The entry of `ERRORS` for `error`: the most specific class first, each by its code
    before the class alone."""
    code = code_of(error)
    for cls in type(error).__mro__:
        found = ERRORS.get((cls, code)) if code is not None else None
        found = found or ERRORS.get(cls)
        if found is not None:
            return found
    return None


def _members(error: Exception) -> tuple[dict[str, str] | None, dict[str, Any]]:
    """Headers and extension members some problems carry besides the standard ones."""
    if isinstance(error, SignInRefused) and error.retry_after:
        return {"Retry-After": str(error.retry_after)}, {"retry_after": error.retry_after}
    if isinstance(error, StoreUnavailable):
        return {"Retry-After": str(error.retry_after)}, {"retry_after": error.retry_after}
    if isinstance(error, NotReady):
        return {"Retry-After": str(error.retry_after)}, {"checks": dict(error.checks)}
    if isinstance(error, bindings.InvalidBindings):
        return None, {"errors": [{"index": f.index, "detail": f.detail} for f in error.faults]}
    if isinstance(error, InvalidQuestion):
        return None, {"code": error.code}
    if isinstance(error, (InvalidToken, NotSignedIn)):
        return {"WWW-Authenticate": 'Bearer error="invalid_token"'}, {}
    return None, {}


def problem_for(error: Exception) -> Problem:
    """The problem details that answer a domain or service error (`ERRORS`)."""
    found = problem_type(error)
    if found is None:
        raise LookupError(f"{type(error).__name__} has no problem type in ERRORS")
    code = code_of(error)
    slug = found.slug or (code or type(error).__name__).replace("_", "-")
    detail = getattr(error, "detail", None) or str(error)
    headers, extra = _members(error)
    return Problem(found.status, slug, found.title, detail, headers=headers, **extra)


def problem_response(request: Request, problem: Problem) -> JSONResponse:
    return problem_at(request.url.path, problem)


async def send_problem(send: Send, instance: str, problem: Problem) -> None:
    """Answer with problem details from ASGI middleware, before any route runs."""
    await problem_at(instance, problem)({"type": "http"}, _nothing_to_receive, send)


async def _nothing_to_receive() -> Message:
    return {"type": "http.disconnect"}


def problem_at(instance: str, problem: Problem) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPES + problem.slug,
        "title": problem.title,
        "status": problem.status,
        "instance": instance,
    }
    if problem.detail:
        body["detail"] = problem.detail
    body.update(problem.extra)
    return JSONResponse(
        body, status_code=problem.status, headers=problem.headers, media_type=MEDIA_TYPE
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(request, exc)

    async def _refused(request: Request, exc: Exception) -> JSONResponse:
        return problem_response(request, problem_for(exc))

    for error in {key[0] if isinstance(key, tuple) else key for key in ERRORS}:
        app.add_exception_handler(error, _refused)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type")}
            for e in exc.errors()
        ]
        return problem_response(
            request,
            Problem(
                422,
                "invalid-request",
                "The request is not valid",
                f"{len(errors)} field(s) failed validation",
                errors=errors,
            ),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Starlette's ServerErrorMiddleware calls this, then re-raises so the error is logged.
        return problem_response(
            request, Problem(500, "internal-error", "Something went wrong on our side")
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return problem_response(
            request,
            Problem(exc.status_code, slug, str(exc.detail), headers=getattr(exc, "headers", None)),
        )
