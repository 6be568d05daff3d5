"""Delivering the outbox: push (RFC 8935) by workers, poll (RFC 8936) on request.

Each stream has a cursor into the outbox. Push workers lease whole streams, so one stream's
SETs leave in order from one worker at a time, and move the cursor after the receiver's
202. A worker that dies mid-batch leaves its lease to expire; the next one resends from the
cursor with the same `jti`s, which receivers drop as repeats. Poll streams move the cursor
over what the receiver acknowledged; whatever is not acknowledged comes back.
"""

from __future__ import annotations

import json
import random
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from handover.domain.ssf.events import ALWAYS_DELIVERED, Signal, seq_of, set_claims, set_id
from handover.domain.ssf.streams import (
    DeliveryMethod,
    Refusal,
    Stream,
    StreamError,
    StreamStatus,
)
from handover.services.model import DeadLetter, StreamPosition
from handover.services.ports import PushResult, SetSender, SetSigner, UnitOfWorkFactory

MAX_POLL_EVENTS = 1_000


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    #: Signals read from the outbox per query.
    batch: int = 500
    #: Attempts at one SET before it goes to the dead letters.
    retry_limit: int = 300
    base_delay: float = 1.0
    max_delay: float = 600.0
    #: How long a worker holds a stream without renewing; a dead worker's streams wait this.
    lease_seconds: float = 30.0
    #: SETs one stream may send in one turn before the worker moves on to others.
    turn: int = 5_000
    #: Threads delivering streams, one stream each at a time.
    workers: int = 16
    #: The longest `run_once` keeps going while streams still have work due.
    round_seconds: float = 5.0


def backoff(attempts: int, policy: DeliveryPolicy, rng: random.Random) -> timedelta:
    """Exponential backoff with jitter ("equal jitter"): half fixed, half random."""
    delay = min(policy.max_delay, policy.base_delay * 2 ** max(attempts - 1, 0))
    return timedelta(seconds=delay / 2 + rng.uniform(0, delay / 2))


def wanted_types(stream: Stream) -> set[str]:
    return set(stream.events_requested) | ALWAYS_DELIVERED


def deliverable(subject: Mapping[str, str], rules: Mapping[str, bool]) -> bool:
    """Subjects are all included by default (`default_subjects: ALL`) unless removed."""
    number = subject.get("phone_number")
    return number is None or rules.get(number, True)


@dataclass(slots=True)
class RoundReport:
    #: Stream turns taken (a stream may get several turns in one round).
    streams: int = 0
    delivered: int = 0
    failed: int = 0
    dead: int = 0

    def add(self, other: RoundReport) -> None:
        self.streams += other.streams
        self.delivered += other.delivered
        self.failed += other.failed
        self.dead += other.dead


@dataclass
class PushWorker:
    """One `handover work` process's push delivery; several may run at once."""

    uow_factory: UnitOfWorkFactory
    signer: SetSigner
    sender: SetSender
    issuer: str
    policy: DeliveryPolicy
    owner: str = field(default_factory=lambda: f"worker-{secrets.token_hex(6)}")
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    rng: random.Random = field(default_factory=random.Random)
    _pool: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)

    def run_once(self) -> RoundReport:
        """Deliver what is due: `workers` threads each lease one stream at a time until no
        stream has work due or `round_seconds` have passed (so the caller gets a turn)."""
        if self._pool is None:
            # Kept between rounds: the sender's connections live in its threads.
            self._pool = ThreadPoolExecutor(self.policy.workers, "push")
        deadline = self.clock() + timedelta(seconds=self.policy.round_seconds)
        futures = [self._pool.submit(self._drain, deadline) for _ in range(self.policy.workers)]
        report = RoundReport()
        for future in futures:
            report.add(future.result())
        return report

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _drain(self, deadline: datetime) -> RoundReport:
        report = RoundReport()
        while self.clock() < deadline:
            stream = self._claim()
            if stream is None:
                break
            report.add(self.deliver(stream))
        return report

    def _claim(self) -> Stream | None:
        now = self.clock()
        with self.uow_factory() as uow:
            last = uow.signals.last_seq()
            streams = uow.streams.claim(now, self.owner, self._lease_end(), last, 1)
            uow.commit()
        return streams[0] if streams else None

    def deliver(self, stream: Stream) -> RoundReport:
        """Deliver one leased stream's backlog in order; always gives the lease back."""
        report = RoundReport(streams=1)
        try:
            self._replay(stream, report)
            self._send_backlog(stream, report)
        finally:
            with self.uow_factory() as uow:
                uow.streams.release(stream.stream_id, self.owner)
                uow.commit()
        return report

    def _lease_end(self) -> datetime:
        return self.clock() + timedelta(seconds=self.policy.lease_seconds)

    def _send_backlog(self, stream: Stream, report: RoundReport) -> None:
        types = wanted_types(stream)
        with self.uow_factory() as uow:
            position = uow.streams.position(stream.stream_id)
            rules = uow.streams.subject_rules(stream.stream_id)
        if position is None:
            return
        cursor, attempts = position.cursor, position.attempts
        sent = 0
        renew_every = timedelta(seconds=self.policy.lease_seconds / 3)
        renewed = self.clock()
        while sent < self.policy.turn:
            with self.uow_factory() as uow:
                now = uow.streams.get(stream.stream_id)
                if now is None or now.updated_at != stream.updated_at:
                    return  # changed since the claim (endpoint, events, status): next turn
                last = uow.signals.last_seq()
                signals = uow.signals.after(
                    cursor,
                    stream_id=stream.stream_id,
                    platform_id=stream.platform_id,
                    event_types=types,
                    limit=self.policy.batch,
                    through=last,
                )
            delivered_to = cursor
            for signal in signals:
                if deliverable(signal.subject, rules):
                    outcome = self._push(stream, signal)
                    if not outcome.delivered:
                        self._failed(stream, signal, delivered_to, attempts + 1, outcome, report)
                        return
                    report.delivered += 1
                    sent += 1
                attempts = 0
                delivered_to = signal.seq
                if self.clock() - renewed >= renew_every:
                    # A slow receiver must not outlast the lease: another worker would
                    # take the stream and send out of order.
                    if not self._advance(stream, delivered_to):
                        return
                    renewed = self.clock()
            if len(signals) < self.policy.batch:
                delivered_to = last  # everything up to `last` was seen
            if not self._advance(stream, delivered_to) or len(signals) < self.policy.batch:
                return
            cursor = delivered_to

    def _push(self, stream: Stream, signal: Signal) -> PushResult:
        """The receiver's answer, its `error` described for operators (status included)."""
        claims = set_claims(signal, stream.stream_id, self.issuer, stream.audience, self.clock())
        token = self.signer.sign(claims, stream.signing_alg)
        assert stream.delivery.endpoint_url is not None
        try:
            result = self.sender.push(
                stream.delivery.endpoint_url, stream.delivery.authorization_header, token
            )
        except Exception as exc:  # one receiver's fault must not stop every stream
            return PushResult(False, None, f"{type(exc).__name__}: {exc}")
        return replace(result, error=_describe(result.status, result.error))

    def _advance(self, stream: Stream, cursor: int) -> bool:
        with self.uow_factory() as uow:
            kept = uow.streams.move_cursor(stream.stream_id, cursor, self.owner, self._lease_end())
            uow.commit()
        return kept

    def _failed(
        self,
        stream: Stream,
        signal: Signal,
        delivered_to: int,
        attempts: int,
        outcome: PushResult,
        report: RoundReport,
    ) -> None:
        """Record a failed push: retry later, or give the SET up to the dead letters."""
        now = self.clock()
        with self.uow_factory() as uow:
            if outcome.permanent or attempts >= self.policy.retry_limit:
                letter = DeadLetter(
                    stream.stream_id,
                    signal.seq,
                    set_id(stream.stream_id, signal.seq),
                    attempts,
                    outcome.error,
                    now,
                )
                end = self._lease_end()
                if uow.streams.move_cursor(stream.stream_id, signal.seq, self.owner, end):
                    uow.streams.add_dead_letter(letter)
                    report.dead += 1
            else:
                uow.streams.move_cursor(
                    stream.stream_id, delivered_to, self.owner, self._lease_end()
                )
                at = now + backoff(attempts, self.policy, self.rng)
                uow.streams.retry_later(stream.stream_id, self.owner, attempts, at, outcome.error)
                report.failed += 1
            uow.commit()

    def _replay(self, stream: Stream, report: RoundReport) -> None:
        """Send the dead letters an operator asked to replay, once each.

        One that fails again goes back to the dead letters with its new error (the operator
        may replay it again); it never holds up the stream's backlog.
        """
        with self.uow_factory() as uow:
            letters = uow.streams.replays(stream.stream_id)
            signals = {s.seq: s for s in uow.signals.get([letter.seq for letter in letters])}
        for letter in letters:
            signal = signals.get(letter.seq)
            outcome = self._push(stream, signal) if signal else PushResult(True)
            with self.uow_factory() as uow:
                if outcome.delivered:
                    uow.streams.replayed(stream.stream_id, letter.seq, self.clock())
                    report.delivered += 1
                else:
                    again = replace(
                        letter,
                        attempts=letter.attempts + 1,
                        error=outcome.error,
                        dead_at=self.clock(),
                        replay_requested_at=None,
                    )
                    uow.streams.add_dead_letter(again)
                    report.dead += 1
                uow.commit()


def _describe(status: int | None, error: str) -> str:
    return f"HTTP {status}: {error}" if status is not None else error


@dataclass(frozen=True, slots=True)
class PollBatch:
    sets: dict[str, str]
    more_available: bool


def poll(
    uow_factory: UnitOfWorkFactory,
    signer: SetSigner,
    issuer: str,
    platform_id: str,
    stream_id: str,
    *,
    max_events: int | None,
    acks: Sequence[str] = (),
    errors: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> PollBatch:
    """One RFC 8936 poll: record acknowledgements, then hand out what is unacknowledged.

    The cursor moves over the acknowledged prefix, so receivers may acknowledge out of
    order; a SET handed out and not acknowledged is handed out again by the next poll.
    """
    limit = MAX_POLL_EVENTS if max_events is None else min(max_events, MAX_POLL_EVENTS)
    moment = now or datetime.now(UTC)
    with uow_factory() as uow:
        stream = uow.streams.get(stream_id, lock=True)
        if stream is None or stream.platform_id != platform_id:
            raise StreamError(Refusal.NOT_FOUND, f"no stream {stream_id!r}")
        if stream.delivery.method is not DeliveryMethod.POLL:
            raise StreamError(Refusal.INVALID_REQUEST, "this stream is delivered by push, not poll")
        position = uow.streams.position(stream_id)
        assert position is not None
        stored = uow.streams.acks(stream_id)
        last = uow.signals.last_seq()
        received = _acknowledged(stream_id, acks, errors or {}, position.cursor, last)
        for seq, error in received.items():
            if error is not None:  # refused by the receiver: kept where operators look
                letter = DeadLetter(stream_id, seq, set_id(stream_id, seq), 1, error, moment)
                uow.streams.add_dead_letter(letter)
        if stream.status is not StreamStatus.ENABLED:
            uow.streams.add_acks(stream_id, received)
            uow.commit()
            return PollBatch({}, False)
        done = stored | received
        rules = uow.streams.subject_rules(stream_id)
        types = wanted_types(stream)
        # First over the acknowledged prefix by position only (the usual case: the whole
        # last batch), then load what is left to hand out.
        start = position.cursor
        if done:
            for seq, subject in uow.signals.positions(
                start,
                stream_id=stream_id,
                platform_id=platform_id,
                event_types=types,
                through=max(done),
            ):
                if seq not in done and (not rules or deliverable(json.loads(subject), rules)):
                    break
                start = seq
        done = {seq: error for seq, error in done.items() if seq > start}
        window = limit + len(done) + 1
        signals = uow.signals.after(
            start,
            stream_id=stream_id,
            platform_id=platform_id,
            event_types=types,
            limit=window,
            through=last,
        )
        cursor, pending = _walk(signals, done, rules, start)
        if len(signals) < window and not pending:
            cursor = last
        # Only acknowledgements beyond the new cursor need keeping: in the usual poll
        # (the last batch acknowledged in order) nothing is written but the cursor.
        uow.streams.add_acks(
            stream_id,
            {seq: error for seq, error in received.items() if seq > cursor and seq not in stored},
        )
        if cursor != position.cursor:
            uow.streams.move_cursor(stream_id, cursor)
            if any(seq <= cursor for seq in stored):
                uow.streams.drop_acks(stream_id, cursor)
        sets = {}
        for signal in pending[:limit]:
            jti = set_id(stream_id, signal.seq)
            claims = set_claims(signal, stream_id, issuer, stream.audience, moment, jti)
            sets[jti] = signer.sign(claims, stream.signing_alg)
        uow.commit()
    return PollBatch(sets, len(pending) > limit or len(signals) == window)


def _acknowledged(
    stream_id: str, acks: Iterable[str], errors: Mapping[str, str], cursor: int, last: int
) -> dict[int, str | None]:
    """Our outbox positions among the acknowledged and refused jtis; others are ignored,
    and so is a jti for a position the outbox has not reached (it was never handed out)."""
    received: dict[int, str | None] = {}
    for jti, error in [(jti, None) for jti in acks] + list(errors.items()):
        seq = seq_of(stream_id, jti)
        if seq is not None and cursor < seq <= last:
            received[seq] = error
    return received


def _walk(
    signals: Sequence[Signal],
    done: Mapping[int, str | None],
    rules: Mapping[str, bool],
    cursor: int,
) -> tuple[int, list[Signal]]:
    """The new cursor (end of the acknowledged or skipped prefix) and the pending SETs."""
    pending: list[Signal] = []
    for signal in signals:
        settled = signal.seq in done or not deliverable(signal.subject, rules)
        if settled and not pending:
            cursor = signal.seq
        elif not settled:
            pending.append(signal)
    return cursor, pending


# What operators see and do (`handover ssf ...`)


@dataclass(frozen=True, slots=True)
class DeliveryState:
    """A stream and where its delivery stands."""

    stream: Stream
    #: Its cursor and retry state (None for a stream without one).
    position: StreamPosition | None
    #: Signals in the outbox past its cursor (None without a position).
    behind: int | None


def delivery_states(
    uow_factory: UnitOfWorkFactory, platform_id: str | None = None
) -> list[DeliveryState]:
    """Every stream, or one platform's, with its delivery position and retry state."""
    with uow_factory() as uow:
        streams = uow.streams.for_platform(platform_id) if platform_id else uow.streams.all()
        last = uow.signals.last_seq()
        states = []
        for stream in streams:
            position = uow.streams.position(stream.stream_id)
            behind = last - position.cursor if position else None
            states.append(DeliveryState(stream, position, behind))
    return states


def dead_letters(uow_factory: UnitOfWorkFactory, stream_id: str | None = None) -> list[DeadLetter]:
    """SETs given up on (after the retry limit, or refused as malformed), of every stream
    or of one."""
    with uow_factory() as uow:
        return uow.streams.dead_letters(stream_id)


def replay_dead_letters(
    uow_factory: UnitOfWorkFactory, stream_id: str, seq: int | None, now: datetime
) -> int:
    """Deliver a stream's undelivered dead letters again (only `seq` when given) from the
    next push round on; how many were queued. `StreamError` 404 for an unknown stream."""
    with uow_factory() as uow:
        if uow.streams.get(stream_id) is None:
            raise StreamError(Refusal.NOT_FOUND, f"no stream {stream_id!r}")
        count = uow.streams.request_replay(stream_id, seq, now)
        uow.commit()
    return count
