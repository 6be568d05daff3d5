"""What every command needs first: the settings, and the store migrated to the schema."""

from __future__ import annotations

import typer
from rich.console import Console
from sqlalchemy import Engine

from handover import bootstrap
from handover.config import Settings
from handover.services.ports import UnitOfWorkFactory

err = Console(stderr=True, soft_wrap=True)  # paths in messages stay whole


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print `message` as an error; raise the result to exit with `code`."""
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:
        raise fail(str(exc)) from None


def store(current: Settings, upgrade: bool = True) -> Engine:
    engine = bootstrap.engine_for(current)
    if upgrade:
        bootstrap.upgrade_store(engine)
    return engine


def open_store() -> UnitOfWorkFactory:
    """The store, migrated to the newest schema, as the services take it: they open its
    units of work; commands never do."""
    current = settings()
    return bootstrap.uow_factory(current, store(current))
