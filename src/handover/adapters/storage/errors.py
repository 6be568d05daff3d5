"""Which driver errors mean "the store is away", turned into the port's `StoreUnavailable`.

Away: no connection could be made (refused, unreachable, the server starting or shutting
down), or the connection broke under a statement (SQLAlchemy marks it invalidated). Not
away: a statement the store refused (constraints, serialization failures, deadlocks, SQL
errors) — those stay what they are, and a caller that did not expect one has a bug.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy.exc import DBAPIError

from handover.services.ports import StoreUnavailable

#: SQLSTATEs of a server going or gone: class 08 (connection exception), admin and crash
#: shutdown, "the database system is starting up".
_AWAY_STATES = ("57P01", "57P02", "57P03")


def is_store_away(error: BaseException) -> bool:
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return True
        error = error.orig if isinstance(error.orig, BaseException) else error
    if isinstance(error, (psycopg.OperationalError, psycopg.InterfaceError)):
        state = error.sqlstate
        # No SQLSTATE: the client library failed (connection refused, closed, timed out).
        return state is None or state.startswith("08") or state in _AWAY_STATES
    if isinstance(error, sqlite3.OperationalError):
        return "unable to open database" in str(error) or "disk I/O error" in str(error)
    return False


def unavailable(error: BaseException) -> StoreUnavailable:
    cause = str(getattr(error, "orig", None) or error).strip().splitlines()
    return StoreUnavailable(f"the store is not answering: {cause[0] if cause else error!r}")


@contextmanager
def translated() -> Iterator[None]:
    """Raise `StoreUnavailable` in place of a driver error that means the store is away."""
    try:
        yield
    except Exception as exc:
        if is_store_away(exc):
            raise unavailable(exc) from exc
        raise
