"""Schemathesis over the OpenAPI document, in-process against the ASGI app, on both stores.

For every operation and every caller (a carrier, a platform, the regulator, a signed-in
subscriber, and nobody), Schemathesis generates valid and invalid requests from the
document; every answer must be

- no 5xx;
- for an error, RFC 9457 problem details: `application/problem+json`, with `type`, `title`
  and `status` (the response's own), and a status the operation documents;
- except where a specification fixes the error body: OAuth 2.0 token errors (RFC 6749 §5.2)
  at /oauth/token, and CAMARA's `{status, code, message}` on /number-recycling/... (its 422
  from validating the request is a problem, as everywhere). SSF stream management answers
  problem details too (`StreamError` is in `ERRORS`, with SSF 1.0 §8's statuses); the RFC
  8935 `{err, description}` body is the receiver's answer to a push, not this API's.

Budgets: `HANDOVER_FUZZ_EXAMPLES` examples per operation and caller (default 5, the CI
budget, derandomized so a run is repeatable); `HANDOVER_FUZZ_EXAMPLES=100` is the long form.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from typing import Any

import hypothesis
import pytest
import schemathesis
import schemathesis.specs.openapi.schemas  # imported early: see EXAMPLES
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import strategies as st
from schemathesis.generation import GenerationMode

from conftest import Client
from handover.config import Settings
from handover.domain.messages import Channel
from handover.services import access
from handover.services.ports import UnitOfWorkFactory

# schemathesis.specs.openapi.schemas is imported above, at collection, not lazily inside
# `from_asgi`: pytest rewrites the asserts of schemathesis's modules (it is a pytest
# plugin), and CPython 3.11.7's compiler can fail with "AST constructor recursion depth
# mismatch" when that happens deep in a test's call stack.
EXAMPLES = int(os.environ.get("HANDOVER_FUZZ_EXAMPLES", "5"))
ROLES = ["carrier", "platform", "regulator", "subscriber", "anonymous"]
NUMBER = "+8613800138000"
PROBLEM = "application/problem+json"
#: Paths whose error bodies a specification fixes, and how each one looks.
OAUTH = "/oauth/token"
CAMARA = re.compile(r"^/number-recycling/")


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx: Any, value: Any) -> bytes:
    """POST /v1/check's NDJSON body: one JSON value a line."""
    items = value if isinstance(value, list) else [value]
    return "".join(json.dumps(item) + "\n" for item in items).encode()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # An empty RFC 8936 poll answers at once instead of waiting for events.
    return settings.model_copy(update={"poll_wait_seconds": 0})


def subscriber_session(http: TestClient, app: FastAPI, carrier: dict[str, str]) -> str:
    """A session for the subscriber of NUMBER, signed in with the code sent by SMS."""
    item = {"event_id": "fuzz-1", "number": NUMBER, "event": "activated",
            "occurred_at": "2024-02-01", "subscriber": "S1"}  # fmt: skip
    assert http.post("/v1/carrier/events", json={"events": [item]}, headers=carrier).is_success
    assert http.post("/v1/subscriber/sign-in/code", json={"number": NUMBER}).status_code == 202
    text = app.state.senders[Channel.SMS].last(NUMBER)
    found = re.search(r"\b(\d{6})\b", text or "")
    assert found is not None, text
    response = http.post("/v1/subscriber/sign-in", json={"number": NUMBER, "code": found[1]})
    assert response.status_code == 200, response.text
    http.cookies.clear()
    session: str = response.json()["session"]
    return session


@pytest.fixture
def callers(
    http: TestClient,
    app: FastAPI,
    cm: Client,
    regulator: Client,
    uow_factory: UnitOfWorkFactory,
    token: Callable[..., str],
) -> dict[str, dict[str, str]]:
    """Authorization headers for each role."""
    _, platform = access.register_platform(uow_factory, "acme", "Acme", "payment", "high")
    carrier = {"Authorization": f"Bearer {token(cm)}"}
    return {
        "carrier": carrier,
        "platform": {
            "Authorization": f"Bearer {token(Client(platform.client_id, platform.client_secret))}"
        },
        "regulator": {"Authorization": f"Bearer {token(regulator)}"},
        "subscriber": {"Authorization": f"Bearer {subscriber_session(http, app, carrier)}"},
        "anonymous": {},
    }


def documented(operation: Any, status: int) -> bool:
    responses = operation.definition.raw.get("responses", {})
    return str(status) in responses or f"{status // 100}XX" in responses or "default" in responses


def faults(operation: Any, response: Any) -> list[str]:
    """What is wrong with one answer (nothing: an empty list)."""
    status, path = response.status_code, operation.path
    # Readiness answers 503 by design when no worker beats (none runs here): a problem like
    # any other. Anywhere else a 5xx is a fault.
    if status >= 500 and not (path == "/readyz" and status == 503):
        return [f"{status}: {response.text[:300]}"]
    if status < 400:
        return []
    media = (response.headers.get("content-type") or [""])[0].split(";")[0]
    found = [] if documented(operation, status) else [f"{status} is not documented"]
    body = _json(response)
    if path == OAUTH:  # RFC 6749 §5.2: {"error", "error_description"} as application/json
        if status in (400, 401) and (not isinstance(body, dict) or "error" not in body):
            found.append(f"{status}: not an OAuth error body: {response.text[:200]}")
        return found
    if CAMARA.match(path) and status != 422:  # CAMARA's {status, code, message}
        if not isinstance(body, dict) or {"status", "code", "message"} - set(body):
            found.append(f"{status}: not a CAMARA error body: {response.text[:200]}")
        return found
    if media != PROBLEM:
        found.append(f"{status} as {media or 'no media type'}: {response.text[:200]}")
    elif not isinstance(body, dict) or {"type", "title", "status"} - set(body):
        found.append(f"{status}: problem details lack members: {response.text[:200]}")
    elif body["status"] != status:
        found.append(f"{status}: the problem says {body['status']}")
    return found


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def fuzz(operation: Any, headers: dict[str, str], sent: list[int]) -> list[str]:
    """Run EXAMPLES generated requests against one operation (counted in `sent`); the
    distinct faults found."""
    seen: dict[str, str] = {}
    strategy = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )

    @hypothesis.settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(case=strategy)
    def run(case: Any) -> None:
        sent[0] += 1
        try:
            response = case.call(headers=headers)
        except Exception as exc:  # the in-process app raises what would be a 500
            found = f"500 ({type(exc).__name__}: {str(exc)[:200]})"
            seen.setdefault("500", f"{found} <- {case.as_curl_command()[:300]}")
            return
        for fault in faults(operation, response):
            key = fault.split(":")[0]
            seen.setdefault(key, f"{fault} <- {case.as_curl_command()[:300]}")

    run()
    return [f"{operation.method.upper()} {operation.path}: {v}" for v in seen.values()]


@pytest.mark.slow
@pytest.mark.parametrize("role", ROLES)
def test_every_answer_is_a_documented_problem_or_a_success(
    app: FastAPI, callers: dict[str, dict[str, str]], role: str
) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    found: list[str] = []
    operations, sent, started = 0, [0], time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        found.extend(fuzz(operation, callers[role], sent))
    took = time.monotonic() - started
    print(f"\n{role}: {sent[0]} requests to {operations} operations in {took:.1f} s")
    assert operations > 50
    if found:
        pytest.fail("\n".join(found), pytrace=False)
