"""SQL storage for number ranges and the activations refused outside them."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, delete, select, text

from handover.adapters.storage import tables as t
from handover.domain.ranges import NumberRange
from handover.services.model import RangeRefusal


class SqlRangeRepository:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def all(self, *, lock: bool = False) -> list[NumberRange]:
        if lock and self.connection.dialect.name == "postgresql":
            # Grants read every range to rule out overlaps; two at once must not both pass.
            # (SQLite has one writer at a time and the grant's insert waits for it.)
            self.connection.execute(text("LOCK TABLE number_ranges IN SHARE ROW EXCLUSIVE MODE"))
        rows = self.connection.execute(
            select(t.number_ranges).order_by(t.number_ranges.c.prefix)
        ).mappings()
        return [NumberRange(**row) for row in rows]

    def of_carrier(self, carrier_id: str) -> list[NumberRange]:
        rows = self.connection.execute(
            select(t.number_ranges)
            .where(t.number_ranges.c.carrier_id == carrier_id)
            .order_by(t.number_ranges.c.prefix)
        ).mappings()
        return [NumberRange(**row) for row in rows]

    def add(self, ranges: Sequence[NumberRange]) -> None:
        if ranges:
            self.connection.execute(
                t.number_ranges.insert(),
                [
                    {
                        "prefix": r.prefix,
                        "carrier_id": r.carrier_id,
                        "granted_at": r.granted_at,
                        "granted_by": r.granted_by,
                        "note": r.note,
                    }
                    for r in ranges
                ],
            )

    def remove(self, prefix: str) -> NumberRange | None:
        row = (
            self.connection.execute(
                select(t.number_ranges).where(t.number_ranges.c.prefix == prefix)
            )
            .mappings()
            .first()
        )
        if row is None:
            return None
        self.connection.execute(delete(t.number_ranges).where(t.number_ranges.c.prefix == prefix))
        return NumberRange(**row)

    def add_refusals(self, refusals: Sequence[RangeRefusal]) -> None:
        if refusals:
            self.connection.execute(
                t.range_refusals.insert(),
                [
                    {
                        "carrier_id": r.carrier_id,
                        "e164": r.e164,
                        "event": r.event,
                        "event_id": r.event_id,
                        "occurred_at": r.occurred_at,
                        "refused_at": r.refused_at,
                        "ingest_id": r.ingest_id,
                        "line": r.line,
                    }
                    for r in refusals
                ],
            )

    def refusals(self, carrier_id: str | None, after_id: int, limit: int) -> list[RangeRefusal]:
        query = select(t.range_refusals).where(t.range_refusals.c.id > after_id)
        if carrier_id is not None:
            query = query.where(t.range_refusals.c.carrier_id == carrier_id)
        rows = self.connection.execute(query.order_by(t.range_refusals.c.id).limit(limit))
        return [RangeRefusal(**row) for row in rows.mappings()]
