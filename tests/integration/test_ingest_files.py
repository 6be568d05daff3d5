"""Ingest of carrier files (and API batches) on both stores: every bad row, exact counts.

Every test asserts the exact summary and the stored rejected rows with their line numbers,
and that rejected rows changed nothing in the ledger.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, select

from handover.adapters.staging import SqliteReportSorter
from handover.adapters.storage import tables as t
from handover.domain.freeze_policy import FreezePolicy
from handover.domain.lifecycle import EventKind, State
from handover.domain.rejections import Reason
from handover.domain.reports import Status
from handover.services import reporting
from handover.services.model import Ingest, IngestStatus
from handover.services.ports import UnitOfWorkFactory

POLICY = FreezePolicy()

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
HEADER = "event_id,number,event,occurred_at,subscriber,to_carrier\n"
#: Numbers in cm's ranges (`granted.py`), in E.164 order N3 < N1 < N2.
N1, N2, N3 = "+8613812345678", "+8613912345678", "+8613512345678"
#: A number in cu's range.
CU_NUMBER = "+8613012345678"


def ingest(
    uow_factory: UnitOfWorkFactory,
    body: str | bytes,
    carrier: str = "cm",
    *,
    header: bool = True,
    region: str | None = None,
) -> Ingest:
    data = body.encode() if isinstance(body, str) else body
    if header:
        data = HEADER.encode() + data
    return reporting.ingest_file(
        uow_factory,
        SqliteReportSorter,
        carrier,
        io.BytesIO(data),  # read as the CLI reads a file: lines end at b"\n"
        filename="events.csv",
        region=region,
        now=NOW,
        policy=POLICY,
    )


def summary(accepted: int = 0, duplicates: int = 0, **rejected: int) -> dict[str, object]:
    return {
        "accepted": accepted,
        "duplicates": duplicates,
        "rejected": dict(sorted(rejected.items())),
    }


def rejections(uow_factory: UnitOfWorkFactory, result: Ingest) -> list[tuple[int, str | None, str]]:
    with uow_factory() as uow:
        rows = uow.ingests.rejections(result.id, 0, 1000)
    return [(r.line, r.event_id, r.reason) for r in rows]


def stored(uow_factory: UnitOfWorkFactory, result: Ingest) -> Ingest:
    """The ingest as kept in the store; it must agree with what was returned."""
    with uow_factory() as uow:
        kept = uow.ingests.get(result.id)
    assert kept is not None
    assert kept.summary() == result.summary()
    assert (kept.status, kept.rows) == (IngestStatus.COMPLETED, result.rows)
    assert kept.finished_at is not None
    return kept


def ledger(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Everything the lifecycle ledger holds (numbers, tenures, events), for comparisons."""
    with engine.connect() as connection:
        return {
            "numbers": [
                tuple(row)
                for row in connection.execute(select(t.numbers).order_by(t.numbers.c.e164))
            ],
            "tenures": [
                tuple(row)[1:]
                for row in connection.execute(
                    select(t.tenures).order_by(t.tenures.c.e164, t.tenures.c.start_at)
                )
            ],
            "events": [
                (
                    row.carrier_id,
                    row.event_id,
                    row.e164,
                    row.kind,
                    row.occurred_at,
                    row.subscriber,
                    row.to_carrier,
                )
                for row in connection.execute(
                    select(t.number_events).order_by(t.number_events.c.seq)
                )
            ],
        }


def state_of(uow_factory: UnitOfWorkFactory, e164: str) -> tuple[State, str, list[str]]:
    with uow_factory() as uow:
        history = uow.numbers.history(e164)
    assert history is not None
    return history.state, history.carrier_id, [e.event_id for e in history.events]


GOOD = f"g1,{N1},activated,2024-01-01,s1,\n"


# -- row faults, each with its reason -----------------------------------------------------


def test_bad_numbers(uow_factory, carriers, engine) -> None:
    result = ingest(
        uow_factory,
        GOOD
        + "b1,+86 abc,activated,2024-01-01,s1,\n"
        + "b2,+86123,activated,2024-01-01,s1,\n"
        + "b3,13812345678,activated,2024-01-01,s1,\n"  # national, and not a US number
        + "b4,+8610000000000,activated,2024-01-01,s1,\n"
        + "b5,,activated,2024-01-01,s1,\n",
        region="US",
    )
    assert result.summary() == summary(1, invalid_number=5)
    assert result.rows == 6
    assert rejections(uow_factory, result) == [
        (3, "b1", "invalid_number"),
        (4, "b2", "invalid_number"),
        (5, "b3", "invalid_number"),
        (6, "b4", "invalid_number"),
        (7, "b5", "invalid_number"),
    ]
    with uow_factory() as uow:
        details = [r.detail for r in uow.ingests.rejections(result.id, 0, 10)]
        raw = uow.ingests.rejections(result.id, 0, 1)[0].raw
    assert "not a phone number" in details[0] and "too short" in details[1]
    assert "not a valid number for its country" in details[2]
    assert raw == "b1,+86 abc,activated,2024-01-01,s1,"
    stored(uow_factory, result)
    assert [row[0] for row in ledger(engine)["numbers"]] == [N1]


def test_national_numbers_are_read_in_the_given_region(uow_factory, carriers) -> None:
    result = ingest(
        uow_factory,
        "n1,138 1234 5678,activated,2024-01-01,s1,\n"
        "n2,+86 139 1234 5678,activated,2024-01-01,s1,\n",
        region="cn",
    )
    assert result.summary() == summary(2)
    assert state_of(uow_factory, N1) == (State.ACTIVE, "cm", ["n1"])
    assert state_of(uow_factory, N2) == (State.ACTIVE, "cm", ["n2"])


def test_national_numbers_are_read_in_the_carriers_country_by_default(
    uow_factory, carriers
) -> None:
    result = ingest(uow_factory, "n1,138 1234 5678,activated,2024-01-01,s1,\n")
    assert result.summary() == summary(1)
    assert state_of(uow_factory, N1) == (State.ACTIVE, "cm", ["n1"])
    batch = reporting.report_events(
        uow_factory,
        "cu",
        [item("n2", "130 1234 5678", "activated", "2024-01-01", "s2")],
        now=NOW,
        policy=POLICY,
    )
    assert batch.accepted == 1
    assert state_of(uow_factory, "+8613012345678") == (State.ACTIVE, "cu", ["n2"])


def test_bad_dates(uow_factory, carriers, engine) -> None:
    result = ingest(
        uow_factory,
        GOOD
        + f"d1,{N2},activated,2024-02-30,s1,\n"
        + f"d2,{N2},activated,yesterday,s1,\n"
        + f"d3,{N2},activated,,s1,\n"
        + f"d4,{N2},activated,1979-12-31,s1,\n"
        + f"d5,{N2},activated,0001-01-01T00:00:00+01:00,s1,\n"
        + f"d6,{N2},activated,2025-06-02,s1,\n"
        + f"d7,{N2},activated,2025-06-01T12:05:01Z,s1,\n"
        + f"d8,{N3},activated,2025-06-01T20:04:00+08:00,s1,\n",  # within the clock skew
    )
    assert result.summary() == summary(2, invalid_date=5, future_date=2)
    assert rejections(uow_factory, result) == [
        (3, "d1", "invalid_date"),
        (4, "d2", "invalid_date"),
        (5, "d3", "invalid_date"),
        (6, "d4", "invalid_date"),
        (7, "d5", "invalid_date"),
        (8, "d6", "future_date"),
        (9, "d7", "future_date"),
    ]
    assert [row[0] for row in ledger(engine)["numbers"]] == [N3, N1]


def test_dates_are_stored_in_utc(uow_factory, carriers) -> None:
    ingest(uow_factory, f"u1,{N1},activated,2024-01-01T08:00:00+08:00,s1,\n")
    with uow_factory() as uow:
        history = uow.numbers.history(N1)
    assert history is not None
    assert history.events[0].occurred_at == datetime(2024, 1, 1, tzinfo=UTC)
    assert history.tenures[0].start == datetime(2024, 1, 1, tzinfo=UTC)


def test_unknown_events_and_missing_fields(uow_factory, carriers, engine) -> None:
    result = ingest(
        uow_factory,
        GOOD
        + f"x1,{N1},recycled,2024-02-01,,\n"
        + f"x2,{N1},,2024-02-01,,\n"
        + f",{N1},suspended,2024-02-01,,\n"
        + f"x3,{N2},activated,2024-02-01,,\n"
        + f"x4,{N1},restored,2024-02-01,,\n"
        + f"x5,{N1},ported,2024-02-01,,\n"
        + f"x6,{N1},ported,2024-02-01,,nobody\n"
        + f"x7,{N1},suspended,2024-02-01,{'s' * 129},\n",
    )
    assert result.summary() == summary(
        1,
        unknown_event=2,
        missing_event_id=1,
        missing_subscriber=2,
        missing_to_carrier=1,
        unknown_carrier=1,
        malformed_row=1,
    )
    assert rejections(uow_factory, result) == [
        (3, "x1", "unknown_event"),
        (4, "x2", "unknown_event"),
        (5, None, "missing_event_id"),
        (6, "x3", "missing_subscriber"),
        (7, "x4", "missing_subscriber"),
        (8, "x5", "missing_to_carrier"),
        (9, "x6", "unknown_carrier"),
        (10, "x7", "malformed_row"),
    ]
    assert state_of(uow_factory, N1) == (State.ACTIVE, "cm", ["g1"])
    assert len(ledger(engine)["events"]) == 1


def test_an_overlong_event_id_is_rejected(uow_factory, carriers, engine) -> None:
    long_id = "x" * 129
    result = ingest(uow_factory, GOOD + f"{long_id},{N1},suspended,2024-02-01,,\n")
    assert result.summary() == summary(1, missing_event_id=1)
    assert [(line, reason) for line, _, reason in rejections(uow_factory, result)] == [
        (3, "missing_event_id")
    ]
    assert len(ledger(engine)["events"]) == 1


def test_lifecycle_faults(uow_factory, carriers, engine) -> None:
    result = ingest(
        uow_factory,
        f"l1,{N1},activated,2024-01-01,s1,\n"
        f"l2,{N1},resumed,2024-01-02,,\n"  # illegal: active
        f"l3,{N1},ported,2024-01-03,,cm\n"  # illegal: to its own carrier
        f"l4,{N1},cancelled,2024-01-04,,\n"
        f"l5,{N1},released,2024-01-05,,\n"  # freeze not over
        f"l6,{N1},restored,2024-01-06,s2,\n"  # another subscriber
        f"l7,{N1},released,2024-04-03,,\n"  # 90 days after 2024-01-04
        f"l8,{N2},suspended,2024-01-01,,\n",  # never activated
    )
    assert result.summary() == summary(
        3, illegal_transition=3, freeze_not_over=1, subscriber_mismatch=1
    )
    assert rejections(uow_factory, result) == [
        (3, "l2", "illegal_transition"),
        (4, "l3", "illegal_transition"),
        (6, "l5", "freeze_not_over"),
        (7, "l6", "subscriber_mismatch"),
        (9, "l8", "illegal_transition"),
    ]
    assert state_of(uow_factory, N1) == (State.RELEASED, "cm", ["l1", "l4", "l7"])
    assert [row[0] for row in ledger(engine)["numbers"]] == [N1]


# -- who may report: the holding carrier --------------------------------------------------


def test_wrong_carrier_and_ports(uow_factory, carriers, engine) -> None:
    ingest(uow_factory, f"a1,{N1},activated,2024-01-01,s1,\n", "cm")
    before = ledger(engine)
    wrong = ingest(
        uow_factory,
        f"c1,{N1},suspended,2024-02-01,,\nc2,{N1},ported,2024-02-01,,cu\n",
        "cu",
    )
    assert wrong.summary() == summary(not_number_holder=2)
    assert rejections(uow_factory, wrong) == [
        (2, "c1", "not_number_holder"),
        (3, "c2", "not_number_holder"),
    ]
    assert ledger(engine) == before

    port = ingest(uow_factory, f"a2,{N1},ported,2024-03-01,,cu\n", "cm")
    assert port.summary() == summary(1)
    old = ingest(uow_factory, f"a3,{N1},suspended,2024-04-01,,\n", "cm")
    assert old.summary() == summary(not_number_holder=1)
    new = ingest(uow_factory, f"c3,{N1},suspended,2024-04-01,,\n", "cu")
    assert new.summary() == summary(1)
    with uow_factory() as uow:
        history = uow.numbers.history(N1)
    assert history is not None
    assert (history.state, history.carrier_id) == (State.SUSPENDED, "cu")
    assert [(e.carrier_id, e.event_id) for e in history.events] == [
        ("cm", "a1"),
        ("cm", "a2"),
        ("cu", "c3"),
    ]
    assert [(x.subscriber, x.carrier, x.end) for x in history.tenures] == [("s1", "cm", None)]


def test_unknown_carrier_stores_nothing(uow_factory, carriers, engine) -> None:
    with pytest.raises(reporting.UnknownCarrier):
        ingest(uow_factory, GOOD, "nobody")
    with pytest.raises(reporting.UnknownCarrier):  # before the file is read
        ingest(uow_factory, "no header here\n", "nobody", header=False)
    with uow_factory() as uow:
        assert uow.ingests.recent(None, 10) == []
    assert ledger(engine) == {"numbers": [], "tenures": [], "events": []}


# -- order ---------------------------------------------------------------------------------


def test_out_of_order_across_two_files(uow_factory, carriers, engine) -> None:
    first = ingest(
        uow_factory, f"o1,{N1},activated,2024-01-01,s1,\no2,{N1},suspended,2024-03-01,,\n"
    )
    assert first.summary() == summary(2)
    before = ledger(engine)
    second = ingest(
        uow_factory,
        f"o3,{N1},resumed,2024-02-01,,\n"  # before the number's last event
        f"o4,{N1},resumed,2024-02-29T23:59:59Z,,\n"
        f"o5,{N1},resumed,2024-03-01T07:59:59+08:00,,\n",  # 2024-02-29 in UTC
    )
    assert second.summary() == summary(out_of_order=3)
    assert rejections(uow_factory, second) == [
        (2, "o3", "out_of_order"),
        (3, "o4", "out_of_order"),
        (4, "o5", "out_of_order"),
    ]
    assert ledger(engine) == before
    third = ingest(uow_factory, f"o6,{N1},resumed,2024-03-01,,\n")  # same moment is in order
    assert third.summary() == summary(1)


def test_rows_of_one_number_are_applied_in_time_order(uow_factory, carriers) -> None:
    result = ingest(
        uow_factory,
        f"r7,{N1},activated,2024-07-01,s2,\n"
        f"r6,{N1},released,2024-06-01,,\n"
        f"r5,{N1},cancelled,2024-03-01,,\n"
        f"b2,{N2},suspended,2024-02-01,,\n"
        f"r4,{N1},resumed,2024-02-01T10:00:00+08:00,,\n"  # 02:00 UTC, before r3
        f"r3,{N1},suspended,2024-02-01T01:00:00Z,,\n"
        f"r2,{N1},ported,2024-01-15,,cu\n"
        f"b1,{N2},activated,2024-01-01,s9,\n"
        f"r1,{N1},activated,2024-01-01,s1,\n",
    )
    # r2 ports the number to cu, so cm's later rows are refused; without the port, all pass
    assert result.summary() == summary(4, not_number_holder=5)
    assert [line for line, _, _ in rejections(uow_factory, result)] == [2, 3, 4, 6, 7]

    result = ingest(
        uow_factory,
        f"p7,{N3},activated,2024-07-01,s2,\n"
        f"p6,{N3},released,2024-06-01,,\n"
        f"p5,{N3},cancelled,2024-03-01,,\n"
        f"p4,{N3},resumed,2024-02-01T10:00:00+08:00,,\n"
        f"p3,{N3},suspended,2024-02-01T01:00:00Z,,\n"
        f"p1,{N3},activated,2024-01-01,s1,\n",
    )
    assert result.summary() == summary(6)
    assert state_of(uow_factory, N3) == (
        State.ACTIVE,
        "cm",
        ["p1", "p3", "p4", "p5", "p6", "p7"],
    )
    with uow_factory() as uow:
        history = uow.numbers.history(N3)
    assert history is not None
    assert [(x.subscriber, x.end) for x in history.tenures] == [
        ("s1", datetime(2024, 3, 1, tzinfo=UTC)),
        ("s2", None),
    ]
    assert state_of(uow_factory, N2) == (State.SUSPENDED, "cm", ["b1", "b2"])


def test_ties_in_time_are_applied_in_line_order(uow_factory, carriers) -> None:
    result = ingest(
        uow_factory,
        f"t1,{N1},activated,2024-01-01,s1,\n"
        f"t2,{N1},suspended,2024-02-01,,\n"
        f"t3,{N1},resumed,2024-02-01,,\n"
        f"t4,{N1},resumed,2024-02-01,,\n",  # illegal after t3
    )
    assert result.summary() == summary(3, illegal_transition=1)
    assert rejections(uow_factory, result) == [(5, "t4", "illegal_transition")]


# -- duplicates and conflicts --------------------------------------------------------------

LIFE = (
    f"e1,{N1},activated,2024-01-01,s1,\n"
    f"e2,{N1},suspended,2024-02-01,,\n"
    f"e3,{N2},activated,2024-01-01,s2,\n"
    f"e4,{N1},resumed,2024-03-01,,\n"
    f"e5,{N2},cancelled,2024-03-01,,\n"
    f"e6,{N1},ported,2024-04-01,,cu\n"
)


def test_duplicates_within_one_file(uow_factory, carriers, engine) -> None:
    result = ingest(
        uow_factory,
        LIFE
        + f"e2,{N1},suspended,2024-02-01,,\n"
        + "e1,+86 138 1234 5678,activated,2024-01-01T08:00+08:00,s1,\n",
    )
    assert result.summary() == summary(6, 2)
    assert rejections(uow_factory, result) == []
    assert len(ledger(engine)["events"]) == 6


def test_running_the_same_file_again_changes_nothing(uow_factory, carriers, engine) -> None:
    first = ingest(uow_factory, LIFE)
    assert first.summary() == summary(6)
    before = ledger(engine)
    again = ingest(uow_factory, LIFE)
    assert again.summary() == summary(0, 6)
    assert again.id != first.id
    assert ledger(engine) == before
    stored(uow_factory, again)
    # and a file that repeats part of it with new rows applies only the new rows
    more = ingest(uow_factory, f"e5,{N2},cancelled,2024-03-01,,\ne7,{N2},restored,2024-03-02,s2,\n")
    assert more.summary() == summary(1, 1)
    assert state_of(uow_factory, N2) == (State.ACTIVE, "cm", ["e3", "e5", "e7"])


def test_a_file_with_rejections_run_again_gives_the_same_answer(
    uow_factory, carriers, engine
) -> None:
    body = (
        f"k1,{N1},activated,2024-01-01,s1,\n"
        f"k2,{N1},resumed,2024-01-02,,\n"
        f"k3,{N2},activated,2024-13-01,s1,\n"
        f"k4,{N1},suspended,2024-01-03,,\n"
    )
    first = ingest(uow_factory, body)
    assert first.summary() == summary(2, illegal_transition=1, invalid_date=1)
    before = ledger(engine)
    again = ingest(uow_factory, body)
    # k2 is now dated before the number's last event
    assert again.summary() == summary(0, 2, out_of_order=1, invalid_date=1)
    assert ledger(engine) == before


@pytest.mark.xfail(
    strict=True,
    reason="domain/reports.py _decide_one remembers only accepted event ids and "
    "lifecycle.py _check lets a report dated at the last event through, so a row rejected "
    "before a same-moment row is accepted when the file is run again",
)
def test_a_rerun_never_accepts_a_row_it_rejected(uow_factory, carriers, engine) -> None:
    body = (
        f"k1,{N1},activated,2024-01-01,s1,\n"
        f"k2,{N1},resumed,2024-02-01,,\n"  # illegal: active
        f"k3,{N1},suspended,2024-02-01,,\n"  # same moment, a later line
    )
    first = ingest(uow_factory, body)
    assert first.summary() == summary(2, illegal_transition=1)
    before = ledger(engine)
    again = ingest(uow_factory, body)
    assert ledger(engine) == before  # fails: k2 now resumes the suspended number
    assert again.summary()["accepted"] == 0


def test_conflicting_duplicates(uow_factory, carriers, engine) -> None:
    first = ingest(uow_factory, LIFE)
    before = ledger(engine)
    result = ingest(
        uow_factory,
        f"e1,{N1},activated,2024-01-01,s9,\n"  # another subscriber
        f"e2,{N1},suspended,2024-02-02,,\n"  # another time
        f"e3,{N3},activated,2024-01-01,s2,\n"  # another number
        f"e4,{N1},cancelled,2024-03-01,,\n"  # another event
        f"e6,{N1},ported,2024-04-01,,cm\n"  # another to_carrier
        f"e5,{N2},cancelled,2024-03-01,,\n",  # the same: a duplicate
    )
    assert first.summary() == summary(6)
    assert result.summary() == summary(0, 1, duplicate_event_id_conflict=5)
    assert rejections(uow_factory, result) == [
        (2, "e1", "duplicate_event_id_conflict"),
        (3, "e2", "duplicate_event_id_conflict"),
        (4, "e3", "duplicate_event_id_conflict"),
        (5, "e4", "duplicate_event_id_conflict"),
        (6, "e6", "duplicate_event_id_conflict"),
    ]
    assert ledger(engine) == before


def test_conflicting_duplicates_within_one_file(uow_factory, carriers, engine) -> None:
    result = ingest(
        uow_factory,
        f"z1,{N1},activated,2024-01-01,s1,\n"
        f"z1,{N1},activated,2024-01-01,s2,\n"
        f"z2,{N1},suspended,2024-02-01,,\n"
        f"z2,{N2},activated,2024-01-01,s3,\n",  # the same id on another number
    )
    assert result.summary() == summary(2, duplicate_event_id_conflict=2)
    # rows are applied by number and time: N1's z2 is seen after N2's... by e164 order
    lines = {line for line, _, _ in rejections(uow_factory, result)}
    assert 3 in lines and len(lines) == 2
    assert len(ledger(engine)["events"]) == 2


def test_event_ids_belong_to_their_carrier(uow_factory, carriers) -> None:
    ingest(uow_factory, f"same,{N1},activated,2024-01-01,s1,\n", "cm")
    result = ingest(uow_factory, f"same,{CU_NUMBER},activated,2024-01-01,s1,\n", "cu")
    assert result.summary() == summary(1)


def test_duplicates_and_conflicts_across_chunks(uow_factory, carriers, engine, monkeypatch) -> None:
    monkeypatch.setattr(reporting, "CHUNK_ROWS", 2)
    numbers = [f"+86138000000{i:02d}" for i in range(10)]
    body = "".join(f"a{i},{n},activated,2024-01-01,s{i},\n" for i, n in enumerate(numbers))
    body += "".join(f"s{i},{n},suspended,2024-02-01,,\n" for i, n in enumerate(numbers))
    body += f"a0,{numbers[9]},activated,2024-01-01,s0,\n"  # a0 again, on the last number
    body += f"a1,{numbers[1]},activated,2024-01-01,s1,\n"  # a true duplicate
    result = ingest(uow_factory, body)
    assert result.summary() == summary(20, 1, duplicate_event_id_conflict=1)
    assert rejections(uow_factory, result) == [(22, "a0", "duplicate_event_id_conflict")]
    before = ledger(engine)
    again = ingest(uow_factory, body)
    assert again.summary() == summary(0, 21, duplicate_event_id_conflict=1)
    assert ledger(engine) == before


# -- the shape of the file ------------------------------------------------------------------


def test_a_truncated_last_line(uow_factory, carriers, engine) -> None:
    result = ingest(uow_factory, GOOD + f"t1,{N1},suspen")
    assert result.summary() == summary(1, malformed_row=1)
    assert rejections(uow_factory, result) == [(3, "t1", "malformed_row")]
    with uow_factory() as uow:
        rejection = uow.ingests.rejections(result.id, 0, 1)[0]
    assert rejection.detail == "expected 6 fields, found 3"
    assert rejection.raw == f"t1,{N1},suspen"


def test_too_many_fields(uow_factory, carriers) -> None:
    result = ingest(uow_factory, GOOD + f"t2,{N1},suspended,2024-02-01,,,extra\n")
    assert result.summary() == summary(1, malformed_row=1)
    assert rejections(uow_factory, result) == [(3, "t2", "malformed_row")]


def test_a_last_line_without_newline_is_read(uow_factory, carriers) -> None:
    result = ingest(uow_factory, GOOD + f"t3,{N1},suspended,2024-02-01,,")
    assert result.summary() == summary(2)


def test_a_line_that_is_not_utf8(uow_factory, carriers, engine) -> None:
    body = (
        GOOD.encode()
        + f"u1,{N1},suspended,2024-02-01,".encode()
        + "张三".encode("gbk")
        + b",\n"
        + f"u2,{N2},activated,2024-02-01,张三,\n".encode()
    )
    result = ingest(uow_factory, body)
    assert result.summary() == summary(2, invalid_encoding=1)
    assert rejections(uow_factory, result) == [(3, None, "invalid_encoding")]
    with uow_factory() as uow:
        rejection = uow.ingests.rejections(result.id, 0, 1)[0]
    assert rejection.detail.startswith("not UTF-8 at byte")
    assert rejection.raw is not None and rejection.raw.startswith("u1,")
    with uow_factory() as uow:
        history = uow.numbers.history(N2)
    assert history is not None and history.tenures[0].subscriber == "张三"


def test_a_nul_byte_in_a_row(uow_factory, carriers, engine) -> None:
    body = GOOD.encode() + f"n1,{N2},activated,2024-01-01,s\x001,\n".encode()
    result = ingest(uow_factory, body)
    assert result.summary() == summary(1, malformed_row=1)
    assert rejections(uow_factory, result) == [(3, "n1", "malformed_row")]
    assert [row[0] for row in ledger(engine)["numbers"]] == [N1]


def test_a_nul_character_in_an_api_item_is_rejected(uow_factory, carriers, engine) -> None:
    items = [
        item("n1", N1, "activated", "2024-01-01", "s\x001"),
        item("n2", N2, "activated", "2024-01-01", "s2"),
    ]
    result = reporting.report_events(uow_factory, "cm", items, now=NOW, policy=POLICY)
    assert (result.accepted, result.rejected) == (1, {"malformed_row": 1})
    assert [row[0] for row in ledger(engine)["numbers"]] == [N2]


def test_a_whole_file_in_gbk(uow_factory, carriers, engine) -> None:
    body = (
        f"g1,{N1},activated,2024-01-01,张三,\n"
        f"g2,{N2},activated,2024-01-01,李四,\n"
        f"g3,{N3},activated,2024-01-01,s3,\n"  # pure ASCII: also valid UTF-8
    )
    result = ingest(uow_factory, HEADER.encode("gbk") + body.encode("gbk"), header=False)
    assert result.summary() == summary(1, invalid_encoding=2)
    assert rejections(uow_factory, result) == [
        (2, None, "invalid_encoding"),
        (3, None, "invalid_encoding"),
    ]
    assert [row[0] for row in ledger(engine)["numbers"]] == [N3]


def test_an_empty_file_is_refused_and_nothing_is_stored(uow_factory, carriers, engine) -> None:
    for body in (b"", b"\n", b"   \r\n"):
        with pytest.raises(reporting.FileRejected, match="empty"):
            ingest(uow_factory, body, header=False)
    with uow_factory() as uow:
        assert uow.ingests.recent(None, 10) == []
    assert ledger(engine) == {"numbers": [], "tenures": [], "events": []}


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("event_id,number,event,occurred_at,subscriber\n", "lacks to_carrier"),
        ("id,number,kind,occurred_at,subscriber,to_carrier\n", "lacks event_id, event"),
        (f"e1,{N1},activated,2024-01-01,s1,\n", "lacks"),  # no header at all
        ("event_id,number,event,occurred_at,subscriber,to_carrier,event\n", "twice"),
    ],
)
def test_a_bad_header_is_refused(uow_factory, carriers, engine, header: str, message: str) -> None:
    with pytest.raises(reporting.FileRejected, match=message):
        ingest(uow_factory, header + GOOD, header=False)
    with uow_factory() as uow:
        assert uow.ingests.recent(None, 10) == []
    assert ledger(engine)["events"] == []


def test_a_header_that_is_not_utf8_is_refused(uow_factory, carriers) -> None:
    with pytest.raises(reporting.FileRejected, match="UTF-8"):
        ingest(uow_factory, "event_id,号码,event\n".encode("gbk") + GOOD.encode(), header=False)


def test_a_header_only_file_is_all_zeros(uow_factory, carriers, engine) -> None:
    for body in ("", "\n\n"):
        result = ingest(uow_factory, body)
        assert result.summary() == summary()
        assert result.rows == 0
        assert stored(uow_factory, result).status is IngestStatus.COMPLETED
        assert rejections(uow_factory, result) == []
    header_without_newline = HEADER.rstrip("\n")
    result = ingest(uow_factory, header_without_newline, header=False)
    assert result.summary() == summary()
    assert ledger(engine)["events"] == []


def test_blank_lines_are_skipped_and_lines_keep_their_numbers(uow_factory, carriers) -> None:
    result = ingest(
        uow_factory,
        f"\n{GOOD}\n   \n\r\nb1,{N1},bogus,2024-02-01,,\n\n",
    )
    assert result.summary() == summary(1, unknown_event=1)
    assert result.rows == 2
    assert rejections(uow_factory, result) == [(7, "b1", "unknown_event")]


def test_crlf_line_endings_and_a_byte_order_mark(uow_factory, carriers) -> None:
    body = "\ufeff" + HEADER + LIFE + f"bad,{N3},bogus,2024-01-01,,\n"
    result = ingest(uow_factory, body.replace("\n", "\r\n").encode(), header=False)
    assert result.summary() == summary(6, unknown_event=1)
    assert rejections(uow_factory, result) == [(8, "bad", "unknown_event")]
    assert state_of(uow_factory, N1) == (State.ACTIVE, "cu", ["e1", "e2", "e4", "e6"])
    with uow_factory() as uow:
        history = uow.numbers.history(N1)
    assert history is not None
    assert history.tenures[0].subscriber == "s1"  # not "s1\r"
    ported = [e for e in history.events if e.kind is EventKind.PORTED]
    assert ported[0].to_carrier == "cu"  # not "cu\r"


def test_columns_in_any_order_quoted_fields_and_extra_columns(uow_factory, carriers) -> None:
    body = (
        "Occurred_At, Number ,note,EVENT,event_id,to_carrier,subscriber\n"
        f'2024-01-01,{N1},"a note, with a comma",activated,q1,,"s1"\n'
        f'2024-02-01,"+86 138 1234 5678",,ported,q2,cu,\n'
    )
    result = ingest(uow_factory, body, header=False)
    assert result.summary() == summary(2)
    assert state_of(uow_factory, N1) == (State.ACTIVE, "cu", ["q1", "q2"])


def test_rejections_of_a_reordered_file_keep_their_event_id(uow_factory, carriers) -> None:
    body = (
        "number,event_id,event,occurred_at,subscriber,to_carrier\n"
        f"{N1},q1,bogus,2024-01-01,s1,\n"
        f"{N1},q2,activated\n"
    )
    result = ingest(uow_factory, body, header=False)
    assert result.summary() == summary(unknown_event=1, malformed_row=1)
    assert rejections(uow_factory, result) == [
        (2, "q1", "unknown_event"),
        (3, "q2", "malformed_row"),
    ]


def test_a_stray_carriage_return_in_a_row(uow_factory, carriers, engine) -> None:
    result = ingest(uow_factory, GOOD + f"cr1,{N2},activated,2024-01-01,s\r1,\n")
    assert result.summary() == summary(1, malformed_row=1)
    assert rejections(uow_factory, result) == [(3, "cr1", "malformed_row")]


def test_a_file_with_cr_only_line_endings_is_refused(uow_factory, carriers, engine) -> None:
    body = (HEADER + GOOD).replace("\n", "\r")
    with pytest.raises(reporting.FileRejected):
        ingest(uow_factory, body, header=False)
    assert ledger(engine)["events"] == []


# -- rejected rows change nothing ----------------------------------------------------------


def test_a_file_of_only_bad_rows_changes_nothing(uow_factory, carriers, engine) -> None:
    ingest(uow_factory, LIFE)
    before = ledger(engine)
    result = ingest(
        uow_factory,
        f"n1,{N1},suspended,2024-05-01,,\n"  # held by cu now
        f"n2,{N2},suspended,2024-05-01,,\n"  # frozen
        f"n3,{N2},released,2024-05-01,,\n"  # freeze not over
        f"n4,{N2},restored,2024-05-01,s9,\n"  # not the subscriber who cancelled
        f"n5,{N2},restored,2024-02-01,s2,\n"  # out of order
        f"n6,{N3},resumed,2024-05-01,,\n"  # never activated
        f"n7,{N2},ported,2024-05-01,,cu\n"  # frozen
        f"e3,{N2},activated,2024-01-01,s2,\n",  # duplicate
    )
    assert result.summary() == summary(
        0,
        1,
        not_number_holder=1,
        illegal_transition=3,
        freeze_not_over=1,
        subscriber_mismatch=1,
        out_of_order=1,
    )
    assert ledger(engine) == before


# -- the API batch service -------------------------------------------------------------------


def item(event_id: str, number: str, event: str, at: str, subscriber: str | None = None,
         to_carrier: str | None = None) -> dict[str, str | None]:  # fmt: skip
    return {
        "event_id": event_id,
        "number": number,
        "event": event,
        "occurred_at": at,
        "subscriber": subscriber,
        "to_carrier": to_carrier,
    }


def test_report_events_gives_an_outcome_per_item(uow_factory, carriers, engine) -> None:
    items = [
        item("b3", N1, "suspended", "2024-02-01"),  # applied after b1 (time order)
        item("b1", N1, "activated", "2024-01-01", "s1"),
        item("b2", "abc", "activated", "2024-01-01", "s1"),
        item("b1", N1, "activated", "2024-01-01", "s1"),  # duplicate
        item("b4", N1, "resumed", "2024-01-15"),  # illegal: active
        item("b5", N2, "ported", "2024-01-01", to_carrier="cu"),  # never activated
        item("b6", N2, "frobbed", "2024-01-01"),
        item("b1", N1, "activated", "2024-01-01", "s2"),  # conflict
        item("", N3, "activated", "2024-01-01", "s1"),
    ]
    result = reporting.report_events(uow_factory, "cm", items, now=NOW, policy=POLICY)
    assert (result.accepted, result.duplicates) == (2, 1)
    assert result.rejected == {
        "invalid_number": 1,
        "illegal_transition": 2,
        "unknown_event": 1,
        "duplicate_event_id_conflict": 1,
        "missing_event_id": 1,
    }
    assert [(o.line, o.event_id, o.status, o.reason) for o in result.outcomes] == [
        (0, "b3", Status.ACCEPTED, None),
        (1, "b1", Status.ACCEPTED, None),
        (2, "b2", Status.REJECTED, Reason.INVALID_NUMBER),
        (3, "b1", Status.DUPLICATE, None),
        (4, "b4", Status.REJECTED, Reason.ILLEGAL_TRANSITION),
        (5, "b5", Status.REJECTED, Reason.ILLEGAL_TRANSITION),
        (6, "b6", Status.REJECTED, Reason.UNKNOWN_EVENT),
        (7, "b1", Status.REJECTED, Reason.DUPLICATE_EVENT_ID_CONFLICT),
        (8, "", Status.REJECTED, Reason.MISSING_EVENT_ID),
    ]
    assert all(o.detail for o in result.outcomes if o.status is Status.REJECTED)
    assert state_of(uow_factory, N1) == (State.SUSPENDED, "cm", ["b1", "b3"])
    before = ledger(engine)
    again = reporting.report_events(
        uow_factory,
        "cm",
        [*items[:2], item("b7", N1, "resumed", "2024-01-31")],
        now=NOW,
        policy=POLICY,
    )
    assert (again.accepted, again.duplicates, again.rejected) == (0, 2, {"out_of_order": 1})
    assert again.outcomes[2].reason is Reason.OUT_OF_ORDER
    assert ledger(engine) == before


def test_report_events_reads_national_numbers_in_the_region(uow_factory, carriers) -> None:
    result = reporting.report_events(
        uow_factory, "cm", [item("r1", "138 1234 5678", "activated", "2024-01-01", "s1")],
        region="CN", now=NOW, policy=POLICY,
    )  # fmt: skip
    assert result.accepted == 1
    assert state_of(uow_factory, N1) == (State.ACTIVE, "cm", ["r1"])


def test_report_events_refuses_an_unknown_carrier_and_too_large_batches(
    uow_factory, carriers, engine
) -> None:
    with pytest.raises(reporting.UnknownCarrier):
        reporting.report_events(
            uow_factory, "nobody", [item("x", N1, "activated", "2024-01-01", "s")], policy=POLICY
        )
    too_many = [
        item(f"x{i}", N1, "suspended", "2024-01-01") for i in range(reporting.MAX_BATCH + 1)
    ]
    with pytest.raises(reporting.BatchTooLarge):
        reporting.report_events(uow_factory, "cm", too_many, policy=POLICY)
    assert ledger(engine)["events"] == []


def test_an_empty_batch(uow_factory, carriers) -> None:
    result = reporting.report_events(uow_factory, "cm", [], now=NOW, policy=POLICY)
    assert (result.accepted, result.duplicates, result.rejected, result.outcomes) == (0, 0, {}, [])
