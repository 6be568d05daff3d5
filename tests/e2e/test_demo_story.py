"""The demo's renewal story (`handover demo`), seeded on each store and followed over HTTP
as its printed instructions tell a person to: what the help promises is what the store holds.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from handover.cli import demo_help
from handover.commands import demo_story
from handover.commands.demo_story import ALICE_NOW, OVERDUE, RECYCLED, Story, seed_story
from handover.domain.messages import Channel
from handover.services.access import IssuedCredentials
from handover.services.ports import UnitOfWorkFactory

BASE = "http://127.0.0.1:8000"


@pytest.fixture
def story(uow_factory: UnitOfWorkFactory) -> Story:
    return seed_story(uow_factory)


@pytest.fixture
def help_text(story: Story) -> str:
    return demo_help(story, BASE, Path("var/demo.db"), "http://127.0.0.1:8001")


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def sign_in(http: TestClient, app: FastAPI, number: str) -> dict[str, str]:
    """As the help says: ask for a code, read it where the console SMS sender put it."""
    ok(http.post("/v1/subscriber/sign-in/code", json={"number": number}), 202)
    sms = app.state.senders[Channel.SMS].last(number) or ""
    code = re.search(r"\d{6}", sms)
    assert code, sms
    body = {"number": number, "code": code.group()}
    session = ok(http.post("/v1/subscriber/sign-in", json=body))["session"]
    http.cookies.clear()
    return {"Authorization": f"Bearer {session}"}


def bearer(http: TestClient, client: IssuedCredentials) -> dict[str, str]:
    form = {"grant_type": "client_credentials"}
    token = ok(http.post("/oauth/token", data=form, auth=(client.client_id, client.client_secret)))
    return {"Authorization": f"Bearer {token['access_token']}"}


def renewal_body(help_text: str) -> dict[str, Any]:
    """The JSON the help's renewal step sends."""
    found = re.search(r"/v1/subscriber/renewals -d '(\{.*?\})'", help_text)
    assert found, "the help has a renewal step"
    body: dict[str, Any] = json.loads(found.group(1))
    return body


def test_the_help_names_the_story_and_every_credential(story: Story, help_text: str) -> None:
    for number in (RECYCLED, ALICE_NOW, OVERDUE):
        assert number in help_text
    for credentials in (story.carrier, story.regulator, *story.platforms.values()):
        assert credentials.client_id in help_text
        assert credentials.client_secret in help_text
    assert set(story.platforms) == set(demo_story.PLATFORMS)
    for step in (
        "/v1/subscriber/sign-in/code",
        "/v1/subscriber/renewal\n",
        "/v1/subscriber/renewals/$RENEWAL",
        "/v1/platform/cases/$CASE/outcome",
        "/v1/subscriber/certificates",
        "/v1/subscriber/checklist",
        "/v1/regulator/cases/overdue",
    ):
        assert step in help_text, step


def test_bob_renews_the_recycled_number_as_the_help_says(
    story: Story, help_text: str, http: TestClient, app: FastAPI
) -> None:
    bob = sign_in(http, app, RECYCLED)
    choice = ok(http.get("/v1/subscriber/renewal", headers=bob))
    listed = [p["id"] for p in choice["listed"]]
    others = [p["id"] for p in choice["others"]]
    # The help selects the platforms that still list alice's accounts, and all others.
    body = renewal_body(help_text)
    assert sorted(body["platforms"]) == listed == ["demo-bank", "demo-chat", "demo-pay"]
    assert body["check_all_others"] is True
    assert others == ["demo-loans", "demo-shop"]
    assert "account_ref" not in json.dumps(choice)

    renewal = ok(http.post("/v1/subscriber/renewals", json=body, headers=bob), 201)
    assert sorted(c["platform"]["id"] for c in renewal["cases"]) == sorted(demo_story.PLATFORMS)
    assert renewal["counts"] == {"open": 5}

    # Step 11: Demo Bank's one open case is bob's; answering it shows in his renewal.
    bank = bearer(http, story.platforms["demo-bank"])
    (case,) = ok(http.get("/v1/platform/cases", params={"state": "open"}, headers=bank))["items"]
    assert case["number"] == RECYCLED
    url = f"/v1/platform/cases/{case['id']}/outcome"
    ok(http.post(url, json={"outcome": "unbound"}, headers=bank))
    progress = ok(http.get(f"/v1/subscriber/renewals/{renewal['id']}", headers=bob))
    assert progress["counts"] == {"open": 4, "unbound": 1}

    certificate = ok(http.post("/v1/subscriber/certificates", headers=bob), 201)
    assert certificate["claims"]["number"] == RECYCLED
    assert certificate["claims"]["reassigned"] is True
    printed = httpx.URL(certificate["print_url"])
    assert http.get(printed.raw_path.decode()).status_code == 200


def test_alice_has_a_checklist_and_the_regulator_an_overdue_case(
    story: Story, http: TestClient, app: FastAPI
) -> None:
    alice = sign_in(http, app, ALICE_NOW)
    (checklist,) = ok(http.get("/v1/subscriber/checklist", headers=alice))
    assert checklist["number"] == ALICE_NOW
    items = {(i["platform"]["id"], i["tier"]) for i in checklist["items"]}
    assert items == {("demo-bank", "high"), ("demo-shop", "low")}
    assert checklist["readiness"]["ready"] is False
    held = ok(http.get("/v1/subscriber/me", headers=alice))["numbers"]
    assert {(n["number"], n["current"]) for n in held} == {(ALICE_NOW, True), (RECYCLED, False)}

    regulator = bearer(http, story.regulator)
    (overdue,) = ok(http.get("/v1/regulator/cases/overdue", headers=regulator))
    assert (overdue["number"], overdue["platform"]["id"]) == (OVERDUE, "demo-loans")
    assert overdue["overdue_seconds"] > 2 * 24 * 3600
