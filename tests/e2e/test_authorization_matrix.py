"""Who may call what: every route the app serves, by every kind of caller, on both stores.

The routes come from `app.routes` (with the ones left out of the OpenAPI document: the
documentation pages, the certificate pages, the issuer-path discovery document), not from
the OpenAPI document, and a route without a row in `ROWS` fails the test: a new route
forces a decision about who may call it.

Each principal has something of its own: carrier A (cm) and B (cu) a number each, platform
A (bank) and B (chat) bindings and a case each, the person (the new owner of a recycled
number of cm's) a renewal and a certificate, the previous owner and another person their
own sessions. Path parameters are filled with A's ids (cm's number and file, bank's case
and stream, the person's renewal, cm's log entry), so B's refusal proves isolation.
Allowed means the answer the row names (2xx unless it says otherwise). Denied is exact:
401 without the route's kind of credentials (a person's session is no bearer token, a
client's token no session), 403 with a token lacking the scope or role, 404 (as for an
unknown id) past that check but not the owner, 403 `not-a-party` for a log entry's contents.
There is an operator role (`handover client add --role operator`): no route is its own;
its token reads any number (`numbers:read`) and is refused everything else.

68 routes x 10 principals (680 requests) run in 3.4 s on SQLite and 5.2 s on PostgreSQL
(`pytest --durations=0`, two busy cores, load average 12).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute, Route
from test_cases_api import (  # noqa: F401  (fixtures)
    MINE,
    NUMBER,
    STRANGER,
    World,
    case_ids,
    new_owner,
    previous_owner,
    renewal,
    world,
)

from conftest import Client
from handover.services import access
from handover.services.model import Role
from handover.services.ports import UnitOfWorkFactory

Headers = dict[str, str]

PRINCIPALS = (
    "anonymous",
    "person",
    "other_person",
    "previous_owner",
    "platform_a",
    "platform_b",
    "carrier_a",
    "carrier_b",
    "regulator",
    "operator",
)
PEOPLE = {"person", "other_person", "previous_owner"}
PLATFORMS = {"platform_a", "platform_b"}
CARRIERS = {"carrier_a", "carrier_b"}
EVERYONE = set(PRINCIPALS)
CU_NUMBER = "+8613100131000"
CSV_HEADER = "event_id,number,event,occurred_at,subscriber,to_carrier\n"


def _flat(routes: list[BaseRoute]) -> Iterator[BaseRoute]:
    """The routes the app serves, with included routers expanded (FastAPI ≥ 0.160 keeps an
    included router as one lazy entry of `app.routes`)."""
    for route in routes:
        candidates = getattr(route, "effective_candidates", None)
        if candidates is not None:
            yield from _flat(candidates())
            continue
        yield getattr(route, "original_route", route)


def served(app: FastAPI) -> set[tuple[str, str]]:
    found = set()
    for route in _flat(list(app.routes)):
        assert isinstance(route, (APIRoute, Route)), route
        for method in route.methods or ():
            if method != "HEAD":
                found.add((method, route.path))
    return found


@dataclass(frozen=True)
class Row:
    """One route: who is allowed and what they get; what everyone else gets follows from
    how the route authenticates (`session` or a bearer token) and who gets past that check
    without owning the thing (`scoped`)."""

    allowed: frozenset[str]
    #: The statuses an allowed caller gets (default: any 2xx).
    ok: frozenset[int]
    request: Callable[[Ids], dict[str, Any]] | None
    session: bool
    scoped: frozenset[str]
    not_owner: int

    def denied(self, who: str) -> int:
        """401 without the right kind of credentials; 403 with a token that lacks the scope
        or role; `not_owner` (404, as for an unknown id) past that check but not the owner."""
        if self.session:
            return 401 if who not in PEOPLE else self.not_owner
        if who == "anonymous" or who in PEOPLE:  # a session is no bearer token
            return 401
        return self.not_owner if who in self.scoped else 403


def row(
    allowed: set[str],
    ok: set[int] | None = None,
    request: Callable[[Ids], dict[str, Any]] | None = None,
    *,
    session: bool = False,
    scoped: set[str] | None = None,
    not_owner: int = 404,
) -> Row:
    return Row(
        frozenset(allowed),
        frozenset(ok or ()),
        request,
        session,
        frozenset(scoped or ()),
        not_owner,
    )


@dataclass
class Ids:
    """A's things, filled into paths and bodies."""

    number: str
    ingest: str
    case: str
    renewal: str
    stream: str
    certificate: str
    log_index: int


def _get(path: str, **params: Any) -> Callable[[Ids], dict[str, Any]]:
    def request(ids: Ids) -> dict[str, Any]:
        filled = {key: str(value).format(ids=ids) for key, value in params.items()}
        return {"path": path.format(ids=ids), "params": filled or None}

    return request


def _send(path: str, body: Callable[[Ids], Any], **params: Any) -> Callable[[Ids], dict[str, Any]]:
    return lambda ids: {"path": path.format(ids=ids), "json": body(ids), "params": params or None}


ENC = "%2B" + NUMBER[1:]
PUBLIC = EVERYONE
SESSION = {"person", "other_person", "previous_owner"}
#: Routes for any platform (their own data only: the row's ids are platform A's).
PLATFORM_A = {"platform_a"}
NUMBER_READERS = {"carrier_a", "regulator", "operator"}  # carrier B gets 404: not its number
STREAM = "{ids.stream}"
BINDING = {"number": NUMBER, "account_ref": "b-matrix", "bound_since": "2023-08-01", "tier": "high"}

#: Every route, and its rule. Keys are (method, path template).
ROWS: dict[tuple[str, str], Row] = {
    # -- documentation, discovery, keys, health: public
    ("GET", "/openapi.json"): row(PUBLIC),
    ("GET", "/docs"): row(PUBLIC),
    ("GET", "/docs/oauth2-redirect"): row(PUBLIC),
    ("GET", "/redoc"): row(PUBLIC),
    ("GET", "/healthz"): row(PUBLIC),
    # Ready only while a worker beats: the matrix runs none, so not-ready (503) is right too.
    ("GET", "/readyz"): row(PUBLIC, ok={200, 503}),
    ("GET", "/.well-known/jwks.json"): row(PUBLIC),
    ("GET", "/.well-known/ssf-configuration"): row(PUBLIC),
    # The issuer-path form (SSF §7.2), left out of the OpenAPI document.
    ("GET", "/.well-known/ssf-configuration/{issuer_path:path}"): row(
        PUBLIC, request=_get("/.well-known/ssf-configuration/elsewhere")
    ),
    ("GET", "/ssf/jwks.json"): row(PUBLIC),
    # -- OAuth: the client authenticates with its secret, not a bearer token; none here.
    ("POST", "/oauth/token"): row(
        PUBLIC,
        {401},
        lambda ids: {
            "path": "/oauth/token",
            "content": b"grant_type=client_credentials",
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        },
    ),
    # -- carriers: their own reports, files and numbers
    ("POST", "/v1/carrier/events"): row(
        {"carrier_a", "carrier_b"},
        request=_send("/v1/carrier/events", lambda ids: {"events": []}),
    ),
    ("POST", "/v1/carrier/files"): row(
        {"carrier_a", "carrier_b"},
        request=lambda ids: {
            "path": "/v1/carrier/files",
            "content": CSV_HEADER.encode(),
            "headers": {"Content-Type": "text/csv"},
        },
    ),
    ("GET", "/v1/carrier/files"): row({"carrier_a", "carrier_b"}),
    ("GET", "/v1/carrier/files/{ingest_id}"): row(
        {"carrier_a"}, request=_get("/v1/carrier/files/{ids.ingest}")
    ),
    ("GET", "/v1/carrier/files/{ingest_id}/rejections"): row(
        {"carrier_a"}, request=_get("/v1/carrier/files/{ids.ingest}/rejections")
    ),
    ("PUT", "/v1/carrier/subscriber-links"): row(
        {"carrier_a", "carrier_b"},
        request=_send(
            "/v1/carrier/subscriber-links", lambda ids: {"subscriber": "z1", "same_as": ["z2"]}
        ),
    ),
    ("GET", "/v1/numbers/{number}"): row(NUMBER_READERS, request=_get(f"/v1/numbers/{ENC}")),
    ("GET", "/v1/carrier/numbers/{number}/activation-notice"): row(
        NUMBER_READERS, request=_get(f"/v1/carrier/numbers/{ENC}/activation-notice")
    ),
    # NUMBER is active, so there is no release advice (409) for whoever may ask.
    ("GET", "/v1/carrier/numbers/{number}/release-advice"): row(
        NUMBER_READERS, {409}, _get(f"/v1/carrier/numbers/{ENC}/release-advice")
    ),
    # -- the audit log: proofs public; an entry's contents to its parties (docs/audit-log.md)
    ("GET", "/log/key"): row(PUBLIC),
    ("GET", "/log/checkpoint"): row(PUBLIC),
    ("GET", "/log/proof/inclusion"): row(PUBLIC, request=_get("/log/proof/inclusion", index=0)),
    ("GET", "/log/proof/consistency"): row(
        PUBLIC, request=_get("/log/proof/consistency", first=1, second=1)
    ),
    # Entry 0 is cm's report. A person's session is no bearer token here (401); the public
    # receipt needs none.
    ("GET", "/log/receipts/{index}"): row(
        {"anonymous", "carrier_a", "regulator"}, request=_get("/log/receipts/{ids.log_index}")
    ),
    ("GET", "/log/entries"): row({"regulator"}),
    # -- checks and their receipts: platforms; verifying a receipt is public
    ("GET", "/v1/check"): row(
        PLATFORMS, request=_get("/v1/check", number=NUMBER, since="2023-01-01")
    ),
    ("POST", "/v1/check"): row(
        PLATFORMS,
        request=_send(
            "/v1/check", lambda ids: {"items": [{"number": NUMBER, "since": "2023-01-01"}]}
        ),
    ),
    # CAMARA's 422 SERVICE_NOT_APPLICABLE is an answer (cm's coverage starts today).
    ("POST", "/number-recycling/v0.2/check"): row(
        PLATFORMS,
        {422},
        _send(
            "/number-recycling/v0.2/check",
            lambda ids: {"phoneNumber": NUMBER, "specifiedDate": "2023-01-01"},
        ),
    ),
    # A receipt that is no JWS: any caller gets the verdict (200, not valid).
    ("POST", "/v1/receipts/verify"): row(
        PUBLIC, {200}, _send("/v1/receipts/verify", lambda ids: {"receipt": "x.y.z"})
    ),
    # -- SSF stream management: platforms, their own streams (B: 404 like an unknown one)
    ("POST", "/ssf/streams"): row(
        PLATFORMS,
        request=_send("/ssf/streams", lambda ids: {"delivery": {"method": "urn:ietf:rfc:8936"}}),
    ),
    ("GET", "/ssf/streams"): row(PLATFORM_A, request=_get("/ssf/streams", stream_id=STREAM)),
    ("PATCH", "/ssf/streams"): row(
        PLATFORM_A,
        request=_send("/ssf/streams", lambda ids: {"stream_id": ids.stream, "description": "m"}),
    ),
    ("PUT", "/ssf/streams"): row(
        PLATFORM_A,
        request=_send(
            "/ssf/streams",
            lambda ids: {"stream_id": ids.stream, "delivery": {"method": "urn:ietf:rfc:8936"}},
        ),
    ),
    ("DELETE", "/ssf/streams"): row(PLATFORM_A, request=_get("/ssf/streams", stream_id=STREAM)),
    ("GET", "/ssf/status"): row(PLATFORM_A, request=_get("/ssf/status", stream_id=STREAM)),
    ("POST", "/ssf/status"): row(
        PLATFORM_A,
        request=_send("/ssf/status", lambda ids: {"stream_id": ids.stream, "status": "enabled"}),
    ),
    ("POST", "/ssf/subjects:add"): row(
        PLATFORM_A,
        request=_send(
            "/ssf/subjects:add",
            lambda ids: {
                "stream_id": ids.stream,
                "subject": {"format": "phone_number", "phone_number": NUMBER},
            },
        ),
    ),
    ("POST", "/ssf/subjects:remove"): row(
        PLATFORM_A,
        request=_send(
            "/ssf/subjects:remove",
            lambda ids: {
                "stream_id": ids.stream,
                "subject": {"format": "phone_number", "phone_number": NUMBER},
            },
        ),
    ),
    # Verification is rate-limited per stream: only A gets this far, once.
    ("POST", "/ssf/verify"): row(
        PLATFORM_A, request=_send("/ssf/verify", lambda ids: {"stream_id": ids.stream})
    ),
    ("POST", "/ssf/poll/{stream_id}"): row(
        PLATFORM_A, request=_send("/ssf/poll/{ids.stream}", lambda ids: {"returnImmediately": True})
    ),
    # -- bindings: each platform its own
    ("PUT", "/v1/platform/bindings"): row(
        PLATFORMS, request=_send("/v1/platform/bindings", lambda ids: {"bindings": [BINDING]})
    ),
    ("GET", "/v1/platform/bindings"): row(PLATFORMS),
    ("DELETE", "/v1/platform/bindings"): row(
        PLATFORMS,
        request=_send(
            "/v1/platform/bindings",
            lambda ids: {"bindings": [{"number": NUMBER, "account_ref": "b-matrix"}]},
        ),
    ),
    # -- people: sign-in is public; the rest needs a session and reads the caller's own
    ("POST", "/v1/subscriber/sign-in/code"): row(
        PUBLIC, request=_send("/v1/subscriber/sign-in/code", lambda ids: {"number": CU_NUMBER})
    ),
    # A wrong code: refused for anyone, whatever token comes with it.
    ("POST", "/v1/subscriber/sign-in"): row(
        PUBLIC,
        {401},
        _send("/v1/subscriber/sign-in", lambda ids: {"number": CU_NUMBER, "code": "000000"}),
    ),
    ("POST", "/v1/subscriber/sign-out"): row(PUBLIC),
    ("GET", "/v1/subscriber/me"): row(SESSION),
    ("PUT", "/v1/subscriber/contact"): row(
        SESSION,
        request=_send(
            "/v1/subscriber/contact", lambda ids: {"channel": "email", "address": "m@example.com"}
        ),
    ),
    ("GET", "/v1/subscriber/contact"): row(SESSION),
    ("DELETE", "/v1/subscriber/contact"): row(SESSION),
    ("POST", "/v1/subscriber/certificates"): row(SESSION),
    ("POST", "/v1/certificates/verify"): row(
        PUBLIC, request=_send("/v1/certificates/verify", lambda ids: {"token": ids.certificate})
    ),
    ("GET", "/certificates/verify"): row(
        PUBLIC,
        request=lambda ids: {"path": "/certificates/verify", "params": {"token": ids.certificate}},
    ),
    ("GET", "/certificates/print"): row(
        PUBLIC,
        request=lambda ids: {"path": "/certificates/print", "params": {"token": ids.certificate}},
    ),
    # -- renewal cases: each person's own (every number here was someone's before: the
    # previous owner of NUMBER holds MINE since 2020, its earlier holder's); the checklist of
    # accounts on the number one holds, to clear before giving it up
    ("GET", "/v1/subscriber/renewal"): row(SESSION),
    ("POST", "/v1/subscriber/renewals"): row(
        SESSION,
        request=_send("/v1/subscriber/renewals", lambda ids: {"platforms": ["bank"]}),
    ),
    ("GET", "/v1/subscriber/renewals/{renewal_id}"): row(
        {"person"}, request=_get("/v1/subscriber/renewals/{ids.renewal}")
    ),
    ("GET", "/v1/subscriber/cases"): row(SESSION),
    ("GET", "/v1/subscriber/cases/{case_id}"): row(
        {"person"}, request=_get("/v1/subscriber/cases/{ids.case}")
    ),
    ("POST", "/v1/subscriber/cases/{case_id}/complaints"): row(
        {"person"},
        {201},
        _send(
            "/v1/subscriber/cases/{ids.case}/complaints",
            lambda ids: {"category": "other", "text": "m"},
        ),
    ),
    ("GET", "/v1/subscriber/checklist"): row(SESSION),
    ("POST", "/v1/subscriber/checklist/cases"): row(
        {"previous_owner"},
        request=_send(
            "/v1/subscriber/checklist/cases",
            lambda ids: {
                "number": MINE,
                "platform": "chat",
                "account_ref": "c-mine",
                "kind": "unbind",
            },
        ),
    ),
    ("GET", "/v1/platform/cases"): row(PLATFORMS),
    ("GET", "/v1/platform/cases/{case_id}"): row(
        PLATFORM_A, request=_get("/v1/platform/cases/{ids.case}")
    ),
    ("POST", "/v1/platform/cases/{case_id}/outcome"): row(
        PLATFORM_A,
        request=_send(
            "/v1/platform/cases/{ids.case}/outcome", lambda ids: {"outcome": "no_account"}
        ),
    ),
    ("GET", "/v1/regulator/cases/overdue"): row({"regulator"}),
    ("GET", "/v1/regulator/cases/{case_id}"): row(
        {"regulator"}, request=_get("/v1/regulator/cases/{ids.case}")
    ),
    ("GET", "/v1/regulator/complaints"): row({"regulator"}),
    ("GET", "/v1/regulator/range-refusals"): row({"regulator"}),
}
#: Routes that take a person's session: a bearer token of a client is no session (401).
SESSION_ROUTES = {
    key
    for key in ROWS
    if key[1].startswith("/v1/subscriber/") and not key[1].startswith("/v1/subscriber/sign-")
}
#: Who gets past a route's scope check without owning A's thing (404, as for an unknown id;
#: 403 `not-a-party` for a receipt's contents).
SCOPED: dict[tuple[str, str], tuple[set[str], int]] = {
    ("GET", "/v1/carrier/files/{ingest_id}"): (CARRIERS, 404),
    ("GET", "/v1/carrier/files/{ingest_id}/rejections"): (CARRIERS, 404),
    ("GET", "/v1/numbers/{number}"): ({"carrier_b"}, 404),
    ("GET", "/v1/carrier/numbers/{number}/activation-notice"): ({"carrier_b"}, 404),
    ("GET", "/v1/carrier/numbers/{number}/release-advice"): ({"carrier_b"}, 404),
    ("GET", "/log/receipts/{index}"): (EVERYONE - PEOPLE, 403),
    ("GET", "/v1/platform/cases/{case_id}"): (PLATFORMS, 404),
    ("POST", "/v1/platform/cases/{case_id}/outcome"): (PLATFORMS, 404),
    **{
        (method, path): (PLATFORMS, 404)
        for method, path in ROWS
        if path.startswith(
            ("/ssf/streams", "/ssf/status", "/ssf/subjects", "/ssf/verify", "/ssf/poll")
        )
        and (method, path) != ("POST", "/ssf/streams")
    },
}
for _key in SESSION_ROUTES:
    ROWS[_key] = replace(ROWS[_key], session=True)
for _key, (_scoped, _status) in SCOPED.items():
    ROWS[_key] = replace(ROWS[_key], scoped=frozenset(_scoped), not_owner=_status)

#: Run first: they make what other rows read (a contact for GET /v1/subscriber/contact).
FIRST = [("PUT", "/v1/subscriber/contact")]
#: Run last, in this order: they change or end what other rows use.
LAST = [
    ("DELETE", "/ssf/streams"),
    ("DELETE", "/v1/platform/bindings"),
    ("DELETE", "/v1/subscriber/contact"),
    ("POST", "/v1/subscriber/sign-out"),
]


@dataclass
class Matrix:
    http: TestClient
    headers: dict[str, Headers]
    ids: Ids


@pytest.fixture
def matrix(
    world: World,  # noqa: F811
    new_owner: Headers,  # noqa: F811
    previous_owner: Headers,  # noqa: F811
    renewal: dict[str, Any],  # noqa: F811
    app: FastAPI,
    uow_factory: UnitOfWorkFactory,
    cu: Client,
    as_client: Callable[..., Headers],
) -> Matrix:
    http = world.http
    cu_headers = as_client(cu)
    event = {"event_id": "c1", "number": CU_NUMBER, "event": "activated"}
    event |= {"occurred_at": "2021-01-01", "subscriber": "u1"}
    answer = http.post("/v1/carrier/events", json={"events": [event]}, headers=cu_headers)
    assert answer.json()["accepted"] == 1, answer.text
    operator = access.register_client(uow_factory, Role.OPERATOR, "The operator")
    csv = CSV_HEADER + "f1,+8613500135000,activated,2021-01-01,f,\n"
    ingest = http.post(
        "/v1/carrier/files",
        content=csv.encode(),
        headers={**world.carrier, "Content-Type": "text/csv"},
    )
    assert ingest.status_code == 201, ingest.text
    stream = http.post(
        "/ssf/streams",
        json={"delivery": {"method": "urn:ietf:rfc:8936"}},
        headers=world.platform["bank"],
    )
    assert stream.status_code == 201, stream.text
    certificate = http.post("/v1/subscriber/certificates", headers=new_owner)
    assert certificate.status_code == 201, certificate.text
    headers = {
        "anonymous": {},
        "person": new_owner,
        "other_person": world.sign_in(STRANGER),
        "previous_owner": previous_owner,
        "platform_a": world.platform["bank"],
        "platform_b": world.platform["chat"],
        "carrier_a": world.carrier,
        "carrier_b": cu_headers,
        "regulator": world.regulator,
        "operator": as_client(Client(operator.client_id, operator.client_secret)),
    }
    ids = Ids(
        number=NUMBER,
        ingest=ingest.json()["id"],
        case=case_ids(renewal)["bank"],
        renewal=renewal["id"],
        stream=stream.json()["stream_id"],
        certificate=certificate.json()["token"],
        log_index=0,
    )
    return Matrix(http, headers, ids)


def _order(routes: set[tuple[str, str]]) -> list[tuple[str, str]]:
    first = [r for r in FIRST if r in routes]
    last = [r for r in LAST if r in routes]
    return first + sorted(routes - set(FIRST) - set(LAST)) + last


@pytest.mark.one_store  # reads the app's routes, asks nothing
def test_every_route_has_a_row(app: FastAPI) -> None:
    routes = served(app)
    assert not routes - set(ROWS), (
        f"routes without a row (decide who may call them): {sorted(routes - set(ROWS))}"
    )
    assert not set(ROWS) - routes, (
        f"rows of routes the app no longer serves: {sorted(set(ROWS) - routes)}"
    )


@pytest.mark.slow
def test_the_matrix(matrix: Matrix, app: FastAPI) -> None:
    """Each route is asked by every principal, the denied ones first (so a destructive
    call by the allowed one comes after B's attempt on A's thing)."""
    routes = _order(served(app))
    started = time.perf_counter()
    wrong = []
    for method, path in routes:
        rule = ROWS[(method, path)]
        denied_first = sorted(PRINCIPALS, key=lambda who: who in rule.allowed)
        for who in denied_first:
            spec: dict[str, Any] = {"path": path}
            if rule.request is not None:
                spec = rule.request(matrix.ids)
            answer = matrix.http.request(
                method,
                spec["path"],
                params=spec.get("params"),
                json=spec.get("json"),
                content=spec.get("content"),
                headers={**matrix.headers[who], **spec.get("headers", {})},
            )
            matrix.http.cookies.clear()  # only the principal's own credentials count
            status = answer.status_code
            if who in rule.allowed:
                good = status in rule.ok if rule.ok else 200 <= status < 300
            else:
                good = status == rule.denied(who)
            if who in rule.allowed and rule.ok:
                print("OKSET", method, path, who, status)
            if not good:
                wrong.append(f"{method} {path} as {who}: {status} {answer.text[:160]}")
    elapsed = time.perf_counter() - started
    print(f"{len(routes)} routes x {len(PRINCIPALS)} principals in {elapsed:.1f} s")
    assert not wrong, "\n".join(wrong)
