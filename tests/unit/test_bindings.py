"""Binding items as platforms send them, and which bindings a new tenure leaves behind."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from handover.domain.bindings import InvalidBinding, parse_binding, parse_key
from handover.domain.platforms import Tier

NOW = datetime(2026, 11, 28, tzinfo=UTC)


def item(**changes: Any) -> dict[str, Any]:
    base = {"number": "+86 138 0013 8000", "account_ref": "a-1", "bound_since": "2019-04-01"}
    return base | {"tier": "high"} | changes


def test_a_good_item_becomes_a_binding_in_e164_and_utc() -> None:
    binding = parse_binding(item(bound_since="2019-04-01T08:00:00+08:00"), 0, "lender", NOW)
    assert (binding.platform_id, binding.e164, binding.account_ref) == (
        "lender",
        "+8613800138000",
        "a-1",
    )
    assert binding.bound_since == datetime(2019, 4, 1, tzinfo=UTC)
    assert binding.tier is Tier.HIGH


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"number": "13800138000"}, "E.164"),
        ({"number": None}, "empty"),
        ({"account_ref": ""}, "account_ref"),
        ({"account_ref": "x" * 129}, "account_ref"),
        ({"account_ref": "line\nbreak"}, "account_ref"),
        ({"account_ref": 7}, "account_ref"),
        ({"bound_since": "yesterday"}, "bound_since"),
        ({"bound_since": "2999-01-01"}, "future"),
        ({"bound_since": 20190401}, "bound_since"),
        ({"tier": "gold"}, "tier"),
        ({"owner_name": "Zhang San"}, "unknown fields"),
    ],
)
def test_a_bad_item_says_what_is_wrong(changes: dict[str, Any], says: str) -> None:
    with pytest.raises(InvalidBinding, match=says) as refused:
        parse_binding(item(**changes), 3, "lender", NOW)
    assert refused.value.index == 3


def test_a_key_needs_only_the_number_and_the_account_ref() -> None:
    key = parse_key({"number": "+8613800138000", "account_ref": "a-1"}, 0)
    assert (key.e164, key.account_ref) == ("+8613800138000", "a-1")
    with pytest.raises(InvalidBinding):
        parse_key(["+8613800138000"], 0)


def test_only_bindings_older_than_the_tenure_belong_to_an_earlier_holder() -> None:
    binding = parse_binding(item(bound_since="2022-07-01"), 0, "lender", NOW)
    assert binding.bound_before(datetime(2022, 7, 2, tzinfo=UTC))
    assert not binding.bound_before(datetime(2022, 7, 1, tzinfo=UTC))  # same moment: the new


def test_the_activation_notice_lists_each_earlier_platform_once() -> None:
    from handover.domain.freeze_policy import FreezePolicy
    from handover.domain.lifecycle import EventKind, LifecycleReport, Number
    from handover.domain.notices import activation_notice
    from handover.domain.rejections import Rejected

    number = Number("+8613800138000", "CN")
    policy = FreezePolicy()
    for kind, day, subscriber in [
        (EventKind.ACTIVATED, datetime(2019, 1, 1, tzinfo=UTC), "first"),
        (EventKind.CANCELLED, datetime(2022, 1, 1, tzinfo=UTC), None),
    ]:
        number.apply(LifecycleReport(kind, day, "cm", subscriber), policy)
    with pytest.raises(Rejected, match="no subscriber"):
        activation_notice(number, [])
    for kind, day, subscriber in [
        (EventKind.RELEASED, datetime(2022, 6, 1, tzinfo=UTC), None),
        (EventKind.ACTIVATED, datetime(2022, 7, 1, tzinfo=UTC), "second"),
    ]:
        number.apply(LifecycleReport(kind, day, "cm", subscriber), policy)
    old = [
        parse_binding(item(account_ref=ref), 0, platform, NOW)
        for platform, ref in [("lender", "a"), ("lender", "b"), ("bank", "c")]
    ]
    new = parse_binding(item(bound_since="2022-08-01"), 0, "cloud", NOW)
    notice = activation_notice(number, [*old, new])
    assert notice.used_before and notice.platforms == ("bank", "lender")
    assert notice.tenure_start == datetime(2022, 7, 1, tzinfo=UTC)
