"""Push delivery (RFC 8935) by `PushWorker` on the real store, both engines.

The receiver is an in-memory `SetSender` that records every SET and answers as told; the
signer is the real `JoseSetSigner`, and the clock is the test's. Real HTTP is covered by
the push adapter's own tests.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from joserfc import jws
from joserfc.jwk import KeySet
from sqlalchemy import Engine

from handover.adapters.ssf.signing import JoseSetSigner, development_signer
from handover.adapters.storage.uow import SqlUnitOfWork
from handover.domain.freeze_policy import FreezePolicy
from handover.domain.ssf.events import (
    IDENTIFIER_RECYCLED,
    NUMBER_CANCELLED,
    NUMBER_PORTED,
    STREAM_UPDATED,
    Signal,
    phone_subject,
    seq_of,
    set_id,
)
from handover.domain.ssf.streams import Stream
from handover.services import access
from handover.services.ports import PushResult, UnitOfWorkFactory
from handover.services.reporting import report_events
from handover.services.ssf import transmitter
from handover.services.ssf.delivery import DeliveryPolicy, PushWorker, poll

POLICY = FreezePolicy()

ISSUER = "https://tx.example"
TX = transmitter.Transmitter(ISSUER, lambda stream_id: f"{ISSUER}/ssf/poll/{stream_id}")
START = datetime(2030, 1, 1, tzinfo=UTC)
TEST_LOG_KEY = b"test-log-key"  # as in tests/conftest.py
Answer = Callable[[str, int], PushResult]


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> JoseSetSigner:
    return development_signer(b"delivery-tests" * 2, tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def keys(signer: JoseSetSigner) -> KeySet:
    return KeySet.import_key_set(signer.jwks())


class Clock:
    """A clock that moves only when told."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Receiver:
    """An in-memory `SetSender`: records every push; `answer` decides the response.

    `answer(url, seq)` gets the endpoint and the SET's outbox position (from its jti).
    """

    keys: KeySet
    answer: Answer = field(default=lambda url, seq: PushResult(True, 202))
    pushes: list[tuple[str, str | None, str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def push(self, url: str, authorization: str | None, token: str) -> PushResult:
        signed = jws.deserialize_compact(token, self.keys, algorithms=["ES256", "RS256"])
        assert signed.protected["typ"] == "secevent+jwt"
        claims = json.loads(signed.payload)
        stream_id = url.rsplit("/", 1)[1]
        seq = seq_of(stream_id, claims["jti"])
        assert seq is not None, "the jti is not bound to the stream it was sent to"
        assert claims["aud"] == f"{ISSUER}/platforms/acme"
        with self.lock:
            self.pushes.append((stream_id, authorization, claims["jti"], seq))
        return self.answer(url, seq)

    def seqs(self, stream_id: str) -> list[int]:
        with self.lock:
            return [seq for sid, _, _, seq in self.pushes if sid == stream_id]


@pytest.fixture
def platform(uow_factory: UnitOfWorkFactory) -> str:
    access.register_platform(uow_factory, "acme", "Acme", "payment", "high")
    return "acme"


@pytest.fixture
def receiver(keys: KeySet) -> Receiver:
    return Receiver(keys)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def worker(
    uow_factory: UnitOfWorkFactory, signer: JoseSetSigner, receiver: Receiver, clock: Clock
) -> Callable[..., PushWorker]:
    """A PushWorker on the test store, receiver and clock; policy fields as keywords."""

    def make(owner: str = "w1", clock: Callable[[], datetime] = clock, **policy: Any) -> PushWorker:
        policy = {"retry_limit": 4, "base_delay": 10.0, **policy}
        return PushWorker(
            uow_factory,
            signer,
            receiver,
            ISSUER,
            DeliveryPolicy(**policy),
            owner=owner,
            clock=clock,
            rng=random.Random(7),
        )

    return make


def push_stream(uow_factory: UnitOfWorkFactory, platform: str, **body: Any) -> Stream:
    """A push stream whose endpoint URL ends with its own id (the receiver reads it)."""
    stream = transmitter.create_stream(
        uow_factory,
        TX,
        platform,
        {
            "delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": "https://rx.example/x"},
            "events_requested": [IDENTIFIER_RECYCLED, NUMBER_CANCELLED, NUMBER_PORTED],
            **body,
        },
    )
    # Point the endpoint at the stream's own id through the public PATCH.
    delivery = {
        "method": "urn:ietf:rfc:8935",
        "endpoint_url": f"https://rx.example/ssf/{stream.stream_id}",
        "authorization_header": f"Bearer {stream.stream_id}",
    }
    return transmitter.update_stream(
        uow_factory,
        TX,
        platform,
        {"stream_id": stream.stream_id, "delivery": delivery},
        replace=False,
    )


def add_signals(uow_factory: UnitOfWorkFactory, count: int, **fields: Any) -> list[int]:
    """Append `count` number-ported signals in one transaction; their outbox positions."""
    with uow_factory() as uow:
        before = uow.signals.last_seq()
        uow.signals.add(
            [
                Signal(
                    NUMBER_PORTED,
                    phone_subject(f"+86138{i:08d}"),
                    {"i": i},
                    START,
                    f"t{i}",
                    **fields,
                )
                for i in range(count)
            ]
        )
        after = uow.signals.last_seq()
        uow.commit()
    assert after - before == count
    return list(range(before + 1, after + 1))


def cursor(uow_factory: UnitOfWorkFactory, stream_id: str) -> Any:
    with uow_factory() as uow:
        return uow.streams.position(stream_id)


def failing_on(seq: int, status: int = 503) -> Answer:
    def answer(url: str, got: int) -> PushResult:
        if got == seq:
            return PushResult(False, status, "Service Unavailable")
        return PushResult(True, 202)

    return answer


# -- order and progress ---------------------------------------------------------------


def test_sets_arrive_in_outbox_order_per_stream(
    uow_factory: UnitOfWorkFactory, platform: str, receiver: Receiver, worker: Any
) -> None:
    """Each stream gets every SET once, in outbox order, across batches; then nothing."""
    first = push_stream(uow_factory, platform)
    second = push_stream(uow_factory, platform)
    seqs = add_signals(uow_factory, 7)
    only_first = add_signals(uow_factory, 1, stream_id=first.stream_id)
    seqs += add_signals(uow_factory, 5)
    report = worker(batch=3).run_once()
    assert (report.streams, report.delivered, report.failed, report.dead) == (2, 25, 0, 0)
    assert receiver.seqs(first.stream_id) == sorted(seqs + only_first)
    assert receiver.seqs(second.stream_id) == seqs
    assert {auth for _, auth, _, _ in receiver.pushes} == {
        f"Bearer {first.stream_id}",
        f"Bearer {second.stream_id}",
    }
    assert worker().run_once().streams == 0
    assert len(receiver.pushes) == 25
    with uow_factory() as uow:
        last = uow.signals.last_seq()
    assert cursor(uow_factory, first.stream_id).cursor == last
    assert cursor(uow_factory, second.stream_id).cursor == last


def test_a_stream_receives_only_what_it_asked_for_from_the_present(
    uow_factory: UnitOfWorkFactory, platform: str, receiver: Receiver, worker: Any
) -> None:
    """Signals before a stream existed, or of types it did not request, are not pushed."""
    add_signals(uow_factory, 3)
    stream = push_stream(uow_factory, platform, events_requested=[IDENTIFIER_RECYCLED])
    add_signals(uow_factory, 3)
    report = worker().run_once()
    assert report.delivered == 0
    assert receiver.pushes == []
    assert worker().run_once().streams == 0
    with uow_factory() as uow:
        assert uow.streams.position(stream.stream_id).cursor == uow.signals.last_seq()


def test_a_failing_receiver_gets_retries_with_growing_backoff(
    uow_factory: UnitOfWorkFactory,
    platform: str,
    receiver: Receiver,
    worker: Any,
    clock: Clock,
) -> None:
    """Failures back off exponentially and the cursor never passes the undelivered SET."""
    stream = push_stream(uow_factory, platform)
    seqs = add_signals(uow_factory, 3)
    receiver.answer = failing_on(seqs[1])
    push = worker(retry_limit=10, base_delay=10.0)
    delays: list[float] = []
    for attempt in range(1, 5):
        report = push.run_once()
        assert (report.delivered, report.failed) == ((1 if attempt == 1 else 0), 1)
        position = cursor(uow_factory, stream.stream_id)
        assert position.cursor == seqs[0], "the cursor passed an undelivered SET"
        assert position.attempts == attempt
        assert "503" in position.last_error
        delay = (position.next_attempt_at - clock()).total_seconds()
        nominal = 10.0 * 2 ** (attempt - 1)
        assert nominal / 2 <= delay <= nominal
        delays.append(delay)
        clock.advance(delay - 1)
        assert push.run_once().streams == 0, "retried before its time"
        clock.advance(1)
    assert delays == sorted(delays) and delays[-1] > 2 * delays[0]
    assert receiver.seqs(stream.stream_id) == [seqs[0]] + [seqs[1]] * 4
    jtis = {jti for _, _, jti, seq in receiver.pushes if seq == seqs[1]}
    assert jtis == {set_id(stream.stream_id, seqs[1])}, "a retry must keep its jti"

    receiver.answer = lambda url, seq: PushResult(True, 202)
    report = push.run_once()
    assert (report.delivered, report.failed) == (2, 0)
    position = cursor(uow_factory, stream.stream_id)
    assert (position.cursor, position.attempts, position.next_attempt_at) == (seqs[2], 0, None)
    assert receiver.seqs(stream.stream_id)[-2:] == seqs[1:]


def test_after_the_retry_limit_a_set_is_dead_and_later_ones_continue(
    uow_factory: UnitOfWorkFactory,
    platform: str,
    receiver: Receiver,
    worker: Any,
    clock: Clock,
) -> None:
    """retry_limit failed attempts put the SET in the dead letters; the stream goes on."""
    stream = push_stream(uow_factory, platform)
    seqs = add_signals(uow_factory, 3)
    receiver.answer = failing_on(seqs[1])
    push = worker(retry_limit=3)
    for _ in range(2):
        assert push.run_once().failed == 1
        clock.advance(3600)
    report = push.run_once()  # the stream goes on in the same round
    assert (report.dead, report.delivered) == (1, 1)
    with uow_factory() as uow:
        (letter,) = uow.streams.dead_letters(stream.stream_id)
    assert (letter.seq, letter.jti, letter.attempts) == (
        seqs[1],
        set_id(stream.stream_id, seqs[1]),
        3,
    )
    assert "HTTP 503" in letter.error and letter.dead_at == clock()
    assert letter.replay_requested_at is None and letter.delivered_at is None
    assert push.run_once().streams == 0
    assert receiver.seqs(stream.stream_id) == [seqs[0], seqs[1], seqs[1], seqs[1], seqs[2]]
    assert cursor(uow_factory, stream.stream_id).cursor == seqs[2]


def test_a_permanent_refusal_is_dead_at_once(
    uow_factory: UnitOfWorkFactory, platform: str, receiver: Receiver, worker: Any
) -> None:
    """A 400 invalid_request cannot succeed on resend, so it is not retried."""
    stream = push_stream(uow_factory, platform)
    seqs = add_signals(uow_factory, 2)

    def answer(url: str, seq: int) -> PushResult:
        if seq == seqs[0]:
            return PushResult(False, 400, "invalid_request: bad", permanent=True)
        return PushResult(True, 202)

    receiver.answer = answer
    push = worker(retry_limit=12)
    report = push.run_once()
    assert (report.dead, report.failed, report.delivered) == (1, 0, 1)
    with uow_factory() as uow:
        (letter,) = uow.streams.dead_letters(stream.stream_id)
    assert (letter.seq, letter.attempts) == (seqs[0], 1)
    assert "invalid_request" in letter.error
    assert receiver.seqs(stream.stream_id) == seqs


def test_a_replayed_dead_letter_is_sent_again(
    uow_factory: UnitOfWorkFactory,
    platform: str,
    receiver: Receiver,
    worker: Any,
    clock: Clock,
) -> None:
    """request_replay puts a dead SET back on the wire, with its jti, exactly once."""
    stream = push_stream(uow_factory, platform)
    (seq,) = add_signals(uow_factory, 1)
    receiver.answer = lambda url, got: PushResult(False, 400, "invalid_request", permanent=True)
    push = worker()
    assert push.run_once().dead == 1
    assert push.run_once().streams == 0, "a dead letter is not resent unasked"

    receiver.answer = lambda url, got: PushResult(True, 202)
    with uow_factory() as uow:
        assert uow.streams.request_replay(stream.stream_id, None, clock()) == 1
        uow.commit()
    clock.advance(1)
    assert push.run_once().delivered == 1
    assert [jti for _, _, jti, _ in receiver.pushes] == [set_id(stream.stream_id, seq)] * 2
    with uow_factory() as uow:
        (letter,) = uow.streams.dead_letters(stream.stream_id)
    assert letter.delivered_at == clock()
    assert push.run_once().streams == 0
    assert len(receiver.pushes) == 2


def test_paused_streams_hold_and_disabled_streams_drop(
    uow_factory: UnitOfWorkFactory, platform: str, receiver: Receiver, worker: Any
) -> None:
    """Paused streams deliver held SETs when enabled; disabled ones never get theirs."""
    paused = push_stream(uow_factory, platform)
    disabled = push_stream(uow_factory, platform)
    for stream, status in ((paused, "paused"), (disabled, "disabled")):
        transmitter.set_status(
            uow_factory, platform, {"stream_id": stream.stream_id, "status": status}
        )
    held = add_signals(uow_factory, 3)
    push = worker()
    assert push.run_once().streams == 0
    assert receiver.pushes == []
    for stream in (paused, disabled):
        body = {"stream_id": stream.stream_id, "status": "enabled"}
        transmitter.set_status(uow_factory, platform, body)
    assert push.run_once().delivered == 3
    assert receiver.seqs(paused.stream_id) == held
    assert receiver.seqs(disabled.stream_id) == []
    later = add_signals(uow_factory, 1)
    push.run_once()
    assert receiver.seqs(disabled.stream_id) == later
    assert receiver.seqs(paused.stream_id) == held + later


def test_a_removed_subject_is_skipped_without_blocking(
    uow_factory: UnitOfWorkFactory, platform: str, receiver: Receiver, worker: Any
) -> None:
    """Removed subjects are not pushed, and the cursor moves over them."""
    stream = push_stream(uow_factory, platform)
    subject = {"format": "phone_number", "phone_number": "+8613800000001"}
    transmitter.change_subject(
        uow_factory, platform, {"stream_id": stream.stream_id, "subject": subject}, include=False
    )
    seqs = add_signals(uow_factory, 3)  # the second is +8613800000001
    assert worker().run_once().delivered == 2
    assert receiver.seqs(stream.stream_id) == [seqs[0], seqs[2]]
    assert cursor(uow_factory, stream.stream_id).cursor == seqs[2]


# -- several workers ------------------------------------------------------------------


def test_concurrent_workers_never_send_a_set_twice(
    uow_factory: UnitOfWorkFactory, platform: str, receiver: Receiver, worker: Any
) -> None:
    """Two workers racing over many streams, while signals arrive, deliver each SET once."""
    stream_ids = [push_stream(uow_factory, platform).stream_id for _ in range(12)]
    expected = add_signals(uow_factory, 10)
    workers = [
        worker(owner=name, clock=lambda: datetime.now(UTC), workers=3, batch=4)
        for name in ("alpha", "beta")
    ]
    start = threading.Barrier(3)
    errors: list[BaseException] = []
    producing = threading.Event()

    def run(push: PushWorker) -> None:
        try:
            start.wait()
            idle = 0
            while idle < 3:
                report = push.run_once()
                idle = 0 if report.streams or not producing.is_set() else idle + 1
        except BaseException as error:  # surfaced below
            errors.append(error)

    def produce() -> None:
        try:
            start.wait()
            for _ in range(5):
                expected.extend(add_signals(uow_factory, 2))
        except BaseException as error:
            errors.append(error)
        finally:
            producing.set()

    threads = [threading.Thread(target=run, args=(push,)) for push in workers]
    threads.append(threading.Thread(target=produce))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)
    for push in workers:  # whatever a racing round left behind
        push.run_once()
    sent = Counter((sid, jti) for sid, _, jti, _ in receiver.pushes)
    assert max(sent.values()) == 1, [key for key, n in sent.items() if n > 1]
    for stream_id in stream_ids:
        assert receiver.seqs(stream_id) == sorted(expected), stream_id


def test_an_expired_lease_lets_another_worker_take_the_stream(
    uow_factory: UnitOfWorkFactory,
    platform: str,
    receiver: Receiver,
    worker: Any,
    clock: Clock,
) -> None:
    """A worker that claimed a stream and died holds it only until its lease runs out."""
    stream = push_stream(uow_factory, platform)
    seqs = add_signals(uow_factory, 2)
    with uow_factory() as uow:
        claimed = uow.streams.claim(
            clock(), "crashed", clock() + timedelta(seconds=30), uow.signals.last_seq(), 10
        )
        uow.commit()
    assert [s.stream_id for s in claimed] == [stream.stream_id]
    survivor = worker(owner="survivor", lease_seconds=30)
    assert survivor.run_once().streams == 0
    clock.advance(29)
    assert survivor.run_once().streams == 0, "a live lease was taken"
    clock.advance(2)
    assert survivor.run_once().delivered == 2
    assert receiver.seqs(stream.stream_id) == seqs


def test_a_batch_that_outlasts_the_lease_renews_it(
    uow_factory: UnitOfWorkFactory,
    platform: str,
    receiver: Receiver,
    worker: Any,
    clock: Clock,
) -> None:
    """A slow receiver makes a batch last longer than the lease: the worker renews it as it
    goes, so a second worker trying to claim the stream after every push never gets it."""
    stream = push_stream(uow_factory, platform)
    seqs = add_signals(uow_factory, 12)
    holder = worker(owner="holder", lease_seconds=3, workers=1)
    intruder = worker(owner="intruder", lease_seconds=3, workers=1)
    taken: list[int] = []
    intruding = threading.Event()

    def slow(url: str, seq: int) -> PushResult:
        clock.advance(1)  # each push takes a third of the lease: 12 pushes, four leases
        if not intruding.is_set():  # not the intruder's own pushes, if it got the stream
            intruding.set()
            taken.append(intruder.run_once().streams)
            intruding.clear()
        return PushResult(True, 202)

    receiver.answer = slow
    assert holder.run_once().delivered == 12
    assert taken == [0] * 12, "the stream was taken from a worker still sending"
    assert receiver.seqs(stream.stream_id) == seqs


# -- the transactional outbox ---------------------------------------------------------


class _CommitFails(SqlUnitOfWork):
    def commit(self) -> None:
        raise RuntimeError("the store went away before commit")


def _item(event_id: str, kind: str, at: str, subscriber: str | None = None) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "number": "+8613812345678",
        "event": kind,
        "occurred_at": at,
        "subscriber": subscriber,
        "to_carrier": None,
    }


RECYCLE = [
    _item("e1", "activated", "2020-01-01", "s1"),
    _item("e2", "cancelled", "2021-01-01"),
    _item("e3", "released", "2021-05-01"),
    _item("e4", "activated", "2021-06-01", "s2"),
]


def test_a_report_that_rolls_back_leaves_no_signal(
    uow_factory: UnitOfWorkFactory, engine: Engine, carriers: tuple[str, str]
) -> None:
    """The outbox is written in the report's transaction: no commit, no signal."""
    failing = partial(_CommitFails, engine, TEST_LOG_KEY)
    with pytest.raises(RuntimeError):
        report_events(failing, "cm", RECYCLE, policy=POLICY)
    with uow_factory() as uow:
        assert uow.signals.last_seq() == 0
        assert uow.numbers.history("+8613812345678") is None
    result = report_events(uow_factory, "cm", RECYCLE, policy=POLICY)
    assert result.accepted == 4
    with uow_factory() as uow:
        kinds = [s.event_type for s in uow.signals.get(range(1, 100))]
    assert kinds == [NUMBER_CANCELLED, IDENTIFIER_RECYCLED]


def test_rejected_reports_make_no_signal(
    uow_factory: UnitOfWorkFactory, carriers: tuple[str, str]
) -> None:
    """Only accepted reports reach the outbox; a first activation makes none either."""
    rejected = report_events(
        uow_factory,
        "cm",
        [
            _item("r1", "cancelled", "2020-01-01"),
            _item("r2", "restored", "2020-01-02", "s1"),
        ],
        policy=POLICY,
    )
    assert (rejected.accepted, sum(rejected.rejected.values())) == (0, 2)
    first = report_events(
        uow_factory, "cm", [_item("a1", "activated", "2020-01-01", "s1")], policy=POLICY
    )
    assert first.accepted == 1
    with uow_factory() as uow:
        assert uow.signals.last_seq() == 0
    wrong = report_events(
        uow_factory,
        "cm",
        [
            _item("c1", "cancelled", "2021-01-01"),
            _item("c2", "restored", "2021-01-02", "someone-else"),
            _item("c3", "released", "2021-01-03"),
        ],
        policy=POLICY,
    )
    assert wrong.accepted == 1, "only the cancellation is legal"
    with uow_factory() as uow:
        assert [s.event_type for s in uow.signals.get(range(1, 10))] == [NUMBER_CANCELLED]


def test_a_replay_refused_for_good_does_not_block_the_stream(
    uow_factory: UnitOfWorkFactory,
    platform: str,
    receiver: Receiver,
    worker: Any,
    clock: Clock,
) -> None:
    """A replayed SET the receiver again refuses as malformed goes back to the dead letters;
    the SETs after it are still delivered."""
    stream = push_stream(uow_factory, platform)
    (dead,) = add_signals(uow_factory, 1)

    def answer(url: str, seq: int) -> PushResult:
        if seq == dead:
            return PushResult(False, 400, "invalid_request: still bad", permanent=True)
        return PushResult(True, 202)

    receiver.answer = answer
    push = worker()
    assert push.run_once().dead == 1
    with uow_factory() as uow:
        uow.streams.request_replay(stream.stream_id, None, clock())
        uow.commit()
    later = add_signals(uow_factory, 1)
    for _ in range(5):
        clock.advance(3600)
        push.run_once()
    assert receiver.seqs(stream.stream_id)[-1:] == later, "the stream is blocked by a replay"
    assert receiver.seqs(stream.stream_id).count(dead) == 2, "a refused replay is resent"
    with uow_factory() as uow:
        (letter,) = uow.streams.dead_letters(stream.stream_id)
    assert letter.delivered_at is None


def test_a_failed_replay_does_not_use_up_the_next_sets_retries(
    uow_factory: UnitOfWorkFactory,
    platform: str,
    receiver: Receiver,
    worker: Any,
    clock: Clock,
) -> None:
    """The SET after a failed replay still gets retry_limit pushes before it is dead."""
    stream = push_stream(uow_factory, platform)
    add_signals(uow_factory, 1)
    receiver.answer = lambda url, seq: PushResult(False, 400, "invalid_request", permanent=True)
    push = worker(retry_limit=2)
    assert push.run_once().dead == 1
    with uow_factory() as uow:
        uow.streams.request_replay(stream.stream_id, None, clock())
        uow.commit()
    (head,) = add_signals(uow_factory, 1)
    receiver.answer = lambda url, seq: PushResult(False, 503, "Service Unavailable")
    push.run_once()  # the replay fails (and perhaps the next SET too)
    receiver.answer = failing_on(head)  # from now on only the next SET fails
    for _ in range(10):
        clock.advance(3600)
        push.run_once()
        with uow_factory() as uow:
            letters = {letter.seq: letter for letter in uow.streams.dead_letters(stream.stream_id)}
        if head in letters:
            break
    assert head in letters, "the failing SET never reached the dead letters"
    assert receiver.seqs(stream.stream_id).count(head) == 2, "dead before retry_limit pushes"
    assert letters[head].attempts == 2


# -- a stream that changes under its worker; poll answers ------------------------------------


def test_a_stream_paused_during_a_turn_stops_its_worker_where_it_was(
    uow_factory: UnitOfWorkFactory, platform: str, receiver: Receiver, worker: Any
) -> None:
    """A worker's writes stop counting once the stream is paused: nothing more is sent and
    the cursor stays where the pause found it, so the rest is held, not skipped (the SET in
    flight at the pause comes again on resume, with its jti: a repeat receivers drop)."""
    stream = push_stream(uow_factory, platform)
    seqs = add_signals(uow_factory, 5)

    def pause_after_first(url: str, seq: int) -> PushResult:
        if seq == seqs[0]:
            transmitter.set_status(
                uow_factory, platform, {"stream_id": stream.stream_id, "status": "paused"}
            )
        return PushResult(True, 202)

    receiver.answer = pause_after_first
    worker(batch=1).run_once()
    assert receiver.seqs(stream.stream_id) == [seqs[0]]
    assert cursor(uow_factory, stream.stream_id).cursor < seqs[1]
    receiver.answer = lambda url, seq: PushResult(True, 202)
    transmitter.set_status(
        uow_factory, platform, {"stream_id": stream.stream_id, "status": "enabled"}
    )
    worker().run_once()
    assert receiver.seqs(stream.stream_id) == [seqs[0], *seqs]


def poll_stream(uow_factory: UnitOfWorkFactory, platform: str) -> Stream:
    return transmitter.create_stream(
        uow_factory,
        TX,
        platform,
        {"delivery": {"method": "urn:ietf:rfc:8936"}, "events_requested": [NUMBER_PORTED]},
    )


def test_poll_more_available_is_told_even_when_no_set_is_asked_for(
    uow_factory: UnitOfWorkFactory, platform: str, signer: JoseSetSigner
) -> None:
    stream = poll_stream(uow_factory, platform)
    add_signals(uow_factory, 3)
    batch = poll(uow_factory, signer, ISSUER, platform, stream.stream_id, max_events=0)
    assert (batch.sets, batch.more_available) == ({}, True)
    batch = poll(uow_factory, signer, ISSUER, platform, stream.stream_id, max_events=3)
    assert len(batch.sets) == 3 and not batch.more_available


def test_poll_ignores_an_ack_for_a_set_not_yet_in_the_outbox(
    uow_factory: UnitOfWorkFactory, platform: str, signer: JoseSetSigner
) -> None:
    """A jti can be computed ahead of time; acknowledging it must not pre-empt the SET."""
    stream = poll_stream(uow_factory, platform)
    with uow_factory() as uow:
        future = uow.signals.last_seq() + 1
    early = set_id(stream.stream_id, future)
    poll(uow_factory, signer, ISSUER, platform, stream.stream_id, max_events=10, acks=[early])
    assert add_signals(uow_factory, 1) == [future]
    batch = poll(uow_factory, signer, ISSUER, platform, stream.stream_id, max_events=10)
    assert list(batch.sets) == [early]


def test_poll_set_errors_go_to_the_dead_letters(
    uow_factory: UnitOfWorkFactory, platform: str, signer: JoseSetSigner
) -> None:
    stream = poll_stream(uow_factory, platform)
    add_signals(uow_factory, 2)
    first, second = poll(
        uow_factory, signer, ISSUER, platform, stream.stream_id, max_events=10
    ).sets
    refused = {first: "invalid_key: unknown kid"}
    batch = poll(
        uow_factory,
        signer,
        ISSUER,
        platform,
        stream.stream_id,
        max_events=10,
        acks=[second],
        errors=refused,
    )
    assert batch.sets == {}
    with uow_factory() as uow:
        (letter,) = uow.streams.dead_letters(stream.stream_id)
    assert (letter.jti, letter.error) == (first, "invalid_key: unknown kid")


def test_an_operator_pause_tells_the_receiver_before_the_stream_stops(
    uow_factory: UnitOfWorkFactory, platform: str, receiver: Receiver, worker: Any
) -> None:
    """SSF §8.1.5: stream-updated is sent before a transmitter stops a stream."""
    stream = push_stream(uow_factory, platform)
    push = worker()
    statuses: list[str] = []

    def deliver_meanwhile(seconds: float) -> None:
        with uow_factory() as uow:
            found = uow.streams.get(stream.stream_id)
        assert found is not None
        statuses.append(found.status)
        push.run_once()

    change = transmitter.operator_set_status(
        uow_factory, stream.stream_id, "paused", "maintenance", sleep=deliver_meanwhile
    )
    assert change.told and change.stream.status == "paused"
    assert statuses and set(statuses) == {"enabled"}  # still running while it was told
    (notice,) = receiver.pushes
    with uow_factory() as uow:
        (signal,) = uow.signals.get([notice[3]])
    assert signal.event_type == STREAM_UPDATED
    assert signal.payload == {"status": "paused", "reason": "maintenance"}


def test_an_operator_pause_takes_effect_even_if_the_receiver_is_not_told(
    uow_factory: UnitOfWorkFactory, platform: str, receiver: Receiver, worker: Any
) -> None:
    stream = push_stream(uow_factory, platform)
    change = transmitter.operator_set_status(
        uow_factory, stream.stream_id, "disabled", None, wait=0
    )
    assert (change.told, change.stream.status) == (False, "disabled")
    resumed = transmitter.operator_set_status(uow_factory, stream.stream_id, "enabled", None)
    assert resumed.told and resumed.stream.status == "enabled"
    worker().run_once()
    with uow_factory() as uow:
        signals = uow.signals.get([seq for *_, seq in receiver.pushes])
    assert [s.payload["status"] for s in signals] == ["enabled"]  # the disable was dropped
