"""The whole renewal story (docs/cases.md) as one test over HTTP, on SQLite and PostgreSQL.

s1 holds OLD and NEW, leaves five platforms bound to OLD (two `high`), cancels OLD, is
reminded through the contact they left, and the release is held until the high bindings
are resolved; the carrier then gives OLD to s2, who renews it. Four platforms answer in
time, one is escalated and answers late after a complaint; s2's tenure certificate
verifies, a forged or expired one does not; and every party sees only its own.

Everyone acts through its own HTTP routes and credentials; platforms receive their SETs
through the receiver kit (`Poller` and `SetVerifier` over the in-process `TestClient`,
keys from `/ssf/jwks.json`), since poll delivery reads the outbox without `handover work`.
What `handover work` would do on its timer is called directly with the services' clock:
`send_due_reminders` (the freeze is in 2024-2025, so its reminders are sent "then") and
`escalate_overdue`. A renewal's cases are opened by HTTP at the real time, so the late
case is escalated with the clock moved past its deadline; the regulator's overdue list
reads the real clock, so the escalation is checked on the regulator's case detail (and the
list as `overdue_cases` computes it at the escalation's moment).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from test_api import assert_problem, event, post_events
from test_cases_api import World, binding_case, checklists, instant, ok, refs_absent
from test_certificates_api import encode, segments

from conftest import Client
from handover.adapters.certificates import CertificateKeys
from handover.config import Settings
from handover.domain.certificates import DEFAULT_VALIDITY
from handover.receiver import MemoryJtiStore, Poller, SecurityEvent, SetVerifier, StaticToken
from handover.receiver.events import CASE_OPENED, CASE_REMINDER
from handover.receiver.jwks import JwksCache
from handover.receiver.streams import POLL
from handover.services import access
from handover.services import cases as case_service
from handover.services.certificates import issue_certificate
from handover.services.ports import UnitOfWorkFactory
from handover.services.reminders import send_due_reminders

Headers = dict[str, str]
OLD = "+8613800138000"  # s1's, then s2's
NEW = "+8613900139000"  # s1's other number
CANCELLED = datetime(2024, 6, 1, tzinfo=UTC)
MINIMUM = datetime(2024, 8, 30, tzinfo=UTC)  # 90 days (CN)
CAP = datetime(2025, 6, 1, tzinfo=UTC)  # 365 days: the longest the high bindings hold
RELEASED = "2025-05-28"  # past the minimum, before the cap, after every reminder
S2_START = datetime(2025, 6, 15, tzinfo=UTC)
#: platform -> (name, category, tier of the platform and of s1's account, account ref).
PLATFORMS = {
    "bank": ("Bank", "banking", "high", "acct-bank-s1"),
    "lender": ("Quick Loans", "lending", "high", "acct-lender-s1"),
    "chat": ("Chat", "social", "medium", "acct-chat-s1"),
    "shop": ("Shop", "e_commerce", "low", "acct-shop-s1"),
    "game": ("Game", "gaming", "low", "acct-game-s1"),
}
S1_REFS = tuple(ref for *_, ref in PLATFORMS.values())
STILL_LISTING = ["chat", "game", "shop"]  # after the bank migrated and the lender deleted
ANSWERS = {"bank": "no_account", "lender": "no_account", "chat": "unbound", "shop": "unbound"}
LATE = "game"


@dataclass
class Receiver:
    """A platform's poll receiver: the kit's `Poller`, handing verified events to a list."""

    poller: Poller
    events: list[SecurityEvent]

    def take(self) -> list[SecurityEvent]:
        """Poll until nothing is left, acknowledge, and hand over what came."""
        self.poller.drain()
        taken, self.events[:] = list(self.events), []
        return taken


def open_receivers(http: TestClient, platforms: dict[str, Headers]) -> dict[str, Receiver]:
    """One poll stream per platform for case-opened and case-reminder events."""
    metadata = ok(http.get("/.well-known/ssf-configuration"))
    keys = JwksCache(metadata["jwks_uri"], http)
    assert keys.jwks_uri.endswith("/ssf/jwks.json")
    receivers = {}
    for platform_id, headers in platforms.items():
        body = {"delivery": {"method": POLL}, "events_requested": [CASE_OPENED, CASE_REMINDER]}
        stream = ok(http.post("/ssf/streams", json=body, headers=headers), 201)
        assert stream["events_delivered"] == [CASE_OPENED, CASE_REMINDER]
        events: list[SecurityEvent] = []
        poller = Poller(
            stream["delivery"]["endpoint_url"],
            StaticToken(headers["Authorization"].removeprefix("Bearer ")),
            SetVerifier(metadata["issuer"], stream["aud"], keys),
            MemoryJtiStore(),
            events.append,
            http=http,
        )
        receivers[platform_id] = Receiver(poller, events)
    return receivers


def advice(world: World) -> Any:
    return world.get(f"/v1/carrier/numbers/{OLD}/release-advice", world.carrier)


def test_the_whole_story(
    http: TestClient,
    app: FastAPI,
    settings: Settings,
    uow_factory: UnitOfWorkFactory,
    cm: Client,
    regulator: Client,
    as_client: Callable[..., Headers],
) -> None:
    services = app.state.uow_factory  # what `handover work` would use

    # 1. s1 holds OLD and NEW; five platforms bind OLD during s1's tenure and open streams.
    clients = {}
    for platform_id, (name, category, tier, _) in PLATFORMS.items():
        _, credentials = access.register_platform(uow_factory, platform_id, name, category, tier)
        clients[platform_id] = Client(credentials.client_id, credentials.client_secret)
    world = World(
        http,
        app,
        as_client(cm),
        {p: as_client(c) for p, c in clients.items()},
        as_client(regulator),
    )
    activated = post_events(
        http,
        world.carrier,
        event("o1", "activated", "2024-01-10", OLD, "s1"),
        event("n1", "activated", "2024-01-10", NEW, "s1"),
    )
    assert activated["accepted"] == 2, activated
    for day, (platform_id, (*_, tier, ref)) in enumerate(PLATFORMS.items(), start=1):
        binding = {"number": OLD, "account_ref": ref, "bound_since": f"2024-03-0{day}"}
        body = {"bindings": [binding | {"tier": tier}]}
        registered = http.put(
            "/v1/platform/bindings", json=body, headers=world.platform[platform_id]
        )
        assert ok(registered)["created"] == 1
    receivers = open_receivers(http, world.platform)

    # 2. s1 signs in with NEW, leaves a contact, reads the checklist, migrates the bank only.
    s1 = world.sign_in(NEW)
    contact = {"channel": "sms", "address": NEW, "language": "en"}
    ok(http.put("/v1/subscriber/contact", json=contact, headers=s1))
    mine = checklists(world, s1)
    assert sorted(mine) == [OLD, NEW]
    assert mine[NEW]["items"] == []
    items = mine[OLD]["items"]
    assert sorted((i["platform"]["id"], i["account_ref"], i["tier"]) for i in items) == sorted(
        (p, ref, tier) for p, (*_, tier, ref) in PLATFORMS.items()
    )
    assert {i["status"] for i in items} == {"untouched"}
    assert mine[OLD]["readiness"] == {
        "total": 5,
        "resolved": 0,
        "open": 0,
        "untouched": 5,
        "high_unresolved": 2,
        "ready": False,
    }
    changes = {"number": OLD, "account_ref": PLATFORMS["bank"][3], "migrate_to": NEW}
    migrate = ok(binding_case(world, s1, kind="migrate", **changes), 201)
    assert (migrate["kind"], migrate["state"], migrate["migrate_to"]) == ("migrate", "open", NEW)

    # 3. The carrier cancels OLD; reminders at cancellation, mid-freeze and a week before.
    post_events(http, world.carrier, event("o2", "cancelled", "2024-06-01", OLD, None))
    held = advice(world)
    assert instant(held["cancelled_at"]) == CANCELLED
    assert instant(held["minimum_release"]) == MINIMUM
    assert instant(held["earliest_release"]) == CAP, "the high bindings hold it to the cap"
    schedule = [CANCELLED, CANCELLED + (CAP - CANCELLED) / 2, CAP - timedelta(days=7)]
    for at in schedule:
        sent = send_due_reminders(
            services, at, settings.freeze_policy, public_url="https://h.example"
        )
        assert sent == 1, at
        assert send_due_reminders(services, at, settings.freeze_policy) == 0, "once per stage"
    with services() as uow:
        reminders = sorted(uow.messages.recent(NEW, 10), key=lambda m: m.created_at)
    assert [(m.template, m.recipient, m.params["stage"]) for m in reminders] == [
        ("freeze_reminder", NEW, "cancellation"),
        ("freeze_reminder", NEW, "mid_freeze"),
        ("freeze_reminder", NEW, "before_release"),
    ]
    assert reminders[0].params["high_value"] == "Bank, Quick Loans"
    assert reminders[0].params["accounts"] == 5
    refs_absent(str([m.params for m in reminders]), S1_REFS)
    log = world.get("/log/entries", world.regulator)
    logged = [e["entry"] for e in log if '"freeze_reminder"' in e["entry"]]
    assert len(logged) == 3
    assert all('"channel":"sms"' in entry for entry in logged)
    for stage in ("cancellation", "mid_freeze", "before_release"):
        assert sum(f'"stage":"{stage}"' in entry for entry in logged) == 1, stage

    # 4. Past the minimum the high bindings still hold the release, until they resolve.
    holds = {hold["reason"]: hold for hold in advice(world)["holds"]}
    assert set(holds) == {"minimum_freeze", "unresolved_high_bindings"}
    assert sorted(holds["unresolved_high_bindings"]["platforms"]) == ["Bank", "Quick Loans"]
    refused = post_events(http, world.carrier, event("o3", "released", RELEASED, OLD, None))
    assert refused["results"][0]["status"] == "rejected", refused
    assert refused["results"][0]["reason"] == "freeze_not_over"
    assert all(receivers[p].take() == [] for p in PLATFORMS if p != "bank"), "bank's case"
    [opened] = receivers["bank"].take()
    assert (opened.event_type, opened.phone_number) == (CASE_OPENED, OLD)
    assert opened.event["case_id"] == migrate["id"]
    assert opened.event["kind"] == "migrate" and opened.event["requester"] == "previous_owner"
    assert opened.event["account_ref"] == PLATFORMS["bank"][3]
    assert opened.event["migrate_to"] == {"format": "phone_number", "phone_number": NEW}
    ok(world.answer("bank", opened.event["case_id"], "migrated"))
    gone = {"bindings": [{"number": OLD, "account_ref": PLATFORMS["lender"][3]}]}
    deleted = http.request(
        "DELETE", "/v1/platform/bindings", json=gone, headers=world.platform["lender"]
    )
    assert ok(deleted) == {"removed": 1}
    free = advice(world)
    assert [hold["reason"] for hold in free["holds"]] == ["minimum_freeze"]
    assert instant(free["earliest_release"]) == MINIMUM
    released = post_events(http, world.carrier, event("o4", "released", RELEASED, OLD, None))
    assert released["accepted"] == 1, released

    # 5. OLD goes to s2: the notice names the three platforms still listing it; s2 renews.
    post_events(http, world.carrier, event("o5", "activated", "2025-06-15", OLD, "s2"))
    notice_url = f"/v1/carrier/numbers/{OLD}/activation-notice"
    notice = http.get(notice_url, headers=world.carrier)
    refs_absent(notice.text, S1_REFS)
    body = ok(notice)
    assert body["used_before"] is True and instant(body["tenure_start"]) == S2_START
    assert sorted(p["name"] for p in body["platforms"]) == ["Chat", "Game", "Shop"]
    assert all(set(p) == {"name", "category"} for p in body["platforms"]), "names only"
    s2 = world.sign_in(OLD)
    [s2_list] = world.get("/v1/subscriber/checklist", s2)
    assert (s2_list["number"], s2_list["items"]) == (OLD, []), "none of s1's bindings"
    options = http.get("/v1/subscriber/renewal", headers=s2)
    refs_absent(options.text, S1_REFS)
    choice = ok(options)
    assert [p["id"] for p in choice["listed"]] == STILL_LISTING
    assert [p["id"] for p in choice["others"]] == ["bank", "lender"]
    asked = {"platforms": STILL_LISTING, "check_all_others": True}
    renewal = ok(http.post("/v1/subscriber/renewals", json=asked, headers=s2), 201)
    refs_absent(str(renewal), S1_REFS)
    cases = {case["platform"]["id"]: case for case in renewal["cases"]}
    assert sorted(cases) == sorted(PLATFORMS)

    # 6. Each platform hears of its case through the kit; four answer, one is escalated.
    for platform_id, receiver in receivers.items():
        [heard] = receiver.take()
        assert (heard.event_type, heard.phone_number) == (CASE_OPENED, OLD), platform_id
        assert heard.event["case_id"] == cases[platform_id]["id"]
        assert heard.event["bound_before"] == int(S2_START.timestamp())
        assert heard.event["requester"] == "current_owner" and "account_ref" not in heard.event
    for platform_id, outcome in ANSWERS.items():
        ok(world.answer(platform_id, cases[platform_id]["id"], outcome))
    late_id, deadline = cases[LATE]["id"], instant(cases[LATE]["deadline"])
    assert deadline - instant(cases[LATE]["opened_at"]) == timedelta(hours=72)
    assert case_service.escalate_overdue(services, now=deadline - timedelta(minutes=1)) == 0
    escalated_at = deadline + timedelta(hours=1)
    assert case_service.escalate_overdue(services, now=escalated_at) == 1
    [reminder] = receivers[LATE].take()
    assert (reminder.event_type, reminder.event["case_id"]) == (CASE_REMINDER, late_id)
    assert reminder.event["overdue_seconds"] == 3600
    assert all(receivers[p].take() == [] for p in ANSWERS), "no reminder for answered cases"
    seen = world.get(f"/v1/regulator/cases/{late_id}", world.regulator)
    assert (seen["state"], instant(seen["escalated_at"])) == ("open", escalated_at)
    assert [(e["what"], e["detail"]) for e in seen["history"]] == [
        ("opened", {}),
        ("escalated", {"overdue_seconds": 3600}),
    ]
    overdue = case_service.overdue_cases(services, now=escalated_at)
    assert [item.case.id for item in overdue] == [late_id]

    # 7. s2 follows progress, complains about the late one; it answers; the renewal is done.
    progress_url = f"/v1/subscriber/renewals/{renewal['id']}"
    partway = world.get(progress_url, s2)
    assert partway["done"] is False
    assert partway["counts"] == {"open": 1, "no_account": 2, "unbound": 2}
    late = {case["platform"]["id"]: case for case in partway["cases"]}[LATE]
    assert (late["state"], late["escalated"]) == ("open", True)
    complaint = {"category": "no_answer", "text": "Game has not answered in three days"}
    filed = ok(
        http.post(f"/v1/subscriber/cases/{late_id}/complaints", json=complaint, headers=s2), 201
    )
    [queued] = world.get("/v1/regulator/complaints", world.regulator, state="open")
    assert (queued["id"], queued["case"]["id"]) == (filed["id"], late_id)
    assert [e["what"] for e in queued["case"]["history"]] == ["opened", "escalated", "complaint"]
    ok(world.answer(LATE, late_id, "unbound"))
    final = world.get(f"/v1/regulator/cases/{late_id}", world.regulator)
    assert (final["state"], final["outcome"]) == ("answered", "unbound")
    whats = [e["what"] for e in final["history"]]
    assert whats == ["opened", "escalated", "complaint", "answered"]
    done = world.get(progress_url, s2)
    assert done["done"] is True and done["counts"] == {"no_account": 2, "unbound": 3}
    with services() as uow:
        sms = uow.messages.for_key(f"renewal-done:{renewal['id']}")
    assert sms is not None
    assert (sms.template, sms.recipient) == ("renewal_complete", OLD)
    assert (sms.params["platforms"], sms.params["resolved"], sms.params["rejected"]) == (5, 5, 0)

    # 8. s2's tenure certificate verifies as current; a forged or expired one does not.
    issued = ok(http.post("/v1/subscriber/certificates", headers=s2), 201)
    verified = ok(http.post("/v1/certificates/verify", json={"token": issued["token"]}))
    assert (verified["valid"], verified["status"], verified["current"]) == (True, "valid", True)
    assert instant(verified["held_since"]) == S2_START and verified["number"] == OLD
    assert verified["previous_tenure_ended"] == "2024-06-01"
    about_s1 = {k: v for k, v in verified.items() if k != "jti"}
    assert "s1" not in str(about_s1) and NEW not in str(about_s1)
    refs_absent(str(about_s1), S1_REFS)
    header, claims = segments(issued["token"])
    assert "s1" not in {claims.get(k) for k in claims} and "subscriber" not in claims
    signature = issued["token"].rsplit(".", 1)[1]
    edited = claims | {"held_since": "2024-01-10T00:00:00Z"}  # "held since s1's start"
    forged = f"{encode(header)}.{encode(edited)}.{signature}"
    keys = CertificateKeys(app.state.receipt_signer)
    long_ago = datetime.now(UTC) - timedelta(days=181)  # the validity is 180 days
    expired = issue_certificate(services, keys, OLD, long_ago, DEFAULT_VALIDITY).token
    for token, status in ((forged, "bad_signature"), (expired, "expired")):
        answer = ok(http.post("/v1/certificates/verify", json={"token": token}))
        assert (answer["valid"], answer["status"], answer["current"]) == (False, status, False)

    # 9. Boundaries: each person sees their own cases only; a platform only its own.
    s2_cases = http.get("/v1/subscriber/cases", headers=s2)
    refs_absent(s2_cases.text, S1_REFS)
    assert sorted(case["id"] for case in ok(s2_cases)) == sorted(c["id"] for c in cases.values())
    assert_problem(http.get(f"/v1/subscriber/cases/{migrate['id']}", headers=s2), 404, "not-found")
    [theirs] = world.get("/v1/subscriber/cases", s1)
    assert (theirs["id"], theirs["state"], theirs["outcome"]) == (
        migrate["id"],
        "answered",
        "migrated",
    )
    detail = world.get(f"/v1/subscriber/cases/{migrate['id']}", s1)
    assert [e["what"] for e in detail["history"]] == ["opened", "answered"]
    assert_problem(http.get(progress_url, headers=s1), 404, "not-found")
    assert_problem(http.get(f"/v1/subscriber/cases/{late_id}", headers=s1), 404, "not-found")
    for platform_id, other in (("chat", LATE), ("bank", "chat")):
        url = f"/v1/platform/cases/{cases[other]['id']}"
        assert_problem(http.get(url, headers=world.platform[platform_id]), 404, "not-found")
    bank_cases = world.get("/v1/platform/cases", world.platform["bank"])["items"]
    assert [c["id"] for c in bank_cases] == [migrate["id"], cases["bank"]["id"]]
