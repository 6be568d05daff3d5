"""The check APIs end to end, on SQLite and PostgreSQL: GET/POST /v1/check (JSON, NDJSON,
receipts), CAMARA NumberRecycling v0.2 (every scenario of its test definitions that a
two-legged deployment can meet), the JWKS and receipt verification.

Histories are reported through POST /v1/carrier/events with a carrier token; the carrier's
coverage starts in 2020, so the answers have data unless a test says otherwise.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from handover.adapters.receipts import verify
from handover.adapters.tokens import JwtTokenIssuer
from handover.api.check_schemas import MAX_BATCH_ITEMS
from handover.config import Settings
from handover.services import access
from handover.services.access import Principal
from handover.services.model import ROLE_SCOPES, Role
from handover.services.ports import UnitOfWorkFactory

Client = Any  # conftest.Client
Headers = Callable[..., dict[str, str]]

KEPT = "+8613812345678"  # activated 2023-10-09 by A, still A's
RECYCLED = "+8613912345678"  # A 2023-10-09, cancelled 2024-02-25, released, B from 2024-09-21
FROZEN = "+8613712345678"  # A 2023-10-09, cancelled 2024-02-25, still frozen
UNKNOWN = "+8613612345678"  # a valid CN number never reported
FOREIGN = "+14155552671"  # a valid US number; no US carrier is registered
CONTRACT = "2023-12-22"
CAMARA = "/number-recycling/v0.2/check"
SECRET_KEY = "e2e-test-secret-key-that-is-long-enough-0123456789"  # as in conftest


def _event(event_id: str, number: str, kind: str, when: str, subscriber: str | None = None):
    return {
        "event_id": event_id,
        "number": number,
        "event": kind,
        "occurred_at": when,
        "subscriber": subscriber,
    }


HISTORY = [
    _event("k1", KEPT, "activated", "2023-10-09", "a"),
    _event("r1", RECYCLED, "activated", "2023-10-09", "a"),
    _event("r2", RECYCLED, "cancelled", "2024-02-25"),
    _event("r3", RECYCLED, "released", "2024-06-01"),
    _event("r4", RECYCLED, "activated", "2024-09-21", "b"),
    _event("f1", FROZEN, "activated", "2023-10-09", "a"),
    _event("f2", FROZEN, "cancelled", "2024-02-25"),
]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Refresh the check index before every answer (the background refresh is tested apart)."""
    return settings.model_copy(update={"check_refresh_seconds": 0})


@pytest.fixture
def platform(uow_factory: UnitOfWorkFactory) -> Client:
    _, credentials = access.register_platform(
        uow_factory, "lender", "A platform", "lending", "high"
    )
    return SimpleNamespace(client_id=credentials.client_id, client_secret=credentials.client_secret)


@pytest.fixture
def histories(
    http: TestClient, cm: Client, as_client: Headers, uow_factory: UnitOfWorkFactory
) -> None:
    with uow_factory() as uow:
        uow.carriers.set_coverage("cm", datetime(2020, 1, 1, tzinfo=UTC))
        uow.commit()
    response = http.post("/v1/carrier/events", json={"events": HISTORY}, headers=as_client(cm))
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(HISTORY), response.text


@pytest.fixture
def auth(platform: Client, as_client: Headers) -> dict[str, str]:
    return as_client(platform)


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["type"].endswith("/" + slug), body
    return body


# -- GET /v1/check -----------------------------------------------------------------------


@pytest.mark.usefixtures("histories")
def test_single_check_full_answer_for_a_kept_number(http: TestClient, auth: dict[str, str]):
    response = http.get("/v1/check", params={"number": KEPT, "since": CONTRACT}, headers=auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["number"] == KEPT
    assert body["since"] == "2023-12-22T00:00:00Z"
    assert body["state"] == "active"
    assert body["recycled"] is False
    assert body["disconnected"] is False
    assert body["rnd"] == "no"
    assert body["verdict"] == "allow"
    assert body["reasons"] == []
    assert body["last_disconnected"] is None
    assert body["data_version"] >= len(HISTORY)
    assert "receipt" not in body


@pytest.mark.usefixtures("histories")
def test_single_check_full_answer_for_a_recycled_number(http: TestClient, auth: dict[str, str]):
    response = http.get("/v1/check", params={"number": RECYCLED, "since": CONTRACT}, headers=auth)
    body = response.json()
    assert body["recycled"] is True
    assert body["disconnected"] is True
    assert body["rnd"] == "yes"
    assert body["verdict"] == "deny"
    assert "recycled_since_date" in body["reasons"]
    assert "disconnected_since_date" in body["reasons"]
    assert body["last_disconnected"] == "2024-02-25T00:00:00Z"
    # Asked about a day of B's tenure: not recycled since, and not disconnected since.
    after = http.get("/v1/check", params={"number": RECYCLED, "since": "2024-10-01"}, headers=auth)
    assert after.json()["recycled"] is False
    assert after.json()["rnd"] == "no"


@pytest.mark.usefixtures("histories")
def test_single_check_frozen_and_never_reported(http: TestClient, auth: dict[str, str]):
    frozen = http.get("/v1/check", params={"number": FROZEN, "since": CONTRACT}, headers=auth)
    assert frozen.json()["state"] == "frozen"
    assert frozen.json()["rnd"] == "yes"
    assert "frozen" in frozen.json()["reasons"]
    unknown = http.get("/v1/check", params={"number": UNKNOWN, "since": CONTRACT}, headers=auth)
    assert unknown.status_code == 200
    assert unknown.json()["rnd"] == "no_data"
    assert unknown.json()["recycled"] is None
    assert unknown.json()["verdict"] == "step_up"
    assert unknown.json()["reasons"] == ["never_reported"]


@pytest.mark.usefixtures("histories")
def test_a_date_before_the_carriers_coverage_has_no_data(http: TestClient, auth: dict[str, str]):
    body = http.get("/v1/check", params={"number": KEPT, "since": "2019-06-01"}, headers=auth)
    assert body.json()["rnd"] == "no_data"
    assert body.json()["reasons"] == ["date_before_coverage"]
    assert body.json()["state"] == "active"


@pytest.mark.parametrize(
    ("params", "slug"),
    [
        ({"number": "+86123", "since": CONTRACT}, "invalid-number"),
        ({"number": KEPT, "since": "22/12/2023"}, "invalid-date"),
        ({"number": KEPT, "since": "2999-01-01"}, "future-date"),
        ({"number": KEPT}, "invalid-request"),
    ],
)
def test_single_check_bad_questions(
    http: TestClient, auth: dict[str, str], params: dict[str, str], slug: str
):
    assert_problem(http.get("/v1/check", params=params, headers=auth), 422, slug)


@pytest.mark.one_store
def test_check_needs_a_token_with_the_check_scope(
    http: TestClient, cm: Client, regulator: Client, as_client: Headers
):
    params = {"number": KEPT, "since": CONTRACT}
    assert_problem(http.get("/v1/check", params=params), 401, "unauthenticated")
    for client in (cm, regulator):
        response = http.get("/v1/check", params=params, headers=as_client(client))
        assert_problem(response, 403, "insufficient-scope")
        response = http.post("/v1/check", json={"items": []}, headers=as_client(client))
        assert_problem(response, 403, "insufficient-scope")


# -- POST /v1/check ----------------------------------------------------------------------


@pytest.mark.usefixtures("histories")
def test_batch_json_answers_in_order_with_per_item_errors(http: TestClient, auth: dict[str, str]):
    items = [
        {"number": KEPT, "since": CONTRACT},
        {"number": "not a number", "since": CONTRACT},
        {"number": RECYCLED, "since": CONTRACT},
        {"number": KEPT, "since": "2999-01-01"},
        {"number": KEPT},
        "nonsense",
        {"number": KEPT, "since": CONTRACT, "extra": 1},
        {"number": UNKNOWN, "since": "2024-01-01T12:30:00+08:00"},
    ]
    response = http.post("/v1/check", json={"items": items}, headers=auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["count"], body["answered"], body["errors"]) == (8, 3, 5)
    results = body["results"]
    assert [r["index"] for r in results] == list(range(8))
    assert results[0]["recycled"] is False
    assert results[1]["error"]["code"] == "invalid_number"
    assert results[1]["number"] == "not a number"
    assert results[2]["recycled"] is True
    assert results[3]["error"]["code"] == "future_date"
    assert results[4]["error"]["code"] == "invalid_item"
    assert results[5]["error"]["code"] == "invalid_item"
    assert results[6]["error"]["code"] == "invalid_item"
    assert results[7]["rnd"] == "no_data"
    assert results[7]["since"] == "2024-01-01T04:30:00Z"


@pytest.mark.usefixtures("histories")
def test_batch_ndjson_streams_ndjson(http: TestClient, auth: dict[str, str]):
    lines = [
        json.dumps({"number": RECYCLED, "since": CONTRACT}),
        "",
        "{not json",
        json.dumps({"number": KEPT, "since": CONTRACT}),
    ]
    response = http.post(
        "/v1/check",
        content="\n".join(lines) + "\n",
        headers={**auth, "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    results = [json.loads(line) for line in response.text.splitlines()]
    assert [r["index"] for r in results] == [0, 1, 2]
    assert results[0]["recycled"] is True
    assert results[1]["error"]["code"] == "invalid_item"
    assert results[2]["recycled"] is False


@pytest.mark.usefixtures("histories")
def test_batch_content_negotiation(http: TestClient, auth: dict[str, str]):
    body = {"items": [{"number": KEPT, "since": CONTRACT}]}
    streamed = http.post("/v1/check", json=body, headers={**auth, "Accept": "application/x-ndjson"})
    assert streamed.headers["content-type"].startswith("application/x-ndjson")
    assert json.loads(streamed.text)["recycled"] is False
    ndjson_as_json = http.post(
        "/v1/check",
        content=json.dumps(body["items"][0]),
        headers={**auth, "Content-Type": "application/x-ndjson", "Accept": "application/json"},
    )
    assert ndjson_as_json.json()["results"][0]["recycled"] is False
    csv = http.post("/v1/check", content="a,b", headers={**auth, "Content-Type": "text/csv"})
    assert_problem(csv, 415, "unsupported-media-type")


def test_batch_malformed_bodies(http: TestClient, auth: dict[str, str]):
    not_json = http.post(
        "/v1/check", content="{", headers={**auth, "Content-Type": "application/json"}
    )
    assert_problem(not_json, 400, "invalid-json")
    assert_problem(http.post("/v1/check", json=[1], headers=auth), 422, "invalid-request")
    unknown = http.post("/v1/check", json={"items": [], "extra": 1}, headers=auth)
    assert_problem(unknown, 422, "invalid-request")
    empty = http.post("/v1/check", json={"items": []}, headers=auth)
    assert empty.json() == {"count": 0, "answered": 0, "errors": 0, "results": []}


def test_batch_of_more_than_100000_items_is_refused(http: TestClient, auth: dict[str, str]):
    item = {"number": KEPT, "since": CONTRACT}
    too_many = {"items": [item] * (MAX_BATCH_ITEMS + 1)}
    assert_problem(http.post("/v1/check", json=too_many, headers=auth), 413, "batch-too-large")
    lines = (json.dumps(item) + "\n") * (MAX_BATCH_ITEMS + 1)
    response = http.post(
        "/v1/check", content=lines, headers={**auth, "Content-Type": "application/x-ndjson"}
    )
    assert_problem(response, 413, "batch-too-large")


@pytest.mark.usefixtures("histories")
def test_batch_of_100000_items_is_answered(http: TestClient, auth: dict[str, str]):
    lines = "".join(
        json.dumps({"number": KEPT if i % 2 else RECYCLED, "since": CONTRACT}) + "\n"
        for i in range(MAX_BATCH_ITEMS)
    )
    with http.stream(
        "POST", "/v1/check", content=lines, headers={**auth, "Content-Type": "application/x-ndjson"}
    ) as response:
        assert response.status_code == 200
        count = recycled = 0
        for line in response.iter_lines():
            if line:
                result = json.loads(line)
                assert result["index"] == count
                count += 1
                recycled += result["recycled"]
    assert (count, recycled) == (MAX_BATCH_ITEMS, MAX_BATCH_ITEMS // 2)


# -- receipts ----------------------------------------------------------------------------


def _claims(receipt: str) -> dict[str, Any]:
    payload = receipt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@pytest.mark.usefixtures("histories")
def test_a_receipt_signs_the_answer_and_verifies(
    http: TestClient, auth: dict[str, str], platform: Client
):
    response = http.get(
        "/v1/check", params={"number": RECYCLED, "since": CONTRACT, "receipt": "true"}, headers=auth
    )
    body = response.json()
    receipt = body["receipt"]
    header = json.loads(base64.urlsafe_b64decode(receipt.split(".")[0] + "=="))
    jwks = http.get("/.well-known/jwks.json")
    assert jwks.status_code == 200
    assert jwks.headers["content-type"].startswith("application/jwk-set+json")
    keys = jwks.json()["keys"]
    assert header["alg"] == "Ed25519" and header["kid"] == keys[0]["kid"]
    assert header["typ"] == "handover-receipt+jwt"
    assert "d" not in keys[0]  # public half only
    claims = verify(receipt, jwks.json())  # offline, with the published key set
    for field in ("number", "since", "recycled", "disconnected", "rnd", "verdict", "reasons"):
        assert claims[field] == body[field]
    assert claims["data_version"] == body["data_version"]
    assert claims["client_id"] == platform.client_id
    assert claims["iss"] == "http://127.0.0.1:8000"
    assert abs(claims["iat"] - time.time()) < 60 and len(claims["jti"]) == 32

    verified = http.post("/v1/receipts/verify", json={"receipt": receipt})  # public
    assert verified.status_code == 200
    assert verified.json()["valid"] is True
    assert verified.json()["claims"] == claims
    assert verified.json()["kid"] == keys[0]["kid"]


@pytest.mark.usefixtures("histories")
def test_a_tampered_receipt_does_not_verify(http: TestClient, auth: dict[str, str]):
    receipt = http.get(
        "/v1/check", params={"number": RECYCLED, "since": CONTRACT, "receipt": "true"}, headers=auth
    ).json()["receipt"]
    header, payload, signature = receipt.split(".")
    claims = _claims(receipt)
    claims["recycled"] = False
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    for bad in (f"{header}.{forged}.{signature}", f"{header}.{payload}.{signature[:-4]}AAAA"):
        response = http.post("/v1/receipts/verify", json={"receipt": bad})
        assert response.json()["valid"] is False, response.text
        assert response.json()["claims"] is None
    garbage = http.post("/v1/receipts/verify", json={"receipt": "not-a-jws"})
    assert garbage.json()["valid"] is False
    array_header = base64.urlsafe_b64encode(b"[1]").rstrip(b"=").decode()
    odd = http.post("/v1/receipts/verify", json={"receipt": f"{array_header}.e30.AA"})
    assert odd.status_code == 200 and odd.json()["valid"] is False, odd.text
    assert http.post("/v1/receipts/verify", json={}).status_code == 422


def test_a_receipt_from_another_key_does_not_verify(settings: Any, app: FastAPI, http: TestClient):
    from handover import bootstrap

    other = bootstrap.receipt_signer(settings.model_copy(update={"secret_key": "x" * 40}))
    receipt = other.sign({"number": KEPT})
    assert http.post("/v1/receipts/verify", json={"receipt": receipt}).json()["valid"] is False


@pytest.mark.usefixtures("histories")
def test_batch_receipts(http: TestClient, auth: dict[str, str]):
    items = [{"number": KEPT, "since": CONTRACT}, {"number": "bad", "since": CONTRACT}]
    body = http.post("/v1/check", json={"items": items, "receipt": True}, headers=auth).json()
    jwks = http.get("/.well-known/jwks.json").json()
    assert verify(body["results"][0]["receipt"], jwks)["number"] == KEPT
    assert "receipt" not in body["results"][1]
    streamed = http.post(
        "/v1/check",
        params={"receipt": "true"},
        content=json.dumps(items[0]),
        headers={**auth, "Content-Type": "application/x-ndjson"},
    )
    assert verify(json.loads(streamed.text)["receipt"], jwks)["recycled"] is False


def test_an_es256_receipt_key_from_settings(settings: Any, store_url: str):
    from joserfc.jwk import ECKey

    from handover.api.app import create_app

    key = ECKey.generate_key("P-256")
    app = create_app(
        settings.model_copy(update={"receipt_key": json.dumps(key.as_dict(private=True))})
    )
    try:
        with TestClient(app) as client:
            jwks = client.get("/.well-known/jwks.json").json()
            assert jwks["keys"][0]["alg"] == "ES256"
            assert jwks["keys"][0]["kid"] == key.thumbprint()
            receipt = app.state.receipt_signer.sign({"number": KEPT})
            verified = client.post("/v1/receipts/verify", json={"receipt": receipt}).json()
            assert verified["valid"] is True
    finally:
        app.state.engine.dispose()


def test_production_needs_a_receipt_key() -> None:
    from handover.config import Settings
    from handover.tlog.verify import generate_key

    with pytest.raises(ValueError, match="HANDOVER_RECEIPT_KEY"):
        Settings(
            environment="production",
            secret_key=SECRET_KEY,
            log_key="a-long-random-log-key",
            log_signer_key=generate_key("handover.example/log")[0],
        )


# -- CAMARA NumberRecycling v0.2 ---------------------------------------------------------

CORRELATOR = "b4333c46-49c0-4f62-80d7-f0ef930f1c46"


def camara(
    http: TestClient, headers: dict[str, str] | None, body: Any = None, **kwargs: Any
) -> httpx.Response:
    headers = {**(headers or {}), "x-correlator": CORRELATOR}
    if body is not None:
        kwargs["json"] = body
    return http.post(CAMARA, headers=headers, **kwargs)


def assert_camara_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"status", "code", "message"}, body
    assert body["status"] == status and body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    assert response.headers["x-correlator"] == CORRELATOR


@pytest.mark.usefixtures("histories")
def test_camara_01_not_recycled(http: TestClient, auth: dict[str, str]):
    response = camara(http, auth, {"phoneNumber": KEPT, "specifiedDate": CONTRACT})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-correlator"] == CORRELATOR
    assert response.json() == {"phoneNumberRecycled": False}
    # The day the user signed with the carrier counts as not recycled (the spec's note).
    signed = camara(http, auth, {"phoneNumber": KEPT, "specifiedDate": "2023-10-09"})
    assert signed.json() == {"phoneNumberRecycled": False}


@pytest.mark.usefixtures("histories")
def test_camara_02_recycled(http: TestClient, auth: dict[str, str]):
    response = camara(http, auth, {"phoneNumber": RECYCLED, "specifiedDate": CONTRACT})
    assert response.status_code == 200, response.text
    assert response.headers["x-correlator"] == CORRELATOR
    assert response.json() == {"phoneNumberRecycled": True}
    # A date while nobody held the number is recycled too (the spec's second note).
    gap = camara(http, auth, {"phoneNumber": RECYCLED, "specifiedDate": "2024-07-01"})
    assert gap.json() == {"phoneNumberRecycled": True}
    # Frozen after cancellation: the subscriber may still restore it, so it has not changed.
    frozen = camara(http, auth, {"phoneNumber": FROZEN, "specifiedDate": CONTRACT})
    assert frozen.json() == {"phoneNumberRecycled": False}


@pytest.mark.usefixtures("histories")
def test_camara_without_x_correlator_sends_none_back(http: TestClient, auth: dict[str, str]):
    response = http.post(
        CAMARA, headers=auth, json={"phoneNumber": KEPT, "specifiedDate": CONTRACT}
    )
    assert response.status_code == 200
    assert "x-correlator" not in response.headers


@pytest.mark.parametrize(
    "specified",
    ["2023/12/22", "22-12-2023", "2023-13-01", "2023-02-30", "2023-12-22T00:00:00Z", 20231222, ""],
)
@pytest.mark.one_store
def test_camara_400_01_invalid_specified_date(http: TestClient, auth: dict[str, str], specified):
    response = camara(http, auth, {"phoneNumber": KEPT, "specifiedDate": specified})
    assert_camara_error(response, 400, "INVALID_ARGUMENT")


@pytest.mark.one_store
def test_camara_400_02_no_request_body(http: TestClient, auth: dict[str, str]):
    assert_camara_error(camara(http, auth), 400, "INVALID_ARGUMENT")


@pytest.mark.one_store
def test_camara_400_03_empty_request_body(http: TestClient, auth: dict[str, str]):
    assert_camara_error(camara(http, auth, {}), 400, "INVALID_ARGUMENT")


@pytest.mark.one_store
def test_camara_400_04_out_of_range(http: TestClient, auth: dict[str, str]):
    tomorrow = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    response = camara(http, auth, {"phoneNumber": KEPT, "specifiedDate": tomorrow})
    assert_camara_error(response, 400, "OUT_OF_RANGE")


@pytest.mark.usefixtures("histories")
def test_camara_today_is_in_range(http: TestClient, auth: dict[str, str]):
    today = datetime.now(UTC).date().isoformat()
    response = camara(http, auth, {"phoneNumber": KEPT, "specifiedDate": today})
    assert response.json() == {"phoneNumberRecycled": False}


@pytest.mark.parametrize(
    ("kwargs"),
    [
        {"json": {"phoneNumber": KEPT, "specifiedDate": CONTRACT, "extra": True}},
        {"json": {"phoneNumber": KEPT, "specifiedDate": CONTRACT, "device": {}}},
        {"json": [{"phoneNumber": KEPT, "specifiedDate": CONTRACT}]},
        {"json": "2023-12-22"},
        {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
        {"json": {"phoneNumber": KEPT, "specifiedDate": None}},
    ],
)
@pytest.mark.one_store
def test_camara_400_05_body_not_compliant(http: TestClient, auth: dict[str, str], kwargs):
    headers = {**auth, **kwargs.pop("headers", {})}
    assert_camara_error(camara(http, headers, **kwargs), 400, "INVALID_ARGUMENT")


@pytest.mark.one_store
def test_camara_400_invalid_x_correlator(http: TestClient, auth: dict[str, str]):
    response = http.post(
        CAMARA,
        headers={**auth, "x-correlator": "has spaces and, commas"},
        json={"phoneNumber": KEPT, "specifiedDate": CONTRACT},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_ARGUMENT"
    assert "x-correlator" not in response.headers


@pytest.mark.one_store
def test_camara_401_01_expired_access_token(http: TestClient, platform: Client):
    issuer = JwtTokenIssuer(SECRET_KEY, "http://127.0.0.1:8000", 60)
    principal = Principal(platform.client_id, Role.PLATFORM, ROLE_SCOPES[Role.PLATFORM])
    real_time = time.time
    try:
        time.time = lambda: real_time() - 3600  # type: ignore[assignment]
        expired, _ = issuer.issue(principal)
    finally:
        time.time = real_time  # type: ignore[assignment]
    response = camara(
        http,
        {"Authorization": f"Bearer {expired}"},
        {"phoneNumber": KEPT, "specifiedDate": CONTRACT},
    )
    assert_camara_error(response, 401, "UNAUTHENTICATED")


@pytest.mark.parametrize(
    "authorization", ["Bearer not-a-token", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer a.b.c"]
)
@pytest.mark.one_store
def test_camara_401_02_invalid_access_token(http: TestClient, authorization: str):
    response = camara(
        http, {"Authorization": authorization}, {"phoneNumber": KEPT, "specifiedDate": CONTRACT}
    )
    assert_camara_error(response, 401, "UNAUTHENTICATED")


@pytest.mark.one_store
def test_camara_401_02_token_signed_with_another_key(http: TestClient, platform: Client):
    issuer = JwtTokenIssuer(
        "another-secret-key-that-is-long-enough-0123456789", "http://127.0.0.1:8000", 60
    )
    token, _ = issuer.issue(Principal(platform.client_id, Role.PLATFORM, frozenset({"check"})))
    response = camara(
        http, {"Authorization": f"Bearer {token}"}, {"phoneNumber": KEPT, "specifiedDate": CONTRACT}
    )
    assert_camara_error(response, 401, "UNAUTHENTICATED")


@pytest.mark.one_store
def test_camara_401_03_no_authorization_header(http: TestClient):
    response = camara(http, None, {"phoneNumber": KEPT, "specifiedDate": CONTRACT})
    assert_camara_error(response, 401, "UNAUTHENTICATED")
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.one_store
def test_camara_403_01_token_without_the_check_scope(
    http: TestClient, cm: Client, regulator: Client, platform: Client, as_client: Headers
):
    for headers in (as_client(cm), as_client(regulator), as_client(platform, "ssf.read")):
        response = camara(http, headers, {"phoneNumber": KEPT, "specifiedDate": CONTRACT})
        assert_camara_error(response, 403, "PERMISSION_DENIED")


@pytest.mark.parametrize(
    "number",
    [
        "8613812345678",
        "+0861381234567",
        "+86 138 1234 5678",
        "+1234",
        "+1234567890123456",
        8613812345678,
        None,
    ],
)
@pytest.mark.one_store
def test_camara_c02_01_phone_number_not_schema_compliant(
    http: TestClient, auth: dict[str, str], number: Any
):
    response = camara(http, auth, {"phoneNumber": number, "specifiedDate": CONTRACT})
    assert_camara_error(response, 400, "INVALID_ARGUMENT")


@pytest.mark.one_store
def test_camara_c02_04_missing_phone_number(http: TestClient, auth: dict[str, str]):
    # Handover's tokens are two-legged (client credentials): they never identify a number.
    response = camara(http, auth, {"specifiedDate": CONTRACT})
    assert_camara_error(response, 422, "MISSING_IDENTIFIER")


@pytest.mark.usefixtures("histories")
def test_camara_c02_05_service_not_applicable(http: TestClient, auth: dict[str, str]):
    # A number of a country no registered carrier serves.
    foreign = camara(http, auth, {"phoneNumber": FOREIGN, "specifiedDate": CONTRACT})
    assert_camara_error(foreign, 422, "SERVICE_NOT_APPLICABLE")
    # A date before the holding carrier's reports begin.
    early = camara(http, auth, {"phoneNumber": KEPT, "specifiedDate": "2019-06-01"})
    assert_camara_error(early, 422, "SERVICE_NOT_APPLICABLE")


@pytest.mark.usefixtures("histories")
def test_camara_404_identifier_not_found(http: TestClient, auth: dict[str, str]):
    # A CN number (a country Handover covers) that no carrier ever reported.
    unknown = camara(http, auth, {"phoneNumber": UNKNOWN, "specifiedDate": CONTRACT})
    assert_camara_error(unknown, 404, "IDENTIFIER_NOT_FOUND")
    # Schema-compliant but not a valid number anywhere.
    invalid = camara(http, auth, {"phoneNumber": "+86123456", "specifiedDate": CONTRACT})
    assert_camara_error(invalid, 404, "IDENTIFIER_NOT_FOUND")


@pytest.mark.one_store
def test_camara_errors_are_not_problem_details_but_v1_errors_are(
    http: TestClient, auth: dict[str, str]
):
    camara_error = camara(http, None, {"phoneNumber": KEPT, "specifiedDate": CONTRACT})
    assert camara_error.headers["content-type"] == "application/json"
    v1_error = http.get("/v1/check", params={"number": KEPT, "since": CONTRACT})
    assert v1_error.headers["content-type"].startswith("application/problem+json")


@pytest.mark.one_store
def test_camara_operation_is_in_the_openapi_document(http: TestClient):
    document = http.get("/openapi.json").json()
    operation = document["paths"][CAMARA]["post"]
    assert operation["operationId"] == "checkNumberRecycling"
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["specifiedDate"]
    assert "/v1/check" in document["paths"] and "/v1/receipts/verify" in document["paths"]


@pytest.mark.usefixtures("histories")
def test_answers_follow_new_reports(
    http: TestClient, auth: dict[str, str], cm: Client, as_client: Headers
):
    """The index on app.state is refreshed: a report made after startup is answered."""
    body = {"phoneNumber": UNKNOWN, "specifiedDate": "2024-06-01"}
    assert_camara_error(camara(http, auth, body), 404, "IDENTIFIER_NOT_FOUND")
    events = [_event("u1", UNKNOWN, "activated", "2024-01-01", "c")]
    response = http.post("/v1/carrier/events", json={"events": events}, headers=as_client(cm))
    assert response.json()["accepted"] == 1, response.text
    assert camara(http, auth, body).json() == {"phoneNumberRecycled": False}


@pytest.mark.usefixtures("histories")
def test_a_background_refresh_catches_up(settings: Settings, platform: Client, cm: Client):
    from handover.api.app import create_app

    app = create_app(settings.model_copy(update={"check_refresh_seconds": 0.1}))
    try:
        with TestClient(app) as client:

            def headers(who: Client) -> dict[str, str]:
                form = {"grant_type": "client_credentials"}
                token = client.post(
                    "/oauth/token", data=form, auth=(who.client_id, who.client_secret)
                ).json()["access_token"]
                return {"Authorization": f"Bearer {token}"}

            events = [_event("u1", UNKNOWN, "activated", "2024-01-01", "c")]
            reported = client.post(
                "/v1/carrier/events", json={"events": events}, headers=headers(cm)
            )
            assert reported.json()["accepted"] == 1
            params = {"number": UNKNOWN, "since": "2024-06-01"}
            deadline = time.monotonic() + 60  # a cap on waiting, not a latency claim
            while True:
                answer = client.get("/v1/check", params=params, headers=headers(platform)).json()
                if answer["rnd"] != "no_data" or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert answer["recycled"] is False, answer
    finally:
        app.state.engine.dispose()


# -- the fast batch writer equals the per-object one -------------------------------------

MIXED_ITEMS: list[Any] = [
    {"number": KEPT, "since": CONTRACT},
    {"number": RECYCLED, "since": CONTRACT},
    {"number": FROZEN, "since": "2024-01-01T00:00:00Z"},
    {"number": UNKNOWN, "since": "2024-01-01T12:30:00+08:00"},
    {"number": FOREIGN, "since": CONTRACT},
    {"number": KEPT, "since": "2019-06-01"},  # before the carrier's coverage
    {"number": RECYCLED, "since": "2024-09-21T00:00:00"},  # the second of reassignment
    {"number": RECYCLED, "since": "2024-09-21T00:00:01"},
    {"number": RECYCLED, "since": "2024-02-25 00:00:00.999"},  # not canonical: one by one
    {"number": KEPT, "since": "0001-01-01"},
    {"number": KEPT, "since": "1960-06-30T23:59:59.5"},  # before the epoch, fraction
    {"number": "+86 138 1234 5678", "since": CONTRACT},  # not canonical: phonenumbers
    {"number": "+\uff18\uff16" + RECYCLED[3:], "since": CONTRACT},  # full-width 8 and 6
    {"number": "008613812345678", "since": CONTRACT},
    {"number": "13812345678", "since": CONTRACT},  # national: no region
    {"number": "+86123", "since": CONTRACT},
    {"number": "not a number", "since": CONTRACT},
    {"number": "not a number", "since": "not a date"},
    {"number": KEPT, "since": "22/12/2023"},
    {"number": KEPT, "since": "2025-02-30"},  # impossible: every date of the chunk one by one
    {"number": KEPT, "since": "2999-01-01"},
    {"number": "bad", "since": "2999-01-01"},
    {"number": KEPT},
    {"number": KEPT, "since": 20231222},
    {"since": CONTRACT, "number": KEPT, "extra": None},
    "nonsense",
    None,
    [KEPT, CONTRACT],
    {"since": CONTRACT, "number": FROZEN},  # keys in another order
    {"number": 'quote"d\\', "since": "é\u2028"},  # echoed in the error, escaped
]


def _results(text: str, ndjson: bool) -> list[dict[str, Any]]:
    if ndjson:
        return [json.loads(line) for line in text.splitlines() if line]
    body = json.loads(text)
    errors = sum(1 for r in body["results"] if "error" in r)
    assert (body["count"], body["answered"], body["errors"]) == (
        len(body["results"]),
        len(body["results"]) - errors,
        errors,
    )
    results: list[dict[str, Any]] = body["results"]
    return results


@pytest.mark.usefixtures("histories")
def test_the_fast_batch_writer_equals_check_many(app: FastAPI, http: TestClient):
    """`_fast_json` / `_fast_ndjson` (answer arrays straight to JSON) write what
    `_answer_batch` writes from `check_many`'s objects, item for item, across chunks."""
    from handover import bootstrap
    from handover.api import check as api

    index = bootstrap.fresh(app.state.check_index)
    assert api._in_memory(index)
    now = datetime.now(UTC).replace(microsecond=123456)
    items = MIXED_ITEMS * 700  # 21,000 items: three chunks, errors on every one
    expected = list(api._answer_batch(index, items, None, "someone", now))
    assert len(expected) == len(items) and expected[0]["checked_at"].endswith("Z")
    assert _results(api._fast_json(index, items, now).decode(), ndjson=False) == expected
    streamed = b"".join(api._fast_ndjson(index, items, now)).decode()
    assert _results(streamed, ndjson=True) == expected
    assert api._fast_json(index, [], now) == b'{"count":0,"answered":0,"errors":0,"results":[]}'


@pytest.mark.usefixtures("histories")
def test_batch_answers_equal_single_answers(http: TestClient, auth: dict[str, str]):
    """Over HTTP, each batch answer (JSON and NDJSON) is the single GET's answer or error."""
    questions = [item for item in MIXED_ITEMS if isinstance(item, dict) and len(item) == 2]
    questions = [q for q in questions if all(isinstance(v, str) for v in q.values())]
    body = http.post("/v1/check", json={"items": questions}, headers=auth).json()
    lines = "".join(json.dumps(q) + "\n" for q in questions)
    streamed = http.post(
        "/v1/check", content=lines, headers={**auth, "Content-Type": "application/x-ndjson"}
    )
    assert _results(streamed.text, ndjson=True) == body["results"]
    for i, (question, result) in enumerate(zip(questions, body["results"], strict=True)):
        single = http.get("/v1/check", params=question, headers=auth)
        assert result.pop("index") == i
        if "error" in result:
            assert single.status_code == 422
            assert single.json()["code"] == result["error"]["code"], question
        else:
            assert single.status_code == 200, single.text
            answer = single.json()
            answer.pop("checked_at"), result.pop("checked_at")
            assert answer == result, question
