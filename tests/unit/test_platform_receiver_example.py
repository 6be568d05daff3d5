"""The example platform (examples/platform_receiver) against the loopback fake transmitter."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from joserfc.jwk import ECKey
from test_receiver_kit import FakeTransmitter, claims, sign

from handover.receiver import events as types

# The examples live beside src/, outside the installed package.
sys.path.insert(0, str(Path(__file__).parents[2]))
from examples.platform_receiver.app import Platform, Settings


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
