"""Platforms: the internet services that hold accounts bound to numbers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Category(StrEnum):
    PAYMENT = "payment"
    BANKING = "banking"
    LENDING = "lending"
    CLOUD_STORAGE = "cloud_storage"
    SOCIAL = "social"
    E_COMMERCE = "e_commerce"
    GAMING = "gaming"
    OTHER = "other"


class Tier(StrEnum):
    """How much a stranger could do with an account left on a recycled number."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


_PLATFORM_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Platform:
    id: str
    name: str
    category: Category
    tier: Tier
    created_at: datetime


def new_platform(platform_id: str, name: str, category: str, tier: str, now: datetime) -> Platform:
    """A platform record, or ValueError saying which field is wrong."""
    if not _PLATFORM_ID.match(platform_id):
        raise ValueError("platform id: 1-64 of a-z, 0-9, '-', '_', starting with a letter or digit")
    if not name.strip() or len(name) > 200:
        raise ValueError("platform name: 1-200 characters")
    try:
        kind = Category(category)
    except ValueError:
        raise ValueError(f"category: one of {', '.join(c.value for c in Category)}") from None
    try:
        value = Tier(tier)
    except ValueError:
        raise ValueError(f"tier: one of {', '.join(t.value for t in Tier)}") from None
    return Platform(platform_id, name.strip(), kind, value, now)
