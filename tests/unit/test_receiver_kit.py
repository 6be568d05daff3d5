"""The platform receiver kit (handover.receiver) against real keys and real HTTP on loopback.

A small fake transmitter (`FakeTransmitter`, http.server in a thread) publishes the JWKS,
issues tokens, manages streams and speaks RFC 8936 poll, re-sending every SET until it is
acknowledged, so each piece of the kit runs over the wire as it would against Handover.
"""

from __future__ import annotations

import ast
import base64
import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn
from joserfc import jws
from joserfc.jwk import ECKey, Key, OctKey, RSAKey

from handover.receiver import (
    ClientCredentials,
    InvalidSet,
    JwksCache,
    KeysUnavailable,
    MemoryJtiStore,
    Poller,
    PushReceiver,
    SecurityEvent,
    SetVerifier,
    SqliteJtiStore,
    StaticKeys,
    StaticToken,
    StreamClient,
    Transmitter,
    TransmitterError,
)
from handover.receiver import events as types
from handover.receiver.streams import well_known_url

ISSUER = "http://127.0.0.1:8000"
AUDIENCE = "https://platform.example/streams/s-1"
PHONE = "+8613800138000"
RECEIVER_PACKAGE = Path(__file__).parents[2] / "src" / "handover" / "receiver"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def ec_key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": "ec-1"})


@pytest.fixture(scope="module")
def ec_key_2() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": "ec-2"})


@pytest.fixture(scope="module")
def rsa_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})


def claims(jti: str = "jti-1", **changes: Any) -> dict[str, Any]:
    """The claims of an identifier-recycled SET as Handover sends them, with `changes`."""
    base: dict[str, Any] = {
        "iss": ISSUER,
        "iat": 1_760_000_000,
        "jti": jti,
        "aud": AUDIENCE,
        "txn": "txn-1",
        "sub_id": {"format": "phone_number", "phone_number": PHONE},
        "events": {types.IDENTIFIER_RECYCLED: {}},
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def sign(payload: dict[str, Any] | bytes, key: Key, alg: str = "ES256", **header: Any) -> str:
    protected = {"alg": alg, "typ": "secevent+jwt", "kid": key.kid, **header}
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return jws.serialize_compact(protected, raw, key, algorithms=[alg])


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


# --- the fake transmitter --------------------------------------------------------------------


class FakeTransmitter:
    """State of a loopback transmitter: JWKS, OAuth tokens, streams and an RFC 8936 queue."""

    def __init__(self, keys: list[Key]) -> None:
        self.jwks: dict[str, Any] = {"keys": [k.as_dict(private=False) for k in keys]}
        self.jwks_status = 200
        self.jwks_requests = 0
        self.client_secret = "s3cret"
        self.tokens_issued: list[str] = []
        self.token_lifetime = 3600
        self.valid_tokens: set[str] = set()
        self.queue: dict[str, str] = {}
        self.acked: list[str] = []
        self.set_errors: dict[str, dict[str, str]] = {}
        self.poll_bodies: list[dict[str, Any]] = []
        self.streams: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str, Any]] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def enqueue(self, jti: str, token: str) -> None:
        with self.lock:
            self.queue[jti] = token

    def configuration(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "jwks_uri": self.url + "/jwks",
            "configuration_endpoint": self.url + "/ssf/streams",
            "status_endpoint": self.url + "/ssf/status",
            "add_subject_endpoint": self.url + "/ssf/subjects:add",
            "remove_subject_endpoint": self.url + "/ssf/subjects:remove",
            "verification_endpoint": self.url + "/ssf/verify",
            "delivery_methods_supported": ["urn:ietf:rfc:8935", "urn:ietf:rfc:8936"],
            "spec_version": "1_0",
        }

    def route(
        self, method: str, path: str, query: dict[str, str], headers: Any, body: bytes
    ) -> tuple[int, Any]:
        if method == "GET" and path == "/jwks":
            self.jwks_requests += 1
            return self.jwks_status, self.jwks
        if method == "GET" and path == "/.well-known/ssf-configuration":
            return 200, self.configuration()
        if method == "POST" and path == "/oauth/token":
            return self._token(parse_qs(body.decode()))
        if headers.get("Authorization", "").removeprefix("Bearer ") not in self.valid_tokens:
            return 401, {"title": "Unauthorized", "status": 401}
        data = json.loads(body) if body else None
        self.calls.append((method, path, data if data is not None else query))
        if path == "/poll":
            return self._poll(data)
        if path == "/ssf/streams":
            return self._streams(method, query, data)
        if path == "/ssf/verify" or path == "/ssf/subjects:remove":
            return 204, None
        if path == "/ssf/subjects:add":
            return 200, None
        if path == "/ssf/status":
            return 200, {"stream_id": query.get("stream_id"), "status": "enabled"}
        return 404, {"title": "Not Found", "status": 404}

    def _token(self, form: dict[str, list[str]]) -> tuple[int, Any]:
        if form.get("client_secret") != [self.client_secret]:
            return 401, {"error": "invalid_client", "error_description": "bad secret"}
        token = f"token-{len(self.tokens_issued) + 1}"
        self.tokens_issued.append(token)
        self.valid_tokens.add(token)
        return 200, {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
        }

    def _poll(self, data: dict[str, Any]) -> tuple[int, Any]:
        with self.lock:
            self.poll_bodies.append(data)
            for jti in data.get("ack", []):
                if self.queue.pop(jti, None) is not None:
                    self.acked.append(jti)
            for jti, error in data.get("setErrs", {}).items():
                self.queue.pop(jti, None)
                self.set_errors[jti] = error
            batch = dict(list(self.queue.items())[: data.get("maxEvents", 100)])
            return 200, {"sets": batch, "moreAvailable": len(self.queue) > len(batch)}

    def _streams(
        self, method: str, query: dict[str, str], data: dict[str, Any] | None
    ) -> tuple[int, Any]:
        if method == "POST" and data is not None:
            stream_id = f"s-{len(self.streams) + 1}"
            delivery = dict(data["delivery"])
            if delivery["method"] == "urn:ietf:rfc:8936":
                delivery["endpoint_url"] = self.url + "/poll"
            stream = {
                "stream_id": stream_id,
                "iss": self.url,
                "aud": f"{self.url}/streams/{stream_id}",
                "delivery": delivery,
                "events_requested": data["events_requested"],
                "events_delivered": data["events_requested"],
            }
            self.streams[stream_id] = stream
            return 201, stream
        stream_id = query.get("stream_id") or (data or {}).get("stream_id")
        if stream_id not in self.streams:
            return 404, {"title": "Stream not found", "status": 404, "detail": "no such stream"}
        if method == "GET":
            return 200, self.streams[stream_id]
        if method == "PATCH" and data is not None:
            self.streams[stream_id].update(data)
            return 200, self.streams[stream_id]
        if method == "DELETE":
            del self.streams[stream_id]
            return 204, None
        return 405, {"title": "Method Not Allowed", "status": 405}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, payload = fake.route(self.command, parts.path, query, self.headers, body)
                raw = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                if payload is not None:
                    problem = status >= 400 and "title" in payload
                    kind = "application/problem+json" if problem else "application/json"
                    self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        for method in ("GET", "POST", "PATCH", "PUT", "DELETE"):
            setattr(Handler, f"do_{method}", Handler._serve)
        return Handler


@pytest.fixture
def transmitter(ec_key: ECKey, rsa_key: RSAKey) -> Iterator[FakeTransmitter]:
    fake = FakeTransmitter([ec_key, rsa_key])
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0) as client:
        yield client


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def jwks(transmitter: FakeTransmitter, http: httpx.Client, clock: FakeClock) -> JwksCache:
    return JwksCache(transmitter.url + "/jwks", http, min_refresh_interval=30.0, clock=clock)


@pytest.fixture
def verifier(jwks: JwksCache) -> SetVerifier:
    return SetVerifier(ISSUER, AUDIENCE, jwks)


def refusal(verifier: SetVerifier, token: str) -> str:
    with pytest.raises(InvalidSet) as caught:
        verifier.verify(token)
    return caught.value.err


# --- verification ----------------------------------------------------------------------------


@pytest.mark.parametrize(("key_name", "alg"), [("ec_key", "ES256"), ("rsa_key", "RS256")])
def test_a_valid_set_verifies(
    verifier: SetVerifier, request: pytest.FixtureRequest, key_name: str, alg: str
) -> None:
    key = request.getfixturevalue(key_name)
    event = verifier.verify(sign(claims(), key, alg))
    assert isinstance(event, SecurityEvent)
    assert (event.jti, event.iat, event.txn, event.iss, event.aud) == (
        "jti-1",
        1_760_000_000,
        "txn-1",
        ISSUER,
        AUDIENCE,
    )
    assert event.event_type == types.IDENTIFIER_RECYCLED
    assert event.event == {}
    assert event.phone_number == PHONE
    assert event.claims["sub_id"] == event.sub_id


def test_stream_events_and_unknown_types_verify(verifier: SetVerifier, ec_key: ECKey) -> None:
    stream = {"format": "opaque", "id": "s-1"}
    verification = verifier.verify(
        sign(claims(sub_id=stream, events={types.VERIFICATION: {"state": "abc"}}), ec_key)
    )
    assert verification.event == {"state": "abc"}
    assert verification.phone_number is None
    unknown = verifier.verify(sign(claims(events={"urn:example:new-type": {"x": 1}}), ec_key))
    assert unknown.event_type == "urn:example:new-type"


def test_bytes_a_list_audience_and_a_full_media_type_are_accepted(
    verifier: SetVerifier, ec_key: ECKey
) -> None:
    token = sign(claims(aud=["other", AUDIENCE]), ec_key, typ="application/secevent+jwt")
    assert verifier.verify(token.encode() + b"\r\n").aud == AUDIENCE


def test_a_tampered_payload_is_refused(verifier: SetVerifier, ec_key: ECKey) -> None:
    header, _, signature = sign(claims(), ec_key).split(".")
    forged = b64(claims(sub_id={"format": "phone_number", "phone_number": "+8613900000000"}))
    assert refusal(verifier, f"{header}.{forged}.{signature}") == "invalid_key"


def test_a_set_signed_with_another_key_under_a_known_kid_is_refused(
    verifier: SetVerifier,
) -> None:
    impostor = ECKey.generate_key("P-256", parameters={"kid": "ec-1"})
    assert refusal(verifier, sign(claims(), impostor)) == "invalid_key"


def test_an_rs256_header_with_an_ec_kid_is_refused(
    verifier: SetVerifier, ec_key: ECKey, rsa_key: RSAKey
) -> None:
    token = sign(claims(), rsa_key, "RS256", kid="ec-1")
    assert refusal(verifier, token) == "invalid_key"


def test_an_unknown_kid_refreshes_the_jwks_once_then_is_refused(
    verifier: SetVerifier,
    jwks: JwksCache,
    transmitter: FakeTransmitter,
    ec_key: ECKey,
    clock: FakeClock,
) -> None:
    verifier.verify(sign(claims(), ec_key))
    assert transmitter.jwks_requests == 1
    stranger = ECKey.generate_key("P-256", parameters={"kid": "nobody"})
    clock.now += 31
    assert refusal(verifier, sign(claims(), stranger)) == "invalid_key"
    assert transmitter.jwks_requests == 2
    for _ in range(5):
        assert refusal(verifier, sign(claims(), stranger)) == "invalid_key"
    assert transmitter.jwks_requests == 2, "no refetch within min_refresh_interval"
    verifier.verify(sign(claims(), ec_key))
    assert transmitter.jwks_requests == 2


def test_a_rotated_in_key_is_found_by_refreshing(
    verifier: SetVerifier,
    jwks: JwksCache,
    transmitter: FakeTransmitter,
    ec_key: ECKey,
    ec_key_2: ECKey,
    clock: FakeClock,
) -> None:
    verifier.verify(sign(claims(), ec_key))
    transmitter.jwks = {"keys": [ec_key_2.as_dict(private=False)]}
    clock.now += 31
    assert verifier.verify(sign(claims(), ec_key_2)).jti == "jti-1"
    assert jwks.kids() == {"ec-2"}
    assert refusal(verifier, sign(claims(), ec_key)) == "invalid_key", "the old key is gone"


def test_the_key_set_is_refetched_when_old_and_kept_if_that_fails(
    verifier: SetVerifier,
    transmitter: FakeTransmitter,
    ec_key: ECKey,
    clock: FakeClock,
) -> None:
    verifier.verify(sign(claims(), ec_key))
    transmitter.jwks_status = 500
    clock.now += 3600
    verifier.verify(sign(claims(), ec_key))
    assert transmitter.jwks_requests == 2


def test_an_unreachable_key_set_is_not_a_refusal(
    transmitter: FakeTransmitter, http: httpx.Client, clock: FakeClock, ec_key: ECKey
) -> None:
    transmitter.jwks_status = 503
    jwks = JwksCache(transmitter.url + "/jwks", http, min_refresh_interval=30.0, clock=clock)
    verifier = SetVerifier(ISSUER, AUDIENCE, jwks)
    with pytest.raises(KeysUnavailable):
        verifier.verify(sign(claims(), ec_key))
    with pytest.raises(KeysUnavailable):
        verifier.verify(sign(claims(), ec_key))
    assert transmitter.jwks_requests == 1, "a failing JWKS is not hammered either"
    transmitter.jwks_status = 200
    clock.now += 30
    assert verifier.verify(sign(claims(), ec_key)).jti == "jti-1"


def test_unsigned_and_hmac_sets_are_refused(verifier: SetVerifier, ec_key: ECKey) -> None:
    unsigned = f"{b64({'alg': 'none', 'typ': 'secevent+jwt', 'kid': 'ec-1'})}.{b64(claims())}."
    assert refusal(verifier, unsigned) == "invalid_key"
    secret = OctKey.import_key(b"a shared secret that is long enough!", {"kid": "ec-1"})
    assert refusal(verifier, sign(claims(), secret, "HS256")) == "invalid_key"


@pytest.mark.parametrize(
    ("change", "err"),
    [
        ({"iss": "https://evil.example"}, "invalid_issuer"),
        ({"aud": "https://other.example"}, "invalid_audience"),
        ({"aud": ["a", "b"]}, "invalid_audience"),
        ({"iss": None}, "invalid_request"),
        ({"aud": None}, "invalid_request"),
        ({"jti": None}, "invalid_request"),
        ({"iat": None}, "invalid_request"),
        ({"iat": "yesterday"}, "invalid_request"),
        ({"exp": 1_760_000_600}, "invalid_request"),
        ({"sub": PHONE}, "invalid_request"),
        ({"sub_id": None}, "invalid_request"),
        ({"sub_id": {"phone_number": PHONE}}, "invalid_request"),
        ({"sub_id": {"format": "opaque"}}, "invalid_request"),
        ({"events": {}}, "invalid_request"),
        (
            {"events": {types.NUMBER_CANCELLED: {}, types.IDENTIFIER_RECYCLED: {}}},
            "invalid_request",
        ),
        ({"events": {types.NUMBER_CANCELLED: "yes"}}, "invalid_request"),
        ({"events": None}, "invalid_request"),
    ],
)
def test_bad_claims_are_refused_with_their_code(
    verifier: SetVerifier, ec_key: ECKey, change: dict[str, Any], err: str
) -> None:
    assert refusal(verifier, sign(claims(**change), ec_key)) == err


@pytest.mark.parametrize(
    "number", ["8613800138000", "+08613800138000", "+86 138 0013 8000", "+1234567890123456", "+1"]
)
def test_a_phone_number_that_is_not_strict_e164_is_refused(
    verifier: SetVerifier, ec_key: ECKey, number: str
) -> None:
    sub_id = {"format": "phone_number", "phone_number": number}
    assert refusal(verifier, sign(claims(sub_id=sub_id), ec_key)) == "invalid_request"


def test_malformed_tokens_are_invalid_requests(verifier: SetVerifier, ec_key: ECKey) -> None:
    assert refusal(verifier, "not a token") == "invalid_request"
    assert refusal(verifier, "a.b.c") == "invalid_request"
    assert refusal(verifier, sign(claims(), ec_key, typ="JWT")) == "invalid_request"
    assert refusal(verifier, sign(claims(), ec_key, crit=["kid"])) == "invalid_request"
    assert refusal(verifier, sign(b"[1, 2]", ec_key)) == "invalid_request"
    twice = b'{"iss": "https://evil.example", ' + json.dumps(claims()).encode()[1:]
    assert refusal(verifier, sign(twice, ec_key)) == "invalid_request", "duplicate member"


def test_static_keys_verify_without_a_jwks(ec_key: ECKey) -> None:
    public = ECKey.import_key(ec_key.as_dict(private=False))
    verifier = SetVerifier(ISSUER, AUDIENCE, StaticKeys([public]))
    assert verifier.verify(sign(claims(), ec_key)).jti == "jti-1"


# --- dedupe ----------------------------------------------------------------------------------


def test_the_memory_store_drops_repeats_and_stays_bounded() -> None:
    store = MemoryJtiStore(max_entries=2)
    assert store.first_time("a")
    assert not store.first_time("a")
    store.forget("a")
    assert store.first_time("a")
    store.first_time("b")
    store.first_time("c")
    assert len(store) == 2
    assert store.first_time("a"), "the oldest was forgotten"


def test_the_sqlite_store_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "jti.db"
    store = SqliteJtiStore(path)
    assert store.first_time("a")
    assert not store.first_time("a")
    assert store.first_time("b")
    store.forget("b")
    store.close()
    reopened = SqliteJtiStore(path)
    assert not reopened.first_time("a")
    assert reopened.first_time("b")
    assert reopened.prune(older_than=time.time() + 1) == 2
    assert reopened.first_time("a")
    reopened.close()


def test_the_sqlite_store_claims_a_jti_once_across_connections(tmp_path: Path) -> None:
    stores = [SqliteJtiStore(tmp_path / "jti.db") for _ in range(4)]
    wins: list[bool] = []
    barrier = threading.Barrier(len(stores))

    def claim(store: SqliteJtiStore) -> None:
        barrier.wait()
        wins.append(store.first_time("same"))

    threads = [threading.Thread(target=claim, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(wins) == [False, False, False, True]


# --- push ------------------------------------------------------------------------------------

AUTHORIZATION = "Bearer push-secret"
PUSH_HEADERS = {"Content-Type": "application/secevent+jwt", "Authorization": AUTHORIZATION}


@pytest.fixture
def handled() -> list[SecurityEvent]:
    return []


@pytest.fixture
def push(verifier: SetVerifier, handled: list[SecurityEvent]) -> PushReceiver:
    return PushReceiver(verifier, MemoryJtiStore(), AUTHORIZATION, handled.append)


def test_push_accepts_a_set_once_and_a_retransmission_quietly(
    push: PushReceiver, handled: list[SecurityEvent], ec_key: ECKey
) -> None:
    token = sign(claims(), ec_key).encode()
    assert push.handle(PUSH_HEADERS, token) == (202, b"", {})
    assert push.handle({k.lower(): v for k, v in PUSH_HEADERS.items()}, token)[0] == 202
    assert [event.jti for event in handled] == ["jti-1"]


def test_push_refuses_a_bad_set_with_the_rfc_8935_error(
    push: PushReceiver, handled: list[SecurityEvent], ec_key: ECKey
) -> None:
    status, body, headers = push.handle(PUSH_HEADERS, sign(claims(aud="x"), ec_key).encode())
    assert status == 400
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body)["err"] == "invalid_audience"
    assert handled == []


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "bearer push-secret"])
def test_push_refuses_a_request_without_the_right_authorization(
    push: PushReceiver, ec_key: ECKey, authorization: str | None
) -> None:
    headers = {"Content-Type": "application/secevent+jwt"}
    if authorization:
        headers["Authorization"] = authorization
    status, body, response_headers = push.handle(headers, sign(claims(), ec_key).encode())
    assert status == 401
    assert json.loads(body)["err"] == "authentication_failed"
    assert "WWW-Authenticate" in response_headers


def test_push_wants_the_set_media_type(push: PushReceiver, ec_key: ECKey) -> None:
    headers = {**PUSH_HEADERS, "Content-Type": "application/json"}
    status, body, _ = push.handle(headers, sign(claims(), ec_key).encode())
    assert (status, json.loads(body)["err"]) == (400, "invalid_request")


def test_push_lets_a_failed_handler_be_retried(verifier: SetVerifier, ec_key: ECKey) -> None:
    calls: list[str] = []

    def flaky(event: SecurityEvent) -> None:
        calls.append(event.jti)
        if len(calls) == 1:
            raise RuntimeError("database down")

    receiver = PushReceiver(verifier, MemoryJtiStore(), AUTHORIZATION, flaky)
    token = sign(claims(), ec_key).encode()
    assert receiver.handle(PUSH_HEADERS, token)[0] == 500
    assert receiver.handle(PUSH_HEADERS, token)[0] == 202
    assert receiver.handle(PUSH_HEADERS, token)[0] == 202
    assert calls == ["jti-1", "jti-1"]


def test_push_asks_for_a_retry_when_keys_are_unreachable(
    transmitter: FakeTransmitter, http: httpx.Client, ec_key: ECKey
) -> None:
    transmitter.jwks_status = 500
    verifier = SetVerifier(ISSUER, AUDIENCE, JwksCache(transmitter.url + "/jwks", http))
    receiver = PushReceiver(verifier, MemoryJtiStore(), AUTHORIZATION, lambda event: None)
    status, _, headers = receiver.handle(PUSH_HEADERS, sign(claims(), ec_key).encode())
    assert (status, headers["Retry-After"]) == (503, "30")


def serve_in_thread(app: Any) -> tuple[uvicorn.Server, threading.Thread, str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    return server, thread, f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_the_asgi_app_speaks_rfc_8935_over_http(
    push: PushReceiver, handled: list[SecurityEvent], ec_key: ECKey, http: httpx.Client
) -> None:
    server, thread, url = serve_in_thread(push.asgi_app())
    try:
        token = sign(claims(), ec_key)
        accepted = http.post(url + "/events", content=token, headers=PUSH_HEADERS)
        assert (accepted.status_code, accepted.content) == (202, b"")
        again = http.post(url + "/events", content=token, headers=PUSH_HEADERS)
        assert again.status_code == 202
        bad = http.post(url + "/events", content=token + "x", headers=PUSH_HEADERS)
        assert bad.status_code == 400
        assert bad.json()["err"] == "invalid_key"
        no_auth = http.post(
            url + "/events", content=token, headers={**PUSH_HEADERS, "Authorization": ""}
        )
        assert no_auth.status_code == 401
        huge = http.post(url + "/events", content=b"x" * 70_000, headers=PUSH_HEADERS)
        assert huge.status_code == 413
        assert http.get(url + "/events").status_code == 405
        assert [event.jti for event in handled] == ["jti-1"]
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# --- talking to the transmitter --------------------------------------------------------------


def test_client_credentials_reuse_a_token_until_shortly_before_it_expires(
    transmitter: FakeTransmitter, http: httpx.Client, clock: FakeClock
) -> None:
    tokens = ClientCredentials(
        transmitter.url + "/oauth/token", "platform-1", "s3cret", http=http, clock=clock
    )
    assert tokens.token() == tokens.token() == "token-1"
    clock.now += 3600 - 31
    assert tokens.token() == "token-1"
    clock.now += 2
    assert tokens.token() == "token-2"
    tokens.invalidate()
    assert tokens.token() == "token-3"


def test_client_credentials_report_a_refused_client(
    transmitter: FakeTransmitter, http: httpx.Client
) -> None:
    tokens = ClientCredentials(transmitter.url + "/oauth/token", "platform-1", "wrong", http=http)
    with pytest.raises(TransmitterError) as caught:
        tokens.token()
    assert caught.value.status == 401
    assert caught.value.problem == {"error": "invalid_client", "error_description": "bad secret"}


def test_discovery_reads_the_configuration(
    transmitter: FakeTransmitter, http: httpx.Client
) -> None:
    found = Transmitter.discover(transmitter.url, http)
    assert found.issuer == transmitter.url
    assert found.jwks_uri == transmitter.url + "/jwks"
    assert found.verification_endpoint == transmitter.url + "/ssf/verify"
    assert found.token_endpoint == transmitter.url + "/oauth/token"
    assert found.spec_version == "1_0"
    assert "urn:ietf:rfc:8936" in found.delivery_methods_supported


def test_discovery_refuses_a_configuration_for_another_issuer(
    transmitter: FakeTransmitter, http: httpx.Client
) -> None:
    other = transmitter.url.replace("127.0.0.1", "localhost")
    with pytest.raises(ValueError, match="issuer"):
        Transmitter.discover(other, http)


def test_the_well_known_path_goes_before_the_issuer_path() -> None:
    assert well_known_url("https://a.example") == "https://a.example/.well-known/ssf-configuration"
    assert (
        well_known_url("https://a.example/tenant/")
        == "https://a.example/.well-known/ssf-configuration/tenant"
    )


@pytest.fixture
def streams(transmitter: FakeTransmitter, http: httpx.Client) -> StreamClient:
    tokens = ClientCredentials(transmitter.url + "/oauth/token", "platform-1", "s3cret", http=http)
    return StreamClient(Transmitter.discover(transmitter.url, http), tokens, http)


def test_the_stream_client_manages_a_stream(
    streams: StreamClient, transmitter: FakeTransmitter
) -> None:
    created = streams.create_push(
        "http://127.0.0.1:9/events", "Bearer xyz", [types.IDENTIFIER_RECYCLED], "a platform"
    )
    stream_id = created["stream_id"]
    assert transmitter.calls[-1][2]["delivery"] == {
        "method": "urn:ietf:rfc:8935",
        "endpoint_url": "http://127.0.0.1:9/events",
        "authorization_header": "Bearer xyz",
    }
    assert streams.get(stream_id)["aud"] == created["aud"]
    assert streams.update(stream_id, description="renamed")["description"] == "renamed"
    assert streams.status(stream_id)["status"] == "enabled"
    streams.verify(stream_id, state="s1")
    assert transmitter.calls[-1] == ("POST", "/ssf/verify", {"stream_id": stream_id, "state": "s1"})
    subject = {"format": "phone_number", "phone_number": PHONE}
    streams.add_subject(stream_id, subject)
    streams.remove_subject(stream_id, subject)
    assert transmitter.calls[-2][2] == {
        "stream_id": stream_id,
        "subject": subject,
        "verified": True,
    }
    streams.delete(stream_id)
    with pytest.raises(TransmitterError) as caught:
        streams.get(stream_id)
    assert caught.value.status == 404
    assert caught.value.problem is not None
    assert caught.value.problem["detail"] == "no such stream"


def test_the_stream_client_fetches_a_new_token_when_refused(
    streams: StreamClient, transmitter: FakeTransmitter
) -> None:
    poll = streams.create_poll([types.IDENTIFIER_RECYCLED])
    assert poll["delivery"]["endpoint_url"] == transmitter.url + "/poll"
    transmitter.valid_tokens.clear()
    assert streams.get(poll["stream_id"])["stream_id"] == poll["stream_id"]
    assert transmitter.tokens_issued == ["token-1", "token-2"]


# --- poll ------------------------------------------------------------------------------------


def make_poller(
    transmitter: FakeTransmitter,
    verifier: SetVerifier,
    http: httpx.Client,
    handler: Any,
    store: Any = None,
) -> Poller:
    tokens = ClientCredentials(
        transmitter.url + "/oauth/token", "platform-1", "s3cret", "ssf.read", http=http
    )
    return Poller(
        transmitter.url + "/poll", tokens, verifier, store or MemoryJtiStore(), handler, http=http
    )


def enqueue(transmitter: FakeTransmitter, key: Key, *jtis: str) -> None:
    for jti in jtis:
        transmitter.enqueue(jti, sign(claims(jti), key))


def test_a_poll_hands_over_new_sets_and_acknowledges_them_on_the_next(
    transmitter: FakeTransmitter,
    verifier: SetVerifier,
    http: httpx.Client,
    ec_key: ECKey,
    handled: list[SecurityEvent],
) -> None:
    enqueue(transmitter, ec_key, "a", "b", "c")
    poller = make_poller(transmitter, verifier, http, handled.append)
    first = poller.poll_once(max_events=2)
    assert (first.delivered, first.duplicates, first.errors, first.more_available) == (
        2,
        0,
        0,
        True,
    )
    assert poller.pending_acks == ("a", "b")
    second = poller.poll_once(max_events=2)
    assert transmitter.poll_bodies[-1]["ack"] == ["a", "b"]
    assert transmitter.poll_bodies[-1]["maxEvents"] == 2
    assert (second.delivered, second.more_available) == (1, False)
    poller.flush()
    assert transmitter.poll_bodies[-1] == {"maxEvents": 0, "returnImmediately": True, "ack": ["c"]}
    assert transmitter.acked == ["a", "b", "c"]
    assert [event.jti for event in handled] == ["a", "b", "c"]


def test_sets_resent_after_a_restart_are_acknowledged_not_handled_again(
    transmitter: FakeTransmitter,
    verifier: SetVerifier,
    http: httpx.Client,
    ec_key: ECKey,
    handled: list[SecurityEvent],
    tmp_path: Path,
) -> None:
    enqueue(transmitter, ec_key, "a", "b")
    crashed = make_poller(
        transmitter, verifier, http, handled.append, SqliteJtiStore(tmp_path / "d")
    )
    assert crashed.poll_once().delivered == 2  # and dies before its next poll sends the acks
    restarted = make_poller(
        transmitter, verifier, http, handled.append, SqliteJtiStore(tmp_path / "d")
    )
    result = restarted.drain()
    assert (result.delivered, result.duplicates) == (0, 2)
    assert transmitter.queue == {}
    assert [event.jti for event in handled] == ["a", "b"]


def test_a_set_that_fails_verification_is_reported_in_set_errs(
    transmitter: FakeTransmitter,
    verifier: SetVerifier,
    http: httpx.Client,
    ec_key: ECKey,
    handled: list[SecurityEvent],
) -> None:
    transmitter.enqueue("bad-aud", sign(claims("bad-aud", aud="x"), ec_key))
    transmitter.enqueue("other-jti", sign(claims("inner-jti"), ec_key))
    enqueue(transmitter, ec_key, "good")
    poller = make_poller(transmitter, verifier, http, handled.append)
    result = poller.poll_once()
    assert (result.delivered, result.errors) == (1, 2)
    assert poller.pending_errors["bad-aud"]["err"] == "invalid_audience"
    poller.flush()
    assert transmitter.set_errors["bad-aud"]["err"] == "invalid_audience"
    assert transmitter.set_errors["other-jti"]["err"] == "invalid_request"
    assert transmitter.acked == ["good"]
    assert [event.jti for event in handled] == ["good"]


def test_a_set_whose_handler_failed_is_not_acknowledged_and_comes_back(
    transmitter: FakeTransmitter, verifier: SetVerifier, http: httpx.Client, ec_key: ECKey
) -> None:
    calls: list[str] = []

    def flaky(event: SecurityEvent) -> None:
        calls.append(event.jti)
        if len(calls) == 1:
            raise RuntimeError("database down")

    enqueue(transmitter, ec_key, "a")
    poller = make_poller(transmitter, verifier, http, flaky)
    assert poller.poll_once().deferred == 1
    assert poller.pending_acks == ()
    assert poller.poll_once().delivered == 1
    poller.flush()
    assert calls == ["a", "a"]
    assert transmitter.acked == ["a"]


def test_drain_takes_everything_and_sends_the_last_acks(
    transmitter: FakeTransmitter,
    verifier: SetVerifier,
    http: httpx.Client,
    rsa_key: RSAKey,
    handled: list[SecurityEvent],
) -> None:
    jtis = [f"j{n}" for n in range(7)]
    for jti in jtis:
        transmitter.enqueue(jti, sign(claims(jti), rsa_key, "RS256"))
    poller = make_poller(transmitter, verifier, http, handled.append)
    total = poller.drain(max_events=3)
    assert (total.delivered, total.duplicates, total.errors, total.more_available) == (
        7,
        0,
        0,
        False,
    )
    assert transmitter.queue == {}
    assert transmitter.acked == jtis
    assert poller.pending_acks == ()


def test_a_refused_poll_token_is_replaced(
    transmitter: FakeTransmitter,
    verifier: SetVerifier,
    http: httpx.Client,
    ec_key: ECKey,
    handled: list[SecurityEvent],
) -> None:
    enqueue(transmitter, ec_key, "a")
    poller = make_poller(transmitter, verifier, http, handled.append)
    poller.poll_once()
    transmitter.valid_tokens.clear()
    poller.poll_once()
    assert transmitter.tokens_issued == ["token-1", "token-2"]
    assert transmitter.acked == ["a"]


def test_a_failed_poll_keeps_the_acks_for_the_next(
    transmitter: FakeTransmitter,
    verifier: SetVerifier,
    http: httpx.Client,
    ec_key: ECKey,
    handled: list[SecurityEvent],
) -> None:
    enqueue(transmitter, ec_key, "a")
    poller = Poller(
        transmitter.url + "/poll",
        StaticToken("expired"),
        verifier,
        MemoryJtiStore(),
        handled.append,
        http=http,
    )
    with pytest.raises(TransmitterError):
        poller.poll_once()
    transmitter.valid_tokens.add("expired")
    poller.poll_once()
    transmitter.valid_tokens.clear()
    with pytest.raises(TransmitterError):
        poller.flush()
    assert poller.pending_acks == ("a",)
    transmitter.valid_tokens.add("expired")
    poller.flush()
    assert transmitter.acked == ["a"]


def test_run_polls_until_stopped_and_acknowledges_on_the_way_out(
    transmitter: FakeTransmitter,
    verifier: SetVerifier,
    http: httpx.Client,
    ec_key: ECKey,
    handled: list[SecurityEvent],
) -> None:
    poller = make_poller(transmitter, verifier, http, handled.append)
    stop = threading.Event()
    thread = threading.Thread(target=poller.run, args=(stop,), kwargs={"interval": 0.05})
    thread.start()
    try:
        enqueue(transmitter, ec_key, "a", "b")
        deadline = time.monotonic() + 10
        while len(handled) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        enqueue(transmitter, ec_key, "c")
        while len(handled) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert [event.jti for event in handled] == ["a", "b", "c"]
    assert sorted(transmitter.acked) == ["a", "b", "c"]


# --- vendorability ---------------------------------------------------------------------------

ALLOWED_THIRD_PARTY = {"httpx", "joserfc", "cryptography"}


def test_the_receiver_package_imports_only_the_stdlib_httpx_joserfc_and_cryptography() -> None:
    modules = sorted(RECEIVER_PACKAGE.glob("*.py"))
    assert len(modules) >= 5
    offenders: list[str] = []
    for module in modules:
        for node in ast.walk(ast.parse(module.read_text(), str(module))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                inside = name == "handover.receiver" or name.startswith("handover.receiver.")
                if not (inside or top in sys.stdlib_module_names or top in ALLOWED_THIRD_PARTY):
                    offenders.append(f"{module.name}: {name}")
    assert offenders == []


# --- answers that must not lose a SET ----------------------------------------------------------


def test_a_retransmission_while_the_first_copy_is_handled_is_asked_again_later(
    verifier: SetVerifier, ec_key: ECKey
) -> None:
    """If the first copy's handler then fails, an accepted second copy would lose the SET."""
    started, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def slow_then_failing(event: SecurityEvent) -> None:
        calls.append(event.jti)
        if len(calls) == 1:
            started.set()
            release.wait(5)
            raise RuntimeError("database down")

    receiver = PushReceiver(verifier, MemoryJtiStore(), AUTHORIZATION, slow_then_failing)
    token = sign(claims(), ec_key).encode()
    first: list[int] = []
    thread = threading.Thread(target=lambda: first.append(receiver.handle(PUSH_HEADERS, token)[0]))
    thread.start()
    assert started.wait(5)
    status, _, headers = receiver.handle(PUSH_HEADERS, token)
    assert (status, headers["Retry-After"]) == (503, "1")
    release.set()
    thread.join(5)
    assert first == [500]
    assert receiver.handle(PUSH_HEADERS, token)[0] == 202  # the retry is handled
    assert calls == ["jti-1", "jti-1"]


def test_a_polled_set_under_an_unknown_kid_is_left_for_the_next_poll(
    transmitter: FakeTransmitter,
    verifier: SetVerifier,
    http: httpx.Client,
    ec_key_2: ECKey,
    handled: list[SecurityEvent],
) -> None:
    """Right after a key rotation the kid may not be published yet: not a refusal."""
    transmitter.enqueue("r1", sign(claims("r1"), ec_key_2))
    poller = make_poller(transmitter, verifier, http, handled.append)
    result = poller.poll_once(max_events=10)
    assert (result.delivered, result.errors, result.deferred) == (0, 0, 1)
    assert poller.pending_errors == {} and "r1" not in poller.pending_acks


def test_the_kits_event_types_are_the_transmitters() -> None:
    """The kit repeats the URIs so it can be vendored; they must not drift apart."""
    from handover.domain.ssf import events as signals

    for name in (
        "IDENTIFIER_RECYCLED",
        "VERIFICATION",
        "STREAM_UPDATED",
        "NUMBER_CANCELLED",
        "NUMBER_RESTORED",
        "NUMBER_PORTED",
        "CASE_OPENED",
        "CASE_CANCELLED",
        "CASE_REMINDER",
    ):
        assert getattr(types, name) == getattr(signals, name), name
    assert set(types.NUMBER_EVENTS) | set(types.STREAM_EVENTS) <= set(signals.EVENTS_SUPPORTED)
