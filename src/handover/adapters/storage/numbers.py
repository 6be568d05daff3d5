"""SQL storage for numbers, their tenures and their lifecycle events."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy import (
    Connection,
    String,
    Table,
    any_,
    bindparam,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError

from handover.adapters.storage import tables as t
from handover.adapters.storage.dialects import in_batches, insert_into
from handover.adapters.storage.pgbulk import pg_array_type, pg_copy
from handover.domain.lifecycle import (
    EventKind,
    Number,
    NumberActivated,
    NumberReleased,
    State,
    Tenure,
)
from handover.domain.reports import Fingerprint, Outcome
from handover.services.model import (
    NumberHistory,
    RecordedEvent,
)
from handover.services.ports import ConcurrentUpdate

_LOCK_PG = (
    select(t.numbers)
    .where(t.numbers.c.e164 == any_(bindparam("e164s", type_=postgresql.ARRAY(String))))
    .order_by(t.numbers.c.e164)
    .with_for_update()
)
_RECORDED_PG = select(
    t.number_events.c.event_id,
    t.number_events.c.e164,
    t.number_events.c.kind,
    t.number_events.c.occurred_at,
    t.number_events.c.subscriber,
    t.number_events.c.to_carrier,
).where(
    t.number_events.c.carrier_id == bindparam("carrier_id"),
    t.number_events.c.event_id == any_(bindparam("event_ids", type_=postgresql.ARRAY(String))),
)


class SqlNumberRepository:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.is_postgres = connection.dialect.name == "postgresql"
        self._versions: dict[str, int] = {}

    def lock(self, e164s: Collection[str]) -> dict[str, Number]:
        found: dict[str, Number] = {}
        if self.is_postgres:
            # One array parameter, not an IN list: planned and bound once per chunk.
            rows = self.connection.execute(_LOCK_PG, {"e164s": sorted(e164s)}).mappings()
            for row in rows:
                found[row["e164"]] = _number_from_row(row)
                self._versions[row["e164"]] = row["version"]
            return found
        for batch in in_batches(e164s):
            query = select(t.numbers).where(t.numbers.c.e164.in_(batch)).order_by(t.numbers.c.e164)
            for row in self.connection.execute(query).mappings():
                found[row["e164"]] = _number_from_row(row)
                self._versions[row["e164"]] = row["version"]
        return found

    def current(self, e164s: Collection[str]) -> dict[str, Number]:
        """The aggregates as committed, without locking them (for reads)."""
        found: dict[str, Number] = {}
        for batch in in_batches(e164s):
            query = select(t.numbers).where(t.numbers.c.e164.in_(batch))
            for row in self.connection.execute(query).mappings():
                found[row["e164"]] = _number_from_row(row)
        return found

    def last_seq(self) -> int:
        """The highest event sequence number stored (0 when empty)."""
        return int(self.connection.execute(select(func.max(t.number_events.c.seq))).scalar() or 0)

    def recorded(self, carrier_id: str, event_ids: Collection[str]) -> dict[str, Fingerprint]:
        e = t.number_events.c
        found: dict[str, Fingerprint] = {}
        if self.is_postgres:
            params = {"carrier_id": carrier_id, "event_ids": list(event_ids)}
            for row in self.connection.execute(_RECORDED_PG, params):
                found[row.event_id] = (
                    row.e164,
                    row.kind,
                    row.occurred_at,
                    row.subscriber,
                    row.to_carrier,
                )
            return found
        for batch in in_batches(event_ids):
            query = select(
                e.event_id, e.e164, e.kind, e.occurred_at, e.subscriber, e.to_carrier
            ).where(e.carrier_id == carrier_id, e.event_id.in_(batch))
            for row in self.connection.execute(query):
                found[row.event_id] = (
                    row.e164,
                    row.kind,
                    row.occurred_at,
                    row.subscriber,
                    row.to_carrier,
                )
        return found

    def record(
        self,
        carrier_id: str,
        ingest_id: str | None,
        accepted: Sequence[Outcome],
        numbers: Iterable[Number],
        recorded_at: datetime,
    ) -> None:
        if not accepted:
            return
        if self.is_postgres:
            _copy_events(self.connection, carrier_id, ingest_id, accepted, recorded_at)
        else:
            events = [_event_row(carrier_id, ingest_id, o, recorded_at) for o in accepted]
            self.connection.execute(t.number_events.insert(), events)
        self._upsert_numbers([_number_row(number) for number in numbers])
        self._upsert_tenures(accepted)

    def _upsert_numbers(self, rows: list[dict[str, Any]]) -> None:
        """Insert new numbers and update locked ones, guarded by their version.

        A number created or changed by a concurrent transaction since `lock` turns into
        `ConcurrentUpdate` instead of a silently overwritten state.
        """
        new = [row for row in rows if row["e164"] not in self._versions]
        known = [
            {**row, "old_version": self._versions[row["e164"]]}
            for row in rows
            if row["e164"] in self._versions
        ]
        try:
            with self.connection.begin_nested():
                if new and self.is_postgres:
                    pg_copy(self.connection, t.numbers, new)
                elif new:
                    self.connection.execute(t.numbers.insert(), new)
        except (IntegrityError, psycopg.IntegrityError) as exc:
            raise ConcurrentUpdate("a number was created concurrently") from exc
        if known and self.is_postgres:
            if _pg_update_numbers(self.connection, known) != len(known):
                raise ConcurrentUpdate("a number changed concurrently")
        elif known:
            c = t.numbers.c
            statement = (
                update(t.numbers)
                .where(c.e164 == bindparam("b_e164"), c.version == bindparam("old_version"))
                .values({name: bindparam(name) for name in rows[0] if name != "e164"})
            )
            params = [{**row, "b_e164": row["e164"]} for row in known]
            result = self.connection.execute(statement, params)
            if result.rowcount not in (-1, len(known)):
                raise ConcurrentUpdate("a number changed concurrently")
        for row in rows:
            self._versions[row["e164"]] = row["version"]

    def _upsert_tenures(self, accepted: Sequence[Outcome]) -> None:
        touched: dict[tuple[str, datetime], dict[str, Any]] = {}
        for outcome in accepted:
            event = outcome.event
            if isinstance(event, NumberActivated | NumberReleased):
                tenure = event.tenure
                touched[(event.e164, tenure.start)] = {
                    "e164": event.e164,
                    "subscriber": tenure.subscriber,
                    "carrier_id": tenure.carrier,
                    "start_at": tenure.start,
                    "end_at": tenure.end,
                }
        if not touched:
            return
        if self.is_postgres:
            # COPY into a session-private staging table, then one upsert from it.
            self.connection.exec_driver_sql(_TENURES_IN)
            pg_copy(self.connection, t.tenures, list(touched.values()), into="tenures_in")
            self.connection.exec_driver_sql(
                "INSERT INTO tenures (e164, subscriber, carrier_id, start_at, end_at) "
                "SELECT e164, subscriber, carrier_id, start_at, end_at FROM tenures_in "
                "ON CONFLICT (e164, start_at) DO UPDATE SET end_at = excluded.end_at"
            )
            return
        statement = insert_into(self.connection, t.tenures)
        self.connection.execute(
            statement.on_conflict_do_update(
                index_elements=["e164", "start_at"], set_={"end_at": statement.excluded.end_at}
            ),
            list(touched.values()),
        )

    def history(self, e164: str) -> NumberHistory | None:
        row = (
            self.connection.execute(select(t.numbers).where(t.numbers.c.e164 == e164))
            .mappings()
            .first()
        )
        if row is None:
            return None
        tenure_rows = self.connection.execute(
            select(t.tenures).where(t.tenures.c.e164 == e164).order_by(t.tenures.c.start_at)
        ).mappings()
        event_rows = self.connection.execute(
            select(t.number_events)
            .where(t.number_events.c.e164 == e164)
            .order_by(t.number_events.c.occurred_at, t.number_events.c.seq)
        ).mappings()
        return NumberHistory(
            e164=e164,
            region=row["region"],
            state=State(row["state"]),
            carrier_id=row["carrier_id"],
            release_not_before=row["release_not_before"],
            tenures=[
                Tenure(r["subscriber"], r["carrier_id"], r["start_at"], r["end_at"])
                for r in tenure_rows
            ],
            events=[
                RecordedEvent(
                    r["seq"],
                    r["event_id"],
                    r["carrier_id"],
                    EventKind(r["kind"]),
                    r["occurred_at"],
                    r["subscriber"],
                    r["to_carrier"],
                    r["recorded_at"],
                )
                for r in event_rows
            ],
        )

    def tenures_of(self, carrier_id: str, subscribers: Collection[str]) -> list[tuple[str, Tenure]]:
        c = t.tenures.c
        found: list[tuple[str, Tenure]] = []
        for batch in in_batches(subscribers):
            query = (
                select(c.e164, c.subscriber, c.carrier_id, c.start_at, c.end_at)
                .where(c.carrier_id == carrier_id, c.subscriber.in_(batch))
                .order_by(c.start_at, c.e164)
            )
            for row in self.connection.execute(query):
                found.append(
                    (row.e164, Tenure(row.subscriber, row.carrier_id, row.start_at, row.end_at))
                )
        return found


_EVENT_COLUMNS = (
    "carrier_id",
    "event_id",
    "e164",
    "kind",
    "occurred_at",
    "subscriber",
    "to_carrier",
    "ingest_id",
    "recorded_at",
)


def _event_row(
    carrier_id: str, ingest_id: str | None, outcome: Outcome, recorded_at: datetime
) -> dict[str, Any]:
    report = outcome.report
    assert report is not None
    return {
        "carrier_id": carrier_id,
        "event_id": report.event_id,
        "e164": report.number.e164,
        "kind": report.kind.value,
        "occurred_at": report.occurred_at,
        "subscriber": report.subscriber,
        "to_carrier": report.to_carrier,
        "ingest_id": ingest_id,
        "recorded_at": recorded_at,
    }


def _copy_events(
    connection: Connection,
    carrier_id: str,
    ingest_id: str | None,
    accepted: Sequence[Outcome],
    recorded_at: datetime,
) -> None:
    """PostgreSQL's fast path: `COPY ... FROM STDIN` inside the current transaction."""
    raw: Any = connection.connection.dbapi_connection
    with (
        raw.cursor() as cursor,
        cursor.copy(f"COPY number_events ({', '.join(_EVENT_COLUMNS)}) FROM STDIN") as copy,
    ):
        copy.set_types(_EVENT_TYPES)  # dumpers chosen once, not per value
        for outcome in accepted:
            report = outcome.report
            assert report is not None
            copy.write_row(
                (
                    carrier_id,
                    report.event_id,
                    report.number.e164,
                    report.kind.value,
                    report.occurred_at,
                    report.subscriber,
                    report.to_carrier,
                    ingest_id,
                    recorded_at,
                )
            )


#: COPY types of the event columns (the element types of their bulk arrays).
_EVENT_TYPES = [pg_array_type(t.number_events, name)[:-2] for name in _EVENT_COLUMNS]


def _pg_unnest(table: Table, names: Sequence[str]) -> str:
    """`unnest(%s::text[], ...) AS v (a, ...)`: the rows as one array parameter per column."""
    arrays = ", ".join(f"%s::{pg_array_type(table, name)}" for name in names)
    return f"unnest({arrays}) AS v ({', '.join(names)})"


#: Tenures on their way in; emptied at every commit, so it never outlives a transaction's use.
_TENURES_IN = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS tenures_in (e164 text, subscriber text, "
    "carrier_id text, start_at timestamptz, end_at timestamptz) ON COMMIT DELETE ROWS"
)


def _pg_update_numbers(connection: Connection, rows: list[dict[str, Any]]) -> int:
    """Update locked numbers with one statement, each guarded by its old version; the count."""
    names = [name for name in rows[0] if name != "old_version"]
    arrays = ", ".join(f"%s::{pg_array_type(t.numbers, name)}" for name in names)
    assignments = ", ".join(f"{name} = v.{name}" for name in names if name != "e164")
    statement = (
        f"UPDATE numbers AS n SET {assignments} "
        f"FROM unnest({arrays}, %s::integer[]) AS v ({', '.join(names)}, old_version) "
        "WHERE n.e164 = v.e164 AND n.version = v.old_version"
    )
    params = tuple([row[name] for row in rows] for name in [*names, "old_version"])
    return int(connection.exec_driver_sql(statement, params).rowcount)


def _number_row(number: Number) -> dict[str, Any]:
    tenure = number.tenure
    assert number.state is not None and number.carrier is not None
    assert number.last_event_at is not None
    return {
        "e164": number.e164,
        "region": number.region,
        "state": number.state.value,
        "carrier_id": number.carrier,
        "subscriber": tenure.subscriber if tenure else None,
        "tenure_carrier": tenure.carrier if tenure else None,
        "tenure_start": tenure.start if tenure else None,
        "tenure_end": tenure.end if tenure else None,
        "last_event_at": number.last_event_at,
        "cancelled_at": number.cancelled_at,
        "release_not_before": number.release_not_before,
        "disconnected_at": number.disconnected_at,
        "ported_at": number.ported_at,
        "reassigned_at": number.reassigned_at,
        "version": number.version,
    }


def _number_from_row(row: Any) -> Number:
    tenure = None
    if row["tenure_start"] is not None:
        tenure = Tenure(
            row["subscriber"], row["tenure_carrier"], row["tenure_start"], row["tenure_end"]
        )
    return Number(
        e164=row["e164"],
        region=row["region"],
        state=State(row["state"]),
        carrier=row["carrier_id"],
        tenure=tenure,
        last_event_at=row["last_event_at"],
        cancelled_at=row["cancelled_at"],
        release_not_before=row["release_not_before"],
        disconnected_at=row["disconnected_at"],
        ported_at=row["ported_at"],
        reassigned_at=row["reassigned_at"],
        version=row["version"],
    )
