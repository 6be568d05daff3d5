"""Bindings: a platform's account tied to a number (docs/bindings.md).

Platforms register them so that a renewal knows whom to ask, and a previous owner sees
what is still bound. Handover keeps no account data beyond the platform's opaque ref.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from handover.domain.dates import parse_occurred_at
from handover.domain.numbers import parse_number
from handover.domain.platforms import Tier
from handover.domain.rejections import Rejected

MAX_ACCOUNT_REF = 128
#: Bindings one request may register or remove.
MAX_BATCH = 10_000


class InvalidBinding(ValueError):
    """One item of a batch cannot be used; `index` is its place in the batch."""

    def __init__(self, index: int, detail: str) -> None:
        super().__init__(f"item {index}: {detail}")
        self.index = index
        self.detail = detail


@dataclass(frozen=True, slots=True)
class BindingKey:
    """Which binding: the platform's account ref on a number (one account, one number)."""

    e164: str
    account_ref: str


@dataclass(frozen=True, slots=True)
class Binding:
    platform_id: str
    e164: str
    account_ref: str
    bound_since: datetime
    tier: Tier

    @property
    def key(self) -> BindingKey:
        return BindingKey(self.e164, self.account_ref)

    def bound_before(self, tenure_start: datetime) -> bool:
        """Left by an earlier holder: bound before the current subscriber's tenure began.
        Nothing bound at or after the tenure's start is ever touched by a renewal."""
        return self.bound_since < tenure_start


def platforms_listing_before(bindings: Iterable[Binding], tenure_start: datetime) -> list[str]:
    """The platforms that still list a number from before the tenure that began at
    `tenure_start` (the activation notice's list, and a renewal's first choice)."""
    return sorted({b.platform_id for b in bindings if b.bound_before(tenure_start)})


def parse_key(item: Any, index: int) -> BindingKey:
    if not isinstance(item, Mapping):
        raise InvalidBinding(index, "must be an object")
    try:
        e164 = parse_number(str(item.get("number") or "")).e164
    except Rejected as exc:
        raise InvalidBinding(index, exc.detail) from None
    ref = item.get("account_ref")
    if (
        not isinstance(ref, str)
        or not ref.strip()
        or len(ref) > MAX_ACCOUNT_REF
        or not ref.isprintable()
    ):
        raise InvalidBinding(
            index, f"account_ref: 1-{MAX_ACCOUNT_REF} printable characters, opaque to Handover"
        )
    return BindingKey(e164, ref)


def parse_binding(item: Any, index: int, platform_id: str, now: datetime) -> Binding:
    """One item of `PUT /v1/platform/bindings`, or `InvalidBinding` saying what is wrong."""
    key = parse_key(item, index)
    unknown = set(item) - {"number", "account_ref", "bound_since", "tier"}
    if unknown:
        raise InvalidBinding(index, f"unknown fields: {', '.join(sorted(unknown))}")
    since = item.get("bound_since")
    if not isinstance(since, str):
        raise InvalidBinding(index, "bound_since: an ISO 8601 date or date-time")
    try:
        bound_since = parse_occurred_at(since, now)
    except Rejected as exc:
        raise InvalidBinding(index, f"bound_since: {exc.detail}") from None
    try:
        tier = Tier(item.get("tier"))
    except ValueError:
        raise InvalidBinding(index, "tier: high, medium or low") from None
    return Binding(platform_id, key.e164, key.account_ref, bound_since, tier)
