"""SQL storage for the workers' heartbeats."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, select

from handover.adapters.storage import tables as t
from handover.services.model import WorkerHeartbeat


class SqlWorkerHeartbeatRepository:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def beat(self, heartbeat: WorkerHeartbeat) -> None:
        table = t.worker_heartbeats
        values = {
            "host": heartbeat.host,
            "pid": heartbeat.pid,
            "started_at": heartbeat.started_at,
            "beat_at": heartbeat.beat_at,
            "consecutive_failures": heartbeat.consecutive_failures,
            "last_error": heartbeat.last_error,
            "last_error_at": heartbeat.last_error_at,
        }
        updated = self.connection.execute(
            table.update().where(table.c.worker_id == heartbeat.worker_id).values(**values)
        )
        if updated.rowcount == 0:  # each worker writes only its own row: no race
            self.connection.execute(table.insert().values(worker_id=heartbeat.worker_id, **values))

    def latest(self) -> list[WorkerHeartbeat]:
        table = t.worker_heartbeats
        rows = self.connection.execute(select(table).order_by(table.c.beat_at.desc()))
        return [_heartbeat(row._mapping) for row in rows]

    def forget_before(self, before: datetime) -> int:
        table = t.worker_heartbeats
        return self.connection.execute(delete(table).where(table.c.beat_at < before)).rowcount


def _heartbeat(row: Any) -> WorkerHeartbeat:
    return WorkerHeartbeat(
        worker_id=row["worker_id"],
        host=row["host"],
        pid=row["pid"],
        started_at=row["started_at"],
        beat_at=row["beat_at"],
        consecutive_failures=row["consecutive_failures"],
        last_error=row["last_error"],
        last_error_at=row["last_error_at"],
    )
