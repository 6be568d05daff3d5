"""The Alembic migrations build exactly the schema of `adapters/storage/tables.py`.

When this fails after a change to `tables.py`, generate a migration (see CONTRIBUTING.md).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import make_url

from handover.adapters.storage import migrate
from handover.adapters.storage.engine import make_engine
from handover.adapters.storage.tables import metadata

PG_URL = os.environ.get("HANDOVER_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
STORES = [s for s in os.environ.get("HANDOVER_TEST_STORES", "sqlite,postgresql").split(",") if s]


def schema_diff(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "render_as_batch": connection.dialect.name == "sqlite",
            },
        )
        return list(compare_metadata(context, metadata))


def schema_snapshot(engine: Engine) -> dict[str, Any]:
    """Tables, columns, indexes and constraints as the database reports them."""
    found = inspect(engine)
    return {
        table: {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"]) for c in found.get_columns(table)
            ],
            "pk": found.get_pk_constraint(table),
            "fks": sorted(str(fk) for fk in found.get_foreign_keys(table)),
            "indexes": sorted(str(ix) for ix in found.get_indexes(table)),
            "unique": sorted(str(uq) for uq in found.get_unique_constraints(table)),
        }
        for table in sorted(found.get_table_names())
    }


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


HEAD = ScriptDirectory.from_config(migrate.alembic_config(None)).get_current_head()


@pytest.fixture(params=STORES)
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A store with no tables at all (not the session's pre-migrated template)."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
        yield engine
        engine.dispose()
        return
    admin = make_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = f"handover_migrations_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(make_url(PG_URL).set(database=name).render_as_string(False))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_there_is_one_head() -> None:
    heads = ScriptDirectory.from_config(migrate.alembic_config(None)).get_heads()
    assert heads == [HEAD]


def test_the_migrated_store_matches_tables_py(engine: Engine) -> None:
    """`engine` is the shared fixture store, migrated to head by `alembic upgrade`."""
    assert current_revision(engine) == HEAD
    assert schema_diff(engine) == []
    assert set(inspect(engine).get_table_names()) == {*metadata.tables, "alembic_version"}


def test_migrating_an_empty_store_builds_tables_py(empty_engine: Engine) -> None:
    assert current_revision(empty_engine) is None
    migrate.upgrade(empty_engine)
    assert current_revision(empty_engine) == HEAD
    assert schema_diff(empty_engine) == []


def test_upgrading_twice_is_a_no_op(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine)
    before = schema_snapshot(empty_engine)
    migrate.upgrade(empty_engine)
    assert current_revision(empty_engine) == HEAD
    assert schema_snapshot(empty_engine) == before
    assert schema_diff(empty_engine) == []


def test_upgrading_keeps_the_data(engine: Engine, carriers: tuple[str, str]) -> None:
    migrate.upgrade(engine)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM carriers")).scalar_one() == 2


def test_downgrade_to_base_and_back(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine)
    with empty_engine.connect() as connection:
        command.downgrade(migrate.alembic_config(connection), "base")
        connection.commit()
    assert set(inspect(empty_engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(empty_engine)
    assert schema_diff(empty_engine) == []
