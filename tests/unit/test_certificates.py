"""Tenure certificate rules (domain): what is certified, what is never said, time, standing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from handover.domain.certificates import (
    CLOCK_SKEW,
    CertificateClaims,
    NotInService,
    Standing,
    Status,
    Unverifiable,
    certify,
    judge,
    read_claims,
)
from handover.domain.freeze_policy import FreezePolicy
from handover.domain.lifecycle import EventKind, LifecycleReport, Number

E164 = "+8613912345678"
ISSUER = "https://handover.example"
NOW = datetime(2025, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def number_after(*steps: tuple[EventKind, str, str | None]) -> Number:
    number = Number(E164, "CN")
    for kind, day, subscriber in steps:
        number.apply(LifecycleReport(kind, at(day), "cm", subscriber), FreezePolicy())
    return number


FIRST = (EventKind.ACTIVATED, "2023-10-09", "previous-owner-ref")
CANCELLED = (EventKind.CANCELLED, "2024-02-25", None)
RELEASED = (EventKind.RELEASED, "2024-06-01", None)
SECOND = (EventKind.ACTIVATED, "2024-09-21", "new-owner-ref")


def test_a_reassigned_number_says_when_the_earlier_tenure_ended_and_nothing_about_anyone() -> None:
    claims = certify(number_after(FIRST, CANCELLED, RELEASED, SECOND), ISSUER, "j1", NOW)
    jwt = claims.as_jwt()
    assert jwt == {
        "iss": ISSUER,
        "jti": "j1",
        "iat": int(NOW.timestamp()),
        "nbf": int(NOW.timestamp()),
        "exp": int((NOW + timedelta(days=180)).timestamp()),
        "number": E164,
        "held_since": "2024-09-21T00:00:00Z",
        "carrier": "cm",
        "reassigned": True,
        "previous_tenure_ended": "2024-02-25",
    }
    text = repr(jwt) + repr(claims)
    assert "previous-owner-ref" not in text and "new-owner-ref" not in text


def test_a_first_tenure_is_not_reassigned() -> None:
    claims = certify(number_after(FIRST), ISSUER, "j1", NOW)
    assert not claims.reassigned
    assert "reassigned" not in claims.as_jwt()
    assert "previous_tenure_ended" not in claims.as_jwt()
    assert "previous-owner-ref" not in repr(claims.as_jwt())


def test_a_suspended_number_is_in_service_and_the_carrier_is_the_holding_one() -> None:
    suspended = number_after(FIRST, (EventKind.SUSPENDED, "2024-01-01", None))
    assert certify(suspended, ISSUER, "j", NOW).held_since == at("2023-10-09")
    ported = number_after(FIRST)
    ported.apply(
        LifecycleReport(EventKind.PORTED, at("2024-01-01"), "cm", to_carrier="cu"), FreezePolicy()
    )
    assert certify(ported, ISSUER, "j", NOW).carrier == "cu"


@pytest.mark.parametrize(
    "steps",
    [(), (FIRST, CANCELLED), (FIRST, CANCELLED, RELEASED)],
    ids=["never-reported", "frozen", "released"],
)
def test_only_a_number_in_service_gets_one(steps: tuple[tuple[EventKind, str, None], ...]) -> None:
    with pytest.raises(NotInService, match="only a number in service"):
        certify(number_after(*steps), ISSUER, "j", NOW)


def test_validity_is_a_parameter() -> None:
    claims = certify(number_after(FIRST), ISSUER, "j", NOW, timedelta(days=30))
    assert claims.expires_at - claims.issued_at == timedelta(days=30)


def test_claims_read_back_equal_what_was_certified() -> None:
    claims = certify(number_after(FIRST, CANCELLED, RELEASED, SECOND), ISSUER, "j1", NOW)
    assert read_claims(claims.as_jwt()) == claims


@pytest.mark.parametrize(
    "change",
    [
        {"number": None},
        {"iat": "yesterday"},
        {"exp": True},
        {"exp": 10**20},
        {"held_since": "not a date"},
        {"reassigned": True},
        {"previous_tenure_ended": "2024-02-25", "reassigned": None},
    ],
)
def test_claims_that_are_not_a_certificates_are_malformed(change: dict[str, object]) -> None:
    jwt = certify(number_after(FIRST), ISSUER, "j", NOW).as_jwt()
    for name, value in change.items():
        if value is None:
            jwt.pop(name, None)
        else:
            jwt[name] = value
    with pytest.raises(Unverifiable) as refused:
        read_claims(jwt)
    assert refused.value.status is Status.MALFORMED


def claims_from(now: datetime) -> CertificateClaims:
    return certify(number_after(FIRST), ISSUER, "j", now)


def test_time_rules_with_an_explicit_now() -> None:
    number = number_after(FIRST)
    claims = claims_from(NOW)
    assert judge(claims, NOW, number).status is Status.VALID
    early = judge(claims, NOW - CLOCK_SKEW - timedelta(seconds=1), number)
    assert early.status is Status.NOT_YET_VALID and not early.valid and early.standing is None
    assert judge(claims, NOW - CLOCK_SKEW, number).valid
    assert judge(claims, claims.expires_at - timedelta(seconds=1), number).valid
    late = judge(claims, claims.expires_at, number)
    assert late.status is Status.EXPIRED and not late.current and "expired at" in late.detail


def test_current_while_the_tenure_holds_superseded_once_it_does_not() -> None:
    claims = claims_from(NOW)
    later = NOW + timedelta(days=1)
    assert judge(claims, later, number_after(FIRST)).standing is Standing.CURRENT
    ported = number_after(FIRST)
    ported.apply(
        LifecycleReport(EventKind.PORTED, at("2025-03-01"), "cm", to_carrier="cu"), FreezePolicy()
    )
    assert judge(claims, later, ported).current
    restored = number_after(
        FIRST, CANCELLED, (EventKind.RESTORED, "2024-03-01", "previous-owner-ref")
    )
    assert judge(claims, later, restored).current
    for gone in (
        number_after(FIRST, CANCELLED),
        number_after(FIRST, CANCELLED, RELEASED),
        number_after(FIRST, CANCELLED, RELEASED, SECOND),
        None,
    ):
        found = judge(claims, later, gone)
        assert found.valid and not found.current
        assert found.standing is Standing.SUPERSEDED
        assert "changed hands" in found.detail


def test_naive_and_microsecond_times_compare_exactly() -> None:
    number = Number(E164, "CN")
    number.apply(
        LifecycleReport(EventKind.ACTIVATED, datetime(2024, 9, 21, 1, 2, 3, 456789), "cm", "s"),
        FreezePolicy(),
    )
    claims = read_claims(certify(number, ISSUER, "j", NOW).as_jwt())
    assert claims.held_since == datetime(2024, 9, 21, 1, 2, 3, 456789, tzinfo=UTC)
    assert judge(claims, NOW, number).current
    assert claims.previous_tenure_ended is None
    assert date(2024, 9, 21) == claims.held_since.date()
