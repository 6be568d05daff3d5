"""Number ranges: the operator grants carriers E.164 prefixes; activations stay inside.

A number never reported before is activated only by the carrier holding its range
(`domain.ranges`, `domain.reports.decide`); the refusals are kept for the regulator.
Revoking a range stops new activations in it and nothing else: a number already reported
keeps following the lifecycle's holder rules (a released number stays in its holder's
pool, so the holder may activate it again), so a revocation is never refused for the
numbers in service under it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from handover.domain.ranges import (
    NumberRange,
    RangeError,
    RangeRule,
    RangeTable,
    grant,
    parse_prefix,
)
from handover.services.model import RangeRefusal
from handover.services.ports import UnitOfWork, UnitOfWorkFactory


def grant_ranges(
    uow_factory: UnitOfWorkFactory,
    carrier_id: str,
    prefixes: Sequence[str],
    *,
    granted_by: str | None = None,
    note: str | None = None,
    now: datetime | None = None,
) -> list[NumberRange]:
    """Grant `prefixes` to `carrier_id`, all or none; `RangeError` (its `code` says which
    rule) for an unknown carrier, an invalid prefix, or an overlap with any granted range
    or with another prefix of this grant."""
    if not prefixes:
        raise RangeError(RangeRule.INVALID_PREFIX, "give at least one prefix")
    now = now or datetime.now(UTC)
    with uow_factory() as uow:
        if uow.carriers.get(carrier_id) is None:
            raise RangeError(RangeRule.UNKNOWN_CARRIER, f"carrier {carrier_id!r} is not registered")
        table = _table(uow.ranges.all(lock=True))
        granted = [
            NumberRange(prefix, carrier_id, now, granted_by, note)
            for prefix in grant(table, carrier_id, prefixes)
        ]
        uow.ranges.add(granted)
        uow.commit()
    return granted


def revoke_range(uow_factory: UnitOfWorkFactory, prefix: str) -> NumberRange:
    """Revoke the range granted exactly at `prefix` (`RangeError` NOT_GRANTED otherwise).

    New numbers under it can no longer be activated; numbers already reported keep their
    holder (see the module's docstring)."""
    canonical = parse_prefix(prefix)
    with uow_factory() as uow:
        removed = uow.ranges.remove(canonical)
        if removed is None:
            raise RangeError(RangeRule.NOT_GRANTED, f"no range is granted at {canonical}")
        uow.commit()
    return removed


def list_ranges(uow_factory: UnitOfWorkFactory, carrier_id: str | None = None) -> list[NumberRange]:
    """The granted ranges by prefix: one carrier's, or everyone's (`None`)."""
    with uow_factory() as uow:
        return uow.ranges.of_carrier(carrier_id) if carrier_id else uow.ranges.all()


def range_refusals(
    uow_factory: UnitOfWorkFactory, carrier_id: str | None, after_id: int, limit: int
) -> list[RangeRefusal]:
    """Activations refused as `outside_range`, oldest first, after `after_id` (the regulator's)."""
    with uow_factory() as uow:
        return uow.ranges.refusals(carrier_id, after_id, limit)


def carrier_ranges(uow: UnitOfWork, carrier_id: str) -> RangeTable:
    """The prefixes granted to `carrier_id`, for deciding its reports (a building block)."""
    return _table(uow.ranges.of_carrier(carrier_id))


def _table(ranges: Sequence[NumberRange]) -> RangeTable:
    return RangeTable((r.prefix, r.carrier_id) for r in ranges)
