"""Number ranges: prefixes granted to carriers, no overlaps, longest-prefix lookup, and the
rule that a number never reported is activated only inside the reporting carrier's ranges."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handover.domain.freeze_policy import FreezePolicy
from handover.domain.lifecycle import EventKind, Number, State
from handover.domain.numbers import parse_number
from handover.domain.ranges import RangeError, RangeRule, RangeTable, grant, parse_prefix
from handover.domain.rejections import Reason
from handover.domain.reports import CarrierReport, Status, decide

POLICY = FreezePolicy()
AT = datetime(2024, 1, 1, tzinfo=UTC)


# -- prefixes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("+86138", "+86138"), (" +86 138 ", "+86138"), ("0086138", "+86138"), ("+1-650", "+1650")],
)
def test_a_prefix_is_plus_and_digits(text: str, expected: str) -> None:
    assert parse_prefix(text) == expected


@pytest.mark.parametrize(
    "text", ["86138", "+", "+0", "+86a38", "+1234567890123456", "", "+\uff18\uff16"]
)
def test_anything_else_is_not_a_prefix(text: str) -> None:
    with pytest.raises(RangeError) as caught:
        parse_prefix(text)
    assert caught.value.code is RangeRule.INVALID_PREFIX


# -- the table -----------------------------------------------------------------------------


def test_the_lookup_finds_the_carrier_holding_a_number() -> None:
    table = RangeTable([("+86138", "cm"), ("+861301", "cu"), ("+1", "att")])
    assert table.holder("+8613812345678") == "cm"
    assert table.holder("+8613012345678") == "cu"
    assert table.holder("+8613022345678") is None
    assert table.holder("+16502530000") == "att"
    assert table.holder("+4420") is None
    assert table.covers("+8613812345678") and not table.covers("+8613912345678")
    assert len(table) == 3


@pytest.mark.parametrize(
    ("granted", "wanted"),
    [("+86138", "+86138"), ("+86138", "+861381"), ("+861381", "+86138"), ("+86", "+8613812")],
)
def test_ranges_never_overlap(granted: str, wanted: str) -> None:
    table = RangeTable([(granted, "cm")])
    with pytest.raises(RangeError) as caught:
        table.add(wanted, "cu")
    assert caught.value.code is RangeRule.OVERLAP
    assert granted in caught.value.detail and "cm" in caught.value.detail
    assert table.holder_of(wanted) in (None, "cm") and len(table) == 1


def test_neighbouring_blocks_do_not_overlap() -> None:
    table = RangeTable([("+86138", "cm")])
    table.add("+86139", "cu")
    assert table.clash("+8613") in ("+86138", "+86139")  # a shorter block would hold both
    assert table.clash("+861390") == "+86139"
    assert table.clash("+86137") is None


def test_a_grant_is_all_or_nothing() -> None:
    table = RangeTable([("+86138", "cm")])
    with pytest.raises(RangeError):
        grant(table, "cu", ["+86130", "+861381"])  # the second overlaps cm's
    assert table.holder("+8613012345678") is None
    with pytest.raises(RangeError) as caught:
        grant(table, "cu", ["+86130", "+861305"])  # overlapping each other
    assert caught.value.code is RangeRule.OVERLAP
    assert grant(table, "cu", ["+86130", "+86131"]) == ["+86130", "+86131"]
    assert table.holder("+8613112345678") == "cu"


prefixes = st.text(alphabet="0123456789", min_size=1, max_size=6).map(lambda d: "+1" + d)
numbers = st.text(alphabet="0123456789", min_size=10, max_size=10).map(lambda d: "+1" + d)


@given(st.lists(st.tuples(prefixes, st.sampled_from("abc")), max_size=30), numbers)
def test_the_table_agrees_with_a_scan_of_every_prefix(
    grants: list[tuple[str, str]], number: str
) -> None:
    table, kept = RangeTable(), []
    for prefix, carrier in grants:
        overlaps = [p for p, _ in kept if p.startswith(prefix) or prefix.startswith(p)]
        if overlaps:
            with pytest.raises(RangeError):
                table.add(prefix, carrier)
        else:
            table.add(prefix, carrier)
            kept.append((prefix, carrier))
    matching = [carrier for prefix, carrier in kept if number.startswith(prefix)]
    assert len(matching) <= 1  # no overlaps: at most one range holds a number
    assert table.holder(number) == (matching[0] if matching else None)
    assert table.covers(number) is bool(matching)


# -- the rule on reports -------------------------------------------------------------------


def report(number: str, kind: EventKind = EventKind.ACTIVATED, line: int = 1) -> CarrierReport:
    subscriber = "s1" if kind is EventKind.ACTIVATED else None
    return CarrierReport(f"e{line}", parse_number(number, None), kind, AT, subscriber, None, line)


CM = RangeTable([("+86138", "cm")])


def test_a_new_number_is_activated_only_inside_the_carriers_ranges() -> None:
    numbers: dict[str, Number] = {}
    inside, outside, american = decide(
        "cm",
        [
            report("+8613812345678"),
            report("+8613912345678", line=2),
            report("+16502530000", line=3),
        ],
        numbers,
        {},
        {"cm"},
        POLICY,
        ranges=CM,
    )
    assert inside.status is Status.ACCEPTED
    for refused in (outside, american):
        assert (refused.status, refused.reason) == (Status.REJECTED, Reason.OUTSIDE_RANGE)
        assert refused.report is not None  # kept for the regulator
    assert list(numbers) == ["+8613812345678"]


def test_a_known_number_follows_the_holder_rules_not_the_ranges() -> None:
    """A number ported to cu, or released in cu's pool, is cu's to report on, even though
    it lies in cm's range; cm, whose range it is, is not its holder."""
    e164 = "+8613812345678"
    ported = Number(e164, "CN", State.ACTIVE, "cu", last_event_at=AT)
    released = Number("+8613812340000", "CN", State.RELEASED, "cu", last_event_at=AT)
    numbers = {e164: ported, released.e164: released}
    later = datetime(2024, 2, 1, tzinfo=UTC)
    suspend = CarrierReport(
        "x1", parse_number(e164, None), EventKind.SUSPENDED, later, None, None, 1
    )
    again = CarrierReport(
        "x2", parse_number(released.e164, None), EventKind.ACTIVATED, later, "s2", None, 2
    )
    cu = RangeTable()  # cu holds no range at all
    outcomes = decide("cu", [suspend, again], numbers, {}, {"cm", "cu"}, POLICY, ranges=cu)
    assert [o.status for o in outcomes] == [Status.ACCEPTED, Status.ACCEPTED]
    [by_cm] = decide(
        "cm",
        [CarrierReport("x3", parse_number(e164, None), EventKind.ACTIVATED, later, "s", None, 3)],
        numbers,
        {},
        {"cm", "cu"},
        POLICY,
        ranges=CM,
    )
    assert by_cm.reason is Reason.NOT_NUMBER_HOLDER


def test_other_first_reports_keep_their_reason() -> None:
    [suspended] = decide(
        "cm", [report("+8613912345678", EventKind.SUSPENDED)], {}, {}, {"cm"}, POLICY, ranges=CM
    )
    assert suspended.reason is Reason.ILLEGAL_TRANSITION
