"""The example platform (examples/platform_receiver) against the loopback fake transmitter."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from joserfc.jwk import ECKey
from test_receiver_kit import FakeTransmitter, claims, sign

from handover.receiver import ClientCredentials, SecurityEvent, TransmitterError
from handover.receiver import events as types

# The examples live beside src/, outside the installed package.
sys.path.insert(0, str(Path(__file__).parents[2]))
from examples.platform_receiver.app import REJECT_REASON, CaseAnswerer, Platform, Settings


@pytest.fixture
def key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": "ec-1"})


@pytest.fixture
def transmitter(key: ECKey) -> Iterator[FakeTransmitter]:
    fake = FakeTransmitter([key])
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def signed(transmitter: FakeTransmitter, key: ECKey, jti: str) -> str:
    """A SET from the fake transmitter for its one stream."""
    (stream,) = transmitter.streams.values()
    return sign(claims(jti, iss=transmitter.url, aud=stream["aud"]), key)


def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def settings(transmitter: FakeTransmitter, tmp_path: Path, mode: str) -> Settings:
    return Settings(
        issuer=transmitter.url,
        client_id="platform-1",
        client_secret=transmitter.client_secret,
        mode=mode,  # type: ignore[arg-type]
        db=tmp_path / "receiver.db",
        poll_interval=0.05,
    )


def test_the_push_platform_stores_each_event_once(
    transmitter: FakeTransmitter, key: ECKey, tmp_path: Path
) -> None:
    lines: list[str] = []
    platform = Platform(settings(transmitter, tmp_path, "push"), out=lines.append)
    platform.start()
    try:
        (stream,) = transmitter.streams.values()
        delivery = stream["delivery"]
        assert delivery["endpoint_url"] == platform.url + "/events"
        assert ("POST", "/ssf/verify") in [(m, p) for m, p, _ in transmitter.calls]
        token = signed(transmitter, key, "p-1")
        headers = {
            "Content-Type": "application/secevent+jwt",
            "Authorization": delivery["authorization_header"],
        }
        with httpx.Client() as http:
            for _ in range(2):
                sent = http.post(delivery["endpoint_url"], content=token, headers=headers)
                assert sent.status_code == 202
            wrong = http.post(
                delivery["endpoint_url"],
                content=token,
                headers={**headers, "Authorization": "Bearer no"},
            )
            assert wrong.status_code == 401
            received = http.get(platform.url + "/received").json()
        assert [(r["jti"], r["event_type"], r["phone_number"]) for r in received] == [
            ("p-1", types.IDENTIFIER_RECYCLED, "+8613800138000")
        ]
        assert received[0]["claims"]["txn"] == "txn-1"
        assert len(lines) == 2 and "identifier-recycled" in lines[1]
    finally:
        platform.stop()
    assert transmitter.streams == {}, "the stream is deleted on stop"


def test_the_poll_platform_polls_acknowledges_and_remembers_across_restarts(
    transmitter: FakeTransmitter, key: ECKey, tmp_path: Path
) -> None:
    lines: list[str] = []
    with Platform(settings(transmitter, tmp_path, "poll"), out=lines.append) as platform:
        for jti in ("q-1", "q-2"):
            transmitter.enqueue(jti, signed(transmitter, key, jti))
        wait_for(lambda: len(platform.events.all()) == 2)
        with httpx.Client() as http:
            received = http.get(platform.url + "/received").json()
        assert [r["jti"] for r in received] == ["q-1", "q-2"]
    assert sorted(transmitter.acked) == ["q-1", "q-2"]
    assert transmitter.streams == {}

    with Platform(settings(transmitter, tmp_path, "poll"), out=lines.append) as again:
        transmitter.enqueue("q-1", signed(transmitter, key, "q-1"))
        wait_for(lambda: "q-1" in transmitter.acked[2:])
        assert [r["jti"] for r in again.events.all()] == ["q-1", "q-2"]
    assert sum("jti=q-1" in line for line in lines) == 1


# -- answering cases ------------------------------------------------------------------------


def case_opened(case_id: str = "c-1") -> SecurityEvent:
    event = {"case_id": case_id, "kind": "unbind", "requester": "current_owner"}
    return SecurityEvent(
        jti="j-1",
        iat=0,
        txn=None,
        iss="http://handover.test",
        aud="aud",
        sub_id={"format": "phone_number", "phone_number": "+8613800138000"},
        event_type=types.CASE_OPENED,
        event=event,
        claims={},
    )


class FakeHandover:
    """The token endpoint and the outcome endpoint, answering `statuses` in turn."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.tokens = 0
        self.answers: list[tuple[str, str, dict[str, str]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            self.tokens += 1
            body = {"access_token": f"t{self.tokens}", "token_type": "Bearer", "expires_in": 300}
            return httpx.Response(200, json=body)
        authorization = request.headers["Authorization"]
        path = request.url.raw_path.decode()
        self.answers.append((path, authorization, json.loads(request.content)))
        status = self.statuses.pop(0)
        if status >= 400:
            return httpx.Response(status, json={"title": "No", "detail": f"refused {status}"})
        return httpx.Response(status, json={"state": "answered"})


def answerer(fake: FakeHandover, outcome: str) -> CaseAnswerer:
    http = httpx.Client(transport=httpx.MockTransport(fake))
    tokens = ClientCredentials("http://handover.test/oauth/token", "p", "s", http=http)
    return CaseAnswerer("http://handover.test/", tokens, http, outcome)


def test_a_case_is_answered_with_the_platforms_token() -> None:
    fake = FakeHandover(200)
    answer = answerer(fake, "unbound").answer(case_opened("c/1"))
    assert fake.answers == [
        ("/v1/platform/cases/c%2F1/outcome", "Bearer t1", {"outcome": "unbound"})
    ]
    assert (answer["case_id"], answer["outcome"], answer["status"]) == ("c/1", "unbound", 200)
    assert answer["detail"] is None


def test_a_rejection_carries_a_reason_and_a_refusal_is_kept() -> None:
    fake = FakeHandover(409)
    answer = answerer(fake, "rejected").answer(case_opened())
    assert fake.answers[0][2] == {"outcome": "rejected", "reason": REJECT_REASON}
    assert (answer["status"], answer["detail"]) == (409, "refused 409")


def test_an_expired_token_is_renewed_once() -> None:
    fake = FakeHandover(401, 200)
    answer = answerer(fake, "no_account").answer(case_opened())
    assert [authorization for _, authorization, _ in fake.answers] == ["Bearer t1", "Bearer t2"]
    assert answer["status"] == 200


@pytest.mark.parametrize("status", [500, 503, 429])
def test_handover_failing_raises_so_the_set_comes_again(status: int) -> None:
    with pytest.raises(TransmitterError):
        answerer(FakeHandover(status), "unbound").answer(case_opened())


def test_an_unknown_outcome_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match="answer: one of"):
        answerer(FakeHandover(), "maybe")
