"""SQL storage for the bindings platforms register."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, or_, select, tuple_, update

from handover.adapters.storage import tables as t
from handover.domain.bindings import Binding, BindingKey
from handover.domain.platforms import Tier

#: Keys per `IN` query (SQLite allows 32,766 parameters; two per key).
_CHUNK = 5_000


class SqlBindingRepository:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def get(self, platform_id: str, keys: Collection[BindingKey]) -> dict[BindingKey, Binding]:
        c = t.bindings.c
        found: dict[BindingKey, Binding] = {}
        wanted = [(key.e164, key.account_ref) for key in keys]
        for start in range(0, len(wanted), _CHUNK):
            rows = self.connection.execute(
                select(t.bindings).where(
                    c.platform_id == platform_id,
                    tuple_(c.e164, c.account_ref).in_(wanted[start : start + _CHUNK]),
                )
            )
            for row in rows:
                binding = _binding(row._mapping)
                found[binding.key] = binding
        return found

    def add(self, bindings: Sequence[Binding], registered_at: datetime) -> None:
        if bindings:
            self.connection.execute(
                insert(t.bindings),
                [_values(binding) | {"registered_at": registered_at} for binding in bindings],
            )

    def update(self, bindings: Sequence[Binding]) -> None:
        c = t.bindings.c
        for binding in bindings:
            self.connection.execute(
                update(t.bindings)
                .where(
                    c.platform_id == binding.platform_id,
                    c.e164 == binding.e164,
                    c.account_ref == binding.account_ref,
                )
                .values(bound_since=binding.bound_since, tier=binding.tier.value)
            )

    def remove(self, platform_id: str, keys: Collection[BindingKey]) -> int:
        c = t.bindings.c
        wanted = [(key.e164, key.account_ref) for key in keys]
        removed = 0
        for start in range(0, len(wanted), _CHUNK):
            result = self.connection.execute(
                delete(t.bindings).where(
                    c.platform_id == platform_id,
                    tuple_(c.e164, c.account_ref).in_(wanted[start : start + _CHUNK]),
                )
            )
            removed += result.rowcount
        return removed

    def for_platform(
        self, platform_id: str, e164: str | None, after: BindingKey | None, limit: int
    ) -> list[Binding]:
        c = t.bindings.c
        query = select(t.bindings).where(c.platform_id == platform_id)
        if e164 is not None:
            query = query.where(c.e164 == e164)
        if after is not None:
            query = query.where(
                or_(
                    c.e164 > after.e164,
                    and_(c.e164 == after.e164, c.account_ref > after.account_ref),
                )
            )
        query = query.order_by(c.e164, c.account_ref).limit(limit)
        return [_binding(row._mapping) for row in self.connection.execute(query)]

    def for_number(self, e164: str) -> list[Binding]:
        c = t.bindings.c
        rows = self.connection.execute(
            select(t.bindings).where(c.e164 == e164).order_by(c.platform_id, c.account_ref)
        )
        return [_binding(row._mapping) for row in rows]


def _values(binding: Binding) -> dict[str, Any]:
    return {
        "platform_id": binding.platform_id,
        "e164": binding.e164,
        "account_ref": binding.account_ref,
        "bound_since": binding.bound_since,
        "tier": binding.tier.value,
    }


def _binding(row: Any) -> Binding:
    return Binding(
        row["platform_id"], row["e164"], row["account_ref"], row["bound_since"], Tier(row["tier"])
    )
