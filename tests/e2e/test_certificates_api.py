"""Tenure certificates end to end, on SQLite and PostgreSQL: issue, verify (JSON and page),
print, forgeries, expiry and a ledger that moved on.

Numbers are set up through POST /v1/carrier/events; certificates are issued with the app's
own keys through `services.certificates` (and over HTTP once a subscriber is signed in).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import KeySet

from conftest import Client
from handover import bootstrap
from handover.adapters.certificates import CertificateKeys
from handover.config import Settings
from handover.domain.certificates import CERTIFICATE_TYPE, DEFAULT_VALIDITY, NotInService
from handover.domain.messages import Channel
from handover.services.certificates import IssuedCertificate, issue_certificate
from handover.services.ports import UnitOfWorkFactory
from handover.web.qr import qr_version

Headers = Callable[..., dict[str, str]]
RECYCLED = "+8613912345678"  # a: 2023-10-09, cancelled 2024-02-25, released; b: 2024-09-21
VERIFY = "/v1/certificates/verify"
PAGE = "/certificates/verify"
PRINT = "/certificates/print"
ISSUE = "/v1/subscriber/certificates"


def event(event_id: str, kind: str, when: str, subscriber: str | None = None) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "number": RECYCLED,
        "event": kind,
        "occurred_at": when,
        "subscriber": subscriber,
    }


@pytest.fixture
def report(http: TestClient, cm: Client, as_client: Headers) -> Callable[..., None]:
    def send(*events: dict[str, Any]) -> None:
        response = http.post(
            "/v1/carrier/events", json={"events": list(events)}, headers=as_client(cm)
        )
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == len(events), response.text

    return send


@pytest.fixture
def recycled(report: Callable[..., None]) -> None:
    report(
        event("r1", "activated", "2023-10-09", "previous-owner"),
        event("r2", "cancelled", "2024-02-25"),
        event("r3", "released", "2024-06-01"),
        event("r4", "activated", "2024-09-21", "new-owner"),
    )


@pytest.fixture
def keys(app: FastAPI) -> CertificateKeys:
    return CertificateKeys(app.state.receipt_signer)


@pytest.fixture
def issue(
    uow_factory: UnitOfWorkFactory, keys: CertificateKeys
) -> Callable[..., IssuedCertificate]:
    def issue(now: datetime | None = None) -> IssuedCertificate:
        return issue_certificate(
            uow_factory, keys, RECYCLED, now or datetime.now(UTC), DEFAULT_VALIDITY
        )

    return issue


def verified(http: TestClient, token: str) -> dict[str, Any]:
    response = http.post(VERIFY, json={"token": token})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def segments(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    def decode(part: str) -> dict[str, Any]:
        decoded: dict[str, Any] = json.loads(
            base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        )
        return decoded

    header, payload, _ = token.split(".")
    return decode(header), decode(payload)


def encode(part: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()


@pytest.mark.usefixtures("recycled")
def test_a_certificate_verifies_as_current_online_and_offline(
    http: TestClient, issue: Callable[..., IssuedCertificate]
) -> None:
    issued = issue()
    header, claims = segments(issued.token)
    assert header["typ"] == CERTIFICATE_TYPE and header["alg"] == "Ed25519"
    assert claims["held_since"] == "2024-09-21T00:00:00Z"
    assert claims["reassigned"] is True and claims["previous_tenure_ended"] == "2024-02-25"
    assert "previous-owner" not in json.dumps(claims) and "new-owner" not in json.dumps(claims)
    assert claims["exp"] - claims["iat"] == 180 * 86400

    body = verified(http, issued.token)
    assert body["valid"] is True and body["current"] is True
    assert body["status"] == "valid" and body["standing"] == "current"
    assert body["number"] == RECYCLED and body["held_since"] == "2024-09-21T00:00:00Z"
    assert body["reassigned"] is True and body["previous_tenure_ended"] == "2024-02-25"
    assert body["jti"] == claims["jti"] and body["carrier"] == "cm"

    # Offline, as docs/certificates.md shows: the published JWKS and joserfc.
    key_set = KeySet.import_key_set(http.get("/.well-known/jwks.json").json())
    token = jwt.decode(issued.token, key_set, algorithms=["Ed25519", "ES256"])
    assert token.header["typ"] == CERTIFICATE_TYPE and token.claims == claims


@pytest.mark.parametrize(
    "after",
    [
        [event("r5", "cancelled", "2025-01-10")],
        [event("r5", "cancelled", "2025-01-10"), event("r6", "released", "2025-06-01")],
        [
            event("r5", "cancelled", "2025-01-10"),
            event("r6", "released", "2025-06-01"),
            event("r7", "activated", "2025-06-02", "third-owner"),
        ],
    ],
    ids=["cancelled", "released", "reactivated-for-someone-else"],
)
@pytest.mark.usefixtures("recycled")
def test_a_certificate_is_superseded_once_the_number_moves_on(
    http: TestClient,
    issue: Callable[..., IssuedCertificate],
    report: Callable[..., None],
    after: list[dict[str, Any]],
) -> None:
    issued = issue()
    report(*after)
    body = verified(http, issued.token)
    assert body["valid"] is True and body["current"] is False
    assert body["standing"] == "superseded"
    assert "changed hands" in body["detail"]
    page = http.get(PAGE, params={"token": issued.token, "lang": "en"})
    assert page.status_code == 200
    assert 'data-standing="superseded"' in page.text and "Superseded" in page.text
    assert http.get(PRINT, params={"token": issued.token}).status_code == 400


@pytest.mark.usefixtures("recycled")
def test_a_restored_number_keeps_its_certificate_current(
    http: TestClient, issue: Callable[..., IssuedCertificate], report: Callable[..., None]
) -> None:
    issued = issue()
    report(event("r5", "cancelled", "2025-01-10"))
    assert verified(http, issued.token)["current"] is False
    report(event("r6", "restored", "2025-01-20", "new-owner"))
    assert verified(http, issued.token)["current"] is True


@pytest.mark.usefixtures("recycled")
def test_an_expired_or_not_yet_valid_certificate_is_refused(
    http: TestClient, issue: Callable[..., IssuedCertificate]
) -> None:
    old = verified(http, issue(datetime.now(UTC) - timedelta(days=181)).token)
    assert old["valid"] is False and old["status"] == "expired" and old["current"] is False
    assert old["standing"] is None and old["number"] == RECYCLED
    early = verified(http, issue(datetime.now(UTC) + timedelta(hours=1)).token)
    assert early["status"] == "not_yet_valid" and early["valid"] is False
    page = http.get(PAGE, params={"token": issue(datetime(2020, 1, 1, tzinfo=UTC)).token})
    assert 'data-status="expired"' in page.text and "Expired" in page.text


@pytest.mark.usefixtures("recycled")
def test_forgeries_are_refused(
    http: TestClient,
    app: FastAPI,
    settings: Settings,
    issue: Callable[..., IssuedCertificate],
) -> None:
    token = issue().token
    header, claims = segments(token)
    _, payload, signature = token.split(".")
    edited = {**claims, "held_since": "2020-01-01T00:00:00Z"}
    other_key = bootstrap.receipt_signer(settings.model_copy(update={"secret_key": "y" * 40}))
    ours = app.state.receipt_signer
    forgeries = {
        "payload edited": f"{encode(header)}.{encode(edited)}.{signature}",
        "signature broken": f"{encode(header)}.{payload}.{signature[:-4]}AAAA",
        "another key": CertificateKeys(other_key).sign(edited),
        "another key claiming our kid": jwt.encode(
            header, edited, other_key.key, algorithms=["Ed25519"]
        ),
        "alg none": f"{encode({**header, 'alg': 'none'})}.{encode(edited)}.",
        "typ changed": ours.sign(claims, typ="JWT"),
        "a check receipt": ours.sign(claims),
    }
    for name, forged in forgeries.items():
        body = verified(http, forged)
        assert body["valid"] is False and body["current"] is False, name
        assert body["status"] == "bad_signature", (name, body)
        assert body["number"] is None, name
        page = http.get(PAGE, params={"token": forged, "lang": "en"})
        assert page.status_code == 200 and "Not genuine" in page.text, name


@pytest.mark.parametrize(
    "garbage",
    ["not-a-jws", "a.b.c", "....", "eyJhbGciOiJFZDI1NTE5In0.W10.AAAA", "x" * 20_000, "§ü<>"],
)
@pytest.mark.one_store
def test_garbage_gets_a_clear_answer_not_a_server_error(http: TestClient, garbage: str) -> None:
    body = http.post(VERIFY, json={"token": garbage[:16_000]}).json()
    assert body["valid"] is False and body["status"] == "malformed"
    page = http.get(PAGE, params={"token": garbage, "lang": "en"})
    assert page.status_code == 200 and "Malformed" in page.text
    assert http.get(PRINT, params={"token": garbage}).status_code == 400


@pytest.mark.one_store
def test_missing_fields_are_a_validation_problem_and_an_empty_page_is_a_form(
    http: TestClient,
) -> None:
    assert http.post(VERIFY, json={}).status_code == 422
    assert http.post(VERIFY, json={"token": "x" * 20_000}).status_code == 422
    page = http.get(PAGE)
    assert page.status_code == 200 and "<textarea" in page.text and "data-status" not in page.text


@pytest.mark.usefixtures("recycled")
def test_the_verify_page_speaks_english_and_chinese(
    http: TestClient, issue: Callable[..., IssuedCertificate]
) -> None:
    token = issue().token
    english = http.get(PAGE, params={"token": token}, headers={"Accept-Language": "fr, en;q=0.5"})
    assert '<html lang="en">' in english.text
    assert f"number {RECYCLED} has been held by its current subscriber since 2024-09-21" in (
        unescape(english.text)
    )
    chinese = http.get(PAGE, params={"token": token}, headers={"Accept-Language": "zh,en;q=0.8"})
    assert '<html lang="zh-CN">' in chinese.text
    assert f"号码 {RECYCLED} 自 2024-09-21 起由当前用户持有" in chinese.text
    asked = http.get(
        PAGE, params={"token": token, "lang": "zh-CN"}, headers={"Accept-Language": "en"}
    )
    assert '<html lang="zh-CN">' in asked.text and 'class="verdict good"' in asked.text
    assert '<html lang="en">' in http.get(PAGE).text


@pytest.mark.usefixtures("recycled")
def test_the_print_page_has_both_languages_and_a_qr_code_to_verify(
    http: TestClient, issue: Callable[..., IssuedCertificate]
) -> None:
    issued = issue()
    page = http.get(PRINT, params={"token": issued.token})
    assert page.status_code == 200, page.text
    text = unescape(page.text)
    assert "@page { size: A4" in text
    assert RECYCLED in text and "2024-09-21" in text and "2024-02-25" in text
    assert "has been held by its current subscriber since 2024-09-21" in text
    assert "自 2024-09-21 起由当前用户持有" in text
    assert issued.claims.jti in text and issued.token in text
    assert issued.claims.expires_at.date().isoformat() in text
    assert "http://127.0.0.1:8000" in text
    assert re.search(r"<svg [^>]*viewBox=", page.text)
    verify_url = f"http://127.0.0.1:8000{PAGE}?token={issued.token}"
    assert verify_url in text
    assert qr_version(verify_url) <= 20  # at most 97 modules a side: scannable from A4
    assert "previous-owner" not in text and "new-owner" not in text


def test_only_a_number_in_service_gets_one(
    uow_factory: UnitOfWorkFactory, keys: CertificateKeys, report: Callable[..., None]
) -> None:
    now = datetime.now(UTC)
    with pytest.raises(NotInService, match="not on record"):
        issue_certificate(uow_factory, keys, RECYCLED, now, DEFAULT_VALIDITY)
    report(event("r1", "activated", "2023-10-09", "a"), event("r2", "cancelled", "2024-02-25"))
    with pytest.raises(NotInService, match="frozen"):
        issue_certificate(uow_factory, keys, RECYCLED, now, DEFAULT_VALIDITY)


def signed_in(http: TestClient, app: FastAPI, number: str) -> dict[str, str]:
    """A session for `number` through the SMS-code sign-in (the console sender's code)."""
    assert http.post("/v1/subscriber/sign-in/code", json={"number": number}).status_code == 202
    sms = app.state.senders[Channel.SMS].last(number)
    code = re.search(r"\b(\d{6})\b", sms).group(1)
    response = http.post("/v1/subscriber/sign-in", json={"number": number, "code": code})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['session']}"}


@pytest.mark.usefixtures("recycled")
def test_a_signed_in_subscriber_gets_a_certificate_of_their_number(
    http: TestClient, app: FastAPI, report: Callable[..., None]
) -> None:
    assert http.post(ISSUE).status_code == 401
    assert http.post(ISSUE, headers={"Authorization": "Bearer hos_nope"}).status_code == 401
    session = signed_in(http, app, RECYCLED)
    response = http.post(ISSUE, headers=session)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["claims"]["number"] == RECYCLED
    assert body["claims"]["held_since"] == "2024-09-21T00:00:00Z"
    assert body["claims"]["previous_tenure_ended"] == "2024-02-25"
    assert body["claims"] == segments(body["token"])[1]
    assert "previous-owner" not in response.text and "new-owner" not in response.text
    base = "http://127.0.0.1:8000"
    assert body["verify_url"] == f"{base}{PAGE}?token={body['token']}"
    assert body["print_url"] == f"{base}{PRINT}?token={body['token']}"
    assert verified(http, body["token"])["current"] is True
    assert http.get(body["print_url"].removeprefix(base)).status_code == 200

    report(event("r5", "suspended", "2025-01-05"))
    assert http.post(ISSUE, headers=session).status_code == 201  # suspended is in service
    report(event("r6", "resumed", "2025-01-06"), event("r7", "cancelled", "2025-01-10"))
    refused = http.post(ISSUE, headers=session)
    assert refused.status_code == 409, refused.text  # a frozen number's session lives on
    assert refused.json()["type"].endswith("/not-in-service")
