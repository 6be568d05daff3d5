"""Number ranges over HTTP, on both stores: activations outside the reporting carrier's
ranges are refused per item, and only the regulator reads the refusals."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from carrier_events import activation
from conftest import Client

Headers = Callable[..., dict[str, str]]
CSV = "event_id,number,event,occurred_at,subscriber,to_carrier\n"


def test_a_cn_carrier_cannot_activate_a_us_number(
    http: TestClient,
    register_carrier: Callable[..., Client],
    regulator: Client,
    as_client: Headers,
) -> None:
    cm, att = register_carrier("cm", "CN"), register_carrier("att", "US")
    body = {
        "events": [
            activation("c1", "+8613812345678"),
            activation("c2", "+16502530000"),
            activation("c3", "+8613012345678"),  # cu's block, and cu is not even registered
        ]
    }
    response = http.post("/v1/carrier/events", json=body, headers=as_client(cm))
    assert response.status_code == 200
    answer = response.json()
    assert (answer["accepted"], answer["rejected"]) == (1, {"outside_range": 2})
    assert [(r["index"], r["status"], r["reason"]) for r in answer["results"]] == [
        (0, "accepted", None),
        (1, "rejected", "outside_range"),
        (2, "rejected", "outside_range"),
    ]
    us = http.post(
        "/v1/carrier/events",
        json={"events": [activation("a1", "+16502530000")]},
        headers=as_client(att),
    )
    assert us.json()["accepted"] == 1, "the US number is still free for its range's holder"

    page = http.get("/v1/regulator/range-refusals", headers=as_client(regulator))
    assert page.status_code == 200
    items = page.json()["items"]
    assert [(i["carrier"], i["number"], i["event"], i["event_id"], i["ingest"]) for i in items] == [
        ("cm", "+16502530000", "activated", "c2", None),
        ("cm", "+8613012345678", "activated", "c3", None),
    ]
    assert items[0]["line"] == 1 and items[0]["occurred_at"].startswith("2024-01-01")
    assert page.json()["next_after"] is None
    one = http.get(
        "/v1/regulator/range-refusals",
        params={"limit": 1, "carrier": "cm"},
        headers=as_client(regulator),
    ).json()
    assert [i["event_id"] for i in one["items"]] == ["c2"] and one["next_after"] == items[0]["id"]
    rest = http.get(
        "/v1/regulator/range-refusals",
        params={"after": one["next_after"]},
        headers=as_client(regulator),
    ).json()
    assert [i["event_id"] for i in rest["items"]] == ["c3"]
    none = http.get(
        "/v1/regulator/range-refusals", params={"carrier": "att"}, headers=as_client(regulator)
    )
    assert none.json() == {"items": [], "next_after": None}


def test_a_file_row_outside_the_range_is_rejected_with_its_line(
    http: TestClient, cm: Client, regulator: Client, as_client: Headers
) -> None:
    body = (
        CSV
        + "f1,+8613812345678,activated,2024-01-01,s1,\nf2,+8618612345678,activated,2024-01-01,s2,\n"
    )
    response = http.post(
        "/v1/carrier/files",
        content=body.encode(),
        headers={**as_client(cm), "Content-Type": "text/csv"},
    )
    assert response.status_code in (200, 201, 202), response.text
    ingest = response.json()
    assert ingest["summary"]["rejected"] == {"outside_range": 1}
    rows = http.get(ingest["rejections_url"], headers=as_client(cm)).json()["items"]
    assert [(r["line"], r["reason"]) for r in rows] == [(3, "outside_range")]
    [refusal] = http.get("/v1/regulator/range-refusals", headers=as_client(regulator)).json()[
        "items"
    ]
    assert (refusal["ingest"], refusal["line"], refusal["number"]) == (
        ingest["id"],
        3,
        "+8618612345678",
    )


@pytest.mark.one_store
def test_only_the_regulator_reads_the_refusals(
    http: TestClient, cm: Client, as_client: Headers
) -> None:
    refused = http.get("/v1/regulator/range-refusals", headers=as_client(cm))
    assert refused.status_code == 403
    assert http.get("/v1/regulator/range-refusals").status_code == 401
