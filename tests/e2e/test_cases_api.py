"""Renewal cases over HTTP, on both stores: the new owner, the platforms, the regulator and
the previous owner, each through its own routes and credentials (docs/cases.md).

The world is built the way production builds it: the carrier reports lifecycle events
(`POST /v1/carrier/events`) and links subscriber refs, platforms register bindings
(`PUT /v1/platform/bindings`), people sign in with the SMS code the console sender holds.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from test_api import assert_problem

from conftest import Client
from handover.domain.messages import Channel
from handover.services import access
from handover.services import cases as case_service
from handover.services.ports import UnitOfWorkFactory

Headers = dict[str, str]

#: Held by s1 from 2022, cancelled, released after the 90-day freeze, s2's since 2023-07-01.
NUMBER = "+8613812345678"
#: s1's number now; s0 held it before s1 (from 2020-07-01).
MINE = "+8613900139000"
#: s1's too, under another ref the carrier links to s1.
SPARE = "+8613700137000"
#: Someone else's (s9).
STRANGER = "+8613600136000"
NEW_TENURE = datetime(2023, 7, 1, tzinfo=UTC)
MY_TENURE = datetime(2020, 7, 1, tzinfo=UTC)

EVENTS = [
    ("n1", NUMBER, "activated", "2022-01-01", "s1"),
    ("n2", NUMBER, "cancelled", "2023-01-01", None),
    ("n3", NUMBER, "released", "2023-06-01", None),
    ("n4", NUMBER, "activated", "2023-07-01", "s2"),
    ("m1", MINE, "activated", "2019-01-01", "s0"),
    ("m2", MINE, "cancelled", "2019-06-01", None),
    ("m3", MINE, "released", "2019-10-01", None),
    ("m4", MINE, "activated", "2020-07-01", "s1"),
    ("p1", SPARE, "activated", "2021-01-01", "s1-alt"),
    ("x1", STRANGER, "activated", "2021-05-01", "s9"),
]
#: platform -> (number, account ref, bound since, tier).
BINDINGS = {
    "bank": [
        (NUMBER, "b-old", "2022-03-01", "high"),  # s1's, left on the recycled number
        (MINE, "b-mine", "2021-01-01", "high"),
        (STRANGER, "b-stranger", "2021-06-01", "high"),
    ],
    "chat": [
        (NUMBER, "c-old", "2022-04-01", "medium"),  # s1's, left on the recycled number
        (NUMBER, "c-new", "2023-08-01", "medium"),  # s2's own: never touched by a renewal
        (MINE, "c-mine", "2021-02-01", "medium"),
        (MINE, "c-s0", "2019-02-01", "medium"),  # s0's, before s1's tenure of MINE
    ],
}
#: Every account ref a new owner of NUMBER must never read.
PREVIOUS_REFS = ("b-old", "c-old", "b-mine", "c-mine", "c-s0", "b-stranger")
PLATFORMS = {
    "bank": ("Bank", "banking", 24),
    "chat": ("Chat", "social", 72),
    "shop": ("Shop", "e_commerce", 72),
}


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def refs_absent(text: str, refs: tuple[str, ...] = PREVIOUS_REFS) -> None:
    assert "account_ref" not in text
    for ref in refs:
        assert ref not in text, ref


@dataclass
class World:
    http: TestClient
    app: FastAPI
    carrier: Headers
    platform: dict[str, Headers]
    regulator: Headers
    sessions: dict[str, Headers] = field(default_factory=dict)

    def sign_in(self, number: str) -> Headers:
        """A session for the holder of `number`: ask for a code, read it off the console
        SMS sender, exchange it. The cookie is dropped, so only the bearer counts."""
        if number not in self.sessions:
            ok(self.http.post("/v1/subscriber/sign-in/code", json={"number": number}), 202)
            sms = self.app.state.senders[Channel.SMS].last(number)
            found = re.search(r"(\d{6})", sms or "")
            assert found, sms
            body = {"number": number, "code": found.group(1)}
            session = ok(self.http.post("/v1/subscriber/sign-in", json=body))["session"]
            self.http.cookies.clear()
            self.sessions[number] = {"Authorization": f"Bearer {session}"}
        return self.sessions[number]

    def answer(self, platform: str, case_id: str, outcome: str, reason: str | None = None) -> Any:
        body = {"outcome": outcome} | ({"reason": reason} if reason is not None else {})
        url = f"/v1/platform/cases/{case_id}/outcome"
        return self.http.post(url, json=body, headers=self.platform[platform])

    def get(self, url: str, headers: Headers, **params: Any) -> Any:
        return ok(self.http.get(url, headers=headers, params=params))


@pytest.fixture
def world(
    http: TestClient,
    app: FastAPI,
    uow_factory: UnitOfWorkFactory,
    cm: Client,
    regulator: Client,
    as_client: Callable[..., Headers],
) -> World:
    clients = {}
    for platform_id, (name, category, _) in PLATFORMS.items():
        _, credentials = access.register_platform(uow_factory, platform_id, name, category, "high")
        clients[platform_id] = Client(credentials.client_id, credentials.client_secret)
    carrier = as_client(cm)
    items = [
        {"event_id": e, "number": n, "event": kind, "occurred_at": at, "subscriber": sub}
        for e, n, kind, at, sub in EVENTS
    ]
    accepted = ok(http.post("/v1/carrier/events", json={"events": items}, headers=carrier))
    assert accepted["accepted"] == len(EVENTS), accepted
    link = {"subscriber": "s1", "same_as": ["s1-alt"]}
    ok(http.put("/v1/carrier/subscriber-links", json=link, headers=carrier))
    world = World(
        http, app, carrier, {p: as_client(c) for p, c in clients.items()}, as_client(regulator)
    )
    for platform_id, rows in BINDINGS.items():
        batch = [
            {"number": n, "account_ref": ref, "bound_since": since, "tier": tier}
            for n, ref, since, tier in rows
        ]
        registered = http.put(
            "/v1/platform/bindings", json={"bindings": batch}, headers=world.platform[platform_id]
        )
        assert ok(registered)["created"] == len(rows)
    return world


@pytest.fixture
def new_owner(world: World) -> Headers:
    return world.sign_in(NUMBER)


@pytest.fixture
def previous_owner(world: World) -> Headers:
    return world.sign_in(MINE)


@pytest.fixture
def renewal(world: World, new_owner: Headers) -> dict[str, Any]:
    """The new owner's renewal: bank and chat as listed, shop through "check all others"."""
    body = {"platforms": ["bank", "chat"], "check_all_others": True}
    response = world.http.post("/v1/subscriber/renewals", json=body, headers=new_owner)
    created: dict[str, Any] = ok(response, 201)
    assert response.headers["location"] == f"/v1/subscriber/renewals/{created['id']}"
    return created


def case_ids(renewal: dict[str, Any]) -> dict[str, str]:
    return {case["platform"]["id"]: case["id"] for case in renewal["cases"]}


# -- the new owner -----------------------------------------------------------------------


def test_the_new_owner_sees_platform_names_and_categories_only(
    world: World, new_owner: Headers
) -> None:
    response = world.http.get("/v1/subscriber/renewal", headers=new_owner)
    refs_absent(response.text)
    options = ok(response)
    assert options == {
        "number": NUMBER,
        "tenure_start": options["tenure_start"],
        "listed": [
            {"id": "bank", "name": "Bank", "category": "banking"},
            {"id": "chat", "name": "Chat", "category": "social"},
        ],
        "others": [{"id": "shop", "name": "Shop", "category": "e_commerce"}],
    }
    assert instant(options["tenure_start"]) == NEW_TENURE


def test_a_renewal_opens_one_case_per_platform_with_deadlines(
    world: World, new_owner: Headers, renewal: dict[str, Any]
) -> None:
    refs_absent(str(renewal))
    assert (renewal["number"], renewal["done"], renewal["completed_at"]) == (NUMBER, False, None)
    assert instant(renewal["tenure_start"]) == NEW_TENURE
    assert renewal["counts"] == {"open": 3}
    by_platform = {case["platform"]["id"]: case for case in renewal["cases"]}
    assert sorted(by_platform) == ["bank", "chat", "shop"]
    for platform_id, case in by_platform.items():
        name, category, hours = PLATFORMS[platform_id]
        assert case["platform"] == {"id": platform_id, "name": name, "category": category}
        assert (case["state"], case["outcome"], case["escalated"]) == ("open", None, False)
        opened = instant(case["opened_at"])
        assert instant(case["deadline"]) - opened == timedelta(hours=hours)
        assert abs(datetime.now(UTC) - opened) < timedelta(minutes=1)
    listed = world.get("/v1/subscriber/cases", new_owner)
    assert [case["id"] for case in listed] == sorted(case_ids(renewal).values())


def test_asking_again_opens_nothing_new(
    world: World, new_owner: Headers, renewal: dict[str, Any]
) -> None:
    again = world.http.post(
        "/v1/subscriber/renewals", json={"platforms": ["bank"]}, headers=new_owner
    )
    body = ok(again, 200)
    assert body["id"] == renewal["id"]
    assert case_ids(body) == case_ids(renewal)
    assert len(world.get("/v1/subscriber/cases", new_owner)) == 3
    for platform in ("bank", "chat", "shop"):
        items = world.get("/v1/platform/cases", world.platform[platform])["items"]
        assert len(items) == 1, platform


@pytest.mark.parametrize(
    ("body", "slug"),
    [
        ({"platforms": ["bank", "nowhere"]}, "unknown-platform"),
        ({"platforms": [], "check_all_others": False}, "nothing-selected"),
        ({}, "nothing-selected"),
        ({"platforms": ["bank"], "accounts": ["b-old"]}, None),
        ({"platforms": "bank"}, None),
    ],
)
def test_a_renewal_that_cannot_be_made_is_refused(
    world: World, new_owner: Headers, body: dict[str, Any], slug: str | None
) -> None:
    response = world.http.post("/v1/subscriber/renewals", json=body, headers=new_owner)
    assert response.status_code == 422, response.text
    if slug is not None:
        assert_problem(response, 422, slug)
    assert world.get("/v1/subscriber/cases", new_owner) == [], "nothing was opened"


def test_the_owner_follows_progress_until_every_platform_answered(
    world: World, new_owner: Headers, renewal: dict[str, Any]
) -> None:
    ids, url = case_ids(renewal), f"/v1/subscriber/renewals/{renewal['id']}"
    ok(world.answer("chat", ids["chat"], "unbound"))
    ok(world.answer("shop", ids["shop"], "no_account"))
    partway = world.get(url, new_owner)
    assert (partway["done"], partway["completed_at"]) == (False, None)
    assert partway["counts"] == {"open": 1, "unbound": 1, "no_account": 1}
    ok(world.answer("bank", ids["bank"], "rejected", "We need the previous holder's ID"))
    done = world.get(url, new_owner)
    assert done["done"] is True
    assert abs(instant(done["completed_at"]) - datetime.now(UTC)) < timedelta(minutes=1)
    assert done["counts"] == {"unbound": 1, "no_account": 1, "rejected": 1}
    bank = world.get(f"/v1/subscriber/cases/{ids['bank']}", new_owner)
    assert (bank["state"], bank["outcome"]) == ("answered", "rejected")
    assert bank["reason"] == "We need the previous holder's ID"
    assert [entry["what"] for entry in bank["history"]] == ["opened", "answered"]
    assert all(isinstance(entry["log_index"], int) for entry in bank["history"])
    assert bank["history"][1]["detail"] == {
        "outcome": "rejected",
        "reason": "We need the previous holder's ID",
        "late": False,
    }
    refs_absent(str(world.get("/v1/subscriber/cases", new_owner)))


def test_an_unbind_touches_only_accounts_from_before_the_tenure(
    world: World, renewal: dict[str, Any]
) -> None:
    ok(world.answer("chat", case_ids(renewal)["chat"], "unbound"))
    left = world.get("/v1/platform/bindings", world.platform["chat"], number=NUMBER)["items"]
    assert [item["account_ref"] for item in left] == ["c-new"]


# -- the platform ------------------------------------------------------------------------


def test_a_platform_lists_its_own_open_cases_with_the_boundary(
    world: World, renewal: dict[str, Any]
) -> None:
    page = world.get("/v1/platform/cases", world.platform["bank"], state="open")
    assert page["next"] is None
    [case] = page["items"]
    assert case["id"] == case_ids(renewal)["bank"]
    assert (case["kind"], case["requester"], case["number"]) == ("unbind", "current_owner", NUMBER)
    assert instant(case["bound_before"]) == NEW_TENURE
    assert (case["account_ref"], case["migrate_to"], case["state"]) == (None, None, "open")
    assert world.get("/v1/platform/cases", world.platform["bank"], state="answered")["items"] == []


def test_a_platform_never_reaches_another_platforms_case(
    world: World, renewal: dict[str, Any]
) -> None:
    chat_case, bank = case_ids(renewal)["chat"], world.platform["bank"]
    assert_problem(world.http.get(f"/v1/platform/cases/{chat_case}", headers=bank), 404)
    assert_problem(world.answer("bank", chat_case, "unbound"), 404, "not-found")
    assert_problem(world.http.get("/v1/platform/cases/c-missing", headers=bank), 404)
    chat = world.get(f"/v1/platform/cases/{chat_case}", world.platform["chat"])
    assert chat["state"] == "open", "the refused answer changed nothing"


def test_an_answer_is_idempotent_and_final(world: World, renewal: dict[str, Any]) -> None:
    chat_case = case_ids(renewal)["chat"]
    first = world.answer("chat", chat_case, "unbound")
    assert ok(first)["state"] == "answered" and ok(first)["outcome"] == "unbound"
    assert "idempotent-replay" not in first.headers
    again = world.answer("chat", chat_case, "unbound")
    assert ok(again) == ok(first)
    assert again.headers["idempotent-replay"] == "true"
    assert_problem(world.answer("chat", chat_case, "no_account"), 409, "case-closed")
    assert_problem(world.answer("chat", chat_case, "rejected", "changed my mind"), 409)
    history = world.get(f"/v1/regulator/cases/{chat_case}", world.regulator)["history"]
    assert [entry["what"] for entry in history] == ["opened", "answered"], "one answer recorded"


@pytest.mark.parametrize(
    ("body", "slug"),
    [
        ({"outcome": "migrated"}, "outcome-not-allowed"),
        ({"outcome": "memorialized"}, "outcome-not-allowed"),
        ({"outcome": "rejected"}, "reason-required"),
        ({"outcome": "rejected", "reason": "   "}, "reason-required"),
        ({"outcome": "rejected", "reason": "two\nlines"}, "invalid-reason"),
        ({"outcome": "rejected", "reason": "x" * 501}, None),
        ({"outcome": "vanished"}, None),
        ({"outcome": "unbound", "account_ref": "b-old"}, None),
        ({}, None),
    ],
)
def test_a_wrong_answer_is_refused_and_changes_nothing(
    world: World, renewal: dict[str, Any], body: dict[str, Any], slug: str | None
) -> None:
    bank_case = case_ids(renewal)["bank"]
    url = f"/v1/platform/cases/{bank_case}/outcome"
    response = world.http.post(url, json=body, headers=world.platform["bank"])
    assert response.status_code == 422, response.text
    if slug is not None:
        assert_problem(response, 422, slug)
    assert world.get(f"/v1/platform/cases/{bank_case}", world.platform["bank"])["state"] == "open"


# -- escalation and the regulator --------------------------------------------------------


def test_an_overdue_case_is_escalated_once_and_the_owner_sees_it(
    world: World, new_owner: Headers, renewal: dict[str, Any]
) -> None:
    ids, uow_factory = case_ids(renewal), world.app.state.uow_factory
    opened = instant(renewal["cases"][0]["opened_at"])
    assert case_service.escalate_overdue(uow_factory, now=opened + timedelta(hours=23)) == 0
    assert case_service.escalate_overdue(uow_factory, now=opened + timedelta(hours=25)) == 1
    assert case_service.escalate_overdue(uow_factory, now=opened + timedelta(hours=26)) == 0
    escalated = {
        c["platform"]["id"]: c["escalated"] for c in world.get("/v1/subscriber/cases", new_owner)
    }
    assert escalated == {"bank": True, "chat": False, "shop": False}
    seen = world.get(f"/v1/regulator/cases/{ids['bank']}", world.regulator)
    assert [entry["what"] for entry in seen["history"]] == ["opened", "escalated"]
    assert seen["history"][1]["detail"] == {"overdue_seconds": 3600}
    assert instant(seen["escalated_at"]) == opened + timedelta(hours=25)
    platform_view = world.get(f"/v1/platform/cases/{ids['bank']}", world.platform["bank"])
    assert instant(platform_view["escalated_at"]) == opened + timedelta(hours=25)


def test_the_regulator_lists_overdue_cases_with_their_age(world: World) -> None:
    """A renewal asked two days ago: the bank's 24 hours have run out, the shop's 72 not."""
    asked = datetime.now(UTC) - timedelta(days=2)
    progress = case_service.request_renewal(
        world.app.state.uow_factory, NUMBER, ["bank", "shop"], False, now=asked
    )
    bank_case = next(item.case.id for item in progress.cases if item.platform.id == "bank")
    assert case_service.escalate_overdue(world.app.state.uow_factory) == 1
    response = world.http.get("/v1/regulator/cases/overdue", headers=world.regulator)
    refs_absent(response.text)
    [late] = ok(response)
    assert (late["id"], late["state"], late["number"]) == (bank_case, "open", NUMBER)
    assert late["platform"] == {"id": "bank", "name": "Bank", "category": "banking"}
    assert 86_400 <= late["overdue_seconds"] < 86_400 + 120
    assert late["escalated_at"] is not None and late["outcome"] is None
    ok(world.answer("bank", bank_case, "unbound"))
    assert world.get("/v1/regulator/cases/overdue", world.regulator) == []
    answered = world.get(f"/v1/regulator/cases/{bank_case}", world.regulator)
    assert answered["history"][-1]["detail"]["late"] is True
    assert 86_400 <= answered["overdue_seconds"] < 86_400 + 120, "its age when answered"


@pytest.mark.parametrize(
    "url",
    ["/v1/regulator/cases/overdue", "/v1/regulator/cases/{case}", "/v1/regulator/complaints"],
)
def test_only_the_regulator_reads_the_regulator_routes(
    world: World, new_owner: Headers, renewal: dict[str, Any], url: str
) -> None:
    url = url.format(case=case_ids(renewal)["bank"])
    assert_problem(world.http.get(url, headers=world.platform["bank"]), 403, "insufficient-scope")
    assert_problem(world.http.get(url, headers=world.carrier), 403, "insufficient-scope")
    assert_problem(world.http.get(url, headers=new_owner), 401, "unauthenticated")
    assert_problem(world.http.get(url), 401, "unauthenticated")
    ok(world.http.get(url, headers=world.regulator))


# -- complaints --------------------------------------------------------------------------


def test_a_complaint_reaches_the_regulator_with_the_case_history(
    world: World, new_owner: Headers, renewal: dict[str, Any]
) -> None:
    bank_case = case_ids(renewal)["bank"]
    ok(world.answer("bank", bank_case, "rejected", "Bring the previous holder's ID"))
    body = {"category": "wrong_outcome", "text": "Collectors still call me every day"}
    url = f"/v1/subscriber/cases/{bank_case}/complaints"
    filed = ok(world.http.post(url, json=body, headers=new_owner), 201)
    assert (filed["case_id"], filed["category"], filed["state"]) == (
        bank_case,
        "wrong_outcome",
        "open",
    )
    assert filed["text"] == "Collectors still call me every day"
    [queued] = world.get("/v1/regulator/complaints", world.regulator)
    assert {k: queued[k] for k in filed} == filed
    case = queued["case"]
    assert (case["id"], case["number"], case["outcome"]) == (bank_case, NUMBER, "rejected")
    assert case["reason"] == "Bring the previous holder's ID"
    assert [entry["what"] for entry in case["history"]] == ["opened", "answered", "complaint"]
    assert case["history"][2]["detail"] == {"complaint": filed["id"], "category": "wrong_outcome"}
    assert [c["id"] for c in case["complaints"]] == [filed["id"]]
    assert world.get("/v1/regulator/complaints", world.regulator, state="closed") == []
    owner_view = world.get(f"/v1/subscriber/cases/{bank_case}", new_owner)
    assert [entry["what"] for entry in owner_view["history"]][-1] == "complaint"


@pytest.mark.parametrize(
    "body",
    [
        {"category": "angry", "text": "x"},
        {"category": "other", "text": ""},
        {"category": "other", "text": "x" * 2001},
        {"category": "other"},
        {"category": "other", "text": "x", "urgent": True},
    ],
)
def test_a_complaint_that_cannot_be_filed_is_refused(
    world: World, new_owner: Headers, renewal: dict[str, Any], body: dict[str, Any]
) -> None:
    url = f"/v1/subscriber/cases/{case_ids(renewal)['bank']}/complaints"
    assert_problem(world.http.post(url, json=body, headers=new_owner), 422)
    assert world.get("/v1/regulator/complaints", world.regulator) == []


# -- the previous owner ------------------------------------------------------------------


def checklists(world: World, person: Headers) -> dict[str, Any]:
    return {item["number"]: item for item in world.get("/v1/subscriber/checklist", person)}


def binding_case(world: World, person: Headers, **changes: Any) -> httpx.Response:
    body = {"number": MINE, "platform": "bank", "account_ref": "b-mine", "kind": "unbind"}
    return world.http.post("/v1/subscriber/checklist/cases", json=body | changes, headers=person)


def test_the_previous_owner_sees_the_checklist_of_the_numbers_they_hold(
    world: World, previous_owner: Headers
) -> None:
    found = checklists(world, previous_owner)
    assert sorted(found) == [SPARE, MINE], "the recycled number is not theirs any more"
    mine = found[MINE]
    assert instant(mine["tenure_start"]) == MY_TENURE
    assert [(i["platform"]["id"], i["account_ref"], i["tier"]) for i in mine["items"]] == [
        ("bank", "b-mine", "high"),
        ("chat", "c-mine", "medium"),
    ], "s0's binding from before this tenure is not on it"
    assert [(i["status"], i["resolved"], i["case"]) for i in mine["items"]] == [
        ("untouched", False, None),
        ("untouched", False, None),
    ]
    assert instant(mine["items"][0]["bound_since"]) == datetime(2021, 1, 1, tzinfo=UTC)
    assert mine["readiness"] == {
        "total": 2,
        "resolved": 0,
        "open": 0,
        "untouched": 2,
        "high_unresolved": 1,
        "ready": False,
    }
    assert found[SPARE]["items"] == [] and found[SPARE]["readiness"]["ready"] is True


def test_a_migrate_case_makes_the_number_ready_once_the_platform_answers(
    world: World, previous_owner: Headers
) -> None:
    opened = binding_case(world, previous_owner, kind="migrate", migrate_to=SPARE)
    case = ok(opened, 201)
    assert (case["platform"]["id"], case["state"], case["outcome"]) == ("bank", "open", None)
    assert instant(case["deadline"]) - instant(case["opened_at"]) == timedelta(hours=24)
    repeat = binding_case(world, previous_owner, kind="migrate", migrate_to=SPARE)
    assert ok(repeat)["id"] == case["id"], "the same request while open answers 200"
    other_kind = binding_case(world, previous_owner)
    assert_problem(other_kind, 409, "case-open")
    item = checklists(world, previous_owner)[MINE]["items"][0]
    assert (item["status"], item["case"]["id"]) == ("open", case["id"])

    [seen] = world.get("/v1/platform/cases", world.platform["bank"])["items"]
    wanted = {"id": case["id"], "kind": "migrate", "requester": "previous_owner"}
    wanted |= {"account_ref": "b-mine", "migrate_to": SPARE, "bound_before": None}
    assert {key: seen[key] for key in wanted} == wanted
    assert_problem(world.answer("bank", case["id"], "frozen"), 422, "outcome-not-allowed")
    ok(world.answer("bank", case["id"], "migrated"))

    mine = checklists(world, previous_owner)[MINE]
    bank = mine["items"][0]
    assert (bank["account_ref"], bank["status"], bank["resolved"]) == ("b-mine", "migrated", True)
    assert bank["tier"] is None and bank["bound_since"] is None, "the registry let it go"
    assert mine["readiness"] == {
        "total": 2,
        "resolved": 1,
        "open": 0,
        "untouched": 1,
        "high_unresolved": 0,
        "ready": True,
    }
    left = world.get("/v1/platform/bindings", world.platform["bank"], number=MINE)["items"]
    assert left == []


def test_an_unbind_case_on_the_checklist(world: World, previous_owner: Headers) -> None:
    case = ok(binding_case(world, previous_owner, platform="chat", account_ref="c-mine"), 201)
    assert instant(case["deadline"]) - instant(case["opened_at"]) == timedelta(hours=72)
    again = binding_case(world, previous_owner, platform="chat", account_ref="c-mine")
    assert ok(again)["id"] == case["id"]
    mine = checklists(world, previous_owner)[MINE]
    assert [i["status"] for i in mine["items"]] == ["untouched", "open"]
    assert mine["readiness"]["open"] == 1 and mine["readiness"]["ready"] is False
    mine_cases = world.get("/v1/subscriber/cases", previous_owner)
    assert [c["id"] for c in mine_cases] == [case["id"]]
    detail = world.get(f"/v1/subscriber/cases/{case['id']}", previous_owner)
    assert [entry["what"] for entry in detail["history"]] == ["opened"]


def test_the_previous_owner_follows_their_cases_after_cancelling(
    world: World, previous_owner: Headers
) -> None:
    """Cancelling freezes the number but keeps the tenure (and the session): the person
    still reads and complains about the cases on it, as on the checklist."""
    case = ok(binding_case(world, previous_owner), 201)
    cancel = {"event_id": "m5", "number": MINE, "event": "cancelled", "occurred_at": "2025-01-01"}
    ok(world.http.post("/v1/carrier/events", json={"events": [cancel]}, headers=world.carrier))
    assert [c["id"] for c in world.get("/v1/subscriber/cases", previous_owner)] == [case["id"]]
    detail = world.get(f"/v1/subscriber/cases/{case['id']}", previous_owner)
    assert (detail["state"], [e["what"] for e in detail["history"]]) == ("open", ["opened"])
    complaint = {"category": "no_answer", "text": "The bank has not answered"}
    url = f"/v1/subscriber/cases/{case['id']}/complaints"
    ok(world.http.post(url, json=complaint, headers=previous_owner), 201)
    assert checklists(world, previous_owner)[MINE]["items"][0]["case"]["id"] == case["id"]
    assert_problem(world.http.get("/v1/subscriber/renewal", headers=previous_owner), 409)


@pytest.mark.parametrize(
    ("changes", "status", "slug"),
    [
        ({"kind": "migrate", "migrate_to": STRANGER}, 422, "migrate-to-not-yours"),
        ({"kind": "migrate", "migrate_to": MINE}, 422, "migrate-to-not-yours"),
        ({"kind": "migrate", "migrate_to": NUMBER}, 422, "migrate-to-not-yours"),
        ({"kind": "migrate"}, 422, "migrate-to-required"),
        ({"kind": "migrate", "migrate_to": "12345"}, 422, "invalid-number"),
        ({"account_ref": "c-s0", "platform": "chat"}, 404, "no-such-binding"),
        ({"account_ref": "b-stranger"}, 404, "no-such-binding"),
        ({"number": STRANGER, "account_ref": "b-stranger"}, 404, "not-found"),
        ({"number": NUMBER, "account_ref": "b-old"}, 404, "not-found"),
        ({"kind": "will"}, 422, None),
        ({"note": "please"}, 422, None),
    ],
)
def test_a_checklist_case_the_person_may_not_open_is_refused(
    world: World,
    previous_owner: Headers,
    changes: dict[str, Any],
    status: int,
    slug: str | None,
) -> None:
    assert_problem(binding_case(world, previous_owner, **changes), status, slug)
    assert world.get("/v1/subscriber/cases", previous_owner) == []
    for platform in ("bank", "chat"):
        assert world.get("/v1/platform/cases", world.platform[platform])["items"] == []


# -- authorization boundaries ------------------------------------------------------------


def test_the_new_owner_never_sees_the_previous_owners_accounts_or_cases(
    world: World, new_owner: Headers, previous_owner: Headers, renewal: dict[str, Any]
) -> None:
    theirs = ok(binding_case(world, previous_owner), 201)["id"]
    for url in (
        "/v1/subscriber/renewal",
        "/v1/subscriber/cases",
        f"/v1/subscriber/renewals/{renewal['id']}",
        f"/v1/subscriber/cases/{case_ids(renewal)['bank']}",
    ):
        response = world.http.get(url, headers=new_owner)
        assert response.status_code == 200, url
        refs_absent(response.text)
        assert theirs not in response.text
    checklist = world.get("/v1/subscriber/checklist", new_owner)
    assert [c["number"] for c in checklist] == [NUMBER]
    assert [i["account_ref"] for i in checklist[0]["items"]] == ["c-new"], "only their own"
    for url in (f"/v1/subscriber/cases/{theirs}", f"/v1/subscriber/cases/{theirs}/complaints"):
        response = (
            world.http.get(url, headers=new_owner)
            if url.endswith(theirs)
            else world.http.post(url, json={"category": "other", "text": "x"}, headers=new_owner)
        )
        assert_problem(response, 404, "not-found")
    refused = binding_case(world, new_owner, number=MINE)
    assert_problem(refused, 404, "not-found")


def test_the_previous_owner_never_sees_the_new_owners_renewal(
    world: World, previous_owner: Headers, renewal: dict[str, Any]
) -> None:
    assert world.get("/v1/subscriber/cases", previous_owner) == []
    bank_case = case_ids(renewal)["bank"]
    for response in (
        world.http.get(f"/v1/subscriber/renewals/{renewal['id']}", headers=previous_owner),
        world.http.get(f"/v1/subscriber/cases/{bank_case}", headers=previous_owner),
        world.http.post(
            f"/v1/subscriber/cases/{bank_case}/complaints",
            json={"category": "other", "text": "mine?"},
            headers=previous_owner,
        ),
    ):
        assert_problem(response, 404, "not-found")
    numbers = {c["number"] for c in world.get("/v1/subscriber/checklist", previous_owner)}
    assert NUMBER not in numbers and STRANGER not in numbers


def test_a_platform_sees_only_its_own_cases(
    world: World, previous_owner: Headers, renewal: dict[str, Any]
) -> None:
    ok(binding_case(world, previous_owner), 201)
    ids = case_ids(renewal)
    for platform in ("chat", "shop"):
        items = world.get("/v1/platform/cases", world.platform[platform])["items"]
        assert [item["id"] for item in items] == [ids[platform]]
        assert all(item["account_ref"] is None for item in items)
    bank = world.get("/v1/platform/cases", world.platform["bank"])["items"]
    assert [(i["requester"], i["account_ref"]) for i in bank] == [
        ("current_owner", None),
        ("previous_owner", "b-mine"),
    ]
    first = world.get("/v1/platform/cases", world.platform["bank"], limit=1)
    assert ([i["id"] for i in first["items"]], first["next"]) == ([bank[0]["id"]], bank[0]["id"])
    second = world.get("/v1/platform/cases", world.platform["bank"], limit=1, cursor=first["next"])
    assert [i["id"] for i in second["items"]] == [bank[1]["id"]]
    last = world.get("/v1/platform/cases", world.platform["bank"], limit=1, cursor=second["next"])
    assert last == {"items": [], "next": None}
    for headers in (world.carrier, world.regulator):
        assert_problem(world.http.get("/v1/platform/cases", headers=headers), 403)


OWNER_ROUTES = [
    ("GET", "/v1/subscriber/renewal", None),
    ("POST", "/v1/subscriber/renewals", {"platforms": ["bank"]}),
    ("GET", "/v1/subscriber/renewals/{renewal}", None),
    ("GET", "/v1/subscriber/cases", None),
    ("GET", "/v1/subscriber/cases/{case}", None),
    ("POST", "/v1/subscriber/cases/{case}/complaints", {"category": "other", "text": "x"}),
    ("GET", "/v1/subscriber/checklist", None),
    (
        "POST",
        "/v1/subscriber/checklist/cases",
        {"number": MINE, "platform": "bank", "account_ref": "b-mine", "kind": "unbind"},
    ),
]


@pytest.fixture
def anonymous(world: World) -> list[Headers]:
    """Ways of calling without a session: nothing, a forged session token, a platform's
    access token (a client is not a person)."""
    return [{}, {"Authorization": "Bearer hos_forged0123456789"}, world.platform["bank"]]


@pytest.mark.parametrize(("method", "url", "body"), OWNER_ROUTES)
def test_every_owner_route_needs_a_session(
    world: World,
    renewal: dict[str, Any],
    anonymous: list[Headers],
    method: str,
    url: str,
    body: dict[str, Any] | None,
) -> None:
    url = url.format(renewal=renewal["id"], case=case_ids(renewal)["bank"])
    for headers in anonymous:
        response = world.http.request(method, url, json=body, headers=headers)
        problem = assert_problem(response, 401, "not-signed-in")
        assert response.headers["www-authenticate"].startswith("Bearer"), headers
        refs_absent(str(problem))
    queued = world.get("/v1/regulator/complaints", world.regulator)
    assert queued == [], "nothing was done on anyone's behalf"
