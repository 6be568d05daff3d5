"""What SQLite and PostgreSQL write differently, for every SQL repository."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite

#: Values bound in one `IN (...)` at most (SQLite's variable limit, PostgreSQL's plan size).
IN_BATCH = 5_000


def in_batches(items: Collection[str]) -> Iterable[list[str]]:
    """`items` sorted, in lists of at most `IN_BATCH` (sorted: locks taken in one order)."""
    values = sorted(items)
    for start in range(0, len(values), IN_BATCH):
        yield values[start : start + IN_BATCH]


def insert_into(connection: Connection, table: Table) -> Any:
    """The dialect's INSERT, which has `on_conflict_do_nothing` / `on_conflict_do_update`."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)
