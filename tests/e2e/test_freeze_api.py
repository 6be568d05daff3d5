"""The freeze policy over HTTP, on both stores: held releases, overrides, release advice.

The freeze here started in 2025, before the test runs, so Handover learns of it after it
could have ended: only the minimum and the bindings hold (reminders are tested in
tests/integration/test_freeze_reminders.py with the services' clock).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from conftest import Client
from handover.services import access
from handover.services.ports import UnitOfWorkFactory

Headers = Callable[..., dict[str, str]]
NUMBER = "+8613800138000"
BINDINGS = "/v1/platform/bindings"
FROZEN = [
    {"event_id": "a", "number": NUMBER, "event": "activated", "occurred_at": "2024-03-01",
     "subscriber": "s1"},
    {"event_id": "c", "number": NUMBER, "event": "cancelled", "occurred_at": "2025-06-01"},
]  # fmt: skip
#: 90 days after cancellation (CN) and 365 days after it (the cap).
MINIMUM, CAP = "2025-08-30", "2026-06-01"


def release(event_id: str = "r", at: str = "2025-10-01", **extra: Any) -> dict[str, Any]:
    return {"event_id": event_id, "number": NUMBER, "event": "released", "occurred_at": at} | extra


@pytest.fixture
def lender(uow_factory: UnitOfWorkFactory) -> Client:
    _, credentials = access.register_platform(uow_factory, "lender", "Lender", "lending", "high")
    return Client(credentials.client_id, credentials.client_secret)


@pytest.fixture
def frozen(http: TestClient, cm: Client, as_client: Headers) -> dict[str, str]:
    """cm's number, held by s1 since 2024-03-01 and cancelled on 2025-06-01."""
    headers = as_client(cm)
    assert report(http, headers, *FROZEN)["accepted"] == 2
    return headers


def report(http: TestClient, headers: dict[str, str], *events: dict[str, Any]) -> Any:
    response = http.post("/v1/carrier/events", json={"events": list(events)}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def bind(http: TestClient, headers: dict[str, str], since: str, tier: str = "high") -> None:
    item = {"number": NUMBER, "account_ref": f"acct-{since}", "bound_since": since, "tier": tier}
    response = http.put(BINDINGS, json={"bindings": [item]}, headers=headers)
    assert response.status_code == 200, response.text


def advice(http: TestClient, headers: dict[str, str], number: str = NUMBER) -> Any:
    return http.get(f"/v1/carrier/numbers/{number}/release-advice", headers=headers)


def test_a_release_before_the_minimum_is_refused_as_before(
    http: TestClient, frozen: dict[str, str]
) -> None:
    result = report(http, frozen, release(at="2025-08-01"))["results"][0]
    assert result["reason"] == "freeze_not_over" and MINIMUM in result["detail"]


def test_an_unresolved_high_binding_holds_until_the_platform_removes_it(
    http: TestClient, frozen: dict[str, str], lender: Client, as_client: Headers
) -> None:
    platform = as_client(lender)
    bind(http, platform, "2024-05-01")
    held = report(http, frozen, release())["results"][0]
    assert held["status"] == "rejected" and held["reason"] == "freeze_not_over"
    assert CAP in held["detail"] and "high-value" in held["detail"]
    item = {"number": NUMBER, "account_ref": "acct-2024-05-01"}
    removed = http.request("DELETE", BINDINGS, json={"bindings": [item]}, headers=platform)
    assert removed.json() == {"removed": 1}
    assert report(http, frozen, release())["accepted"] == 1


@pytest.mark.parametrize(
    ("since", "tier"),
    [("2023-01-01", "high"), ("2024-05-01", "medium"), ("2024-05-01", "low")],
    ids=["an earlier holder's", "medium", "low"],
)
def test_bindings_that_do_not_hold_the_release(
    http: TestClient,
    frozen: dict[str, str],
    lender: Client,
    as_client: Headers,
    since: str,
    tier: str,
) -> None:
    bind(http, as_client(lender), since, tier)
    assert report(http, frozen, release())["accepted"] == 1


def test_an_override_is_accepted_recorded_and_logged_and_a_retry_is_a_duplicate(
    http: TestClient,
    frozen: dict[str, str],
    lender: Client,
    as_client: Headers,
    uow_factory: UnitOfWorkFactory,
) -> None:
    bind(http, as_client(lender), "2024-05-01")
    forced = release(override_reason="number returned to the regulator's pool")
    result = report(http, frozen, forced)
    assert result["accepted"] == 1
    with uow_factory() as uow:
        assert uow.freeze.overrides("cm", ["r", "other"]) == {
            "r": "number returned to the regulator's pool"
        }
        index = result["results"][0]["log_index"]
        entry = json.loads(next(uow.log.leaves(index, index + 1))[1])
    assert entry["event"] == "released"
    assert entry["override"] == {"reason": "number returned to the regulator's pool"}
    again = report(http, frozen, forced)
    assert again["duplicates"] == 1 and again["accepted"] == 0
    plain = report(http, frozen, release())["results"][0]
    assert plain["reason"] == "duplicate_event_id_conflict", "the override is part of it"


def test_an_override_is_checked(http: TestClient, frozen: dict[str, str]) -> None:
    too_long = http.post(
        "/v1/carrier/events",
        json={"events": [release(override_reason="x" * 501)]},
        headers=frozen,
    )
    assert too_long.status_code == 422
    cancelled = {**FROZEN[1], "event_id": "c2", "override_reason": "why"}
    assert report(http, frozen, cancelled)["results"][0]["reason"] == "malformed_row"


def test_the_release_advice_for_the_holding_carrier_and_the_regulator(
    http: TestClient,
    frozen: dict[str, str],
    lender: Client,
    cu: Client,
    regulator: Client,
    as_client: Headers,
) -> None:
    bind(http, as_client(lender), "2024-05-01")
    answer = advice(http, frozen)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["number"] == NUMBER and body["state"] == "frozen"
    assert body["cancelled_at"].startswith("2025-06-01")
    assert body["minimum_release"].startswith(MINIMUM)
    assert body["earliest_release"].startswith(CAP)
    holds = {hold["reason"]: hold for hold in body["holds"]}
    assert set(holds) == {"minimum_freeze", "unresolved_high_bindings"}
    assert holds["unresolved_high_bindings"]["platforms"] == ["Lender"]
    assert "platforms" not in holds["minimum_freeze"]
    assert "acct" not in answer.text, "never an account ref"
    assert advice(http, as_client(regulator)).status_code == 200
    assert advice(http, as_client(cu)).status_code == 404, "another carrier's number"


def test_the_release_advice_of_a_number_not_frozen_or_invalid(
    http: TestClient, cm: Client, as_client: Headers
) -> None:
    headers = as_client(cm)
    report(http, headers, FROZEN[0])
    busy = advice(http, headers)
    assert busy.status_code == 409 and "not frozen" in busy.json()["detail"]
    assert advice(http, headers, "+86123").status_code == 422
    assert advice(http, headers, "+8613900139000").status_code == 404
