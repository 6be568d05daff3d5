"""SQL storage for SSF: streams, the signal outbox and dead letters."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)

from handover.adapters.storage import tables as t
from handover.adapters.storage.pgbulk import pg_copy
from handover.domain.ssf.events import Signal
from handover.domain.ssf.streams import (
    Delivery,
    DeliveryMethod,
    SigningAlgorithm,
    Stream,
    StreamStatus,
)
from handover.services.model import DeadLetter, StreamPosition

#: Key of the PostgreSQL advisory lock that serialises outbox writers.
OUTBOX_LOCK = 0x5EC_E7E7


def _stream_values(stream: Stream) -> dict[str, Any]:
    return {
        "platform_id": stream.platform_id,
        "audience": stream.audience,
        "method": stream.delivery.method.value,
        "endpoint_url": stream.delivery.endpoint_url,
        "authorization_header": stream.delivery.authorization_header,
        "events_requested": json.dumps(list(stream.events_requested)),
        "description": stream.description,
        "signing_alg": stream.signing_alg.value,
        "status": stream.status.value,
        "status_reason": stream.status_reason,
        "min_verification_interval": stream.min_verification_interval,
        "last_verification_at": stream.last_verification_at,
        "created_at": stream.created_at,
        "updated_at": stream.updated_at,
    }


def _stream(row: Any) -> Stream:
    return Stream(
        stream_id=row["stream_id"],
        platform_id=row["platform_id"],
        audience=row["audience"],
        delivery=Delivery(
            DeliveryMethod(row["method"]), row["endpoint_url"], row["authorization_header"]
        ),
        events_requested=tuple(json.loads(row["events_requested"])),
        description=row["description"],
        signing_alg=SigningAlgorithm(row["signing_alg"]),
        status=StreamStatus(row["status"]),
        status_reason=row["status_reason"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        min_verification_interval=row["min_verification_interval"],
        last_verification_at=row["last_verification_at"],
    )


class SqlStreamRepository:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.postgres = connection.dialect.name == "postgresql"

    def add(self, stream: Stream, cursor: int) -> None:
        self.connection.execute(
            t.streams.insert().values(
                stream_id=stream.stream_id, cursor=cursor, attempts=0, **_stream_values(stream)
            )
        )

    def get(self, stream_id: str, *, lock: bool = False) -> Stream | None:
        query = select(t.streams).where(t.streams.c.stream_id == stream_id)
        if lock and self.postgres:
            query = query.with_for_update()
        row = self.connection.execute(query).first()
        return _stream(row._mapping) if row else None

    def for_platform(self, platform_id: str) -> list[Stream]:
        rows = self.connection.execute(
            select(t.streams)
            .where(t.streams.c.platform_id == platform_id)
            .order_by(t.streams.c.created_at, t.streams.c.stream_id)
        )
        return [_stream(row._mapping) for row in rows]

    def all(self) -> list[Stream]:
        rows = self.connection.execute(
            select(t.streams).order_by(t.streams.c.platform_id, t.streams.c.created_at)
        )
        return [_stream(row._mapping) for row in rows]

    def update(self, stream: Stream) -> None:
        self.connection.execute(
            update(t.streams)
            .where(t.streams.c.stream_id == stream.stream_id)
            .values(**_stream_values(stream))
        )

    def delete(self, stream_id: str) -> None:
        for table in (t.stream_subjects, t.poll_acks, t.dead_letters):
            self.connection.execute(delete(table).where(table.c.stream_id == stream_id))
        self.connection.execute(delete(t.streams).where(t.streams.c.stream_id == stream_id))

    def set_subject(self, stream_id: str, subject: str, included: bool) -> None:
        table = t.stream_subjects
        where = and_(table.c.stream_id == stream_id, table.c.subject == subject)
        self.connection.execute(delete(table).where(where))
        self.connection.execute(
            insert(table).values(stream_id=stream_id, subject=subject, included=int(included))
        )

    def subject_rules(self, stream_id: str) -> dict[str, bool]:
        table = t.stream_subjects
        rows = self.connection.execute(
            select(table.c.subject, table.c.included).where(table.c.stream_id == stream_id)
        )
        return {subject: bool(included) for subject, included in rows}

    def position(self, stream_id: str) -> StreamPosition | None:
        c = t.streams.c
        row = self.connection.execute(
            select(c.stream_id, c.cursor, c.attempts, c.next_attempt_at, c.last_error).where(
                c.stream_id == stream_id
            )
        ).first()
        return StreamPosition(*row) if row else None

    def move_cursor(
        self,
        stream_id: str,
        cursor: int,
        owner: str | None = None,
        lease_until: datetime | None = None,
    ) -> bool:
        c = t.streams.c
        where = c.stream_id == stream_id
        values: dict[str, Any] = {
            "cursor": cursor,
            "attempts": 0,
            "next_attempt_at": None,
            "last_error": None,
        }
        if owner is not None:
            # A worker's writes stop counting once the stream is paused, disabled or moved
            # to poll: it then stops, and the cursor stays where the change found it.
            where = and_(where, c.lease_owner == owner, *_still_pushing())
            values["leased_until"] = lease_until
        result = self.connection.execute(update(t.streams).where(where).values(**values))
        return result.rowcount == 1

    def claim(
        self, now: datetime, owner: str, lease_until: datetime, last_seq: int, limit: int
    ) -> list[Stream]:
        c = t.streams.c
        replays = (
            select(t.dead_letters.c.seq)
            .where(
                t.dead_letters.c.stream_id == c.stream_id,
                t.dead_letters.c.replay_requested_at.is_not(None),
                t.dead_letters.c.delivered_at.is_(None),
            )
            .exists()
        )
        query = (
            select(t.streams)
            .where(
                c.method == DeliveryMethod.PUSH.value,
                c.status == StreamStatus.ENABLED.value,
                or_(c.cursor < last_seq, replays),
                or_(c.next_attempt_at.is_(None), c.next_attempt_at <= now),
                or_(c.leased_until.is_(None), c.leased_until < now),
            )
            .order_by(c.next_attempt_at.is_not(None), c.next_attempt_at, c.stream_id)
            .limit(limit)
        )
        if self.postgres:
            query = query.with_for_update(skip_locked=True, of=t.streams)
        streams = [_stream(row._mapping) for row in self.connection.execute(query)]
        if streams:
            self.connection.execute(
                update(t.streams)
                .where(c.stream_id.in_([stream.stream_id for stream in streams]))
                .values(leased_until=lease_until, lease_owner=owner)
            )
        return streams

    def retry_later(
        self, stream_id: str, owner: str, attempts: int, at: datetime, error: str
    ) -> None:
        c = t.streams.c
        self.connection.execute(
            update(t.streams)
            .where(c.stream_id == stream_id, c.lease_owner == owner, *_still_pushing())
            .values(attempts=attempts, next_attempt_at=at, last_error=error[:2000])
        )

    def release(self, stream_id: str, owner: str) -> None:
        c = t.streams.c
        self.connection.execute(
            update(t.streams)
            .where(c.stream_id == stream_id, c.lease_owner == owner)
            .values(leased_until=None, lease_owner=None)
        )

    def add_dead_letter(self, letter: DeadLetter) -> None:
        table = t.dead_letters
        where = and_(table.c.stream_id == letter.stream_id, table.c.seq == letter.seq)
        self.connection.execute(delete(table).where(where))
        self.connection.execute(
            insert(table).values(
                stream_id=letter.stream_id,
                seq=letter.seq,
                jti=letter.jti,
                attempts=letter.attempts,
                error=letter.error[:2000],
                dead_at=letter.dead_at,
                replay_requested_at=letter.replay_requested_at,
                delivered_at=letter.delivered_at,
            )
        )

    def dead_letters(self, stream_id: str | None = None) -> list[DeadLetter]:
        table = t.dead_letters
        query = select(table).order_by(table.c.stream_id, table.c.seq)
        if stream_id is not None:
            query = query.where(table.c.stream_id == stream_id)
        return [_dead_letter(row._mapping) for row in self.connection.execute(query)]

    def request_replay(self, stream_id: str, seq: int | None, now: datetime) -> int:
        table = t.dead_letters
        where = and_(table.c.stream_id == stream_id, table.c.delivered_at.is_(None))
        if seq is not None:
            where = and_(where, table.c.seq == seq)
        result = self.connection.execute(update(table).where(where).values(replay_requested_at=now))
        return int(result.rowcount)

    def replays(self, stream_id: str) -> list[DeadLetter]:
        table = t.dead_letters
        rows = self.connection.execute(
            select(table)
            .where(
                table.c.stream_id == stream_id,
                table.c.replay_requested_at.is_not(None),
                table.c.delivered_at.is_(None),
            )
            .order_by(table.c.seq)
        )
        return [_dead_letter(row._mapping) for row in rows]

    def replayed(self, stream_id: str, seq: int, now: datetime) -> None:
        table = t.dead_letters
        self.connection.execute(
            update(table)
            .where(table.c.stream_id == stream_id, table.c.seq == seq)
            .values(delivered_at=now)
        )

    def add_acks(self, stream_id: str, acks: dict[int, str | None]) -> None:
        if not acks:
            return
        table = t.poll_acks
        self.connection.execute(
            delete(table).where(table.c.stream_id == stream_id, table.c.seq.in_(list(acks)))
        )
        self.connection.execute(
            insert(table),
            [{"stream_id": stream_id, "seq": seq, "error": error} for seq, error in acks.items()],
        )

    def acks(self, stream_id: str) -> dict[int, str | None]:
        table = t.poll_acks
        rows = self.connection.execute(
            select(table.c.seq, table.c.error).where(table.c.stream_id == stream_id)
        )
        return {seq: error for seq, error in rows}

    def drop_acks(self, stream_id: str, through: int) -> None:
        table = t.poll_acks
        self.connection.execute(
            delete(table).where(table.c.stream_id == stream_id, table.c.seq <= through)
        )


def _still_pushing() -> tuple[ColumnElement[bool], ...]:
    c = t.streams.c
    return (c.status == StreamStatus.ENABLED.value, c.method == DeliveryMethod.PUSH.value)


def _dead_letter(row: Any) -> DeadLetter:
    return DeadLetter(
        row["stream_id"],
        row["seq"],
        row["jti"],
        row["attempts"],
        row["error"],
        row["dead_at"],
        row["replay_requested_at"],
        row["delivered_at"],
    )


class SqlSignalOutbox:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.postgres = connection.dialect.name == "postgresql"

    def add(self, signals: Sequence[Signal]) -> None:
        if not signals:
            return
        if self.postgres:
            # Held to commit: seq values are drawn after it, so seq order is commit order.
            # (SQLite writers are already serialised by BEGIN IMMEDIATE.)
            lock = text("SELECT pg_advisory_xact_lock(:key)")
            self.connection.execute(lock, {"key": OUTBOX_LOCK})
        now = datetime.now(UTC)
        rows = [
            {
                "event_type": signal.event_type,
                "subject": json.dumps(signal.subject, separators=(",", ":")),
                "payload": json.dumps(signal.payload, separators=(",", ":")),
                "occurred_at": signal.occurred_at,
                "txn": signal.txn,
                "stream_id": signal.stream_id,
                "platform_id": signal.platform_id,
                "created_at": signal.created_at or now,
            }
            for signal in signals
        ]
        if self.postgres and len(rows) > 1:
            pg_copy(self.connection, t.signals, rows)
        else:
            self.connection.execute(insert(t.signals), rows)

    @staticmethod
    def _for(
        seq: int, stream_id: str, platform_id: str, event_types: Collection[str]
    ) -> tuple[ColumnElement[bool], ...]:
        """Signals after `seq` of these types, for every stream, this stream or platform."""
        c = t.signals.c
        return (
            c.seq > seq,
            c.event_type.in_(list(event_types)),
            or_(c.stream_id.is_(None), c.stream_id == stream_id),
            or_(c.platform_id.is_(None), c.platform_id == platform_id),
        )

    def last_seq(self) -> int:
        value = self.connection.execute(select(func.max(t.signals.c.seq))).scalar()
        return int(value or 0)

    def with_txn(self, txn: str) -> list[Signal]:
        rows = self.connection.execute(
            select(t.signals).where(t.signals.c.txn == txn).order_by(t.signals.c.seq)
        )
        return [_signal(row._mapping) for row in rows]

    def after(
        self,
        seq: int,
        *,
        stream_id: str,
        platform_id: str,
        event_types: Collection[str],
        limit: int,
        through: int | None = None,
    ) -> list[Signal]:
        c = t.signals.c
        query = (
            select(t.signals)
            .where(*self._for(seq, stream_id, platform_id, event_types))
            .order_by(c.seq)
            .limit(limit)
        )
        if through is not None:
            query = query.where(c.seq <= through)
        return [_signal(row._mapping) for row in self.connection.execute(query)]

    def positions(
        self,
        seq: int,
        *,
        stream_id: str,
        platform_id: str,
        event_types: Collection[str],
        through: int,
    ) -> list[tuple[int, str]]:
        query = (
            select(t.signals.c.seq, t.signals.c.subject)
            .where(*self._for(seq, stream_id, platform_id, event_types), t.signals.c.seq <= through)
            .order_by(t.signals.c.seq)
        )
        return [(seq, subject) for seq, subject in self.connection.execute(query)]

    def get(self, seqs: Collection[int]) -> list[Signal]:
        rows = self.connection.execute(
            select(t.signals).where(t.signals.c.seq.in_(list(seqs))).order_by(t.signals.c.seq)
        )
        return [_signal(row._mapping) for row in rows]


def _signal(row: Any) -> Signal:
    return Signal(
        event_type=row["event_type"],
        subject=orjson.loads(row["subject"]),
        payload=orjson.loads(row["payload"]),
        occurred_at=row["occurred_at"],
        txn=row["txn"],
        stream_id=row["stream_id"],
        platform_id=row["platform_id"],
        created_at=row["created_at"],
        seq=row["seq"],
    )
