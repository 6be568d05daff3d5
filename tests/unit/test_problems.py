"""The one table from domain and service errors to problem details (`api/problems.py`)."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.testclient import TestClient

import handover
import handover.domain
import handover.services
from handover.api import problems
from handover.api.problems import ERRORS, PROBLEM_TYPES, problem_for, problem_type
from handover.domain.bindings import InvalidBinding
from handover.domain.cases import CaseError, CaseRule
from handover.domain.freeze import NotFrozen
from handover.domain.numbers import parse_number
from handover.domain.rejections import Reason, Rejected
from handover.domain.sign_in import SignInRefused, TooManyCodes
from handover.domain.ssf.streams import Refusal, StreamError
from handover.services import bindings
from handover.services.access import AccessDenied, InvalidClient, InvalidToken
from handover.services.cases import CaseNotFound
from handover.services.check import InvalidQuestion
from handover.services.checklist import NotYourNumber
from handover.services.health import NotReady
from handover.services.ports import StoreUnavailable

SOURCE = Path(handover.__file__).parent

#: Errors of the domain and the services that never reach a route as they are, and why.
NOT_ANSWERED = {
    "handover.domain.bindings.InvalidBinding": "one fault; collected into InvalidBindings",
    "handover.domain.certificates.Unverifiable": "verification answers it as a status",
    "handover.domain.check.FutureDate": "services.check turns it into InvalidQuestion",
    "handover.services.access.AlreadyExists": "registration happens on the command line",
    "handover.domain.ranges.RangeError": "ranges are granted on the command line",
    "handover.services.audit.LogInconsistent": "an operator's alarm: a 500, never signed over",
    "handover.services.ports.ConcurrentUpdate": "the services retry it",
    "handover.services.ports.SendFailed": "message delivery records it",
    "handover.services.receipts.InvalidReceipt": "receipt verification answers it as invalid",
}


def _error_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for package in (handover.domain, handover.services):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            module = importlib.import_module(info.name)
            for name, value in vars(module).items():
                if (
                    inspect.isclass(value)
                    and issubclass(value, BaseException)
                    and value.__module__ == module.__name__
                ):
                    found[f"{module.__name__}.{name}"] = value
    return found


def _mapped_classes() -> set[type[Exception]]:
    return {key[0] if isinstance(key, tuple) else key for key in ERRORS}


def test_every_domain_and_service_error_has_a_problem_type_or_a_reason_not_to() -> None:
    mapped = _mapped_classes()
    errors = _error_classes()
    unmapped = {name for name, cls in errors.items() if not set(cls.__mro__) & mapped}
    assert unmapped == set(NOT_ANSWERED)
    assert len(errors) > 30


def test_every_stream_refusal_has_the_status_ssf_gives_it() -> None:
    statuses = {code: problem_for(StreamError(code, "why")).status for code in Refusal}
    assert statuses == {
        Refusal.INVALID_REQUEST: 400,
        Refusal.FORBIDDEN: 403,
        Refusal.NOT_FOUND: 404,
        Refusal.TOO_MANY_STREAMS: 409,
        Refusal.TOO_SOON: 429,
    }
    assert {problem_for(StreamError(code, "x")).slug for code in Refusal} == {"ssf"}


def test_every_case_rule_has_its_own_entry_named_after_it() -> None:
    for rule in CaseRule:
        assert (CaseError, rule) in ERRORS, rule
        problem = problem_for(CaseError(rule, "why"))
        assert (problem.slug, problem.detail) == (rule.value, "why")
        assert problem.status in (404, 409, 422)


def test_a_case_error_with_an_unknown_rule_cannot_be_raised() -> None:
    with pytest.raises(ValueError):
        CaseError("no-such-rule", "a typo in a rule's name fails where it is raised")


def _raised_codes(name: str) -> set[str]:
    """The string codes `name(...)` is raised with anywhere in the source."""
    codes: set[str] = set()
    for path in SOURCE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == name
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                codes.add(node.args[0].value)
    return codes


def test_every_check_question_code_has_its_own_title() -> None:
    codes = _raised_codes("InvalidQuestion")
    assert codes >= {"invalid_number", "invalid_date", "future_date"}
    for code in codes:
        assert (InvalidQuestion, code) in ERRORS, code
        problem = problem_for(InvalidQuestion(code, "why"))
        assert (problem.status, problem.slug) == (422, code.replace("_", "-"))
        assert problem.extra == {"code": code}


def test_entries_named_by_the_error_s_code_belong_to_errors_with_a_code() -> None:
    for key, found in ERRORS.items():
        if found.slug is None:
            cls = key[0] if isinstance(key, tuple) else key
            assert cls in (CaseError, InvalidQuestion, Rejected), key


def test_the_most_specific_entry_wins() -> None:
    assert problem_for(NotYourNumber("+8613800138000")).title == "Not a number you hold"
    assert problem_for(CaseNotFound("c1 is not one of yours")).title == "No such case"
    assert problem_for(NotFrozen("the number is not frozen (active)")).slug == "not-frozen"
    with pytest.raises(Rejected) as invalid:
        parse_number("12")
    problem = problem_for(invalid.value)
    assert (problem.status, problem.slug) == (422, "invalid-number")
    assert problem.detail == invalid.value.detail
    other = problem_for(Rejected(Reason.OUT_OF_ORDER, "late"))
    assert (other.status, other.slug) == (422, "out-of-order")
    assert problem_for(InvalidToken("expired")).status == 401
    assert problem_for(InvalidClient("unknown client")).status == 403
    assert problem_for(AccessDenied("the numbers:read scope is needed")).status == 403


def test_problems_carry_their_extension_members_and_headers() -> None:
    locked = problem_for(TooManyCodes("too many", retry_after=900))
    assert (locked.status, locked.headers, locked.extra) == (
        429,
        {"Retry-After": "900"},
        {"retry_after": 900},
    )
    assert problem_for(SignInRefused("no")).headers is None
    faults = bindings.InvalidBindings([InvalidBinding(2, "tier: high, medium or low")])
    assert problem_for(faults).extra == {
        "errors": [{"index": 2, "detail": "tier: high, medium or low"}]
    }
    token = problem_for(InvalidToken("expired"))
    assert token.headers == {"WWW-Authenticate": 'Bearer error="invalid_token"'}


def test_the_store_away_is_503_with_retry_after_and_so_is_not_ready() -> None:
    away = problem_for(StoreUnavailable("the store is not answering: connection refused"))
    assert (away.status, away.slug, away.headers, away.extra) == (
        503,
        "store-unavailable",
        {"Retry-After": "5"},
        {"retry_after": 5},
    )
    stale = problem_for(NotReady("no worker", {"store": "ok", "worker": "stale"}))
    assert (stale.status, stale.slug, stale.headers) == (503, "not-ready", {"Retry-After": "5"})
    assert stale.extra == {"checks": {"store": "ok", "worker": "stale"}}


def test_an_error_outside_the_table_has_no_problem_type() -> None:
    assert problem_type(ValueError("anything")) is None
    with pytest.raises(LookupError):
        problem_for(KeyError("x"))


def test_the_app_answers_errors_raised_in_routes_and_threads_as_problem_details() -> None:
    app = FastAPI()
    problems.install(app)

    def refuse() -> None:
        raise CaseError(CaseRule.CASE_CLOSED, "the case is answered")

    @app.get("/sync")
    def sync_route() -> None:
        raise StreamError(Refusal.TOO_SOON, "verification may be requested once per 10 s")

    @app.get("/thread")
    async def thread_route() -> None:
        await run_in_threadpool(refuse)

    @app.get("/unmapped")
    def unmapped() -> None:
        raise ValueError("a bug")

    with TestClient(app, raise_server_exceptions=False) as http:
        soon = http.get("/sync")
        closed = http.get("/thread")
        bug = http.get("/unmapped")
    assert soon.status_code == 429
    assert soon.headers["content-type"] == "application/problem+json"
    assert soon.json() == {
        "type": PROBLEM_TYPES + "ssf",
        "title": "Too many requests",
        "status": 429,
        "instance": "/sync",
        "detail": "verification may be requested once per 10 s",
    }
    assert closed.status_code == 409
    assert closed.json()["type"] == PROBLEM_TYPES + "case-closed"
    assert closed.json()["title"] == "The case cannot do that"
    assert bug.status_code == 500
    assert bug.json()["type"] == PROBLEM_TYPES + "internal-error"
