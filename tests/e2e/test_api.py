"""The HTTP API end to end, in-process: OAuth tokens, carrier reports, number history.

Credentials are real (registered through `services.access`), tokens come from
POST /oauth/token, and every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc.jwk import OKPKey
from ssf_servers import handover_serve

import granted
from handover.adapters.ssf.signing import generate_keys
from handover.adapters.storage import migrate
from handover.adapters.storage.engine import make_engine
from handover.adapters.storage.uow import SqlUnitOfWork
from handover.adapters.tokens import JwtTokenIssuer
from handover.api.app import create_app
from handover.config import DEVELOPMENT_SECRET, Settings
from handover.services import access, ranges
from handover.services.access import Principal
from handover.services.model import ROLE_SCOPES, Role
from handover.services.ports import UnitOfWorkFactory
from handover.tlog.verify import generate_key

Headers = Callable[..., dict[str, str]]
NUMBER = "+8613812345678"
SECRET_KEY = "e2e-test-secret-key-that-is-long-enough-0123456789"  # as in conftest
#: A registered client (`conftest.Client`): client_id, client_secret, carrier_id.
Client = Any
HEADER = "event_id,number,event,occurred_at,subscriber,to_carrier\n"


def assert_problem(
    response: httpx.Response, status: int, slug: str | None = None
) -> dict[str, Any]:
    """An RFC 9457 problem: the media type and the members every problem carries."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert body["type"].startswith("https://")
    if slug is not None:
        assert body["type"].endswith("/" + slug), body
    return body


def event(
    event_id: str,
    kind: str = "activated",
    occurred_at: str = "2024-01-01",
    number: str = NUMBER,
    subscriber: str | None = "s1",
    to_carrier: str | None = None,
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "number": number,
        "event": kind,
        "occurred_at": occurred_at,
        "subscriber": subscriber,
        "to_carrier": to_carrier,
    }


def post_events(http: TestClient, headers: dict[str, str], *events: dict[str, Any]) -> Any:
    response = http.post("/v1/carrier/events", json={"events": list(events)}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def upload(http: TestClient, headers: dict[str, str], body: str | bytes, **params: str) -> Any:
    return http.post(
        "/v1/carrier/files",
        content=body.encode() if isinstance(body, str) else body,
        params=params,
        headers={**headers, "Content-Type": "text/csv"},
    )


# -- the token endpoint ------------------------------------------------------------------


def test_token_with_http_basic(http: TestClient, cm: Client) -> None:
    response = http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(cm.client_id, cm.client_secret),
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["scope"] == "carrier:report numbers:read"
    assert body["access_token"].count(".") == 2


def test_token_with_form_credentials(http: TestClient, cm: Client) -> None:
    response = http.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": cm.client_id,
            "client_secret": cm.client_secret,
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.json()["scope"] == "carrier:report numbers:read"


@pytest.mark.parametrize("how", ["basic", "form"])
def test_a_wrong_secret_is_an_invalid_client(http: TestClient, cm: Client, how: str) -> None:
    form = {"grant_type": "client_credentials"}
    if how == "basic":
        response = http.post("/oauth/token", data=form, auth=(cm.client_id, "wrong"))
    else:
        form |= {"client_id": cm.client_id, "client_secret": "wrong"}
        response = http.post("/oauth/token", data=form)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["www-authenticate"].startswith("Basic")


@pytest.mark.parametrize(
    "credentials",
    [None, ("nobody", "secret"), ("", ""), ("carrier-0000000000000000", "")],
    ids=["none", "unknown-client", "empty", "empty-secret"],
)
def test_missing_or_unknown_credentials(
    http: TestClient, cm: Client, credentials: tuple[str, str] | None
) -> None:
    response = http.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=credentials
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


@pytest.mark.one_store
def test_a_garbled_basic_header_is_an_invalid_client(http: TestClient, cm: Client) -> None:
    response = http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic !!!not-base64"},
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


@pytest.mark.one_store
def test_an_unsupported_grant_is_400(http: TestClient, cm: Client) -> None:
    response = http.post(
        "/oauth/token", data={"grant_type": "password"}, auth=(cm.client_id, cm.client_secret)
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.one_store
def test_a_missing_grant_type_is_invalid_request(http: TestClient, cm: Client) -> None:
    """RFC 6749 §5.2: a missing parameter is `invalid_request`, an OAuth error (400)."""
    response = http.post("/oauth/token", data={}, auth=(cm.client_id, cm.client_secret))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert response.headers["cache-control"] == "no-store"


def test_scopes_can_be_narrowed(http: TestClient, cm: Client, token: Callable[..., str]) -> None:
    response = http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "numbers:read"},
        auth=(cm.client_id, cm.client_secret),
    )
    assert response.status_code == 200
    assert response.json()["scope"] == "numbers:read"
    narrowed = {"Authorization": f"Bearer {response.json()['access_token']}"}
    denied = http.post("/v1/carrier/events", json={"events": []}, headers=narrowed)
    assert_problem(denied, 403, "insufficient-scope")


@pytest.mark.parametrize("scope", ["operator", "numbers:read regulator:read", "nonsense"])
def test_a_scope_beyond_the_clients_is_invalid_scope(
    http: TestClient, cm: Client, scope: str
) -> None:
    response = http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": scope},
        auth=(cm.client_id, cm.client_secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"
    assert response.headers["cache-control"] == "no-store"


def test_the_token_lifetime_follows_the_settings(store_url: str, cm: Client) -> None:
    app = create_app(
        Settings(
            database_url=store_url, environment="test", secret_key=SECRET_KEY, token_ttl_seconds=60
        )
    )
    try:
        with TestClient(app) as http:
            response = http.post(
                "/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(cm.client_id, cm.client_secret),
            )
        assert response.json()["expires_in"] == 60
    finally:
        app.state.engine.dispose()


# -- bearer tokens -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/carrier/events"),
        ("POST", "/v1/carrier/files"),
        ("GET", "/v1/carrier/files"),
        ("GET", "/v1/carrier/files/x"),
        ("GET", "/v1/carrier/files/x/rejections"),
        ("GET", f"/v1/numbers/{NUMBER}"),
    ],
)
@pytest.mark.one_store
def test_every_resource_needs_a_bearer_token(http: TestClient, method: str, path: str) -> None:
    response = http.request(method, path)
    body = assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert body["instance"] == path


@pytest.mark.one_store
def test_basic_credentials_are_no_bearer_token(http: TestClient, cm: Client) -> None:
    response = http.get("/v1/carrier/files", auth=(cm.client_id, cm.client_secret))
    assert_problem(response, 401, "unauthenticated")


@pytest.mark.one_store
def test_a_regulator_token_cannot_report(
    http: TestClient, regulator: Client, as_client: Headers
) -> None:
    response = http.post(
        "/v1/carrier/events", json={"events": [event("e1")]}, headers=as_client(regulator)
    )
    body = assert_problem(response, 403, "insufficient-scope")
    assert "carrier:report" in body["detail"]
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


def _issue(principal: Principal, secret: str = SECRET_KEY, ttl: int = 900) -> str:
    token, _ = JwtTokenIssuer(secret, "http://127.0.0.1:8000", ttl).issue(principal)
    return token


def _cm_principal() -> Principal:
    return Principal("carrier-x", Role.CARRIER, ROLE_SCOPES[Role.CARRIER], "cm")


@pytest.mark.one_store
def test_an_expired_token_is_401(
    http: TestClient, cm: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued_at = time.time() - 3600
    monkeypatch.setattr("handover.adapters.tokens.time.time", lambda: issued_at)
    expired = _issue(_cm_principal(), ttl=900)
    monkeypatch.undo()
    response = http.get("/v1/carrier/files", headers={"Authorization": f"Bearer {expired}"})
    assert_problem(response, 401, "unauthenticated")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _tampered_payload(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["carrier"] = "cu"
    return ".".join([header, _b64(claims), signature])


def _unsigned(token: str) -> str:
    _, payload, _ = token.split(".")
    return ".".join([_b64({"alg": "none", "typ": "at+jwt"}), payload, ""])


@pytest.mark.parametrize(
    "forge",
    [
        _tampered_payload,
        _unsigned,
        lambda token: token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"),
        lambda token: _issue(_cm_principal(), secret="another-key-of-at-least-32-characters!!"),
        lambda token: "not-a-jwt",
    ],
    ids=["payload", "alg-none", "signature", "other-key", "garbage"],
)
def test_a_tampered_token_is_401(
    http: TestClient, cm: Client, token: Callable[..., str], forge: Callable[[str], str]
) -> None:
    genuine = token(cm)
    assert http.get("/v1/carrier/files", headers={"Authorization": f"Bearer {genuine}"}).is_success
    forged = forge(genuine)
    response = http.get("/v1/carrier/files", headers={"Authorization": f"Bearer {forged}"})
    assert_problem(response, 401, "unauthenticated")


@pytest.mark.one_store
def test_a_token_for_another_issuer_is_401(http: TestClient, cm: Client) -> None:
    other, _ = JwtTokenIssuer(SECRET_KEY, "https://elsewhere.example", 900).issue(_cm_principal())
    response = http.get("/v1/carrier/files", headers={"Authorization": f"Bearer {other}"})
    assert_problem(response, 401, "unauthenticated")


def _bearer(app: FastAPI, principal: Principal) -> dict[str, str]:
    token, _ = app.state.tokens.issue(principal)
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("POST", "/v1/carrier/events", {"json": {"events": []}}),
        ("POST", "/v1/carrier/events", {"json": {"events": [], "region": "CN"}}),
        ("POST", "/v1/carrier/files", {"content": HEADER.encode()}),
        ("POST", "/v1/carrier/files?region=CN", {"content": HEADER.encode()}),
    ],
)
def test_a_token_of_a_carrier_that_no_longer_exists_is_403(
    http: TestClient, app: FastAPI, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    """A valid token can outlive its carrier (e.g. a store reset under the same key)."""
    ghost = Principal("carrier-ghost", Role.CARRIER, ROLE_SCOPES[Role.CARRIER], "ghost")
    response = http.request(method, path, headers=_bearer(app, ghost), **kwargs)
    assert_problem(response, 403, "unknown-carrier")


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/v1/carrier/events"), ("GET", "/v1/carrier/files")]
)
def test_only_a_carriers_client_reports(
    http: TestClient, app: FastAPI, method: str, path: str
) -> None:
    operator = Principal("operator-x", Role.OPERATOR, ROLE_SCOPES[Role.OPERATOR])
    response = http.request(method, path, json={"events": []}, headers=_bearer(app, operator))
    assert_problem(response, 403, "not-a-carrier")


@pytest.mark.one_store
def test_an_unexpected_error_is_a_500_problem(app: FastAPI) -> None:
    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("kaput")

    with TestClient(app, raise_server_exceptions=False) as http:
        body = assert_problem(http.get("/boom"), 500, "internal-error")
    assert "kaput" not in json.dumps(body)


# -- POST /v1/carrier/events -------------------------------------------------------------


def test_each_event_gets_a_result(http: TestClient, cm: Client, as_client: Headers) -> None:
    body = post_events(
        http,
        as_client(cm),
        event("e1"),
        event("e2", "cancelled", "2024-06-01", subscriber=None),
        event("e3", "teleported"),
        event("e4", number="+86123"),
        event("e5", "suspended", "2024-07-01", subscriber=None),
    )
    assert body["accepted"] == 2
    assert body["duplicates"] == 0
    assert body["rejected"] == {"illegal_transition": 1, "invalid_number": 1, "unknown_event": 1}
    assert [(r["index"], r["event_id"], r["status"], r["reason"]) for r in body["results"]] == [
        (0, "e1", "accepted", None),
        (1, "e2", "accepted", None),
        (2, "e3", "rejected", "unknown_event"),
        (3, "e4", "rejected", "invalid_number"),
        (4, "e5", "rejected", "illegal_transition"),
    ]
    assert all(r["detail"] for r in body["results"] if r["status"] == "rejected")


def test_reposting_a_batch_is_idempotent(
    http: TestClient, cm: Client, regulator: Client, as_client: Headers
) -> None:
    headers = as_client(cm)
    batch = [
        event("e1"),
        event("e2", "suspended", "2024-02-01", subscriber=None),
        event("e3", "bogus"),
    ]
    first = post_events(http, headers, *batch)
    assert (first["accepted"], first["duplicates"]) == (2, 0)
    before = http.get(f"/v1/numbers/{NUMBER}", headers=as_client(regulator)).json()

    again = post_events(http, headers, *batch)
    assert (again["accepted"], again["duplicates"]) == (0, 2)
    assert again["rejected"] == {"unknown_event": 1}
    assert [r["status"] for r in again["results"]] == ["duplicate", "duplicate", "rejected"]
    after = http.get(f"/v1/numbers/{NUMBER}", headers=as_client(regulator)).json()
    assert after == before
    assert len(after["events"]) == 2


def test_a_reused_event_id_with_other_content_is_a_conflict(
    http: TestClient, cm: Client, as_client: Headers
) -> None:
    headers = as_client(cm)
    post_events(http, headers, event("e1"))
    body = post_events(http, headers, event("e1", subscriber="someone-else"))
    assert body["results"][0]["reason"] == "duplicate_event_id_conflict"


def test_national_numbers_are_read_in_the_carriers_country(
    http: TestClient,
    register_carrier: Callable[..., Client],
    regulator: Client,
    as_client: Headers,
) -> None:
    cm, att = register_carrier("cm", "CN"), register_carrier("att", "US")
    assert post_events(http, as_client(cm), event("c1", number="138 1234 5678"))["accepted"] == 1
    assert post_events(http, as_client(att), event("a1", number="(650) 253-0000"))["accepted"] == 1
    reader = as_client(regulator)
    china = http.get("/v1/numbers/+8613812345678", headers=reader).json()
    usa = http.get("/v1/numbers/+16502530000", headers=reader).json()
    assert (china["region"], china["carrier"]) == ("CN", "cm")
    assert (usa["region"], usa["carrier"]) == ("US", "att")


def test_the_batch_region_overrides_the_carriers_country(
    http: TestClient, cm: Client, as_client: Headers, uow_factory: UnitOfWorkFactory
) -> None:
    ranges.grant_ranges(uow_factory, "cm", ["+1650"])  # a US block held by a CN carrier
    response = http.post(
        "/v1/carrier/events",
        json={"events": [event("e1", number="(650) 253-0000")], "region": "us"},
        headers=as_client(cm),
    )
    assert response.json()["accepted"] == 1
    found = http.get("/v1/numbers/+16502530000", headers=as_client(cm))
    assert found.status_code == 200


def test_an_empty_batch_is_fine(http: TestClient, cm: Client, as_client: Headers) -> None:
    body = post_events(http, as_client(cm))
    assert body == {"accepted": 0, "duplicates": 0, "rejected": {}, "results": []}


def test_more_than_10000_events_is_422(
    http: TestClient, cm: Client, regulator: Client, as_client: Headers
) -> None:
    events = [event(f"e{i}", number=f"+861381234{i % 10000:04d}") for i in range(10_001)]
    response = http.post("/v1/carrier/events", json={"events": events}, headers=as_client(cm))
    body = assert_problem(response, 422, "invalid-request")
    assert body["errors"][0]["loc"][:2] == ["body", "events"]
    assert http.get(f"/v1/numbers/{NUMBER}", headers=as_client(regulator)).status_code == 404


@pytest.mark.parametrize(
    "payload",
    [
        {"events": [event("e1") | {"colour": "blue"}]},
        {"events": [event("e1")], "priority": "high"},
        {"events": [{"event_id": "e1", "number": NUMBER}]},
        {"events": "e1"},
        {},
    ],
    ids=["unknown-event-field", "unknown-batch-field", "missing-fields", "not-a-list", "empty"],
)
def test_a_malformed_batch_is_422_and_changes_nothing(
    http: TestClient, cm: Client, regulator: Client, as_client: Headers, payload: dict[str, Any]
) -> None:
    response = http.post("/v1/carrier/events", json=payload, headers=as_client(cm))
    body = assert_problem(response, 422, "invalid-request")
    assert body["errors"]
    assert http.get(f"/v1/numbers/{NUMBER}", headers=as_client(regulator)).status_code == 404


@pytest.mark.one_store
def test_a_body_that_is_not_json_is_422(http: TestClient, cm: Client, as_client: Headers) -> None:
    response = http.post(
        "/v1/carrier/events",
        content=b"{not json",
        headers={**as_client(cm), "Content-Type": "application/json"},
    )
    assert_problem(response, 422)


def test_a_port_needs_a_known_receiving_carrier(
    http: TestClient, cm: Client, as_client: Headers
) -> None:
    body = post_events(
        http,
        as_client(cm),
        event("e1"),
        event("e2", "ported", "2024-02-01", to_carrier="nowhere"),
        event("e3", "ported", "2024-02-02", to_carrier=None),
    )
    assert [r["reason"] for r in body["results"]] == [
        None,
        "unknown_carrier",
        "missing_to_carrier",
    ]


# -- POST /v1/carrier/files --------------------------------------------------------------

CSV = (
    HEADER
    + f"f1,{NUMBER},activated,2024-01-01,s1,\n"
    + "f2,13912345678,activated,2024-01-01,s2,\n"
    + "f3,+86123,activated,2024-01-01,s3,\n"
    + f"f4,{NUMBER},cancelled,2024-03-01,,\n"
    + "f5,+8613712345678,activated,not-a-date,s5,\n"
    + "f6,+8613712345678,activated\n"
)


def test_upload_a_file_and_read_it_back(http: TestClient, cm: Client, as_client: Headers) -> None:
    headers = as_client(cm)
    response = upload(http, headers, CSV, filename="events.csv")
    assert response.status_code == 201, response.text
    ingest = response.json()
    location = response.headers["location"]
    assert location == f"/v1/carrier/files/{ingest['id']}"
    assert ingest["carrier"] == "cm"
    assert ingest["filename"] == "events.csv"
    assert ingest["status"] == "completed"
    assert ingest["rows"] == 6
    assert ingest["summary"] == {
        "accepted": 3,
        "duplicates": 0,
        "rejected": {"invalid_date": 1, "invalid_number": 1, "malformed_row": 1},
    }
    assert ingest["rejections_url"] == f"{location}/rejections"

    again = http.get(location, headers=headers)
    assert again.status_code == 200
    assert again.json() == ingest
    listed = http.get("/v1/carrier/files", headers=headers).json()["items"]
    assert [item["id"] for item in listed] == [ingest["id"]]

    rejections = http.get(ingest["rejections_url"], headers=headers).json()
    assert [(r["line"], r["event_id"], r["reason"]) for r in rejections["items"]] == [
        (4, "f3", "invalid_number"),
        (6, "f5", "invalid_date"),
        (7, "f6", "malformed_row"),
    ]
    assert rejections["next_after_line"] is None
    assert all(r["detail"] for r in rejections["items"])


def test_uploading_the_same_file_again_finds_duplicates(
    http: TestClient, cm: Client, as_client: Headers
) -> None:
    headers = as_client(cm)
    upload(http, headers, CSV)
    again = upload(http, headers, CSV).json()
    assert again["summary"]["accepted"] == 0
    assert again["summary"]["duplicates"] == 3


def test_rejections_come_a_page_at_a_time(http: TestClient, cm: Client, as_client: Headers) -> None:
    headers = as_client(cm)
    rows = "".join(f"r{i},{NUMBER},nonsense,2024-01-01,s,\n" for i in range(7))
    ingest = upload(http, headers, HEADER + rows).json()
    assert ingest["summary"]["rejected"] == {"unknown_event": 7}
    lines, after, pages = [], 0, 0
    while after is not None:
        page = http.get(
            ingest["rejections_url"], params={"after_line": after, "limit": 3}, headers=headers
        ).json()
        assert len(page["items"]) <= 3
        lines += [r["line"] for r in page["items"]]
        after, pages = page["next_after_line"], pages + 1
    assert lines == list(range(2, 9))
    assert pages == 3
    middle = http.get(
        ingest["rejections_url"], params={"after_line": 4, "limit": 2}, headers=headers
    ).json()
    assert [r["line"] for r in middle["items"]] == [5, 6]
    assert middle["next_after_line"] == 6


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 10_001}, {"after_line": -1}])
def test_bad_paging_parameters_are_422(
    http: TestClient, cm: Client, as_client: Headers, params: dict[str, int]
) -> None:
    headers = as_client(cm)
    ingest = upload(http, headers, CSV).json()
    response = http.get(ingest["rejections_url"], params=params, headers=headers)
    assert_problem(response, 422, "invalid-request")


@pytest.mark.parametrize(
    "body",
    [b"", b"\n", b"id,phone\n1,+8613812345678\n", b"\xff\xfe\n"],
    ids=["empty", "blank-line", "wrong-header", "not-utf8"],
)
def test_an_unreadable_file_is_422_and_nothing_is_stored(
    http: TestClient, cm: Client, as_client: Headers, body: bytes
) -> None:
    headers = as_client(cm)
    response = upload(http, headers, body)
    problem = assert_problem(response, 422, "unreadable-file")
    assert problem["detail"]
    assert "location" not in response.headers
    assert http.get("/v1/carrier/files", headers=headers).json() == {"items": []}


def test_an_unreadable_file_leaves_no_spool_file(
    http: TestClient, cm: Client, as_client: Headers, tmp_path: Path
) -> None:
    """The app spools into `tmp_path` (see the `settings` fixture)."""
    assert_problem(upload(http, as_client(cm), b""), 422, "unreadable-file")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("handover-")] == []


def test_a_good_upload_leaves_no_spool_file(
    http: TestClient, cm: Client, as_client: Headers, tmp_path: Path
) -> None:
    assert upload(http, as_client(cm), CSV).status_code == 201
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("handover-")] == []


@pytest.mark.parametrize("content_type", ["application/json", "multipart/form-data; boundary=x"])
def test_a_file_of_another_media_type_is_415(
    http: TestClient, cm: Client, as_client: Headers, content_type: str
) -> None:
    headers = as_client(cm)
    response = http.post(
        "/v1/carrier/files", content=CSV.encode(), headers={**headers, "Content-Type": content_type}
    )
    assert_problem(response, 415, "unsupported-media-type")
    assert http.get("/v1/carrier/files", headers=headers).json() == {"items": []}


def test_a_csv_with_charset_and_crlf_and_bom_is_read(
    http: TestClient, cm: Client, as_client: Headers
) -> None:
    body = ("\ufeff" + CSV).replace("\n", "\r\n").encode()
    response = http.post(
        "/v1/carrier/files",
        content=body,
        headers={**as_client(cm), "Content-Type": "text/csv; charset=utf-8"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["summary"]["accepted"] == 3


def test_an_upload_takes_a_region(
    http: TestClient,
    cm: Client,
    regulator: Client,
    as_client: Headers,
    uow_factory: UnitOfWorkFactory,
) -> None:
    ranges.grant_ranges(uow_factory, "cm", ["+1650"])  # a US block held by a CN carrier
    body = HEADER + "u1,(650) 253-0000,activated,2024-01-01,s1,\n"
    response = upload(http, as_client(cm), body, region="US")
    assert response.json()["summary"]["accepted"] == 1
    assert http.get("/v1/numbers/+16502530000", headers=as_client(regulator)).status_code == 200


def test_another_carrier_cannot_see_your_files(
    http: TestClient, cm: Client, cu: Client, as_client: Headers
) -> None:
    ingest = upload(http, as_client(cm), CSV).json()
    other = as_client(cu)
    assert_problem(http.get(f"/v1/carrier/files/{ingest['id']}", headers=other), 404, "not-found")
    assert_problem(http.get(ingest["rejections_url"], headers=other), 404, "not-found")
    assert http.get("/v1/carrier/files", headers=other).json() == {"items": []}
    assert_problem(http.get("/v1/carrier/files/no-such-id", headers=as_client(cm)), 404)


# -- GET /v1/numbers/{e164} --------------------------------------------------------------


def test_the_holding_carrier_reads_the_history(
    http: TestClient, cm: Client, as_client: Headers
) -> None:
    headers = as_client(cm)
    post_events(
        http,
        headers,
        event("e1", occurred_at="2020-01-01T08:00:00+08:00"),
        event("e2", "cancelled", "2021-01-01", subscriber=None),
        event("e3", "released", "2021-05-01", subscriber=None),
        event("e4", "activated", "2021-06-01", subscriber="s2"),
    )
    response = http.get(f"/v1/numbers/{NUMBER}", headers=headers)
    assert response.status_code == 200, response.text
    history = response.json()
    assert (history["number"], history["region"]) == (NUMBER, "CN")
    assert (history["state"], history["carrier"]) == ("active", "cm")
    assert [(t["subscriber"], t["carrier"]) for t in history["tenures"]] == [
        ("s1", "cm"),
        ("s2", "cm"),
    ]
    first, second = history["tenures"]
    assert first["start"].startswith("2020-01-01T00:00:00")
    assert first["end"].startswith("2021-01-01T00:00:00")
    assert second["end"] is None
    assert [e["event_id"] for e in history["events"]] == ["e1", "e2", "e3", "e4"]
    assert [e["event"] for e in history["events"]] == [
        "activated",
        "cancelled",
        "released",
        "activated",
    ]
    seqs = [e["seq"] for e in history["events"]]
    assert seqs == sorted(seqs)


def test_after_a_port_only_the_new_carrier_sees_the_number(
    http: TestClient, cm: Client, cu: Client, regulator: Client, as_client: Headers
) -> None:
    old, new = as_client(cm), as_client(cu)
    post_events(http, old, event("e1"))
    assert http.get(f"/v1/numbers/{NUMBER}", headers=old).status_code == 200
    assert_problem(http.get(f"/v1/numbers/{NUMBER}", headers=new), 404, "not-found")

    ported = post_events(http, old, event("e2", "ported", "2024-02-01", to_carrier="cu"))
    assert ported["accepted"] == 1
    assert http.get(f"/v1/numbers/{NUMBER}", headers=new).json()["carrier"] == "cu"
    assert_problem(http.get(f"/v1/numbers/{NUMBER}", headers=old), 404, "not-found")
    # the old carrier can no longer report on it either
    late = post_events(http, old, event("e3", "suspended", "2024-03-01", subscriber=None))
    assert late["results"][0]["reason"] == "not_number_holder"
    assert http.get(f"/v1/numbers/{NUMBER}", headers=as_client(regulator)).status_code == 200


def test_the_regulator_reads_any_number(
    http: TestClient, cm: Client, regulator: Client, as_client: Headers
) -> None:
    post_events(http, as_client(cm), event("e1"))
    response = http.get(f"/v1/numbers/{NUMBER}", headers=as_client(regulator))
    assert response.status_code == 200
    assert response.json()["carrier"] == "cm"


def test_a_number_can_be_asked_for_in_other_spellings(
    http: TestClient, cm: Client, as_client: Headers
) -> None:
    post_events(http, as_client(cm), event("e1"))
    response = http.get("/v1/numbers/+86 138 1234 5678", headers=as_client(cm))
    assert response.status_code == 200
    assert response.json()["number"] == NUMBER


@pytest.mark.parametrize("number", ["+86123", "13812345678", "hello", "+999123456789"])
def test_an_invalid_number_is_422(
    http: TestClient, regulator: Client, as_client: Headers, number: str
) -> None:
    response = http.get(f"/v1/numbers/{number}", headers=as_client(regulator))
    body = assert_problem(response, 422, "invalid-number")
    assert body["detail"]


def test_an_unknown_number_is_404(http: TestClient, regulator: Client, as_client: Headers) -> None:
    assert_problem(http.get(f"/v1/numbers/{NUMBER}", headers=as_client(regulator)), 404)


@pytest.mark.one_store
def test_reading_numbers_needs_the_read_scope(
    http: TestClient, cm: Client, as_client: Headers
) -> None:
    response = http.get(f"/v1/numbers/{NUMBER}", headers=as_client(cm, "carrier:report"))
    assert_problem(response, 403, "insufficient-scope")


# -- the rest of the HTTP surface --------------------------------------------------------


@pytest.mark.one_store
def test_unknown_paths_and_methods_are_problems(
    http: TestClient, cm: Client, as_client: Headers
) -> None:
    assert_problem(http.get("/v1/nothing-here"), 404, "not-found")
    assert_problem(http.delete("/v1/carrier/events", headers=as_client(cm)), 405)


@pytest.mark.one_store
def test_healthz(http: TestClient) -> None:
    response = http.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.mark.one_store
def test_the_openapi_document_lists_every_path(http: TestClient) -> None:
    response = http.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert set(document["paths"]) >= {
        "/oauth/token",
        "/v1/carrier/events",
        "/v1/carrier/files",
        "/v1/carrier/files/{ingest_id}",
        "/v1/carrier/files/{ingest_id}/rejections",
        "/v1/numbers/{number}",
        "/healthz",
        "/readyz",
    }
    assert "post" in document["paths"]["/v1/carrier/files"]
    schemes = document["components"]["securitySchemes"]
    assert any(scheme.get("scheme") == "bearer" for scheme in schemes.values())
    assert http.get("/docs").status_code == 200


@pytest.mark.one_store
def test_the_openapi_document_says_errors_are_problem_details(http: TestClient) -> None:
    """Every operation documents its refusals as RFC 9457 problems (the token endpoint and
    CAMARA's operation document their own bodies): 422 everywhere, 401 and 403 where a
    token is required, 404 where the path names something, 400 and 413 where a body is read."""
    document = http.get("/openapi.json").json()
    assert document["components"]["schemas"]["Problem"]["required"] == ["type", "title", "status"]
    for path, item in document["paths"].items():
        if path == "/oauth/token" or path.startswith("/number-recycling/"):
            continue
        for method, operation in item.items():
            expected = {"422"}
            expected |= {"401", "403"} if operation.get("security") else set()
            expected |= {"404"} if "{" in path else set()
            expected |= {"400", "413"} if "requestBody" in operation else set()
            responses = operation["responses"]
            assert expected <= set(responses), (method, path)
            for status in expected:
                assert list(responses[status]["content"]) == ["application/problem+json"]


# -- settings ----------------------------------------------------------------------------


@pytest.mark.parametrize("secret", [DEVELOPMENT_SECRET, "too-short"])
def test_production_refuses_a_weak_secret(secret: str) -> None:
    with pytest.raises(ValueError, match="HANDOVER_SECRET_KEY"):
        Settings(environment="production", secret_key=secret)


def test_production_refuses_the_default_secret_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HANDOVER_ENVIRONMENT", "production")
    monkeypatch.delenv("HANDOVER_SECRET_KEY", raising=False)
    with pytest.raises(ValueError, match="HANDOVER_SECRET_KEY"):
        Settings()
    monkeypatch.setenv("HANDOVER_SECRET_KEY", SECRET_KEY)
    with pytest.raises(ValueError, match="HANDOVER_LOG_KEY and HANDOVER_LOG_SIGNER_KEY"):
        Settings()
    monkeypatch.setenv("HANDOVER_LOG_KEY", "a-long-random-log-key")
    monkeypatch.setenv("HANDOVER_LOG_SIGNER_KEY", generate_key("handover.example/log")[0])
    with pytest.raises(ValueError, match="HANDOVER_RECEIPT_KEY"):
        Settings()
    receipt_key = OKPKey.generate_key("Ed25519").as_dict(private=True)
    monkeypatch.setenv("HANDOVER_RECEIPT_KEY", json.dumps(receipt_key))
    with pytest.raises(ValueError, match="HANDOVER_SSF_SIGNING_KEYS"):
        Settings()
    monkeypatch.setenv("HANDOVER_SSF_SIGNING_KEYS", json.dumps(generate_keys()))
    assert Settings().secret_key == SECRET_KEY


@pytest.mark.parametrize("ttl", [0, 59, 3601])
def test_token_lifetimes_are_bounded(ttl: int) -> None:
    with pytest.raises(ValueError, match="TTL"):
        Settings(token_ttl_seconds=ttl)


# -- a real server -----------------------------------------------------------------------


def test_the_real_server_over_loopback(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'served.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    uow_factory = partial(SqlUnitOfWork, engine, b"test-log-key")
    _, credentials = access.register_carrier(uow_factory, "cm", "China Mobile", "CN")
    granted.grant(uow_factory, "cm")
    engine.dispose()
    with (
        handover_serve(url, SECRET_KEY, tmp_path / "serve.log") as base,
        httpx.Client(base_url=base, timeout=5) as client,
    ):
        issued = client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(credentials.client_id, credentials.client_secret),
        )
        assert issued.status_code == 200
        bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}
        reported = client.post("/v1/carrier/events", json={"events": [event("e1")]}, headers=bearer)
        assert reported.status_code == 200
        assert reported.json()["accepted"] == 1
        uploaded = client.post(
            "/v1/carrier/files",
            content=(HEADER + f"e2,{NUMBER},suspended,2024-02-01,,\n").encode(),
            headers={**bearer, "Content-Type": "text/csv"},
        )
        assert uploaded.status_code == 201
        assert uploaded.json()["summary"]["accepted"] == 1
        history = client.get(f"/v1/numbers/{NUMBER}", headers=bearer)
        assert history.json()["state"] == "suspended"
