"""Subscribers over HTTP on both stores: sign-in with an SMS code, device credentials,
sessions (bearer and cookie), "me and my numbers" through the carrier's links, and the
alternative contact.

The API's SMS sender is the console sender; the tests read each code from it, as the demo
page does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from conftest import Client
from handover.domain.messages import Channel

Headers = Callable[..., dict[str, str]]
OLD, NEW, OTHER = "+8613800138000", "+8613900139000", "+8613700137000"


def report(http: TestClient, headers: dict[str, str], *events: tuple[str, ...]) -> None:
    items = []
    for index, (number, kind, at, *subscriber) in enumerate(events):
        item = {"event_id": f"e{index}", "number": number, "event": kind, "occurred_at": at}
        items.append(item | ({"subscriber": subscriber[0]} if subscriber else {}))
    response = http.post("/v1/carrier/events", json={"events": items}, headers=headers)
    assert response.json()["accepted"] == len(items), response.text


@pytest.fixture
def story(http: TestClient, cm: Client, as_client: Headers) -> dict[str, str]:
    """S0 held OLD from 2019 until it was recycled to S9 in 2024; S0 is now S1 on NEW."""
    headers = as_client(cm)
    report(
        http,
        headers,
        (OLD, "activated", "2019-01-01", "S0"),
        (OLD, "cancelled", "2024-01-01"),
        (OLD, "released", "2024-06-01"),
        (OLD, "activated", "2024-07-01", "S9"),
        (NEW, "activated", "2024-02-01", "S1"),
    )
    return headers


def code_for(app: FastAPI, number: str) -> str:
    text = app.state.senders[Channel.SMS].last(number)
    assert text is not None, "no SMS was sent"
    found = re.search(r"\b(\d{6})\b", text)
    assert found is not None
    return found.group(1)


def long_code_for(app: FastAPI, number: str) -> str:
    text = app.state.senders[Channel.SMS].last(number) or ""
    found = re.search(r"\b([0-9A-Z]{4}(?:-[0-9A-Z]{4}){3})\b", text)
    assert found is not None, text
    return found.group(1)


def texts(app: FastAPI, number: str) -> int:
    return len(app.state.senders[Channel.SMS].messages(number))


def ask(http: TestClient, number: str) -> httpx.Response:
    return http.post("/v1/subscriber/sign-in/code", json={"number": number})


def signed_in(http: TestClient, app: FastAPI, number: str) -> dict[str, str]:
    assert ask(http, number).status_code == 202
    response = http.post(
        "/v1/subscriber/sign-in", json={"number": number, "code": code_for(app, number)}
    )
    assert response.status_code == 200, response.text
    http.cookies.clear()  # each caller below says who it is with its bearer token
    return {"Authorization": f"Bearer {response.json()['session']}"}


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"].endswith("/" + slug)
    return body


def test_sign_in_with_the_code_sent_by_sms(
    http: TestClient, app: FastAPI, story: dict[str, str]
) -> None:
    asked = ask(http, NEW)
    assert asked.status_code == 202
    assert asked.json()["expires_in"] == 300
    response = http.post("/v1/subscriber/sign-in", json={"number": NEW, "code": code_for(app, NEW)})
    assert response.status_code == 200, response.text
    token = response.json()["session"]
    assert token.startswith("hos_") and response.json()["expires_at"]
    cookie, device_cookie = response.headers.get_list("set-cookie")
    assert f"handover_session={token}" in cookie
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    device = response.json()["device"]
    assert device.startswith("hod_") and response.json()["device_expires_at"]
    assert f"handover_device={device}" in device_cookie
    assert "HttpOnly" in device_cookie and "SameSite=strict" in device_cookie
    assert "Path=/v1/subscriber/sign-in" in device_cookie and "Max-Age=7776000" in device_cookie
    me = http.get("/v1/subscriber/me")  # the cookie alone signs the request in
    assert me.status_code == 200, me.text
    assert (me.json()["number"], me.json()["state"]) == (NEW, "active")
    assert me.json()["tenure_start"].startswith("2024-02-01")
    http.cookies.clear()
    bearer = {"Authorization": f"Bearer {token}"}
    assert http.get("/v1/subscriber/me", headers=bearer).status_code == 200


def test_every_refusal_is_a_problem(http: TestClient, app: FastAPI, story: dict[str, str]) -> None:
    assert_problem(ask(http, "+86123"), 400, "invalid-number")
    assert ask(http, NEW).status_code == 202
    code = code_for(app, NEW)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    sign = "/v1/subscriber/sign-in"
    assert_problem(http.post(sign, json={"number": NEW, "code": "12ab"}), 400, "invalid-code")
    assert_problem(http.post(sign, json={"number": NEW, "code": wrong}), 401, "wrong-code")
    assert http.post(sign, json={"number": NEW, "code": code}).status_code == 200
    assert_problem(http.post(sign, json={"number": NEW, "code": code}), 401, "no-code")
    assert_problem(http.post(sign, json={"number": NEW}), 422, "invalid-request")


def test_asking_again_while_a_code_lives_sends_nothing_and_answers_the_same(
    http: TestClient, app: FastAPI, story: dict[str, str]
) -> None:
    first = ask(http, NEW)
    again = ask(http, NEW)
    assert (
        (first.status_code, first.json())
        == (again.status_code, again.json())
        == (
            202,
            first.json(),
        )
    )
    assert texts(app, NEW) == 1


def test_a_device_asking_again_too_soon_is_429_with_retry_after(
    http: TestClient, app: FastAPI, story: dict[str, str]
) -> None:
    """The device credential comes back in the cookie the sign-in set, or in a header."""
    assert ask(http, NEW).status_code == 202
    signed = http.post("/v1/subscriber/sign-in", json={"number": NEW, "code": code_for(app, NEW)})
    device = signed.json()["device"]
    assert ask(http, NEW).status_code == 202  # the cookie: the device's own code
    assert texts(app, NEW) == 2
    again = ask(http, NEW)
    body = assert_problem(again, 429, "too-many-codes")
    assert 55 <= int(again.headers["Retry-After"]) <= 60
    assert body["retry_after"] == int(again.headers["Retry-After"])
    http.cookies.clear()
    assert ask(http, NEW).status_code == 202  # no credential: the anonymous lane, still live
    header = {"Handover-Device": device}
    assert_problem(
        http.post("/v1/subscriber/sign-in/code", json={"number": NEW}, headers=header),
        429,
        "too-many-codes",
    )
    again = http.post(
        "/v1/subscriber/sign-in", json={"number": NEW, "code": code_for(app, NEW)}, headers=header
    )
    assert again.status_code == 200, again.text
    assert again.json()["device"] == device


def test_unknown_numbers_get_the_same_answer_and_no_sms(
    http: TestClient, app: FastAPI, story: dict[str, str]
) -> None:
    unknown = ask(http, OTHER)
    assert (unknown.status_code, unknown.json()) == (202, ask(http, "+8613600136000").json())
    assert app.state.senders[Channel.SMS].last(OTHER) is None


def test_five_wrong_codes_burn_the_digits_and_the_long_code_still_signs_in(
    http: TestClient, app: FastAPI, story: dict[str, str]
) -> None:
    assert ask(http, NEW).status_code == 202
    code = code_for(app, NEW)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    sign = "/v1/subscriber/sign-in"
    for _ in range(5):
        assert_problem(http.post(sign, json={"number": NEW, "code": wrong}), 401, "wrong-code")
    burnt = http.post(sign, json={"number": NEW, "code": code})
    assert "long code" in assert_problem(burnt, 401, "code-burnt")["detail"]
    assert "Retry-After" not in burnt.headers
    signed = http.post(sign, json={"number": NEW, "code": long_code_for(app, NEW)})
    assert signed.status_code == 200, signed.text


def test_sign_out_ends_the_session_and_clears_the_cookie(
    http: TestClient, app: FastAPI, story: dict[str, str]
) -> None:
    bearer = signed_in(http, app, NEW)
    out = http.post("/v1/subscriber/sign-out", headers=bearer)
    assert out.status_code == 204
    assert 'handover_session=""' in out.headers["set-cookie"]
    assert_problem(http.get("/v1/subscriber/me", headers=bearer), 401, "not-signed-in")
    assert http.post("/v1/subscriber/sign-out").status_code == 204


def test_only_a_session_opens_the_subscriber_api(
    http: TestClient, story: dict[str, str], cm: Client, as_client: Headers
) -> None:
    assert_problem(http.get("/v1/subscriber/me"), 401, "not-signed-in")
    machine = as_client(cm)  # a carrier's access token is not a person's session
    assert_problem(http.get("/v1/subscriber/me", headers=machine), 401, "not-signed-in")
    forged = {"Authorization": "Bearer hos_" + "A" * 43}
    assert_problem(http.get("/v1/subscriber/contact", headers=forged), 401, "not-signed-in")


def test_my_numbers_include_those_the_carrier_linked_and_no_one_elses(
    http: TestClient, app: FastAPI, story: dict[str, str]
) -> None:
    linked = http.put(
        "/v1/carrier/subscriber-links", json={"subscriber": "S1", "same_as": ["S0"]}, headers=story
    )
    assert linked.json() == {"subscriber": "S1", "same_as": ["S0"], "created": 1}
    me = http.get("/v1/subscriber/me", headers=signed_in(http, app, NEW)).json()
    assert [(n["number"], n["current"], n["state"]) for n in me["numbers"]] == [
        (NEW, True, "active"),
        (OLD, False, None),
    ]
    assert me["numbers"][1]["held_from"].startswith("2019-01-01")
    assert me["numbers"][1]["held_to"].startswith("2024-01-01")
    stranger = http.get("/v1/subscriber/me", headers=signed_in(http, app, OLD)).json()
    assert [(n["number"], n["held_from"][:10]) for n in stranger["numbers"]] == [
        (OLD, "2024-07-01")
    ]


def test_links_are_idempotent_carrier_scoped_and_validated(
    http: TestClient, story: dict[str, str], cu: Client, regulator: Client, as_client: Headers
) -> None:
    url = "/v1/carrier/subscriber-links"
    body = {"subscriber": "S1", "same_as": ["S0"]}
    assert http.put(url, json=body, headers=story).json()["created"] == 1
    assert http.put(url, json=body, headers=story).json()["created"] == 0
    assert http.put(url, json=body, headers=as_client(cu)).json()["created"] == 1  # cu's own S1
    chained = http.put(url, json={"subscriber": "S2", "same_as": ["S0"]}, headers=story)
    assert chained.json()["same_as"] == ["S0", "S1"]
    for bad in ({"subscriber": "S1", "same_as": []}, {"subscriber": "S1", "same_as": ["S1"]}):
        assert_problem(http.put(url, json=bad, headers=story), 422, "invalid-links")
    assert_problem(http.put(url, json={"same_as": ["S0"]}, headers=story), 422, "invalid-request")
    assert http.put(url, json=body, headers=as_client(regulator)).status_code == 403
    assert http.put(url, json=body).status_code == 401


def test_a_contact_is_set_read_and_removed_by_its_person_only(
    http: TestClient, app: FastAPI, story: dict[str, str]
) -> None:
    bearer = signed_in(http, app, NEW)
    url = "/v1/subscriber/contact"
    assert_problem(http.get(url, headers=bearer), 404, "no-contact")
    put = http.put(
        url,
        json={"channel": "email", "address": " li.na@example.com ", "language": "zh-CN"},
        headers=bearer,
    )
    assert put.status_code == 200, put.text
    got = http.get(url, headers=bearer).json()
    assert (got["channel"], got["address"], got["language"]) == (
        "email",
        "li.na@example.com",
        "zh-CN",
    )
    bad = http.put(url, json={"channel": "fax", "address": "x", "language": "en"}, headers=bearer)
    assert_problem(bad, 422, "invalid-contact")
    stranger = signed_in(http, app, OLD)
    assert_problem(http.get(url, headers=stranger), 404, "no-contact")
    assert http.delete(url, headers=bearer).status_code == 204
    assert_problem(http.get(url, headers=bearer), 404, "no-contact")
