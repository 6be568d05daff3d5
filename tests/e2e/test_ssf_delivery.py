"""SET delivery end to end, over real HTTP on loopback, on SQLite and PostgreSQL.

Handover's API runs under uvicorn in a thread; each platform's push receiver is the receiver
kit (`handover.receiver`) under uvicorn on its own port, behind a fault injector
(`ssf_servers.FaultyApp`); poll receivers use the kit's `Poller` or plain HTTP. Streams are
created with the kit's `StreamClient`, carriers report over `POST /v1/carrier/events`, and
push delivery is `handover work`'s loop (`services.worker.work`) in a thread, or the real
`handover work` command in a child process for the crash test.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import count
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jws
from joserfc.jwk import ECKey
from sqlalchemy import Engine, select
from ssf_servers import (
    PlatformReceiver,
    UvicornThread,
    WorkerLoop,
    free_port,
    seq_of,
    wait_until,
)

import granted
from handover.adapters.storage import tables as t
from handover.api.app import create_app
from handover.config import Settings
from handover.domain.ssf.events import IDENTIFIER_RECYCLED, set_id
from handover.receiver import (
    ClientCredentials,
    JwksCache,
    MemoryJtiStore,
    Poller,
    SecurityEvent,
    SetVerifier,
    StreamClient,
    Transmitter,
)
from handover.services import access
from handover.services.ports import UnitOfWorkFactory

SECRET_KEY = "ssf-delivery-test-secret-key-long-enough-0123456789"
HANDOVER = Path(sys.executable).with_name("handover")
#: RFC 8935 §2.4 error codes.
RFC8935_ERRORS = {
    "invalid_request",
    "invalid_key",
    "invalid_issuer",
    "invalid_audience",
    "authentication_failed",
    "access_denied",
}


def settings_for(store_url: str, tmp_path: Path, port: int, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": store_url,
        "environment": "test",
        "secret_key": SECRET_KEY,
        "public_url": f"http://127.0.0.1:{port}",
        "spool_dir": str(tmp_path),
        "poll_wait_seconds": 1,
        "delivery_base_delay": 0.05,
        "delivery_max_delay": 0.5,
        "delivery_lease_seconds": 2,
        "push_timeout_seconds": 0.5,
        "check_refresh_seconds": 0,
    }
    return Settings(**(values | changes))


def environment(settings: Settings) -> dict[str, str]:
    """The HANDOVER_* variables that make a child process use these settings."""
    dumped = settings.model_dump(mode="json")
    handover = {f"HANDOVER_{k.upper()}": str(v) for k, v in dumped.items() if v is not None}
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("HANDOVER_")}
    return inherited | handover


def recycling(number: str, tag: str) -> list[dict[str, Any]]:
    """The reports that make `number` change hands: its last one is the identifier-recycled."""
    return [
        {"event_id": f"a-{tag}", "number": number, "event": "activated",
         "occurred_at": "2023-01-10", "subscriber": f"a-{tag}"},
        {"event_id": f"c-{tag}", "number": number, "event": "cancelled",
         "occurred_at": "2023-02-10"},
        {"event_id": f"r-{tag}", "number": number, "event": "released",
         "occurred_at": "2024-02-10"},
        {"event_id": f"b-{tag}", "number": number, "event": "activated",
         "occurred_at": "2025-02-10", "subscriber": f"b-{tag}"},
    ]  # fmt: skip


@dataclass
class Platform:
    """A platform's side: its credentials, the kit's stream client, its receivers."""

    handover: HandoverApi
    platform_id: str
    tokens: ClientCredentials
    streams: StreamClient
    receivers: list[PlatformReceiver] = field(default_factory=list)

    @property
    def audience(self) -> str:
        return f"{self.handover.url}/platforms/{self.platform_id}"

    def receiver(self, *, start: bool = True, **options: Any) -> PlatformReceiver:
        receiver = PlatformReceiver(
            self.handover.url, self.audience, f"Bearer push-{self.platform_id}", **options
        )
        self.receivers.append(receiver)
        return receiver.start() if start else receiver

    def open_push(self, receiver: PlatformReceiver) -> str:
        config = self.streams.create_push(
            receiver.endpoint, receiver.authorization, [IDENTIFIER_RECYCLED]
        )
        assert config["aud"] == self.audience and config["iss"] == self.handover.url
        stream_id: str = config["stream_id"]
        return stream_id

    def open_poll(self) -> tuple[str, str]:
        config = self.streams.create_poll([IDENTIFIER_RECYCLED])
        return config["stream_id"], config["delivery"]["endpoint_url"]

    def verifier(self, audience: str | None = None) -> SetVerifier:
        keys = JwksCache(self.streams.transmitter.jwks_uri)
        return SetVerifier(self.handover.url, audience or self.audience, keys)

    def poller(
        self, poll_url: str, handler: Callable[[SecurityEvent], None], **options: Any
    ) -> Poller:
        verifier = self.verifier(**options)
        return Poller(poll_url, self.tokens, verifier, MemoryJtiStore(), handler)


@dataclass
class HandoverApi:
    """Handover's API on a loopback port, a carrier `cm` that reports, and platforms."""

    settings: Settings
    server: UvicornThread
    engine: Engine
    uow_factory: UnitOfWorkFactory
    http: httpx.Client
    carrier_token: str = ""
    platforms: list[Platform] = field(default_factory=list)
    _numbers: Iterator[int] = field(default_factory=lambda: count(1))

    @property
    def url(self) -> str:
        return self.server.url

    def token(self, client_id: str, client_secret: str) -> str:
        response = self.http.post(
            f"{self.url}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id, client_secret),
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    def platform(self, platform_id: str) -> Platform:
        _, credentials = access.register_platform(
            self.uow_factory, platform_id, platform_id.title(), "payment", "high"
        )
        transmitter = Transmitter.discover(self.url, self.http)
        tokens = ClientCredentials(
            transmitter.token_endpoint, credentials.client_id, credentials.client_secret
        )
        platform = Platform(self, platform_id, tokens, StreamClient(transmitter, tokens, self.http))
        self.platforms.append(platform)
        return platform

    def report(self, events: list[dict[str, Any]]) -> None:
        response = self.http.post(
            f"{self.url}/v1/carrier/events",
            json={"events": events},
            headers={"Authorization": f"Bearer {self.carrier_token}"},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["accepted"] == len(events), body

    def numbers(self, how_many: int) -> list[str]:
        return [f"+86138{next(self._numbers):08d}" for _ in range(how_many)]

    def recycle(self, how_many: int) -> list[str]:
        """Recycle `how_many` new numbers in one carrier report; the numbers."""
        numbers = self.numbers(how_many)
        self.report([item for number in numbers for item in recycling(number, number[1:])])
        return numbers

    def outbox_jtis(self, stream_id: str, platform_id: str) -> list[str]:
        """The stream's identifier-recycled SETs in outbox order (their `jti`s)."""
        with self.uow_factory() as uow:
            signals = uow.signals.after(
                0,
                stream_id=stream_id,
                platform_id=platform_id,
                event_types={IDENTIFIER_RECYCLED},
                limit=10_000,
            )
            created = uow.streams.get(stream_id)
        assert created is not None
        return [set_id(stream_id, s.seq) for s in signals if s.created_at >= created.created_at]

    def dead_letters(self, stream_id: str) -> list[Any]:
        with self.uow_factory() as uow:
            return uow.streams.dead_letters(stream_id)

    def workers(self, **changes: Any) -> WorkerLoop:
        return WorkerLoop(self.settings.model_copy(update=changes))

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(HANDOVER), *args],
            env=environment(self.settings),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@pytest.fixture
def handover(store_url: str, tmp_path: Path) -> Iterator[HandoverApi]:
    port = free_port()
    settings = settings_for(store_url, tmp_path, port)
    app = create_app(settings)
    server = UvicornThread(app, port).start()
    http = httpx.Client(timeout=10)
    api = HandoverApi(settings, server, app.state.engine, app.state.uow_factory, http)
    _, carrier = access.register_carrier(api.uow_factory, "cm", "China Mobile", "CN")
    granted.grant(api.uow_factory, "cm")
    api.carrier_token = api.token(carrier.client_id, carrier.client_secret)
    try:
        yield api
    finally:
        for platform in api.platforms:
            for receiver in platform.receivers:
                receiver.stop()
        server.stop()
        http.close()
        app.state.engine.dispose()


def assert_delivered_in_order(receiver: PlatformReceiver, expected: list[str]) -> None:
    """Every SET handled once, in outbox order, and every request was for one of them."""
    assert receiver.jtis() == expected
    assert [seq_of(jti) for jti in expected] == sorted(seq_of(jti) for jti in expected)
    assert {arrival.jti for arrival in receiver.arrivals} <= set(expected)


def wait_for_all(receiver: PlatformReceiver, how_many: int, timeout: float = 15.0) -> None:
    """Until `how_many` SETs were handled and their requests recorded (the fault layer
    records a request after the kit has answered it)."""
    wait_until(
        lambda: len(receiver.jtis()) >= how_many and len(receiver.arrivals) >= how_many,
        timeout,
        f"{how_many} SETs",
    )


def b64json(segment: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# -- 1. the happy path -------------------------------------------------------------------


def test_a_recycled_number_reaches_push_and_poll_receivers(
    handover: HandoverApi,
) -> None:
    platform = handover.platform("alipay")
    receiver = platform.receiver()
    push_stream = platform.open_push(receiver)
    poll_stream, poll_url = platform.open_poll()
    polled: list[tuple[float, SecurityEvent]] = []
    poller = platform.poller(poll_url, lambda event: polled.append((time.monotonic(), event)))
    stop = threading.Event()
    failures: list[BaseException] = []

    def long_poll() -> None:
        while not stop.is_set():
            try:
                poller.poll_once(max_events=10, return_immediately=False)
            except Exception as exc:
                failures.append(exc)
                return
        poller.flush()

    (number,) = handover.numbers(1)
    *before, last = recycling(number, "n1")
    handover.report(before)  # activated, cancelled, released: no recycled SET yet
    polling = threading.Thread(target=long_poll, daemon=True)
    with handover.workers():
        polling.start()
        reported = time.monotonic()
        handover.report([last])
        wait_until(
            lambda: receiver.events and receiver.arrivals and polled,
            60,
            "the SET by push and by poll",
        )
        stop.set()
        polling.join(5)
    assert not failures, failures

    # Both came after the report (how soon is bench/fanout.py's latency row, not a test's).
    (pushed_at, pushed), (polled_at, got) = receiver.events[0], polled[0]
    assert pushed_at >= reported and polled_at >= reported
    for event, stream_id in ((pushed, push_stream), (got, poll_stream)):
        assert event.event_type == IDENTIFIER_RECYCLED
        assert event.sub_id == {"format": "phone_number", "phone_number": number}
        assert event.iss == handover.url
        assert event.claims["aud"] == platform.audience
        assert event.jti in handover.outbox_jtis(stream_id, "alipay")
        assert "exp" not in event.claims and "sub" not in event.claims
    header = b64json(receiver.arrivals[0].token.decode().split(".")[0])
    assert header["typ"] == "secevent+jwt" and header["alg"] == "ES256"
    assert len(receiver.events) == len(polled) == 1
    assert not poller.pending_acks  # acknowledged before the poller stopped


# -- 2-4. receivers that fail for a while ---------------------------------------------------


def test_a_receiver_answering_500_gets_everything_in_order(handover: HandoverApi) -> None:
    platform = handover.platform("alipay")
    receiver = platform.receiver()
    receiver.faults.fail_next, receiver.faults.fail_status = 4, 500
    stream_id = platform.open_push(receiver)
    second = platform.receiver()
    other_stream = platform.open_push(second)
    with handover.workers():
        handover.recycle(6)
        wait_for_all(receiver, 6)
        wait_for_all(second, 6)
    expected = handover.outbox_jtis(stream_id, "alipay")
    assert len(expected) == 6
    assert_delivered_in_order(receiver, expected)
    assert_delivered_in_order(second, handover.outbox_jtis(other_stream, "alipay"))
    refused = [a for a in receiver.arrivals if a.status == 500]
    assert [a.jti for a in refused] == [expected[0]] * 4
    assert [a.status for a in second.arrivals] == [202] * 6  # one stream's faults stay its own
    assert not handover.dead_letters(stream_id)


@pytest.mark.slow
def test_a_receiver_that_times_out_gets_everything_in_order(handover: HandoverApi) -> None:
    platform = handover.platform("alipay")
    receiver = platform.receiver()
    receiver.faults.stall_next = 2  # held until both pushes have timed out
    stream_id = platform.open_push(receiver)
    with handover.workers() as workers:
        handover.recycle(5)
        wait_until(lambda: sum(r.push.failed for r in workers.reports) >= 2, 30, "two timeouts")
        receiver.faults.unstall.set()
        wait_for_all(receiver, 5)
        wait_until(lambda: len(receiver.arrivals) >= 7, 20, "the stalled requests to end")
    expected = handover.outbox_jtis(stream_id, "alipay")
    assert_delivered_in_order(receiver, expected)
    assert sum(report.push.failed for report in workers.reports) >= 2  # both stalls timed out
    # The stalled SET was processed by the receiver anyway; its retries were repeats.
    first_jtis = [a.jti for a in receiver.arrivals if a.jti == expected[0]]
    assert len(first_jtis) >= 3
    assert not handover.dead_letters(stream_id)


def test_a_receiver_that_is_down_gets_everything_when_it_is_back(handover: HandoverApi) -> None:
    platform = handover.platform("alipay")
    receiver = platform.receiver(start=False)  # down: nothing listens on its port yet
    stream_id = platform.open_push(receiver)
    with handover.workers() as workers:
        handover.recycle(3)
        wait_until(lambda: sum(r.push.failed for r in workers.reports) >= 2, 20, "failed pushes")
        receiver.start()
        wait_for_all(receiver, 3)
        receiver.stop()  # down again, after keep-alive connections were made
        handover.recycle(3)
        wait_until(lambda: sum(r.push.failed for r in workers.reports) >= 4, 20, "failed pushes")
        receiver.start()  # on the same port
        wait_for_all(receiver, 6)
    assert_delivered_in_order(receiver, handover.outbox_jtis(stream_id, "alipay"))
    assert not handover.dead_letters(stream_id)


# -- 5. a worker killed mid-batch ---------------------------------------------------------


def start_worker(handover: HandoverApi, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(
            [str(HANDOVER), "work", "--idle", "0.05"],
            env=environment(handover.settings),
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        worker.kill()
    worker.wait(10)


@pytest.mark.slow
def test_a_killed_worker_loses_nothing_and_repeats_only_same_jtis(
    handover: HandoverApi, tmp_path: Path
) -> None:
    platform = handover.platform("alipay")
    receiver = platform.receiver(handler_delay=0.01)  # slow, so SETs are in flight
    stream_id = platform.open_push(receiver)
    handover.recycle(200)
    expected = handover.outbox_jtis(stream_id, "alipay")
    assert len(expected) == 200
    log = tmp_path / "work.log"
    receiver.faults.hold_after = 30  # the kill lands mid-batch, however fast the worker runs

    worker = start_worker(handover, log)
    try:
        wait_until(lambda: len(receiver.jtis()) >= 30, 30, "the first worker to deliver some")
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        stop_worker(worker)
    receiver.faults.hold_after = None
    receiver.faults.unstall.set()  # the request held when the worker died is answered
    killed_at = len(receiver.jtis())
    assert killed_at < 200
    with handover.engine.connect() as connection:
        lease = connection.execute(
            select(t.streams.c.leased_until).where(t.streams.c.stream_id == stream_id)
        ).scalar_one()
    restarted_at = time.time()

    worker = start_worker(handover, log)
    try:
        wait_for_all(receiver, 200, timeout=40)
        time.sleep(0.2)  # any last repeat in flight
    finally:
        stop_worker(worker)

    assert_delivered_in_order(receiver, expected)
    jtis = [arrival.jti for arrival in receiver.arrivals]
    repeats = [(i, jti) for i, jti in enumerate(jtis) if jti in jtis[:i]]
    assert repeats, "the restarted worker resends from the cursor"
    for i, jti in repeats:
        assert jti in jtis[:i]  # a repeat is a jti the receiver already had...
        assert receiver.arrivals[i].status == 202  # ...and the kit's dedupe dropped it
    assert len(receiver.events) == 200  # no event handed to the platform twice
    # No second worker sent anything while the dead one's lease held the stream.
    if lease is not None:
        # An arrival is recorded once answered, so the dead worker's last request can be
        # recorded after the kill; what came before the restart is not the new worker's.
        restarted = [a for a in receiver.arrivals if a.wall >= restarted_at]
        expiry = lease.replace(tzinfo=UTC) if lease.tzinfo is None else lease
        assert all(a.wall >= expiry.timestamp() - 0.05 for a in restarted)
    assert not handover.dead_letters(stream_id)


@pytest.mark.slow
def test_two_workers_never_send_one_streams_sets_at_once(handover: HandoverApi) -> None:
    """A stream is leased to one worker: while it holds the lease a second worker, racing
    for the same stream, never takes it and sends the same SETs again alongside."""
    platform = handover.platform("alipay")
    receiver = platform.receiver(handler_delay=0.01)
    stream_id = platform.open_push(receiver)
    handover.recycle(120)
    # A lease no test run outlasts: the stream changes hands only when a worker gives it
    # back, so a repeat here is two workers holding it at once. (Renewing a lease that a
    # slow batch would outlast is tested on the test's own clock in test_delivery.py.)
    lease = {"delivery_lease_seconds": 3600}
    with handover.workers(**lease) as first, handover.workers(**lease) as second:
        wait_for_all(receiver, 120, timeout=60)
    pushes = sum(r.push.delivered + r.push.failed for r in [*first.reports, *second.reports])
    wait_until(lambda: len(receiver.arrivals) >= pushes, 10, "every push to be recorded")
    expected = handover.outbox_jtis(stream_id, "alipay")
    assert_delivered_in_order(receiver, expected)
    jtis = [arrival.jti for arrival in receiver.arrivals]
    assert len(jtis) == len(set(jtis)), f"{len(jtis) - len(set(jtis))} SETs were sent twice"


# -- 6. refused and forged SETs ------------------------------------------------------------


def push(receiver: PlatformReceiver, token: str | bytes) -> httpx.Response:
    return httpx.post(
        receiver.endpoint,
        content=token,
        headers={
            "Authorization": receiver.authorization,
            "Content-Type": "application/secevent+jwt",
        },
        timeout=10,
    )


@pytest.mark.slow
def test_forged_sets_are_refused_and_refused_sets_are_dead_lettered_then_replayed(
    handover: HandoverApi,
) -> None:
    platform = handover.platform("alipay")
    receiver = platform.receiver()
    stream_id = platform.open_push(receiver)
    with handover.workers():
        handover.recycle(1)
        wait_for_all(receiver, 1)

        genuine = receiver.arrivals[0].token.decode()
        header, payload, signature = genuine.split(".")
        raw = bytearray(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        raw[raw.index(b"+86") + 5] ^= 0x01  # one digit of the phone number
        tampered = f"{header}.{b64(bytes(raw))}.{signature}"
        claims = b64json(payload)
        stranger = ECKey.generate_key("P-256")
        ours = b64json(header)["kid"]
        forged = [
            jws.serialize_compact(
                {"alg": "ES256", "typ": "secevent+jwt", "kid": kid},
                json.dumps(claims).encode(),
                stranger,
            )
            for kid in (stranger.thumbprint(), ours)  # an unknown key; our kid, their key
        ]
        for token in (tampered, *forged):
            response = push(receiver, token)
            assert response.status_code == 400, response.text
            body = response.json()
            assert body["err"] in RFC8935_ERRORS and body["err"] == "invalid_key", body
        assert push(receiver, genuine).status_code == 202  # a repeat: accepted, not handled
        assert len(receiver.events) == 1

        # The receiver refuses the next SET as malformed: the worker gives it up at once.
        receiver.faults.refuse_next = 1
        handover.recycle(2)
        wait_for_all(receiver, 2)
        expected = handover.outbox_jtis(stream_id, "alipay")
        (letter,) = handover.dead_letters(stream_id)
        assert (letter.jti, letter.seq, letter.attempts) == (expected[1], seq_of(expected[1]), 1)
        assert "HTTP 400: invalid_request" in letter.error
        assert letter.delivered_at is None
        assert receiver.jtis() == [expected[0], expected[2]]

        replay = handover.cli("ssf", "replay", stream_id)
        assert replay.returncode == 0, replay.stderr
        assert "1 dead letter(s) queued" in replay.stdout
        wait_for_all(receiver, 3)
        wait_until(
            lambda: handover.dead_letters(stream_id)[0].delivered_at is not None,
            5,
            "the replay to be recorded",
        )
    assert receiver.jtis() == [expected[0], expected[2], expected[1]]
    assert len(receiver.events) == 3


def test_a_replay_the_receiver_refuses_again_goes_back_to_the_dead_letters(
    handover: HandoverApi,
) -> None:
    """A replayed SET refused as malformed once more must not hold the stream up forever."""
    platform = handover.platform("alipay")
    receiver = platform.receiver()
    stream_id = platform.open_push(receiver)
    handover.recycle(1)  # before any worker runs, so the refusal is in place first
    (refused,) = handover.outbox_jtis(stream_id, "alipay")
    receiver.faults.refuse_jtis.add(refused)  # this SET is refused, every time
    with handover.workers():
        wait_until(lambda: bool(handover.dead_letters(stream_id)), 20, "a dead letter")
        with handover.uow_factory() as uow:
            assert uow.streams.request_replay(stream_id, None, datetime.now(UTC)) == 1
            uow.commit()
        wait_until(lambda: [a.jti for a in receiver.arrivals].count(refused) >= 2, 20, "the replay")
        handover.recycle(2)
        wait_for_all(receiver, 2, timeout=20)
    later = handover.outbox_jtis(stream_id, "alipay")[1:]
    assert receiver.jtis() == later
    (letter,) = handover.dead_letters(stream_id)
    assert letter.jti == refused and letter.delivered_at is None
    assert letter.replay_requested_at is None  # given up again, not retried for ever
    assert "HTTP 400: invalid_request" in letter.error


# -- 7. the retry limit ----------------------------------------------------------------------


def test_a_set_past_the_retry_limit_is_dead_lettered_and_later_ones_flow(
    handover: HandoverApi,
) -> None:
    platform = handover.platform("alipay")
    receiver = platform.receiver()
    receiver.faults.fail_next, receiver.faults.fail_status = -1, 503  # always
    stream_id = platform.open_push(receiver)
    with handover.workers(delivery_retry_limit=3):
        handover.recycle(1)
        wait_until(lambda: bool(handover.dead_letters(stream_id)), 30, "a dead letter")
        (first,) = handover.outbox_jtis(stream_id, "alipay")
        (letter,) = handover.dead_letters(stream_id)
        assert (letter.jti, letter.attempts) == (first, 3)
        assert "HTTP 503" in letter.error
        assert [a.jti for a in receiver.arrivals] == [first] * 3
        receiver.faults.fail_next = 0  # it recovers
        handover.recycle(2)
        wait_for_all(receiver, 2)
    expected = handover.outbox_jtis(stream_id, "alipay")
    assert receiver.jtis() == expected[1:]
    assert len(handover.dead_letters(stream_id)) == 1


# -- 8. poll -----------------------------------------------------------------------------------


def test_poll_hands_back_unacknowledged_sets_and_takes_acks_out_of_order(
    handover: HandoverApi,
) -> None:
    platform = handover.platform("alipay")
    stream_id, poll_url = platform.open_poll()
    verifier = platform.verifier()

    def poll(**body: Any) -> list[str]:
        response = handover.http.post(
            poll_url,
            json={"returnImmediately": True, **body},
            headers={"Authorization": f"Bearer {platform.tokens.token()}"},
        )
        assert response.status_code == 200, response.text
        sets: dict[str, str] = response.json()["sets"]
        for jti, token in sets.items():
            assert verifier.verify(token).jti == jti
        return list(sets)

    numbers = handover.recycle(5)
    expected = handover.outbox_jtis(stream_id, "alipay")
    j1, j2, j3, j4, j5 = expected
    assert poll() == expected
    assert poll() == expected  # nothing acknowledged: everything comes back
    error = {"err": "invalid_request", "description": "not for us"}
    assert poll(ack=[j3, j1], setErrs={j5: error}) == [j2, j4]
    assert poll(ack=[j4]) == [j2]
    assert poll() == [j2]
    assert poll(ack=[j2]) == []
    with handover.uow_factory() as uow:
        position = uow.streams.position(stream_id)
        assert position is not None and position.cursor == uow.signals.last_seq()
        assert uow.streams.acks(stream_id) == {}

    # The kit's poller: a failing handler leaves its SET unacknowledged, so it comes back;
    # refused SETs go back as setErrs and are not sent again.
    handover.recycle(3)
    later = handover.outbox_jtis(stream_id, "alipay")[5:]
    wrong = platform.poller(poll_url, lambda e: None, audience="https://elsewhere.example")
    handled: list[str] = []
    refused = wrong.poll_once(max_events=1)  # refuses the first of the three
    assert (refused.errors, refused.delivered) == (1, 0)
    assert list(wrong.pending_errors) == [later[0]]
    wrong.flush()

    def flaky(event: SecurityEvent) -> None:
        if event.jti == later[1] and later[1] not in attempted:
            attempted.add(event.jti)
            raise RuntimeError("the platform's database is down")
        handled.append(event.jti)

    attempted: set[str] = set()
    poller = platform.poller(poll_url, flaky)
    first = poller.poll_once(max_events=10)
    assert (first.delivered, first.deferred) == (1, 1)
    rest = poller.drain()
    assert rest.delivered == 1
    assert handled == [later[2], later[1]]
    assert poll() == []
    assert numbers and len(set(expected + later)) == 8
