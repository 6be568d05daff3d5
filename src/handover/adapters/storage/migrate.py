"""Apply the Alembic migrations to a store (both engines run the same ones)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(connection: object) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    with engine.connect() as connection:
        command.upgrade(alembic_config(connection), revision)
        connection.commit()


def revision(engine: Engine, message: str) -> None:
    """Autogenerate a migration from `tables.py` (a development command)."""
    with engine.connect() as connection:
        command.revision(alembic_config(connection), message=message, autogenerate=True)
