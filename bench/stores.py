"""Fresh, migrated stores for benchmarks: a temporary SQLite file or PostgreSQL database.

Shared by every benchmark so each measures on an empty store and leaves nothing behind.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

import generate
from handover.adapters.storage import migrate
from handover.adapters.storage.engine import make_engine
from handover.adapters.storage.uow import SqlUnitOfWork
from handover.services import access, ranges

PG_URL = os.environ.get("HANDOVER_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextmanager
def temporary_store(
    kind: str,
    *,
    pg_url: str = PG_URL,
    workdir: Path | None = None,
    prepare: Callable[[str], None] | None = None,
) -> Iterator[str]:
    """The URL of an empty store at the newest schema (then `prepare(url)`), removed after."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="handover-bench-", dir=workdir) as directory:
            url = f"sqlite:///{Path(directory) / 'bench.db'}"
            _migrate(url, prepare)
            yield url
        return
    if kind != "postgresql":
        raise SystemExit(f"unknown store {kind!r}: sqlite or postgresql")
    admin = make_engine(pg_url, isolation_level="AUTOCOMMIT")
    name = f"handover_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(pg_url).set(database=name).render_as_string(hide_password=False)
        _migrate(url, prepare)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _migrate(url: str, prepare: Callable[[str], None] | None) -> None:
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    if prepare is not None:
        prepare(url)


def register_carriers(
    url: str, coverage: datetime | None = None
) -> dict[str, access.IssuedCredentials]:
    """Register the benchmarks' two carriers, cm and cu (China Mobile, China Unicom), and
    grant them their ranges (`generate.RANGES`); their client credentials by carrier id."""
    credentials = {}
    engine = make_engine(url)
    uow_factory = partial(SqlUnitOfWork, engine, b"bench")
    try:
        for carrier_id, name in (("cm", "China Mobile"), ("cu", "China Unicom")):
            _, credentials[carrier_id] = access.register_carrier(
                uow_factory, carrier_id, name, "CN", coverage_start=coverage
            )
            ranges.grant_ranges(uow_factory, carrier_id, generate.RANGES[carrier_id], note="bench")
    finally:
        engine.dispose()
    return credentials
