"""Printing Rich tables from commands."""

from __future__ import annotations

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table


def print_table(console: Console, table: Table) -> None:
    """Rich fits tables to the terminal; piped or redirected output keeps every cell whole."""
    if not console.is_terminal:
        wide = console.options.update(max_width=100_000)
        table.width = Measurement.get(console, wide, table).maximum
    console.print(table, crop=False)
