"""The number ranges the test carriers hold (`handover carrier grant`), one place for all.

Every fixture that registers a carrier grants it these prefixes, so reports are judged by
the range rule as in production. `cm` and `cu` hold disjoint blocks of the Chinese mobile
plan (China Mobile's 134-139, 15x, 18x; China Unicom's 130-132, 155, 156, 166, 185, 186);
a US carrier holds the whole North American plan.
"""

from __future__ import annotations

from handover.services import ranges
from handover.services.ports import UnitOfWorkFactory

CM = ("+86134", "+86135", "+86136", "+86137", "+86138", "+86139", "+86150", "+86151",
      "+86152", "+86157", "+86158", "+86159", "+86182", "+86183", "+86184", "+86187",
      "+86188", "+86198")  # fmt: skip
CU = ("+86130", "+86131", "+86132", "+86155", "+86156", "+86166", "+86185", "+86186")
TEST_RANGES: dict[str, tuple[str, ...]] = {"cm": CM, "cmcc": CM, "cu": CU, "att": ("+1",)}


def grant(uow_factory: UnitOfWorkFactory, carrier_id: str) -> None:
    """Grant `carrier_id` its test ranges (none for a carrier not in `TEST_RANGES`)."""
    prefixes = TEST_RANGES.get(carrier_id)
    if prefixes:
        ranges.grant_ranges(uow_factory, carrier_id, prefixes, note="test fixture")
