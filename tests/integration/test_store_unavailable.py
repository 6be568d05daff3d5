"""The SQL unit of work turns "the store is away" into the port's `StoreUnavailable`, and
leaves every other store error alone."""

from __future__ import annotations

import socket
import sqlite3
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from handover import bootstrap
from handover.adapters.storage.engine import make_engine
from handover.adapters.storage.errors import is_store_away
from handover.adapters.storage.uow import SqlUnitOfWork
from handover.services.model import Carrier
from handover.services.ports import StoreUnavailable, UnitOfWorkFactory


def _closed_port() -> int:
    with socket.socket() as probe:  # bound, never listening: connections are refused
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_postgresql_server_that_refuses_connections_is_unavailable() -> None:
    engine = make_engine(f"postgresql://postgres@127.0.0.1:{_closed_port()}/handover")
    try:
        with pytest.raises(StoreUnavailable, match="not answering"), SqlUnitOfWork(engine, b"k"):
            pass
    finally:
        engine.dispose()


def test_a_sqlite_file_that_cannot_be_opened_is_unavailable(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'missing' / 'handover.db'}")
    try:
        with pytest.raises(StoreUnavailable), SqlUnitOfWork(engine, b"k"):
            pass
    finally:
        engine.dispose()


def test_a_statement_the_store_refuses_is_not_an_outage(uow_factory: UnitOfWorkFactory) -> None:
    carrier = Carrier("cm", "China Mobile", "CN", datetime.now(UTC))
    with uow_factory() as uow:
        uow.carriers.add(carrier)
        uow.commit()
    with pytest.raises(IntegrityError), uow_factory() as uow:
        uow.carriers.add(carrier)
        uow.commit()
    with uow_factory() as uow:
        assert uow.carriers.get("cm") == carrier, "the store still answers"


def test_a_new_store_has_no_heartbeats(store_url: str) -> None:
    engine = make_engine(store_url)
    try:
        with partial(SqlUnitOfWork, engine, b"k")() as uow:
            assert uow.heartbeats.latest() == []
    finally:
        engine.dispose()


def test_which_driver_errors_mean_the_store_is_away() -> None:
    refused = psycopg.OperationalError("connection refused")
    assert is_store_away(OperationalError("SELECT 1", {}, refused))
    assert is_store_away(psycopg.errors.AdminShutdown("terminating connection"))
    assert is_store_away(psycopg.errors.CannotConnectNow("the database system is starting up"))
    assert not is_store_away(psycopg.errors.SerializationFailure("could not serialize"))
    assert not is_store_away(psycopg.errors.DeadlockDetected("deadlock detected"))
    assert not is_store_away(sqlite3.OperationalError("database is locked"))
    assert not is_store_away(ValueError("a bug"))


def test_an_index_that_reads_the_store_itself_reports_the_outage_as_unavailable() -> None:
    class Index:
        def refresh(self) -> None:
            raise OperationalError("SELECT", {}, psycopg.OperationalError("server closed"))

    with pytest.raises(StoreUnavailable, match="server closed"):
        bootstrap.fresh(Index())  # type: ignore[arg-type]
