"""The binding registry: platforms say which accounts are bound to which numbers.

A batch is all or nothing: one bad item refuses the batch, which names every faulty item
with its fault, and nothing is written. Registering the same batch again changes nothing
(idempotent).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from handover.domain.bindings import (
    MAX_BATCH,
    Binding,
    BindingKey,
    InvalidBinding,
    parse_binding,
    parse_key,
)
from handover.services.ports import UnitOfWorkFactory

MAX_PAGE = 1_000


class InvalidBindings(ValueError):
    def __init__(self, faults: list[InvalidBinding]) -> None:
        super().__init__(f"{len(faults)} item(s) cannot be used")
        self.faults = faults


class BatchTooLarge(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Registered:
    created: int
    updated: int
    unchanged: int


def _batch(items: Any) -> Sequence[Any]:
    if not isinstance(items, list):
        raise InvalidBindings([InvalidBinding(0, "bindings must be a list")])
    if len(items) > MAX_BATCH:
        raise BatchTooLarge(f"a batch holds at most {MAX_BATCH} bindings, got {len(items)}")
    return items


def _parse_batch(items: Any, platform_id: str, now: datetime) -> list[Binding]:
    """Every item as a binding, or `InvalidBindings` naming every faulty item (one fault
    each, in batch order): a bad field, or a number and account_ref an earlier item has."""
    parsed: list[Binding] = []
    faults: list[InvalidBinding] = []
    seen: set[BindingKey] = set()
    for index, item in enumerate(_batch(items)):
        try:
            binding = parse_binding(item, index, platform_id, now)
        except InvalidBinding as fault:
            faults.append(fault)
            with suppress(InvalidBinding):  # its key still makes a later repeat a fault
                seen.add(parse_key(item, index))
            continue
        if binding.key in seen:
            faults.append(InvalidBinding(index, "this number and account_ref came earlier"))
        seen.add(binding.key)
        parsed.append(binding)
    if faults:
        raise InvalidBindings(faults)
    return parsed


def register_bindings(
    uow_factory: UnitOfWorkFactory, platform_id: str, items: Any, now: datetime | None = None
) -> Registered:
    moment = now or datetime.now(UTC)
    parsed = _parse_batch(items, platform_id, moment)
    with uow_factory() as uow:
        known = uow.bindings.get(platform_id, [binding.key for binding in parsed])
        new = [binding for binding in parsed if binding.key not in known]
        changed = [b for b in parsed if b.key in known and known[b.key] != b]
        uow.bindings.add(new, moment)
        uow.bindings.update(changed)
        uow.commit()
    return Registered(len(new), len(changed), len(parsed) - len(new) - len(changed))


def remove_bindings(uow_factory: UnitOfWorkFactory, platform_id: str, items: Any) -> int:
    """Remove the platform's bindings named by number and account_ref; how many were there."""
    keys: list[BindingKey] = []
    faults: list[InvalidBinding] = []
    for index, item in enumerate(_batch(items)):
        try:
            keys.append(parse_key(item, index))
        except InvalidBinding as fault:
            faults.append(fault)
    if faults:
        raise InvalidBindings(faults)
    with uow_factory() as uow:
        removed = uow.bindings.remove(platform_id, set(keys))
        uow.commit()
    return removed


def list_bindings(
    uow_factory: UnitOfWorkFactory,
    platform_id: str,
    number: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Binding], str | None]:
    """One page of the platform's own bindings and the cursor of the next (None at the end)."""
    try:
        e164 = parse_key({"number": number, "account_ref": "-"}, 0).e164 if number else None
    except InvalidBinding as fault:
        raise InvalidBindings([InvalidBinding(0, f"number: {fault.detail}")]) from None
    after = _decode(cursor) if cursor else None
    limit = max(1, min(limit, MAX_PAGE))
    with uow_factory() as uow:
        page = uow.bindings.for_platform(platform_id, e164, after, limit + 1)
    more = len(page) > limit
    page = page[:limit]
    return page, _encode(page[-1].key) if more else None


def _encode(key: BindingKey) -> str:
    return base64.urlsafe_b64encode(f"{key.e164}\n{key.account_ref}".encode()).decode()


def _decode(cursor: str) -> BindingKey:
    try:
        e164, ref = base64.urlsafe_b64decode(cursor.encode()).decode().split("\n", 1)
    except (ValueError, UnicodeDecodeError):
        raise InvalidBindings([InvalidBinding(0, "cursor: not one this API gave")]) from None
    return BindingKey(e164, ref)
