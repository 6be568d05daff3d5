"""Number ranges on both stores: granting, revoking, and the range rule on batches and files."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from carrier_events import activation
from handover.adapters.staging import SqliteReportSorter
from handover.domain.freeze_policy import FreezePolicy
from handover.domain.ranges import RangeError, RangeRule
from handover.services import ranges, reporting
from handover.services.ports import UnitOfWorkFactory

NOW = datetime(2025, 6, 1, tzinfo=UTC)
POLICY = FreezePolicy()
HEADER = "event_id,number,event,occurred_at,subscriber,to_carrier\n"


def batch(uow_factory: UnitOfWorkFactory, carrier: str, *items: dict[str, str | None]) -> list:
    result = reporting.report_events(uow_factory, carrier, items, now=NOW, policy=POLICY)
    return [(o.status.value, o.reason.value if o.reason else None) for o in result.outcomes]


def test_grants_are_listed_and_never_overlap(uow_factory: UnitOfWorkFactory, carriers) -> None:
    listed = {(r.prefix, r.carrier_id) for r in ranges.list_ranges(uow_factory)}
    assert ("+86138", "cm") in listed and ("+86130", "cu") in listed
    with pytest.raises(RangeError) as caught:
        ranges.grant_ranges(uow_factory, "cu", ["+4420", "+861381"], now=NOW)
    assert caught.value.code is RangeRule.OVERLAP
    assert "+4420" not in {r.prefix for r in ranges.list_ranges(uow_factory)}, "all or none"
    with pytest.raises(RangeError) as caught:
        ranges.grant_ranges(uow_factory, "nobody", ["+4420"], now=NOW)
    assert caught.value.code is RangeRule.UNKNOWN_CARRIER
    [bt] = ranges.grant_ranges(uow_factory, "cu", ["+44 20"], granted_by="op", note="why", now=NOW)
    assert (bt.prefix, bt.carrier_id, bt.granted_by, bt.note) == ("+4420", "cu", "op", "why")
    assert ranges.list_ranges(uow_factory, "cu")[0].prefix == "+4420"  # by prefix


def test_in_range_accepted_out_of_range_refused_per_item(
    uow_factory: UnitOfWorkFactory, carriers
) -> None:
    outcomes = batch(
        uow_factory,
        "cm",
        activation("a1", "+8613812345678"),  # cm's
        activation("a2", "+8613012345678"),  # cu's
        activation("a3", "+16502530000"),  # a US number: nobody's range
    )
    assert outcomes == [
        ("accepted", None),
        ("rejected", "outside_range"),
        ("rejected", "outside_range"),
    ]
    assert batch(uow_factory, "cu", activation("u1", "+8613012345678")) == [("accepted", None)]
    refused = ranges.range_refusals(uow_factory, None, 0, 100)
    # kept in the order the reports were applied (by number), `line` the item's index
    assert [(r.carrier_id, r.e164, r.event, r.event_id, r.line, r.ingest_id) for r in refused] == [
        ("cm", "+16502530000", "activated", "a3", 2, None),
        ("cm", "+8613012345678", "activated", "a2", 1, None),
    ]
    assert (refused[0].refused_at, refused[0].occurred_at) == (
        NOW,
        datetime(2024, 1, 1, tzinfo=UTC),
    )
    after = ranges.range_refusals(uow_factory, "cm", refused[0].id or 0, 100)
    assert [r.event_id for r in after] == ["a2"]
    assert ranges.range_refusals(uow_factory, "cu", 0, 100) == []


def test_a_file_is_judged_by_the_ranges_read_at_its_start(
    uow_factory: UnitOfWorkFactory, carriers
) -> None:
    body = (
        HEADER
        + "f1,+8613812345678,activated,2024-01-01,s1,\n"
        + "f2,+8618612345678,activated,2024-01-01,s2,\n"
    )
    ingest = reporting.ingest_file(
        uow_factory, SqliteReportSorter, "cm", [line.encode() for line in body.splitlines(True)],
        policy=POLICY, now=NOW,
    )  # fmt: skip
    assert ingest.summary() == {"accepted": 1, "duplicates": 0, "rejected": {"outside_range": 1}}
    [row] = reporting.rejected_rows(uow_factory, ingest.id, 0, 10)
    assert (row.line, row.event_id, row.reason) == (3, "f2", "outside_range")
    [refusal] = ranges.range_refusals(uow_factory, "cm", 0, 10)
    assert (refusal.ingest_id, refusal.line, refusal.e164) == (ingest.id, 3, "+8618612345678")


def test_revoking_stops_new_activations_only(uow_factory: UnitOfWorkFactory, carriers) -> None:
    number, fresh = "+8613812345678", "+8613812340000"
    assert batch(uow_factory, "cm", activation("a1", number)) == [("accepted", None)]
    revoked = ranges.revoke_range(uow_factory, "+86138")
    assert (revoked.prefix, revoked.carrier_id) == ("+86138", "cm")
    later = {"event_id": "s1", "number": number, "event": "suspended", "occurred_at": "2024-02-01"}
    assert batch(uow_factory, "cm", later) == [("accepted", None)]
    assert batch(uow_factory, "cm", activation("a2", fresh)) == [("rejected", "outside_range")]
    with pytest.raises(RangeError) as caught:
        ranges.revoke_range(uow_factory, "+86138")
    assert caught.value.code is RangeRule.NOT_GRANTED
    ranges.grant_ranges(uow_factory, "cu", ["+86138"], now=NOW)  # reallocated
    assert batch(uow_factory, "cu", activation("u2", fresh)) == [("accepted", None)]
    suspend_by_cu = {**later, "event_id": "s9", "occurred_at": "2024-03-01"}
    assert batch(uow_factory, "cu", suspend_by_cu) == [("rejected", "not_number_holder")]
