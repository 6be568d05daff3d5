"""SQL storage for carriers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Connection,
    select,
    update,
)

from handover.adapters.storage import tables as t
from handover.services.model import (
    Carrier,
)


class SqlCarrierRepository:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def add(self, carrier: Carrier) -> None:
        self.connection.execute(
            t.carriers.insert().values(
                id=carrier.id,
                name=carrier.name,
                country=carrier.country,
                created_at=carrier.created_at,
                coverage_start=carrier.coverage_start,
            )
        )

    def get(self, carrier_id: str) -> Carrier | None:
        row = (
            self.connection.execute(select(t.carriers).where(t.carriers.c.id == carrier_id))
            .mappings()
            .first()
        )
        return Carrier(**row) if row else None

    def ids(self) -> frozenset[str]:
        return frozenset(self.connection.execute(select(t.carriers.c.id)).scalars())

    def set_coverage(self, carrier_id: str, start: datetime) -> None:
        self.connection.execute(
            update(t.carriers).where(t.carriers.c.id == carrier_id).values(coverage_start=start)
        )

    def all(self) -> list[Carrier]:
        rows = self.connection.execute(select(t.carriers).order_by(t.carriers.c.id)).mappings()
        return [Carrier(**row) for row in rows]
