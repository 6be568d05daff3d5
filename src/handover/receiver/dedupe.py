"""Remembering which SETs were processed, by `jti`, so a retransmission is not acted on twice.

Transmitters retransmit: a push whose answer was lost is sent again, and a polled SET comes
back until it is acknowledged. Each SET keeps its `jti` across retransmissions (RFC 8417
§2.2), so a receiver claims the `jti` before acting on the event and gives it back with
`forget` if acting failed, so the retransmission is processed then.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Protocol


class JtiStore(Protocol):
    def first_time(self, jti: str) -> bool:
        """Claim `jti`: True exactly once per `jti` (atomically), False ever after."""
        ...

    def forget(self, jti: str) -> None:
        """Give a claimed `jti` back, so its next delivery counts as the first."""
        ...


class MemoryJtiStore:
    """The last `max_entries` `jti`s, in memory: lost on restart, for tests and one-off tools."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._max_entries = max_entries
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, jti: str) -> bool:
        with self._lock:
            if jti in self._seen:
                self._seen.move_to_end(jti)
                return False
            self._seen[jti] = None
            while len(self._seen) > self._max_entries:
                self._seen.popitem(last=False)
            return True

    def forget(self, jti: str) -> None:
        with self._lock:
            self._seen.pop(jti, None)

    def __len__(self) -> int:
        return len(self._seen)


class SqliteJtiStore:
    """`jti`s in a SQLite table, so a restarted receiver still drops repeats.

    The claim is one `INSERT OR IGNORE`: whichever thread or process inserts the row first
    gets True. `prune(older_than)` drops old rows for receivers that want the table bounded;
    transmitters stop retransmitting long before any sensible horizon (days).
    """

    def __init__(self, path: str | Path, table: str = "received_jti") -> None:
        if not table.isidentifier():
            raise ValueError(f"bad table name {table!r}")
        self._table = table
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=30.0)
        with self._lock, self._db:
            self._db.execute(
                f"CREATE TABLE IF NOT EXISTS {table} (jti TEXT PRIMARY KEY, seen_at REAL NOT NULL)"
            )

    def first_time(self, jti: str) -> bool:
        with self._lock, self._db:
            cursor = self._db.execute(
                f"INSERT OR IGNORE INTO {self._table} (jti, seen_at) VALUES (?, ?)",
                (jti, time.time()),
            )
            return cursor.rowcount == 1

    def forget(self, jti: str) -> None:
        with self._lock, self._db:
            self._db.execute(f"DELETE FROM {self._table} WHERE jti = ?", (jti,))

    def prune(self, older_than: float) -> int:
        """Drop `jti`s first seen before the Unix time `older_than`; how many were dropped."""
        with self._lock, self._db:
            cursor = self._db.execute(f"DELETE FROM {self._table} WHERE seen_at < ?", (older_than,))
            return cursor.rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()
