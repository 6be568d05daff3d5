"""SQL storage for platforms (the tenants that receive signals and answer cases)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Connection,
    select,
)

from handover.adapters.storage import tables as t
from handover.domain.platforms import Category, Platform, Tier


class SqlPlatformRepository:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def add(self, platform: Platform) -> None:
        self.connection.execute(
            t.platforms.insert().values(
                id=platform.id,
                name=platform.name,
                category=platform.category.value,
                tier=platform.tier.value,
                created_at=platform.created_at,
            )
        )

    def get(self, platform_id: str) -> Platform | None:
        row = self.connection.execute(
            select(t.platforms).where(t.platforms.c.id == platform_id)
        ).first()
        return _platform(row._mapping) if row else None

    def all(self) -> list[Platform]:
        rows = self.connection.execute(select(t.platforms).order_by(t.platforms.c.id))
        return [_platform(row._mapping) for row in rows]


def _platform(row: Any) -> Platform:
    return Platform(
        row["id"], row["name"], Category(row["category"]), Tier(row["tier"]), row["created_at"]
    )
