"""The audit log in SQL: leaves, complete-subtree hashes and signed checkpoints.

Appends lock the single `log_state` row (`FOR UPDATE` on PostgreSQL; SQLite's
`BEGIN IMMEDIATE` already serialises writers), so leaf indices are dense and unique and
the log grows in the same transaction as the change it records.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, select, text, update

from handover.adapters.storage import tables as t
from handover.adapters.storage.pgbulk import pg_copy
from handover.services.model import StoredCheckpoint
from handover.tlog.tree import appended_nodes
from handover.tlog.verify import leaf_hash


def frontier(size: int) -> list[tuple[int, int]]:
    """The complete subtrees that make up a tree of `size` leaves, largest first."""
    nodes, start = [], 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            nodes.append((level, start >> level))
            start += 1 << level
    return nodes


class SqlAuditLog:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.is_postgres = connection.dialect.name == "postgresql"

    def size(self, *, lock: bool = False) -> int:
        query = select(t.log_state.c.size).where(t.log_state.c.id == 1)
        if lock and self.is_postgres:
            query = query.with_for_update()
        return int(self.connection.execute(query).scalar_one())

    def append(self, entries: Sequence[bytes], created_at: datetime) -> int:
        """Append entries in order; returns the index of the first."""
        size = self.size(lock=True)
        if not entries:
            return size
        known = self.nodes(frontier(size))
        leaves, nodes = [], []
        for offset, data in enumerate(entries):
            digest = leaf_hash(data)
            for level, index, node in appended_nodes(
                size + offset, digest, lambda lv, ix: known[(lv, ix)]
            ):
                known[(level, index)] = node
                if level:
                    nodes.append({"level": level, "idx": index, "hash": node})
            leaves.append(
                {"idx": size + offset, "data": data, "leaf_hash": digest, "created_at": created_at}
            )
        self._insert(t.log_leaves, leaves)
        self._insert(t.log_nodes, nodes)
        self.connection.execute(
            update(t.log_state).where(t.log_state.c.id == 1).values(size=size + len(entries))
        )
        return size

    def _insert(self, table: Table, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if self.is_postgres:
            pg_copy(self.connection, table, rows, binary=True)
        else:
            self.connection.execute(table.insert(), rows)

    def nodes(self, wanted: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Stored subtree hashes by (level, index); level 0 are the leaf hashes.

        One statement, one round trip: the leaves' hashes and one `level = L AND idx IN
        (...)` term per level, which both engines answer from the primary key (SQLite
        would scan the whole table for a row-value `(level, idx) IN (...)`).
        """
        by_level: dict[int, list[int]] = {}
        for level, index in dict.fromkeys(wanted):
            by_level.setdefault(int(level), []).append(int(index))
        if not by_level:
            return {}
        params: dict[str, int] = {}

        def placeholders(indices: list[int]) -> str:
            names = []
            for index in indices:
                names.append(f"i{len(params)}")
                params[names[-1]] = index
            return ", ".join(f":{name}" for name in names)

        parts = []
        if 0 in by_level:
            parts.append(
                "SELECT 0 AS level, idx, leaf_hash AS hash FROM log_leaves "
                f"WHERE idx IN ({placeholders(by_level.pop(0))})"
            )
        if by_level:
            terms = " OR ".join(
                f"(level = {level} AND idx IN ({placeholders(indices)}))"
                for level, indices in sorted(by_level.items())
            )
            parts.append(f"SELECT level, idx, hash FROM log_nodes WHERE {terms}")
        rows = self.connection.execute(text(" UNION ALL ".join(parts)), params)
        return {(int(row.level), int(row.idx)): bytes(row.hash) for row in rows}

    def leaves(self, start: int = 0, end: int | None = None) -> Iterator[tuple[int, bytes, bytes]]:
        """(index, data, stored leaf hash) in index order, streamed."""
        c = t.log_leaves.c
        query = select(c.idx, c.data, c.leaf_hash).where(c.idx >= start).order_by(c.idx)
        if end is not None:
            query = query.where(c.idx < end)
        # On the statement: Connection.execution_options would change the connection itself,
        # and every later statement in the transaction would run through a server cursor.
        result = self.connection.execute(query.execution_options(yield_per=10_000))
        for row in result:
            yield row.idx, bytes(row.data), bytes(row.leaf_hash)

    def stored_nodes(self, level: int) -> Iterator[tuple[int, bytes]]:
        c = t.log_nodes.c
        query = select(c.idx, c.hash).where(c.level == level).order_by(c.idx)
        for row in self.connection.execute(query.execution_options(yield_per=10_000)):
            yield row.idx, bytes(row.hash)

    def add_checkpoint(self, checkpoint: StoredCheckpoint) -> None:
        self.connection.execute(
            t.log_checkpoints.insert().values(
                size=checkpoint.size,
                root_hash=checkpoint.root_hash,
                note=checkpoint.note,
                created_at=checkpoint.created_at,
            )
        )

    def checkpoint(self, size: int | None = None) -> StoredCheckpoint | None:
        """The checkpoint of that size, or the latest."""
        c = t.log_checkpoints.c
        query = select(t.log_checkpoints)
        query = (
            query.where(c.size == size)
            if size is not None
            else query.order_by(c.size.desc()).limit(1)
        )
        row = self.connection.execute(query).mappings().first()
        return _checkpoint(row) if row else None

    def checkpoints(self) -> list[StoredCheckpoint]:
        rows = self.connection.execute(
            select(t.log_checkpoints).order_by(t.log_checkpoints.c.size)
        ).mappings()
        return [_checkpoint(row) for row in rows]


def _checkpoint(row: Any) -> StoredCheckpoint:
    return StoredCheckpoint(row["size"], bytes(row["root_hash"]), row["note"], row["created_at"])
