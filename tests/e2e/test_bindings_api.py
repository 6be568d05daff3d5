"""The binding registry over HTTP (`/v1/platform/bindings`), on both stores."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from conftest import Client
from handover.services import access
from handover.services.ports import UnitOfWorkFactory

Headers = Callable[..., dict[str, str]]
URL = "/v1/platform/bindings"


def binding(number: str = "+8613800138000", ref: str = "acct-1", **changes: Any) -> dict[str, Any]:
    return {
        "number": number,
        "account_ref": ref,
        "bound_since": "2019-04-01",
        "tier": "high",
    } | changes


@pytest.fixture
def platforms(uow_factory: UnitOfWorkFactory) -> dict[str, Client]:
    found = {}
    for platform_id in ("lender", "cloud"):
        _, credentials = access.register_platform(
            uow_factory, platform_id, platform_id.title(), "lending", "high"
        )
        found[platform_id] = Client(credentials.client_id, credentials.client_secret)
    return found


def put(http: TestClient, headers: dict[str, str], *items: dict[str, Any]) -> Any:
    return http.put(URL, json={"bindings": list(items)}, headers=headers)


def listed(http: TestClient, headers: dict[str, str], **query: Any) -> list[dict[str, Any]]:
    response = http.get(URL, params=query, headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_registering_is_idempotent_and_updates_what_changed(
    http: TestClient, platforms: dict[str, Client], as_client: Headers
) -> None:
    headers = as_client(platforms["lender"])
    batch = [binding(), binding(ref="acct-2", tier="low"), binding("+8613900139000", "acct-3")]
    response = put(http, headers, *batch)
    assert response.json() == {"created": 3, "updated": 0, "unchanged": 0}
    again = put(http, headers, binding(), binding(ref="acct-2", tier="medium"))
    assert again.json() == {"created": 0, "updated": 1, "unchanged": 1}
    items = listed(http, headers)
    assert [(i["number"], i["account_ref"], i["tier"]) for i in items] == [
        ("+8613800138000", "acct-1", "high"),
        ("+8613800138000", "acct-2", "medium"),
        ("+8613900139000", "acct-3", "high"),
    ]
    assert items[0]["bound_since"].startswith("2019-04-01T00:00:00")


def test_one_bad_item_refuses_the_whole_batch_and_says_which(
    http: TestClient, platforms: dict[str, Client], as_client: Headers
) -> None:
    headers = as_client(platforms["lender"])
    response = put(
        http,
        headers,
        binding(),
        binding(number="+86123"),
        binding(ref="acct-2", bound_since="2999-01-01"),
        binding(ref="acct-3", tier="platinum"),
        binding(),  # repeats item 0
        {**binding(ref="acct-4"), "name": "Zhang San"},
        binding(number="13800138000", ref="acct-5"),  # national: a platform has no region
        binding(ref="acct-3"),  # repeats item 3, though item 3 itself is faulty
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    errors = {fault["index"]: fault["detail"] for fault in body["errors"]}
    assert list(errors) == [1, 2, 3, 4, 5, 6, 7], "every faulty item, in batch order"
    assert "future" in errors[2] and "tier" in errors[3] and "unknown fields" in errors[5]
    assert "came earlier" in errors[4] and "came earlier" in errors[7]
    assert "no region" in errors[6]
    assert body["detail"] == "7 item(s) cannot be used"
    assert listed(http, headers) == [], "nothing was written"
    twice = put(http, headers, binding(), binding())
    assert twice.status_code == 422 and twice.json()["errors"][0]["index"] == 1


@pytest.mark.parametrize(
    "body",
    [[], {"bindings": "no"}, {"bindings": [], "more": 1}, {"items": []}],
)
@pytest.mark.one_store
def test_a_body_that_is_not_a_batch_is_refused(
    http: TestClient, platforms: dict[str, Client], as_client: Headers, body: Any
) -> None:
    response = http.put(URL, json=body, headers=as_client(platforms["lender"]))
    assert response.status_code == 422


def test_a_platform_sees_and_removes_only_its_own_bindings(
    http: TestClient, platforms: dict[str, Client], as_client: Headers
) -> None:
    lender, cloud = as_client(platforms["lender"]), as_client(platforms["cloud"])
    put(http, lender, binding(), binding(ref="acct-2"))
    put(http, cloud, binding(ref="acct-1"))
    assert [i["account_ref"] for i in listed(http, cloud)] == ["acct-1"]
    removed = http.request("DELETE", URL, json={"bindings": [binding()]}, headers=cloud)
    assert removed.json() == {"removed": 1}
    assert len(listed(http, lender)) == 2, "the other platform's binding is untouched"
    again = http.request("DELETE", URL, json={"bindings": [binding()]}, headers=cloud)
    assert again.json() == {"removed": 0}


def test_pages_and_the_number_filter(
    http: TestClient, platforms: dict[str, Client], as_client: Headers
) -> None:
    headers = as_client(platforms["lender"])
    put(http, headers, *[binding(ref=f"acct-{i:02d}") for i in range(5)])
    put(http, headers, binding(number="+8613900139000"))
    seen, cursor = [], None
    while True:
        query: dict[str, Any] = {"limit": 2, "number": "+8613800138000"}
        query |= {"cursor": cursor} if cursor else {}
        response = http.get(URL, params=query, headers=headers)
        page = response.json()
        seen += [item["account_ref"] for item in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == [f"acct-{i:02d}" for i in range(5)], "only that number, in pages of 2"
    bad = http.get(URL, params={"cursor": "%%%"}, headers=headers)
    assert bad.status_code == 422


def test_the_number_filter_wants_e164_not_the_national_format(
    http: TestClient, platforms: dict[str, Client], as_client: Headers
) -> None:
    """A platform has no country, so a national number cannot be read: the filter refuses
    it (422, saying why) rather than listing nothing or everything."""
    headers = as_client(platforms["lender"])
    put(http, headers, binding(), binding(number="+8613900139000"))
    assert [i["number"] for i in listed(http, headers, number="+86 138 0013 8000")] == [
        "+8613800138000"
    ]
    national = http.get(URL, params={"number": "13800138000"}, headers=headers)
    assert national.status_code == 422, national.text
    assert national.headers["content-type"].startswith("application/problem+json")
    assert "no region was given" in national.json()["errors"][0]["detail"]


@pytest.mark.one_store
def test_only_platform_clients_with_the_scope_may_use_the_registry(
    http: TestClient, platforms: dict[str, Client], regulator: Client, as_client: Headers
) -> None:
    assert http.get(URL).status_code == 401
    assert http.get(URL, headers=as_client(regulator)).status_code == 403
    narrow = as_client(platforms["lender"], "check")
    assert put(http, narrow, binding()).status_code == 403


# -- the activation notice ------------------------------------------------------------------

NUMBER = "+8613800138000"
RECYCLED = [
    {"event_id": "a", "number": NUMBER, "event": "activated", "occurred_at": "2019-01-10",
     "subscriber": "first"},
    {"event_id": "c", "number": NUMBER, "event": "cancelled", "occurred_at": "2022-02-10"},
    {"event_id": "r", "number": NUMBER, "event": "released", "occurred_at": "2022-06-10"},
    {"event_id": "b", "number": NUMBER, "event": "activated", "occurred_at": "2022-07-01",
     "subscriber": "second"},
]  # fmt: skip


def notice(http: TestClient, headers: dict[str, str], number: str = NUMBER) -> Any:
    return http.get(f"/v1/carrier/numbers/{number}/activation-notice", headers=headers)


def test_the_notice_names_the_platforms_left_from_an_earlier_tenure(
    http: TestClient,
    platforms: dict[str, Client],
    cm: Client,
    cu: Client,
    regulator: Client,
    as_client: Headers,
) -> None:
    carrier = as_client(cm)
    reported = http.post("/v1/carrier/events", json={"events": RECYCLED}, headers=carrier)
    assert reported.json()["accepted"] == 4
    put(http, as_client(platforms["lender"]), binding(bound_since="2020-05-01"))
    put(http, as_client(platforms["cloud"]), binding(bound_since="2022-07-01T00:00:00Z"))
    answer = notice(http, carrier)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["used_before"] is True
    assert body["tenure_start"].startswith("2022-07-01")
    # The new subscriber's own account (bound at the tenure's start) is not the old one's.
    assert body["platforms"] == [{"name": "Lender", "category": "lending"}]
    assert "Lender" in body["message"]["en"] and "Lender" in body["message"]["zh-CN"]
    assert "acct" not in answer.text, "never an account ref"
    assert notice(http, as_client(regulator)).status_code == 200
    assert notice(http, as_client(cu)).status_code == 404, "another carrier's number"


def test_the_notice_of_a_first_tenure_or_a_number_without_subscriber(
    http: TestClient, cm: Client, as_client: Headers
) -> None:
    carrier = as_client(cm)
    http.post("/v1/carrier/events", json={"events": RECYCLED[:1]}, headers=carrier)
    first = notice(http, carrier).json()
    assert (first["used_before"], first["platforms"]) == (False, [])
    http.post("/v1/carrier/events", json={"events": RECYCLED[1:2]}, headers=carrier)
    frozen = notice(http, carrier)
    assert frozen.status_code == 409
    assert notice(http, carrier, "+8613900139000").status_code == 404
    assert notice(http, carrier, "12345").status_code == 422
