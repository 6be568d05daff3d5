"""The SSF 1.0 transmitter over HTTP, in-process, on SQLite and PostgreSQL.

Platforms are registered through `services.access`, tokens come from POST /oauth/token,
carriers report real lifecycle events, and every SET a poll returns is verified with
joserfc against the published JWKS.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc import jws
from joserfc.jwk import KeySet

from handover.config import Settings
from handover.domain.ssf.events import (
    EVENTS_SUPPORTED,
    IDENTIFIER_RECYCLED,
    NUMBER_CANCELLED,
    NUMBER_PORTED,
    NUMBER_RESTORED,
    VERIFICATION,
    seq_of,
)
from handover.domain.ssf.streams import DeliveryMethod
from handover.services import access
from handover.services.ports import UnitOfWorkFactory
from handover.services.ssf import delivery as delivery_service
from handover.services.ssf.transmitter import MAX_STREAMS_PER_PLATFORM
from handover.tlog.verify import verify_bundle

Headers = dict[str, str]
AsClient = Callable[..., Headers]
#: A registered client (`conftest.Client` or `PlatformClient`): client_id, client_secret.
Client = Any
NUMBER = "+8613812345678"
OTHER_NUMBER = "+8613900000001"
THIRD_NUMBER = "+8613900000002"
POLL = {"method": DeliveryMethod.POLL.value}
PUSH = {"method": DeliveryMethod.PUSH.value, "endpoint_url": "https://rx.example/events"}
#: A long poll's wait: far longer than any test takes, so a poll that answers in less time
#: did not wait for its deadline, however loaded the machine.
POLL_WAIT = 60.0
NOW = {"returnImmediately": True}


@dataclass(frozen=True)
class PlatformClient:
    client_id: str
    client_secret: str
    platform_id: str


@dataclass
class Carrier:
    """A carrier's reporting client with fresh event ids for every event."""

    http: TestClient
    headers: Headers
    ids: itertools.count[int]

    def report(self, *events: tuple[str, str, str, str | None]) -> Any:
        """Report (number, kind, occurred_at, subscriber) events; all must be accepted."""
        body = {
            "events": [
                {
                    "event_id": f"e{next(self.ids)}",
                    "number": number,
                    "event": kind,
                    "occurred_at": occurred_at,
                    "subscriber": subscriber,
                    "to_carrier": "cu" if kind == "ported" else None,
                }
                for number, kind, occurred_at, subscriber in events
            ]
        }
        response = self.http.post("/v1/carrier/events", json=body, headers=self.headers)
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == len(events), response.text
        return response.json()

    def recycle(self, number: str = NUMBER) -> None:
        """A tenure ends and, after the freeze, a new subscriber gets the number.

        Makes two signals: number-cancelled, then identifier-recycled.
        """
        self.report(
            (number, "activated", "2020-01-01", "s1"),
            (number, "cancelled", "2021-01-01", None),
            (number, "released", "2021-05-01", None),
            (number, "activated", "2021-06-01", "s2"),
        )


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared test settings with a long poll that no test waits out."""
    return settings.model_copy(update={"poll_wait_seconds": POLL_WAIT})


@pytest.fixture
def register_platform(uow_factory: UnitOfWorkFactory) -> Callable[[str], PlatformClient]:
    def register(platform_id: str) -> PlatformClient:
        _, credentials = access.register_platform(
            uow_factory, platform_id, platform_id.title(), "payment", "high"
        )
        return PlatformClient(credentials.client_id, credentials.client_secret, platform_id)

    return register


@pytest.fixture
def acme(register_platform: Callable[[str], PlatformClient]) -> PlatformClient:
    return register_platform("acme")


@pytest.fixture
def globex(register_platform: Callable[[str], PlatformClient]) -> PlatformClient:
    return register_platform("globex")


@pytest.fixture
def manager(acme: PlatformClient, as_client: AsClient) -> Headers:
    """acme's headers with every platform scope."""
    return as_client(acme)


@pytest.fixture
def carrier(http: TestClient, cm: Client, as_client: AsClient) -> Carrier:
    return Carrier(http, as_client(cm), itertools.count())


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """An RFC 9457 problem: the media type and the members every problem carries."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    return body


def create(http: TestClient, headers: Headers, **body: Any) -> dict[str, Any]:
    response = http.post("/ssf/streams", json=body, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def poll(
    http: TestClient, headers: Headers, stream_id: str, **body: Any
) -> tuple[dict[str, str], bool]:
    """One RFC 8936 poll: the SETs by jti and moreAvailable."""
    response = http.post(f"/ssf/poll/{stream_id}", json=body, headers=headers)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {"sets", "moreAvailable"}
    return answer["sets"], answer["moreAvailable"]


def set_status(http: TestClient, headers: Headers, stream_id: str, status: str) -> None:
    response = http.post(
        "/ssf/status", json={"stream_id": stream_id, "status": status}, headers=headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == status


def decode(http: TestClient, token: str, alg: str = "ES256") -> dict[str, Any]:
    """Verify a SET against /ssf/jwks.json: typ, alg and signature; its claims."""
    keys = KeySet.import_key_set(http.get("/ssf/jwks.json").json())
    signed = jws.deserialize_compact(token, keys, algorithms=[alg])
    assert signed.protected["typ"] == "secevent+jwt"
    assert signed.protected["alg"] == alg
    assert signed.protected["kid"] in {key["kid"] for key in keys.as_dict()["keys"]}
    claims: dict[str, Any] = json.loads(signed.payload)
    assert "sub" not in claims and "exp" not in claims
    assert len(claims["events"]) == 1
    return claims


def only_event(claims: dict[str, Any]) -> str:
    (event_type,) = claims["events"]
    return str(event_type)


# -- metadata and keys ----------------------------------------------------------------


@pytest.mark.one_store
def test_the_transmitter_metadata(http: TestClient, settings: Settings) -> None:
    """SSF §7.1 metadata: version, issuer, endpoints, delivery methods and defaults."""
    response = http.get("/.well-known/ssf-configuration")
    assert response.status_code == 200, response.text
    meta = response.json()
    base = settings.public_url.rstrip("/")
    assert meta["spec_version"] == "1_0"
    assert meta["issuer"] == base
    assert meta["jwks_uri"] == f"{base}/ssf/jwks.json"
    assert meta["configuration_endpoint"] == f"{base}/ssf/streams"
    assert meta["status_endpoint"] == f"{base}/ssf/status"
    assert meta["add_subject_endpoint"] == f"{base}/ssf/subjects:add"
    assert meta["remove_subject_endpoint"] == f"{base}/ssf/subjects:remove"
    assert meta["verification_endpoint"] == f"{base}/ssf/verify"
    assert set(meta["delivery_methods_supported"]) == {
        "urn:ietf:rfc:8935",
        "urn:ietf:rfc:8936",
    }
    assert meta["default_subjects"] == "ALL"
    assert meta["authorization_schemes"] == [{"spec_urn": "urn:ietf:rfc:6749"}]
    assert meta["events_supported"] == list(EVENTS_SUPPORTED)
    assert {"ES256", "RS256"} <= set(meta["signing_algorithms_supported"])


@pytest.mark.one_store
def test_the_jwks_holds_public_signing_keys_only(http: TestClient) -> None:
    """Every published key has kid, alg and use; no private member ever leaves."""
    response = http.get("/ssf/jwks.json")
    assert response.status_code == 200, response.text
    keys = response.json()["keys"]
    assert {key["alg"] for key in keys} >= {"ES256", "RS256"}
    for key in keys:
        assert key["kid"] and key["use"] == "sig"
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key), key
    assert len({key["kid"] for key in keys}) == len(keys)


# -- stream management ----------------------------------------------------------------


def test_a_stream_lifecycle(http: TestClient, manager: Headers, settings: Settings) -> None:
    """Create (201), read one and all, PATCH, PUT, DELETE (204), then it is gone (404)."""
    base = settings.public_url.rstrip("/")
    stream = create(
        http,
        manager,
        delivery=POLL,
        events_requested=[IDENTIFIER_RECYCLED, "urn:unknown"],
        description="first",
    )
    stream_id = stream["stream_id"]
    assert stream["iss"] == base
    assert stream["aud"] == f"{base}/platforms/acme"
    assert stream["delivery"] == {**POLL, "endpoint_url": f"{base}/ssf/poll/{stream_id}"}
    assert stream["events_supported"] == list(EVENTS_SUPPORTED)
    assert stream["events_requested"] == [IDENTIFIER_RECYCLED, "urn:unknown"]
    assert stream["events_delivered"] == [IDENTIFIER_RECYCLED]
    assert stream["signing_alg"] == "ES256"
    other = create(http, manager, delivery={**PUSH, "authorization_header": "Bearer secret"})
    assert other["delivery"] == PUSH, "the push secret is never shown back"

    one = http.get("/ssf/streams", params={"stream_id": stream_id}, headers=manager)
    assert one.status_code == 200, one.text
    assert one.json() == stream
    every = http.get("/ssf/streams", headers=manager)
    assert every.status_code == 200
    assert {s["stream_id"] for s in every.json()} == {stream_id, other["stream_id"]}

    patched = http.patch(
        "/ssf/streams",
        json={"stream_id": stream_id, "events_requested": [NUMBER_PORTED]},
        headers=manager,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["events_delivered"] == [NUMBER_PORTED]
    assert patched.json()["description"] == "first"

    put = http.put(
        "/ssf/streams",
        json={**stream, "events_requested": [NUMBER_CANCELLED], "events_delivered": None},
        headers=manager,
    )
    assert_problem(put, 400)  # an echoed transmitter value that differs is refused
    put = http.put(
        "/ssf/streams",
        json={"stream_id": stream_id, "delivery": PUSH, "signing_alg": "RS256"},
        headers=manager,
    )
    assert put.status_code == 200, put.text
    replaced = put.json()
    assert replaced["delivery"] == PUSH
    assert replaced["events_requested"] == []
    assert "description" not in replaced
    assert replaced["signing_alg"] == "RS256"
    read = http.get("/ssf/streams", params={"stream_id": stream_id}, headers=manager)
    assert read.json() == replaced

    deleted = http.delete("/ssf/streams", params={"stream_id": stream_id}, headers=manager)
    assert deleted.status_code == 204
    gone = http.get("/ssf/streams", params={"stream_id": stream_id}, headers=manager)
    assert_problem(gone, 404)
    assert [s["stream_id"] for s in http.get("/ssf/streams", headers=manager).json()] == [
        other["stream_id"]
    ]


def test_stream_status_is_read_and_changed(http: TestClient, manager: Headers) -> None:
    """A stream starts enabled and moves between enabled, paused and disabled."""
    stream_id = create(http, manager)["stream_id"]
    read = http.get("/ssf/status", params={"stream_id": stream_id}, headers=manager)
    assert read.status_code == 200, read.text
    assert read.json() == {"stream_id": stream_id, "status": "enabled"}
    for status in ("paused", "disabled", "enabled"):
        changed = http.post(
            "/ssf/status",
            json={"stream_id": stream_id, "status": status, "reason": f"now {status}"},
            headers=manager,
        )
        assert changed.status_code == 200, changed.text
        expected = {"stream_id": stream_id, "status": status, "reason": f"now {status}"}
        assert changed.json() == expected
        read = http.get("/ssf/status", params={"stream_id": stream_id}, headers=manager)
        assert read.json() == expected


def test_subjects_are_added_and_removed(http: TestClient, manager: Headers) -> None:
    """subjects:add answers 200 and subjects:remove 204 for a phone_number subject."""
    stream_id = create(http, manager)["stream_id"]
    subject = {"format": "phone_number", "phone_number": NUMBER}
    body = {"stream_id": stream_id, "subject": subject, "verified": True}
    assert http.post("/ssf/subjects:add", json=body, headers=manager).status_code == 200
    body = {"stream_id": stream_id, "subject": subject}
    assert http.post("/ssf/subjects:remove", json=body, headers=manager).status_code == 204


def test_verification_is_queued_then_rate_limited(http: TestClient, manager: Headers) -> None:
    """verify answers 204 and delivers a verification SET with the state; again at once is 429."""
    stream_id = create(http, manager)["stream_id"]
    body = {"stream_id": stream_id, "state": "abc123"}
    assert http.post("/ssf/verify", json=body, headers=manager).status_code == 204
    assert_problem(http.post("/ssf/verify", json=body, headers=manager), 429)
    sets, more = poll(http, manager, stream_id, **NOW)
    assert not more
    (token,) = sets.values()
    claims = decode(http, token)
    assert claims["events"] == {VERIFICATION: {"state": "abc123"}}
    assert claims["sub_id"] == {"format": "opaque", "id": stream_id}


def test_an_rs256_stream_gets_rs256_sets(http: TestClient, manager: Headers) -> None:
    """signing_alg RS256 signs that stream's SETs with the published RSA key."""
    stream = create(http, manager, signing_alg="RS256")
    assert stream["signing_alg"] == "RS256"
    body = {"stream_id": stream["stream_id"]}
    assert http.post("/ssf/verify", json=body, headers=manager).status_code == 204
    sets, _ = poll(http, manager, stream["stream_id"], **NOW)
    (jti, token) = next(iter(sets.items()))
    claims = decode(http, token, "RS256")
    assert claims["jti"] == jti
    assert claims["aud"] == stream["aud"]
    assert only_event(claims) == VERIFICATION


# -- SSF §8 errors --------------------------------------------------------------------


def test_400s_are_problems(http: TestClient, manager: Headers) -> None:
    """Malformed stream requests answer 400 with a problem body."""
    stream = create(http, manager)
    stream_id = stream["stream_id"]
    bad_json = {**manager, "Content-Type": "application/json"}
    assert_problem(http.post("/ssf/streams", content=b"{not json", headers=bad_json), 400)
    assert_problem(http.post("/ssf/streams", json={"colour": "red"}, headers=manager), 400)
    assert_problem(http.post("/ssf/streams", json=[POLL], headers=manager), 400)
    for delivery in ({"method": "urn:nope"}, {"method": PUSH["method"]}, "poll"):
        body = {"delivery": delivery}
        assert_problem(http.post("/ssf/streams", json=body, headers=manager), 400)
    bad_push = {"delivery": {**PUSH, "endpoint_url": "http://rx.example/"}}
    assert_problem(http.post("/ssf/streams", json=bad_push, headers=manager), 400)
    assert_problem(http.post("/ssf/streams", json={"aud": "x"}, headers=manager), 400)
    for changed in ({"aud": "https://evil.example"}, {"iss": "https://evil.example"}):
        body = {"stream_id": stream_id, **changed}
        assert_problem(http.patch("/ssf/streams", json=body, headers=manager), 400)
    assert_problem(http.patch("/ssf/streams", json={"description": "x"}, headers=manager), 400)
    assert_problem(http.put("/ssf/streams", json={"delivery": POLL}, headers=manager), 400)
    assert_problem(http.put("/ssf/streams", json={"stream_id": stream_id}, headers=manager), 400)
    assert_problem(http.delete("/ssf/streams", headers=manager), 400)
    assert_problem(http.get("/ssf/status", headers=manager), 400)
    status_bodies: list[Any] = [
        {"stream_id": stream_id, "status": "on"},
        {"stream_id": stream_id},
        {"status": "paused"},
        [],
    ]
    for status_body in status_bodies:
        assert_problem(http.post("/ssf/status", json=status_body, headers=manager), 400)
    for subject in (
        {"format": "email", "email": "a@example.com"},
        {"format": "phone_number", "phone_number": "13812345678"},
        {"format": "phone_number", "phone_number": NUMBER, "extra": 1},
        NUMBER,
    ):
        body = {"stream_id": stream_id, "subject": subject}
        for path in ("/ssf/subjects:add", "/ssf/subjects:remove"):
            assert_problem(http.post(path, json=body, headers=manager), 400)
    verify = {"stream_id": stream_id, "state": 5}
    assert_problem(http.post("/ssf/verify", json=verify, headers=manager), 400)
    # nothing above changed the stream
    read = http.get("/ssf/streams", params={"stream_id": stream_id}, headers=manager)
    assert read.json() == stream


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/ssf/streams"),
        ("POST", "/ssf/streams"),
        ("PATCH", "/ssf/streams"),
        ("PUT", "/ssf/streams"),
        ("DELETE", "/ssf/streams"),
        ("GET", "/ssf/status"),
        ("POST", "/ssf/status"),
        ("POST", "/ssf/subjects:add"),
        ("POST", "/ssf/subjects:remove"),
        ("POST", "/ssf/verify"),
        ("POST", "/ssf/poll/anything"),
    ],
)
@pytest.mark.one_store
def test_401_without_a_valid_token(http: TestClient, method: str, path: str) -> None:
    """Every stream endpoint needs a valid bearer token."""
    assert_problem(http.request(method, path, json={}), 401)
    bad = {"Authorization": "Bearer not.a.token"}
    assert_problem(http.request(method, path, json={}, headers=bad), 401)


@pytest.mark.one_store
def test_403_for_clients_that_are_not_platforms(
    http: TestClient, cm: Client, regulator: Client, as_client: AsClient
) -> None:
    """Carriers and the regulator have no streams and may not make any."""
    for client in (cm, regulator):
        headers = as_client(client)
        assert_problem(http.post("/ssf/streams", json={}, headers=headers), 403)
        assert_problem(http.get("/ssf/streams", headers=headers), 403)
        assert_problem(http.post("/ssf/poll/x", json={}, headers=headers), 403)


def test_403_for_a_platform_token_without_ssf_manage(
    http: TestClient, acme: PlatformClient, manager: Headers, as_client: AsClient
) -> None:
    """A token narrowed to ssf.read reads and polls but changes nothing."""
    stream_id = create(http, manager)["stream_id"]
    reader = as_client(acme, "ssf.read")
    assert http.get("/ssf/streams", headers=reader).status_code == 200
    assert http.get("/ssf/status", params={"stream_id": stream_id}, headers=reader).is_success
    assert poll(http, reader, stream_id, **NOW) == ({}, False)
    target = {"stream_id": stream_id}
    subject = {**target, "subject": {"format": "phone_number", "phone_number": NUMBER}}
    for method, path, body in [
        ("POST", "/ssf/streams", {}),
        ("PATCH", "/ssf/streams", {**target, "description": "x"}),
        ("PUT", "/ssf/streams", {**target, "delivery": POLL}),
        ("POST", "/ssf/status", {**target, "status": "paused"}),
        ("POST", "/ssf/subjects:add", subject),
        ("POST", "/ssf/subjects:remove", subject),
    ]:
        assert_problem(http.request(method, path, json=body, headers=reader), 403)
    deleted = http.delete("/ssf/streams", params=target, headers=reader)
    assert_problem(deleted, 403)
    status = http.get("/ssf/status", params=target, headers=manager).json()
    assert status["status"] == "enabled"


@pytest.mark.parametrize("whose", ["nobody", "globex"])
def test_404_for_unknown_and_other_platforms_streams(
    http: TestClient,
    manager: Headers,
    globex: PlatformClient,
    as_client: AsClient,
    whose: str,
) -> None:
    """Another platform's stream answers exactly like a stream that does not exist."""
    theirs_headers = as_client(globex)
    theirs = create(http, theirs_headers, description="globex's")
    stream_id = theirs["stream_id"] if whose == "globex" else "0" * 24
    target = {"stream_id": stream_id}
    subject = {**target, "subject": {"format": "phone_number", "phone_number": NUMBER}}
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/ssf/streams", {"params": target}),
        ("PATCH", "/ssf/streams", {"json": {**target, "description": "mine"}}),
        ("PUT", "/ssf/streams", {"json": {**target, "delivery": POLL}}),
        ("DELETE", "/ssf/streams", {"params": target}),
        ("GET", "/ssf/status", {"params": target}),
        ("POST", "/ssf/status", {"json": {**target, "status": "disabled"}}),
        ("POST", "/ssf/verify", {"json": target}),
        ("POST", "/ssf/subjects:add", {"json": subject}),
        ("POST", "/ssf/subjects:remove", {"json": subject}),
        ("POST", f"/ssf/poll/{stream_id}", {"json": NOW}),
    ]
    for method, path, kwargs in calls:
        response = http.request(method, path, headers=manager, **kwargs)
        assert_problem(response, 404)
    assert [s["stream_id"] for s in http.get("/ssf/streams", headers=manager).json()] == []
    mine = http.get(
        "/ssf/streams", params={"stream_id": theirs["stream_id"]}, headers=theirs_headers
    )
    assert mine.json() == theirs
    status = http.get(
        "/ssf/status", params={"stream_id": theirs["stream_id"]}, headers=theirs_headers
    )
    assert status.json()["status"] == "enabled"
    # globex's stream was not asked to verify: its first request is accepted
    verify = http.post(
        "/ssf/verify", json={"stream_id": theirs["stream_id"]}, headers=theirs_headers
    )
    assert verify.status_code == 204


def test_409_beyond_the_streams_a_platform_may_hold(
    http: TestClient, manager: Headers, globex: PlatformClient, as_client: AsClient
) -> None:
    """A platform holds at most MAX_STREAMS_PER_PLATFORM streams; others are unaffected."""
    for _ in range(MAX_STREAMS_PER_PLATFORM):
        create(http, manager)
    assert_problem(http.post("/ssf/streams", json={}, headers=manager), 409)
    assert len(http.get("/ssf/streams", headers=manager).json()) == MAX_STREAMS_PER_PLATFORM
    create(http, as_client(globex))


# -- poll delivery (RFC 8936) ---------------------------------------------------------


def test_a_recycled_number_is_polled_until_acknowledged(
    http: TestClient, manager: Headers, carrier: Carrier, settings: Settings
) -> None:
    """The SET comes back on every poll until acknowledged, and never after."""
    stream = create(http, manager, events_requested=[IDENTIFIER_RECYCLED])
    stream_id = stream["stream_id"]
    carrier.recycle()
    sets, more = poll(http, manager, stream_id, **NOW)
    assert not more
    (jti,) = sets
    assert seq_of(stream_id, jti) is not None
    claims = decode(http, sets[jti])
    assert claims["jti"] == jti
    assert claims["iss"] == settings.public_url.rstrip("/")
    assert claims["aud"] == stream["aud"]
    assert claims["sub_id"] == {"format": "phone_number", "phone_number": NUMBER}
    assert only_event(claims) == IDENTIFIER_RECYCLED
    assert claims["txn"].startswith("log:")

    again, _ = poll(http, manager, stream_id, **NOW)
    assert list(again) == [jti]
    acked, more = poll(http, manager, stream_id, ack=[jti], **NOW)
    assert (acked, more) == ({}, False)
    assert poll(http, manager, stream_id, **NOW) == ({}, False)


def test_a_set_s_txn_names_a_receipt_its_platform_may_read(
    http: TestClient,
    manager: Headers,
    globex: PlatformClient,
    as_client: AsClient,
    carrier: Carrier,
) -> None:
    """acme was sent the SET, so it reads the entry its `txn` names; globex, whose stream
    does not ask for that type, and a stream created later, get the public receipt only."""
    create(http, manager, events_requested=[IDENTIFIER_RECYCLED])
    create(http, as_client(globex), events_requested=[NUMBER_CANCELLED])
    carrier.recycle()
    [stream] = http.get("/ssf/streams", headers=manager).json()
    sets, _ = poll(http, manager, stream["stream_id"], **NOW)
    index = int(decode(http, next(iter(sets.values())))["txn"].removeprefix("log:"))
    key = http.get("/log/key").text.strip()

    mine = http.get(f"/log/receipts/{index}", headers=manager)
    entry = verify_bundle(mine.text, key)
    assert entry.leaf_data is not None and b'"event":"activated"' in entry.leaf_data
    assert_problem(http.get(f"/log/receipts/{index}", headers=as_client(globex)), 403)
    public = verify_bundle(http.get(f"/log/receipts/{index}").text, key, leaf=entry.leaf_hash)
    assert public.leaf_data is None
    cancelled = index - 2  # activated, cancelled, released, activated: globex got this one
    assert verify_bundle(
        http.get(f"/log/receipts/{cancelled}", headers=as_client(globex)).text, key
    ).leaf_data
    assert_problem(http.get(f"/log/receipts/{index - 3}", headers=manager), 403)  # no SET

    create(http, as_client(globex), events_requested=[IDENTIFIER_RECYCLED])  # too late
    assert_problem(http.get(f"/log/receipts/{index}", headers=as_client(globex)), 403)


def test_foreign_and_unknown_acks_are_ignored(
    http: TestClient, manager: Headers, carrier: Carrier
) -> None:
    """Acknowledging another stream's jti, or garbage, does not settle our SET."""
    mine = create(http, manager, events_requested=[IDENTIFIER_RECYCLED])["stream_id"]
    other = create(http, manager, events_requested=[IDENTIFIER_RECYCLED])["stream_id"]
    carrier.recycle()
    (their_jti,) = poll(http, manager, other, **NOW)[0]
    (my_jti,) = poll(http, manager, mine, **NOW)[0]
    assert their_jti != my_jti
    sets, _ = poll(http, manager, mine, ack=[their_jti, "garbage", "1-x"], **NOW)
    assert list(sets) == [my_jti]
    errors = {my_jti: {"err": "jwtAud", "description": "not for us"}}
    assert poll(http, manager, mine, setErrs=errors, **NOW) == ({}, False)


def test_an_ack_that_only_looks_numeric_is_ignored(http: TestClient, manager: Headers) -> None:
    """A receiver's odd jti ("²" passes str.isdigit) is ignored, not a 500."""
    stream_id = create(http, manager)["stream_id"]
    assert http.post("/ssf/verify", json={"stream_id": stream_id}, headers=manager).is_success
    sets, _ = poll(http, manager, stream_id, ack=["\u00b2", "\u00b2-x"], **NOW)
    assert len(sets) == 1


def test_max_events_limits_a_poll_and_more_available_says_so(
    http: TestClient, manager: Headers, carrier: Carrier
) -> None:
    """maxEvents caps each answer in outbox order; moreAvailable is true while more wait."""
    stream_id = create(http, manager, events_requested=[IDENTIFIER_RECYCLED, NUMBER_CANCELLED])[
        "stream_id"
    ]
    for number in (NUMBER, OTHER_NUMBER, THIRD_NUMBER):
        carrier.recycle(number)
    first, more = poll(http, manager, stream_id, maxEvents=2, **NOW)
    assert more and len(first) == 2
    rest, more = poll(http, manager, stream_id, ack=list(first), maxEvents=10, **NOW)
    assert not more and len(rest) == 4
    seqs = [seq_of(stream_id, jti) or 0 for jti in [*first, *rest]]
    assert 0 not in seqs
    assert max(seqs[:2]) < min(seqs[2:])
    types = [only_event(decode(http, token)) for token in [*first.values(), *rest.values()]]
    assert types.count(NUMBER_CANCELLED) == 3 and types.count(IDENTIFIER_RECYCLED) == 3
    assert poll(http, manager, stream_id, ack=list(rest), **NOW) == ({}, False)


def test_max_events_zero_only_acknowledges(
    http: TestClient, manager: Headers, carrier: Carrier
) -> None:
    """A poll with maxEvents 0 settles acknowledgements and hands nothing out."""
    stream_id = create(http, manager, events_requested=[IDENTIFIER_RECYCLED])["stream_id"]
    carrier.recycle()
    carrier.recycle(OTHER_NUMBER)
    first, second = poll(http, manager, stream_id, **NOW)[0]
    assert poll(http, manager, stream_id, ack=[first], maxEvents=0)[0] == {}
    assert list(poll(http, manager, stream_id, **NOW)[0]) == [second]


def test_return_immediately_does_not_wait(http: TestClient, manager: Headers) -> None:
    """An empty poll told to return at once answers without waiting for its deadline."""
    stream_id = create(http, manager)["stream_id"]
    started = time.monotonic()
    assert poll(http, manager, stream_id, **NOW) == ({}, False)
    assert time.monotonic() - started < POLL_WAIT / 2


def test_an_empty_poll_waits_until_its_deadline(
    http: TestClient, manager: Headers, app: FastAPI
) -> None:
    """An empty poll waits out poll_wait_seconds (here short) before answering nothing."""
    stream_id = create(http, manager)["stream_id"]
    wait = 0.3
    app.state.settings = app.state.settings.model_copy(update={"poll_wait_seconds": wait})
    started = time.monotonic()
    assert poll(http, manager, stream_id) == ({}, False)
    assert time.monotonic() - started >= wait


def test_a_long_poll_returns_when_an_event_arrives(
    http: TestClient, manager: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A waiting poll answers as soon as something is queued, before its deadline."""
    stream_id = create(http, manager)["stream_id"]
    answered: list[tuple[dict[str, str], float]] = []
    looked = threading.Event()
    look = delivery_service.poll

    def poll_and_tell(*args: Any, **kwargs: Any) -> Any:
        batch = look(*args, **kwargs)
        if not batch.sets:
            looked.set()  # the poll found nothing and waits
        return batch

    monkeypatch.setattr(delivery_service, "poll", poll_and_tell)

    def wait() -> None:
        started = time.monotonic()
        sets, _ = poll(http, manager, stream_id)
        answered.append((sets, time.monotonic() - started))

    waiting = threading.Thread(target=wait)
    waiting.start()
    assert looked.wait(30), "the poll never looked"
    assert http.post("/ssf/verify", json={"stream_id": stream_id}, headers=manager).is_success
    waiting.join(timeout=POLL_WAIT / 2)
    ((sets, elapsed),) = answered
    assert [only_event(decode(http, token)) for token in sets.values()] == [VERIFICATION]
    assert elapsed < POLL_WAIT / 2


@pytest.mark.parametrize(
    "body",
    [
        [],
        "x",
        {"maxEvents": -1},
        {"maxEvents": "5"},
        {"maxEvents": True},
        {"maxEvents": 1.5},
        {"returnImmediately": "yes"},
        {"ack": "jti"},
        {"ack": [1]},
        {"setErrs": []},
        {"setErrs": {"jti": "bad"}},
        {"setErrs": {"jti": {"description": "no err"}}},
    ],
)
def test_invalid_poll_bodies_are_400(http: TestClient, manager: Headers, body: Any) -> None:
    """RFC 8936 §2.4 request members are checked."""
    stream_id = create(http, manager)["stream_id"]
    response = http.post(f"/ssf/poll/{stream_id}", json=body, headers=manager)
    assert_problem(response, 400)


def test_a_poll_body_that_is_not_json_is_400(http: TestClient, manager: Headers) -> None:
    """A poll request must be JSON."""
    stream_id = create(http, manager)["stream_id"]
    headers = {**manager, "Content-Type": "application/json"}
    assert_problem(http.post(f"/ssf/poll/{stream_id}", content=b"{", headers=headers), 400)


def test_a_push_stream_cannot_be_polled(http: TestClient, manager: Headers) -> None:
    """Polling a push stream is 400: its SETs go to the receiver's endpoint."""
    stream_id = create(http, manager, delivery=PUSH)["stream_id"]
    assert_problem(http.post(f"/ssf/poll/{stream_id}", json=NOW, headers=manager), 400)


def test_a_paused_stream_holds_events_until_enabled(
    http: TestClient, manager: Headers, carrier: Carrier
) -> None:
    """Paused streams deliver nothing, and deliver what was held once enabled."""
    stream_id = create(http, manager, events_requested=[IDENTIFIER_RECYCLED])["stream_id"]
    set_status(http, manager, stream_id, "paused")
    carrier.recycle()
    assert poll(http, manager, stream_id, **NOW) == ({}, False)
    set_status(http, manager, stream_id, "enabled")
    sets, _ = poll(http, manager, stream_id, **NOW)
    assert [only_event(decode(http, token)) for token in sets.values()] == [IDENTIFIER_RECYCLED]


def test_a_disabled_stream_drops_what_happened_meanwhile(
    http: TestClient, manager: Headers, carrier: Carrier
) -> None:
    """Re-enabling a disabled stream starts it at the present; later events arrive."""
    stream_id = create(http, manager, events_requested=[IDENTIFIER_RECYCLED, NUMBER_RESTORED])[
        "stream_id"
    ]
    set_status(http, manager, stream_id, "disabled")
    carrier.recycle()
    assert poll(http, manager, stream_id, **NOW) == ({}, False)
    set_status(http, manager, stream_id, "enabled")
    assert poll(http, manager, stream_id, **NOW) == ({}, False)
    carrier.report(
        (NUMBER, "cancelled", "2022-01-01", None),
        (NUMBER, "restored", "2022-01-02", "s2"),
    )
    sets, _ = poll(http, manager, stream_id, **NOW)
    assert [only_event(decode(http, token)) for token in sets.values()] == [NUMBER_RESTORED]


def test_a_removed_subject_is_not_delivered(
    http: TestClient, manager: Headers, carrier: Carrier
) -> None:
    """After subjects:remove, that number's events skip the stream; others still come."""
    stream_id = create(http, manager, events_requested=[IDENTIFIER_RECYCLED])["stream_id"]
    subject = {"format": "phone_number", "phone_number": NUMBER}
    body = {"stream_id": stream_id, "subject": subject}
    assert http.post("/ssf/subjects:remove", json=body, headers=manager).status_code == 204
    carrier.recycle(NUMBER)
    carrier.recycle(OTHER_NUMBER)
    sets, _ = poll(http, manager, stream_id, **NOW)
    numbers = [decode(http, token)["sub_id"]["phone_number"] for token in sets.values()]
    assert numbers == [OTHER_NUMBER]
    assert http.post("/ssf/subjects:add", json=body, headers=manager).status_code == 200
    carrier.report(
        (NUMBER, "cancelled", "2022-01-01", None),
        (NUMBER, "released", "2022-05-01", None),
        (NUMBER, "activated", "2022-06-01", "s3"),
    )
    sets, _ = poll(http, manager, stream_id, ack=list(sets), **NOW)
    numbers = [decode(http, token)["sub_id"]["phone_number"] for token in sets.values()]
    assert numbers == [NUMBER]


@pytest.mark.one_store
def test_the_openapi_document_describes_the_ssf_request_bodies(http: TestClient) -> None:
    """The endpoints read raw JSON; their bodies are still documented for API readers."""
    paths = http.get("/openapi.json").json()["paths"]
    for path, method, member in [
        ("/ssf/streams", "post", "delivery"),
        ("/ssf/streams", "patch", "events_requested"),
        ("/ssf/status", "post", "status"),
        ("/ssf/subjects:add", "post", "subject"),
        ("/ssf/verify", "post", "state"),
        ("/ssf/poll/{stream_id}", "post", "maxEvents"),
    ]:
        schema = paths[path][method]["requestBody"]["content"]["application/json"]["schema"]
        assert member in schema["properties"], (path, method)
        assert "$ref" not in json.dumps(schema), "definitions are inlined"
