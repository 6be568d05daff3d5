"""Phone numbers: E.164 and national input, validated with `phonenumbers`."""

from __future__ import annotations

import pytest

from handover.domain.numbers import PhoneNumber, parse_number
from handover.domain.rejections import Reason, Rejected


@pytest.mark.parametrize(
    ("text", "region", "e164", "found_region"),
    [
        ("+8613812345678", None, "+8613812345678", "CN"),
        ("+86 138 1234 5678", None, "+8613812345678", "CN"),
        ("  +86-138-1234-5678 ", None, "+8613812345678", "CN"),
        ("138 1234 5678", "CN", "+8613812345678", "CN"),
        ("13812345678", "cn", "+8613812345678", "CN"),
        ("+12025550123", None, "+12025550123", "US"),
        ("+1 (202) 555-0123", None, "+12025550123", "US"),
        ("(202) 555-0123", "US", "+12025550123", "US"),
        # An international number keeps its own country whatever region is given.
        ("+12025550123", "CN", "+12025550123", "US"),
        ("+44 20 7946 0958", None, "+442079460958", "GB"),
    ],
)
def test_valid_numbers_are_normalised_to_e164(
    text: str, region: str | None, e164: str, found_region: str
) -> None:
    number = parse_number(text, region)
    assert number == PhoneNumber(e164, found_region)
    assert str(number) == e164


def _rejected(text: str, region: str | None) -> Rejected:
    with pytest.raises(Rejected) as caught:
        parse_number(text, region)
    assert caught.value.reason is Reason.INVALID_NUMBER
    return caught.value


@pytest.mark.parametrize(
    ("text", "region", "detail"),
    [
        ("", "CN", "empty"),
        ("   ", None, "empty"),
        ("abc", "CN", "not a phone number"),
        ("+999 1234", None, "unknown country calling code"),
        ("138", "CN", "too short"),
        ("1381234567890123", "CN", "too long"),
        ("+8610000000000", None, "not a valid number for its country"),
        ("+1 555 555 5555", None, "not a valid number for its country"),
    ],
)
def test_invalid_numbers_are_rejected_with_a_helpful_detail(
    text: str, region: str | None, detail: str
) -> None:
    error = _rejected(text, region)
    assert detail in error.detail
    if text.strip():
        assert text.strip() in error.detail  # the detail quotes what was sent


@pytest.mark.parametrize("text", ["13812345678", "138 1234 5678", "2025550123"])
def test_national_input_without_a_region_is_rejected(text: str) -> None:
    error = _rejected(text, None)
    assert "no region" in error.detail and "E.164" in error.detail


def test_rejection_message_names_the_reason() -> None:
    error = _rejected("abc", "CN")
    assert str(error).startswith("invalid_number: ")
