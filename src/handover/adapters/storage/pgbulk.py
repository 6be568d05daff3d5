"""PostgreSQL bulk paths shared by the repositories: `COPY` and one-array-per-column params."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    DateTime,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Table,
)

from handover.adapters.storage import tables as t


def pg_array_type(table: Table, name: str) -> str:
    """The PostgreSQL array type that carries one column's values in bulk statements."""
    kind = table.c[name].type
    if isinstance(kind, t.UtcDateTime | DateTime):
        return "timestamptz[]"
    if isinstance(kind, BigInteger):
        return "bigint[]"
    if isinstance(kind, SmallInteger):
        return "smallint[]"
    if isinstance(kind, Integer):
        return "integer[]"
    if isinstance(kind, String):
        return "text[]"  # not varchar(n)[]: a cast would truncate; the insert checks lengths
    if isinstance(kind, LargeBinary):
        return "bytea[]"
    raise TypeError(f"{table.name}.{name}: no bulk type for {kind!r}")


def pg_copy(
    connection: Connection,
    table: Table,
    rows: list[dict[str, Any]],
    into: str | None = None,
    *,
    binary: bool = False,
) -> None:
    """`COPY` rows (dicts with the same keys) into `table`, or a staging table shaped like it,
    inside the connection's transaction; column types are declared once, not per value."""
    names = list(rows[0])
    options = " (FORMAT BINARY)" if binary else ""
    statement = f"COPY {into or table.name} ({', '.join(names)}) FROM STDIN{options}"
    raw: Any = connection.connection.dbapi_connection
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        copy.set_types([pg_array_type(table, name)[:-2] for name in names])
        for row in rows:
            copy.write_row([row[name] for name in names])
