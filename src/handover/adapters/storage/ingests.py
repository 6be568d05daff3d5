"""SQL storage for ingests (one carrier file or batch) and their rejected rows."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    select,
    update,
)

from handover.adapters.storage import tables as t
from handover.services.model import (
    Ingest,
    IngestStatus,
    Rejection,
)


class SqlIngestRepository:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def add(self, ingest: Ingest) -> None:
        self.connection.execute(t.ingests.insert().values(**_ingest_row(ingest)))

    def update(self, ingest: Ingest) -> None:
        values = _ingest_row(ingest)
        del values["id"]
        self.connection.execute(
            update(t.ingests).where(t.ingests.c.id == ingest.id).values(**values)
        )

    def get(self, ingest_id: str) -> Ingest | None:
        row = (
            self.connection.execute(select(t.ingests).where(t.ingests.c.id == ingest_id))
            .mappings()
            .first()
        )
        return _ingest_from_row(row) if row else None

    def recent(self, carrier_id: str | None, limit: int) -> list[Ingest]:
        query = select(t.ingests).order_by(t.ingests.c.received_at.desc()).limit(limit)
        if carrier_id is not None:
            query = query.where(t.ingests.c.carrier_id == carrier_id)
        return [_ingest_from_row(row) for row in self.connection.execute(query).mappings()]

    def add_rejections(self, ingest_id: str, rejections: Sequence[Rejection]) -> None:
        if rejections:
            self.connection.execute(
                t.ingest_rejections.insert(),
                [
                    {
                        "ingest_id": ingest_id,
                        "line": r.line,
                        "event_id": r.event_id,
                        "reason": str(r.reason),
                        "detail": r.detail,
                        "raw": r.raw,
                    }
                    for r in rejections
                ],
            )

    def rejections(self, ingest_id: str, after_line: int, limit: int) -> list[Rejection]:
        r = t.ingest_rejections.c
        query = (
            select(t.ingest_rejections)
            .where(r.ingest_id == ingest_id, r.line > after_line)
            .order_by(r.line)
            .limit(limit)
        )
        return [
            Rejection(row["line"], row["event_id"], row["reason"], row["detail"], row["raw"])
            for row in self.connection.execute(query).mappings()
        ]


def _ingest_row(ingest: Ingest) -> dict[str, Any]:
    return {
        "id": ingest.id,
        "carrier_id": ingest.carrier_id,
        "source": ingest.source,
        "filename": ingest.filename,
        "status": ingest.status.value,
        "received_at": ingest.received_at,
        "finished_at": ingest.finished_at,
        "rows": ingest.rows,
        "accepted": ingest.accepted,
        "duplicates": ingest.duplicates,
        "rejected": json.dumps(dict(sorted(ingest.rejected.items()))),
        "error": ingest.error,
    }


def _ingest_from_row(row: Any) -> Ingest:
    return Ingest(
        id=row["id"],
        carrier_id=row["carrier_id"],
        source=row["source"],
        filename=row["filename"],
        received_at=row["received_at"],
        status=IngestStatus(row["status"]),
        finished_at=row["finished_at"],
        rows=row["rows"],
        accepted=row["accepted"],
        duplicates=row["duplicates"],
        rejected=Counter(json.loads(row["rejected"])),
        error=row["error"],
    )
