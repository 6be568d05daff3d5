"""Sign-in codes: expiry, single use, hashing, rate limits and the lockout, at explicit times."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handover.domain.sign_in import (
    CodeExpired,
    LockedOut,
    MalformedCode,
    NoCodeWaiting,
    Session,
    SignInCode,
    SignInPolicy,
    TooManyCodes,
    WrongCode,
    admit_request,
    check_code,
    code_hash,
    issue_code,
    locked_until,
    looks_like_session_token,
    new_code,
    new_session_token,
    token_hash,
    with_failure,
)

KEY = b"k" * 32
NUMBER = "+8613800138000"
T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
POLICY = SignInPolicy()


def issued(at: datetime = T0, number: str = NUMBER) -> tuple[SignInCode, str]:
    return issue_code(KEY, number, "10.0.0.1", at, POLICY)


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


def test_a_code_is_six_digits_and_stored_only_as_a_keyed_hash() -> None:
    stored, code = issued()
    assert len(code) == 6 and code.isdigit()
    assert code not in stored.code_hash
    assert stored.code_hash == code_hash(KEY, stored.id, NUMBER, code)
    assert stored.code_hash != code_hash(b"another key", stored.id, NUMBER, code)
    assert stored.expires_at == T0 + timedelta(minutes=5)


def test_the_same_code_hashes_differently_for_another_code_id_or_number() -> None:
    assert code_hash(KEY, "a", NUMBER, "123456") != code_hash(KEY, "b", NUMBER, "123456")
    assert code_hash(KEY, "a", NUMBER, "123456") != code_hash(KEY, "a", "+8613900139000", "123456")


def test_codes_are_spread_over_the_whole_range() -> None:
    codes = {new_code() for _ in range(2000)}
    assert len(codes) > 1900
    assert any(code.startswith("0") for code in codes)


def test_the_newest_code_matches_until_it_expires() -> None:
    stored, code = issued()
    assert check_code(KEY, [stored], code, T0 + seconds(299), POLICY) == stored
    with pytest.raises(CodeExpired):
        check_code(KEY, [stored], code, T0 + seconds(300), POLICY)


def test_a_used_code_does_not_open_a_second_session() -> None:
    stored, code = issued()
    used = replace(stored, used_at=T0 + seconds(10))
    with pytest.raises(NoCodeWaiting, match="already used"):
        check_code(KEY, [used], code, T0 + seconds(20), POLICY)


def test_asking_again_retires_the_earlier_code() -> None:
    first, first_code = issued()
    second, second_code = issued(T0 + seconds(61))
    later = T0 + seconds(70)
    assert check_code(KEY, [first, second], second_code, later, POLICY) == second
    if first_code != second_code:
        with pytest.raises(WrongCode):
            check_code(KEY, [first, second], first_code, later, POLICY)


def test_a_wrong_or_malformed_code_is_refused() -> None:
    stored, code = issued()
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    with pytest.raises(WrongCode):
        check_code(KEY, [stored], wrong, T0, POLICY)
    for malformed in ("12345", "1234567", "12a456", ""):
        with pytest.raises(MalformedCode):
            check_code(KEY, [stored], malformed, T0, POLICY)
    with pytest.raises(NoCodeWaiting):
        check_code(KEY, [], code, T0, POLICY)


def test_one_code_a_minute_per_number() -> None:
    stored, _ = issued()
    with pytest.raises(TooManyCodes) as refused:
        admit_request([stored], [], T0 + seconds(45), POLICY)
    assert refused.value.retry_after == 15
    admit_request([stored], [], T0 + seconds(60), POLICY)


def test_five_codes_an_hour_per_number() -> None:
    codes = [issued(T0 + timedelta(minutes=10 * i))[0] for i in range(5)]
    at = T0 + timedelta(minutes=45)
    with pytest.raises(TooManyCodes) as refused:
        admit_request(codes, [], at, POLICY)
    assert refused.value.retry_after == 15 * 60  # when the first of the five is an hour old
    admit_request(codes, [], T0 + timedelta(hours=1, seconds=1), POLICY)


def test_twenty_codes_an_hour_per_client_address() -> None:
    asked = [T0 + timedelta(minutes=i) for i in range(20)]
    with pytest.raises(TooManyCodes, match="address") as refused:
        admit_request([], asked, T0 + timedelta(minutes=30), POLICY)
    assert refused.value.retry_after == 30 * 60
    admit_request([], asked[:19], T0 + timedelta(minutes=30), POLICY)
    admit_request([], asked, T0 + timedelta(hours=1, seconds=1), POLICY)


def test_five_wrong_codes_lock_the_number_for_fifteen_minutes() -> None:
    stored, code = issued()
    for i in range(4):
        stored = with_failure(stored, T0 + seconds(10 * i))
    assert locked_until([stored], T0 + seconds(40), POLICY) is None
    stored = with_failure(stored, T0 + seconds(40))
    locked = T0 + seconds(40) + timedelta(minutes=15)
    assert locked_until([stored], T0 + seconds(41), POLICY) == locked
    with pytest.raises(LockedOut) as refused:
        check_code(KEY, [stored], code, T0 + seconds(41), POLICY)  # even the right code
    assert refused.value.retry_after == 15 * 60 - 1
    with pytest.raises(LockedOut):
        admit_request([stored], [], T0 + timedelta(minutes=10), POLICY)
    admit_request([stored], [], locked, POLICY)


def test_failures_count_across_codes_within_the_window_only() -> None:
    early = replace(issued()[0], failures=3, last_failure_at=T0)
    late = replace(issued(T0 + timedelta(minutes=16))[0], failures=2)
    late = replace(late, last_failure_at=T0 + timedelta(minutes=16))
    assert locked_until([early, late], T0 + timedelta(minutes=16), POLICY) is None
    recent = replace(late, last_failure_at=T0 + timedelta(minutes=14))
    assert locked_until([early, recent], T0 + timedelta(minutes=14), POLICY) is not None


@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 3_600)),
        max_size=12,
    ),
    st.integers(0, 7_200),
)
def test_a_lock_never_outlasts_its_latest_failure_by_more_than_the_lockout(
    failures: list[tuple[int, int]], now_offset: int
) -> None:
    codes = [
        replace(issued()[0], failures=count, last_failure_at=T0 + seconds(at))
        for count, at in failures
    ]
    now = T0 + seconds(now_offset)
    until = locked_until(codes, now, POLICY)
    if until is not None:
        latest = max(c.last_failure_at for c in codes if c.failures and c.last_failure_at)
        assert now < until == latest + POLICY.lockout
        assert sum(c.failures for c in codes) >= POLICY.max_failures


def test_session_tokens_are_random_prefixed_and_stored_hashed() -> None:
    token = new_session_token()
    assert token.startswith("hos_") and looks_like_session_token(token)
    assert len(token) > 40 and token != new_session_token()
    assert len(token_hash(token)) == 64 and token not in token_hash(token)
    assert not looks_like_session_token("eyJhbGciOiJIUzI1NiJ9.e30.sig")


def test_a_session_lives_until_it_expires_or_is_revoked() -> None:
    session = Session("h", NUMBER, T0, T0, T0 + timedelta(hours=8))
    assert session.live(T0 + timedelta(hours=7, minutes=59))
    assert not session.live(T0 + timedelta(hours=8))
    assert not replace(session, revoked_at=T0).live(T0 + seconds(1))
