"""Carrier reports: parsing one raw row, and deciding accepted / duplicate / rejected."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest

from handover.domain.freeze_policy import FreezePolicy
from handover.domain.lifecycle import EventKind, Number, NumberActivated, State
from handover.domain.numbers import PhoneNumber
from handover.domain.rejections import Reason, Rejected
from handover.domain.reports import (
    CarrierReport,
    Fingerprint,
    Status,
    decide,
    parse_occurred_at,
    parse_report,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
CARRIERS = frozenset({"cm", "cu"})
POLICY = FreezePolicy()


def row(**overrides: str | None) -> dict[str, str | None]:
    fields: dict[str, str | None] = {
        "event_id": "e1",
        "number": "+8613812345678",
        "event": "activated",
        "occurred_at": "2024-01-01",
        "subscriber": "s1",
        "to_carrier": "",
    }
    fields.update(overrides)
    return fields


def rejected(fields: dict[str, str | None], region: str | None = None) -> Rejected:
    with pytest.raises(Rejected) as caught:
        parse_report(fields, 7, region, NOW)
    return caught.value


# -- parse_occurred_at --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-05", datetime(2024, 3, 5, tzinfo=UTC)),
        (" 2024-03-05 ", datetime(2024, 3, 5, tzinfo=UTC)),
        ("2024-03-05T10:00:00", datetime(2024, 3, 5, 10, tzinfo=UTC)),
        ("2024-03-05 10:00", datetime(2024, 3, 5, 10, tzinfo=UTC)),
        ("2024-03-05T10:00:00Z", datetime(2024, 3, 5, 10, tzinfo=UTC)),
        ("2024-03-05T10:00:00+08:00", datetime(2024, 3, 5, 2, tzinfo=UTC)),
        ("2024-03-05T01:00:00+08:00", datetime(2024, 3, 4, 17, tzinfo=UTC)),
        ("2024-03-05T10:00:00.250-05:00", datetime(2024, 3, 5, 15, 0, 0, 250_000, tzinfo=UTC)),
        ("1980-01-01", datetime(1980, 1, 1, tzinfo=UTC)),
        # the clock-skew allowance: up to 5 minutes past "now"
        ("2025-06-01T12:05:00Z", datetime(2025, 6, 1, 12, 5, tzinfo=UTC)),
    ],
)
def test_dates_are_read_as_utc(text: str, expected: datetime) -> None:
    parsed = parse_occurred_at(text, NOW)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday",
        "2024-13-01",
        "2024-02-30",
        "2024/03/05",
        "05-03-2024",
        "1700000000",
        "2024-03-05T10:00:00+25:00",
        "1979-12-31",
        "1979-12-31T23:59:59Z",
        "1980-01-01T07:59:59+08:00",  # 1979 in UTC
        "0001-01-01T00:00:00+01:00",  # overflows when converted to UTC
        "9999-12-31T23:59:59-01:00",
    ],
)
def test_invalid_dates(text: str) -> None:
    with pytest.raises(Rejected) as caught:
        parse_occurred_at(text, NOW)
    assert caught.value.reason is Reason.INVALID_DATE


@pytest.mark.parametrize(
    "text", ["2025-06-01T12:05:01Z", "2025-06-02", "2025-06-01T20:06:00+08:00", "9999-12-31"]
)
def test_future_dates(text: str) -> None:
    with pytest.raises(Rejected) as caught:
        parse_occurred_at(text, NOW)
    assert caught.value.reason is Reason.FUTURE_DATE
    assert "future" in caught.value.detail


# -- parse_report -------------------------------------------------------------------------


def test_a_good_row_parses() -> None:
    report = parse_report(row(), 7, None, NOW)
    assert report == CarrierReport(
        "e1",
        PhoneNumber("+8613812345678", "CN"),
        EventKind.ACTIVATED,
        datetime(2024, 1, 1, tzinfo=UTC),
        "s1",
        None,
        7,
    )


def test_fields_are_trimmed_and_the_event_is_case_insensitive() -> None:
    report = parse_report(
        row(event_id=" e1 ", number=" 138 1234 5678 ", event=" Activated ", subscriber=" s1 "),
        2,
        "CN",
        NOW,
    )
    assert (report.event_id, report.number.e164, report.kind, report.subscriber) == (
        "e1",
        "+8613812345678",
        EventKind.ACTIVATED,
        "s1",
    )


def test_to_carrier_is_kept_only_for_ports() -> None:
    assert parse_report(row(to_carrier="cu"), 2, None, NOW).to_carrier is None
    ported = parse_report(row(event="ported", subscriber="", to_carrier=" cu "), 2, None, NOW)
    assert (ported.kind, ported.to_carrier, ported.subscriber) == (EventKind.PORTED, "cu", None)


def test_api_items_may_leave_optional_fields_null() -> None:
    report = parse_report(row(event="suspended", subscriber=None, to_carrier=None), 0, None, NOW)
    assert report.subscriber is None and report.to_carrier is None


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"event_id": ""}, Reason.MISSING_EVENT_ID),
        ({"event_id": "   "}, Reason.MISSING_EVENT_ID),
        ({"event_id": None}, Reason.MISSING_EVENT_ID),
        ({"event_id": "x" * 129}, Reason.MISSING_EVENT_ID),
        ({"number": ""}, Reason.INVALID_NUMBER),
        ({"number": "13812345678"}, Reason.INVALID_NUMBER),  # national, no region
        ({"number": "+86123"}, Reason.INVALID_NUMBER),
        ({"event": "recycled"}, Reason.UNKNOWN_EVENT),
        ({"event": ""}, Reason.UNKNOWN_EVENT),
        ({"occurred_at": "2024-02-30"}, Reason.INVALID_DATE),
        ({"occurred_at": ""}, Reason.INVALID_DATE),
        ({"occurred_at": "2030-01-01"}, Reason.FUTURE_DATE),
        ({"subscriber": ""}, Reason.MISSING_SUBSCRIBER),
        ({"subscriber": None}, Reason.MISSING_SUBSCRIBER),
        ({"event": "restored", "subscriber": " "}, Reason.MISSING_SUBSCRIBER),
        ({"event": "ported", "to_carrier": ""}, Reason.MISSING_TO_CARRIER),
        ({"event": "ported", "to_carrier": None}, Reason.MISSING_TO_CARRIER),
        ({"subscriber": "s" * 129}, Reason.MALFORMED_ROW),
        ({"event": "ported", "to_carrier": "c" * 129}, Reason.MALFORMED_ROW),
    ],
)
def test_bad_rows_are_rejected_with_their_reason(
    overrides: dict[str, str | None], reason: Reason
) -> None:
    error = rejected(row(**overrides))
    assert error.reason is reason
    assert error.detail


@pytest.mark.parametrize("name", ["event_id", "number", "event", "occurred_at", "subscriber"])
def test_a_nul_character_in_any_field_is_a_malformed_row(name: str) -> None:
    fields = row()
    fields[name] = f"{fields[name]}\x00"
    error = rejected(fields)
    assert error.reason is Reason.MALFORMED_ROW
    assert name in error.detail and "\x00" not in error.detail


def test_a_nul_character_in_an_ignored_column_is_ignored() -> None:
    assert parse_report(row(note="\x00"), 2, None, NOW).event_id == "e1"


def test_the_longest_allowed_references() -> None:
    report = parse_report(row(event_id="x" * 128, subscriber="s" * 128), 2, None, NOW)
    assert len(report.event_id) == len(report.subscriber or "") == 128


def test_unknown_event_detail_lists_the_known_ones() -> None:
    detail = rejected(row(event="Recycled")).detail
    assert "'recycled'" in detail
    for kind in EventKind:
        assert kind.value in detail


def test_invalid_number_detail_says_why() -> None:
    assert "no region" in rejected(row(number="13812345678")).detail
    assert "too short" in rejected(row(number="+86123")).detail


def test_the_first_fault_wins() -> None:
    assert rejected(row(event_id="", number="x")).reason is Reason.MISSING_EVENT_ID
    assert rejected(row(number="x", event="x")).reason is Reason.INVALID_NUMBER
    assert rejected(row(event="x", occurred_at="x")).reason is Reason.UNKNOWN_EVENT


def test_sort_key_orders_by_number_then_time_then_line() -> None:
    a = parse_report(row(occurred_at="2024-01-02"), 2, None, NOW)
    b = parse_report(row(occurred_at="2024-01-01"), 3, None, NOW)
    c = parse_report(row(occurred_at="2024-01-01"), 4, None, NOW)
    d = parse_report(row(number="+8613012345678", occurred_at="2024-05-01"), 5, None, NOW)
    assert sorted([a, b, c, d], key=CarrierReport.sort_key) == [d, b, c, a]


# -- decide -------------------------------------------------------------------------------


def report(
    event_id: str,
    event: str,
    at: str,
    subscriber: str = "",
    to_carrier: str = "",
    number: str = "+8613812345678",
    line: int = 2,
) -> CarrierReport:
    fields = row(
        event_id=event_id,
        event=event,
        occurred_at=at,
        subscriber=subscriber,
        to_carrier=to_carrier,
        number=number,
    )
    return parse_report(fields, line, None, NOW)


def run(
    reports: list[CarrierReport],
    numbers: dict[str, Number] | None = None,
    recorded: dict[str, Fingerprint] | None = None,
    carrier: str = "cm",
) -> tuple[list[tuple[str, Reason | None]], dict[str, Number], dict[str, Fingerprint]]:
    numbers = {} if numbers is None else numbers
    recorded = {} if recorded is None else recorded
    outcomes = decide(
        carrier, sorted(reports, key=CarrierReport.sort_key), numbers, recorded, CARRIERS, POLICY
    )
    return [(o.status.value, o.reason) for o in outcomes], numbers, recorded


def test_accepted_reports_change_the_number_and_are_recorded() -> None:
    r1 = report("e1", "activated", "2024-01-01", "s1")
    r2 = report("e2", "suspended", "2024-02-01")
    statuses, numbers, recorded = run([r1, r2])
    assert statuses == [("accepted", None), ("accepted", None)]
    number = numbers["+8613812345678"]
    assert (number.state, number.carrier, number.version) == (State.SUSPENDED, "cm", 2)
    assert recorded == {"e1": r1.fingerprint, "e2": r2.fingerprint}


def test_outcomes_carry_the_report_and_the_event() -> None:
    r1 = report("e1", "activated", "2024-01-01", "s1", line=9)
    outcome = decide("cm", [r1], {}, {}, CARRIERS, POLICY)[0]
    assert (outcome.line, outcome.event_id, outcome.status) == (9, "e1", Status.ACCEPTED)
    assert outcome.report == r1
    assert isinstance(outcome.event, NumberActivated)


def test_the_same_event_id_with_the_same_content_is_a_duplicate() -> None:
    r1 = report("e1", "activated", "2024-01-01", "s1", line=2)
    again = report("e1", "activated", "2024-01-01", "s1", line=3)
    statuses, numbers, recorded = run([r1, again])
    assert statuses == [("accepted", None), ("duplicate", None)]
    assert numbers["+8613812345678"].version == 1
    assert recorded == {"e1": r1.fingerprint}


def test_a_duplicate_is_recognised_from_what_was_recorded_before() -> None:
    r1 = report("e1", "activated", "2024-01-01", "s1")
    _, numbers, recorded = run([r1])
    snapshot = copy.deepcopy((numbers, recorded))
    # the same content, written differently (offset, spacing), is the same report
    again = parse_report(
        row(occurred_at="2024-01-01T08:00:00+08:00", number="+86 138 1234 5678"), 5, None, NOW
    )
    statuses, numbers, recorded = run([again], numbers, recorded)
    assert statuses == [("duplicate", None)]
    assert (numbers, recorded) == snapshot


@pytest.mark.parametrize(
    "changed",
    [
        {"event": "suspended", "subscriber": ""},
        {"occurred_at": "2024-01-02"},
        {"subscriber": "s2"},
        {"number": "+8613012345678"},
    ],
)
def test_the_same_event_id_with_other_content_is_a_conflict(changed: dict[str, str]) -> None:
    r1 = report("e1", "activated", "2024-01-01", "s1")
    _, numbers, recorded = run([r1])
    before = {
        e164: Number(**{s: getattr(n, s) for s in Number.__slots__}) for e164, n in numbers.items()
    }
    other = parse_report(row(**changed), 3, None, NOW)
    statuses, numbers, recorded = run([other], numbers, recorded)
    assert statuses == [("rejected", Reason.DUPLICATE_EVENT_ID_CONFLICT)]
    assert numbers == before
    assert recorded == {"e1": r1.fingerprint}


def test_a_conflict_within_one_batch() -> None:
    r1 = report("e1", "activated", "2024-01-01", "s1", line=2)
    r2 = report("e1", "suspended", "2024-02-01", line=3)
    statuses, numbers, _ = run([r1, r2])
    assert statuses == [("accepted", None), ("rejected", Reason.DUPLICATE_EVENT_ID_CONFLICT)]
    assert numbers["+8613812345678"].state is State.ACTIVE


def test_event_ids_are_per_carrier() -> None:
    r1 = report("e1", "activated", "2024-01-01", "s1")
    other = report("e1", "activated", "2024-01-01", "x", number="+8613012345678")
    statuses, numbers, _ = run([r1])
    statuses, numbers, _ = run([other], numbers, {}, carrier="cu")
    assert statuses == [("accepted", None)]
    assert numbers["+8613012345678"].carrier == "cu"


def test_a_rejected_event_id_is_not_recorded_and_may_be_sent_again_corrected() -> None:
    bad = report("e1", "suspended", "2024-01-01")
    statuses, numbers, recorded = run([bad])
    assert statuses == [("rejected", Reason.ILLEGAL_TRANSITION)]
    assert numbers == {} and recorded == {}
    fixed = report("e1", "activated", "2024-01-01", "s1")
    statuses, numbers, recorded = run([fixed], numbers, recorded)
    assert statuses == [("accepted", None)]


def test_a_port_to_an_unknown_carrier_is_rejected() -> None:
    r1 = report("e1", "activated", "2024-01-01", "s1")
    port = report("e2", "ported", "2024-02-01", to_carrier="zz")
    statuses, numbers, recorded = run([r1, port])
    assert statuses == [("accepted", None), ("rejected", Reason.UNKNOWN_CARRIER)]
    assert numbers["+8613812345678"].carrier == "cm" and "e2" not in recorded


def test_lifecycle_rejections_pass_through_and_change_nothing() -> None:
    reports = [
        report("e1", "activated", "2024-01-01", "s1", line=2),
        report("e2", "resumed", "2024-01-02", line=3),  # active: illegal
        report("e3", "cancelled", "2024-01-03", line=4),
        report("e4", "released", "2024-02-01", line=5),  # freeze not over
        report("e5", "restored", "2024-02-02", "s2", line=6),  # another subscriber
        report("e6", "released", "2024-04-02", line=7),  # 90 days after 2024-01-03
    ]
    statuses, numbers, recorded = run(reports)
    assert statuses == [
        ("accepted", None),
        ("rejected", Reason.ILLEGAL_TRANSITION),
        ("accepted", None),
        ("rejected", Reason.FREEZE_NOT_OVER),
        ("rejected", Reason.SUBSCRIBER_MISMATCH),
        ("accepted", None),
    ]
    assert set(recorded) == {"e1", "e3", "e6"}
    assert numbers["+8613812345678"].state is State.RELEASED


def test_another_carriers_report_is_refused() -> None:
    _, numbers, _ = run([report("e1", "activated", "2024-01-01", "s1")])
    before = copy.deepcopy(numbers)
    statuses, numbers, _ = run([report("x1", "suspended", "2024-02-01")], numbers, {}, "cu")
    assert statuses == [("rejected", Reason.NOT_NUMBER_HOLDER)]
    assert numbers == before


def test_a_rejected_first_report_leaves_no_number_behind() -> None:
    statuses, numbers, recorded = run([report("e1", "cancelled", "2024-01-01")])
    assert statuses == [("rejected", Reason.ILLEGAL_TRANSITION)]
    assert numbers == {} and recorded == {}
