"""Sign-in rules at explicit times: the two forms of a code, single use, burnt digits, the
anonymous lane's one live code and backoff, the device lane's budget, and the limits."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handover.domain.sign_in import (
    LONG_CODE_ALPHABET,
    Attempt,
    CodeBurnt,
    CodeExpired,
    Form,
    MalformedCode,
    NoCodeWaiting,
    Session,
    SignInCode,
    SignInPolicy,
    TooManyCodes,
    WrongCode,
    admit_address,
    admit_device_request,
    anonymous_expiry,
    backoff,
    check_code,
    code_hash,
    format_long_code,
    issue_code,
    looks_like_device_token,
    looks_like_session_token,
    new_code,
    new_device,
    new_long_code,
    new_session_token,
    parse_attempt,
    signed_in_with,
    token_hash,
    with_device_failure,
    with_failure,
)

KEY = b"k" * 32
NUMBER = "+8613800138000"
T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
POLICY = SignInPolicy()


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def issued(
    at: datetime = T0, expires_at: datetime | None = None, device_id: str | None = None
) -> tuple[SignInCode, str, str]:
    code = issue_code(KEY, NUMBER, "10.0.0.1", at, expires_at or at + minutes(5), device_id)
    return code.stored, code.code, code.long_code


def digits(code: str) -> Attempt:
    return Attempt(Form.DIGITS, code)


def long(code: str) -> Attempt:
    return parse_attempt(code)


def other_than(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def test_a_code_has_two_forms_stored_only_as_keyed_hashes() -> None:
    stored, code, long_code = issued()
    assert len(code) == 6 and code.isdigit()
    assert len(long_code) == 16 and set(long_code) <= set(LONG_CODE_ALPHABET)
    assert code not in stored.code_hash and long_code not in stored.long_hash
    assert stored.code_hash == code_hash(KEY, stored.id, NUMBER, code)
    assert stored.long_hash == code_hash(KEY, stored.id, NUMBER, long_code)
    assert stored.code_hash != code_hash(b"another key", stored.id, NUMBER, code)
    assert stored.expires_at == T0 + minutes(5) and stored.device_id is None


def test_the_same_code_hashes_differently_for_another_code_id_or_number() -> None:
    assert code_hash(KEY, "a", NUMBER, "123456") != code_hash(KEY, "b", NUMBER, "123456")
    assert code_hash(KEY, "a", NUMBER, "123456") != code_hash(KEY, "a", "+8613900139000", "123456")


def test_codes_are_spread_over_the_whole_range() -> None:
    codes = {new_code() for _ in range(2000)}
    assert len(codes) > 1900
    assert any(code.startswith("0") for code in codes)
    longs = {new_long_code() for _ in range(2000)}
    assert len(longs) == 2000
    assert set("".join(longs)) == set(LONG_CODE_ALPHABET)


def test_a_long_code_is_read_the_way_people_type_it() -> None:
    assert format_long_code("ABCDEFGHJKMNPQRS") == "ABCD-EFGH-JKMN-PQRS"
    expected = Attempt(Form.LONG, "0BCD1FGH1KMNPQRS")
    for typed in ("0BCD-1FGH-1KMN-PQRS", " obcd ifgh lkmn pqrs ", "OBCD1FGHLKMNPQRS"):
        assert parse_attempt(typed) == expected
    assert parse_attempt(" 012345 ") == Attempt(Form.DIGITS, "012345")
    for malformed in (
        "12345",
        "1234567",
        "12a456",
        "",
        "ABCD-EFGH-JKMN-PQR",
        "ABCD-EFGH-JKMN-PQRU",
    ):
        with pytest.raises(MalformedCode):
            parse_attempt(malformed)


def test_either_form_of_the_newest_code_matches_until_it_expires() -> None:
    stored, code, long_code = issued()
    almost = T0 + seconds(299)
    assert check_code(KEY, [stored], digits(code), almost, POLICY) == stored
    assert check_code(KEY, [stored], long(format_long_code(long_code)), almost, POLICY) == stored
    with pytest.raises(CodeExpired):
        check_code(KEY, [stored], digits(code), T0 + seconds(300), POLICY)
    with pytest.raises(CodeExpired):
        check_code(KEY, [stored], long(long_code), T0 + seconds(300), POLICY)


def test_a_used_code_does_not_open_a_second_session() -> None:
    stored, code, long_code = issued()
    used = replace(stored, used_at=T0 + seconds(10))
    for attempt in (digits(code), long(long_code)):
        with pytest.raises(NoCodeWaiting, match="already used"):
            check_code(KEY, [used], attempt, T0 + seconds(20), POLICY)


def test_only_the_newest_code_of_a_lane_counts() -> None:
    first, first_code, _ = issued()
    second, second_code, _ = issued(T0 + seconds(61))
    later = T0 + seconds(70)
    assert check_code(KEY, [first, second], digits(second_code), later, POLICY) == second
    if first_code != second_code:
        with pytest.raises(WrongCode):
            check_code(KEY, [first, second], digits(first_code), later, POLICY)


def test_a_wrong_code_is_refused() -> None:
    stored, code, long_code = issued()
    with pytest.raises(WrongCode):
        check_code(KEY, [stored], digits(other_than(code)), T0, POLICY)
    with pytest.raises(WrongCode):
        check_code(KEY, [stored], long("0" * 16 if long_code != "0" * 16 else "1" * 16), T0, POLICY)
    with pytest.raises(NoCodeWaiting):
        check_code(KEY, [], digits(code), T0, POLICY)


def test_five_wrong_guesses_burn_the_digits_not_the_long_code() -> None:
    stored, code, long_code = issued()
    for _ in range(5):
        with pytest.raises(WrongCode):
            check_code(KEY, [stored], digits(other_than(code)), T0, POLICY)
        stored = with_failure(stored)
    with pytest.raises(CodeBurnt):
        check_code(KEY, [stored], digits(code), T0 + seconds(1), POLICY)  # even the right one
    assert check_code(KEY, [stored], long(long_code), T0 + seconds(2), POLICY) == stored


@given(st.lists(st.integers(0, 10**6 - 1), max_size=40))
def test_a_code_takes_at_most_five_guesses_at_its_digits(guesses: list[int]) -> None:
    """Whatever is typed, at most `max_failures` wrong 6-digit guesses are ever checked."""
    stored, code, _ = issued()
    checked = 0
    for guess in guesses:
        typed = f"{guess:06d}"
        if typed == code:
            continue  # 1 in 10**6: a lucky guess is not what this counts
        try:
            check_code(KEY, [stored], digits(typed), T0, POLICY)
        except WrongCode:
            checked += 1
            stored = with_failure(stored)
        except CodeBurnt:
            pass
    assert checked == min(len([g for g in guesses if f"{g:06d}" != code]), POLICY.max_failures)


def test_the_anonymous_backoff_grows_fourfold_from_five_minutes_to_a_day() -> None:
    gaps = [backoff(k, POLICY) for k in range(1, 8)]
    assert gaps == [minutes(m) for m in (5, 20, 80, 320, 1280)] + [timedelta(hours=24)] * 2
    assert backoff(10_000, POLICY) == timedelta(hours=24)


def test_a_live_anonymous_code_means_no_new_text() -> None:
    assert anonymous_expiry([], T0, POLICY) == T0 + minutes(5)
    first, _, _ = issued()
    assert anonymous_expiry([first], T0 + minutes(4), POLICY) is None
    burnt = replace(first, failures=5)  # burning does not buy the next text either
    assert anonymous_expiry([burnt], T0 + minutes(4), POLICY) is None
    # Unused and expired: the next one lives 20 minutes.
    assert anonymous_expiry([burnt], T0 + minutes(5), POLICY) == T0 + minutes(25)


def test_a_device_code_is_no_reason_to_hold_back_an_anonymous_one() -> None:
    device_code, _, _ = issued(device_id="d1")
    assert anonymous_expiry([device_code], T0 + seconds(1), POLICY) == T0 + seconds(301)


def test_a_used_code_lets_the_next_text_go_after_a_minute_and_does_not_count() -> None:
    unused, _, _ = issued(T0 - minutes(30))
    used = replace(issued(T0)[0], used_at=T0 + seconds(20))
    assert anonymous_expiry([unused, used], T0 + seconds(59), POLICY) is None
    # One unused text in the window (the used one is not counted): this is the 2nd.
    assert anonymous_expiry([unused, used], T0 + seconds(60), POLICY) == T0 + minutes(21)


def test_texts_older_than_a_day_leave_the_backoff() -> None:
    old, _, _ = issued(T0, T0 + minutes(5))
    now = T0 + timedelta(hours=24)
    assert anonymous_expiry([old], now, POLICY) == now + minutes(5)


def test_asking_every_minute_gets_five_texts_a_day() -> None:
    codes: list[SignInCode] = []
    for minute in range(3 * 24 * 60):
        now = T0 + minutes(minute)
        expiry = anonymous_expiry(codes, now, POLICY)
        if expiry is not None:
            codes.append(issued(now, expiry)[0])
    sent = [(c.created_at - T0) / minutes(1) for c in codes]
    assert sent[:6] == [0, 5, 25, 105, 425, 1705]
    for day in range(3):
        assert sum(1 for m in sent if day * 1440 <= m < (day + 1) * 1440) <= 5


@given(
    st.lists(
        st.tuples(st.integers(0, 3 * 24 * 60 * 60), st.sampled_from(["ask", "use"])),
        max_size=300,
    )
)
def test_whoever_asks_any_24_hours_hold_at_most_five_unused_anonymous_texts(
    events: list[tuple[int, str]],
) -> None:
    """Asks at any times, and the owner using the live code at any times: one anonymous
    code lives at a time, each lives at least 5 minutes, and no 24 hours hold 6 unused."""
    codes: list[SignInCode] = []
    for second, what in sorted(events):
        now = T0 + seconds(second)
        live = [c for c in codes if c.live(now)]
        assert len(live) <= 1
        if what == "use":
            if live:
                codes[codes.index(live[0])] = replace(live[0], used_at=now)
            continue
        expiry = anonymous_expiry(codes, now, POLICY)
        if expiry is None:
            assert live or (codes[-1].used_at and now < codes[-1].created_at + POLICY.code_gap)
            continue
        assert not live and expiry - now >= POLICY.code_ttl
        codes.append(issued(now, expiry)[0])
    unused = sorted(c.created_at for c in codes if c.used_at is None)
    for index, first in enumerate(unused):
        assert sum(1 for at in unused[index:] if at < first + timedelta(hours=24)) <= 5


def test_one_device_code_a_minute_and_five_an_hour() -> None:
    codes = [issued(T0 + minutes(10 * i), device_id="d1")[0] for i in range(5)]
    with pytest.raises(TooManyCodes) as refused:
        admit_device_request(codes[:1], T0 + seconds(45), POLICY)
    assert refused.value.retry_after == 15
    with pytest.raises(TooManyCodes) as refused:
        admit_device_request(codes, T0 + minutes(45), POLICY)
    assert refused.value.retry_after == 15 * 60  # when the first of the five is an hour old
    admit_device_request(codes, T0 + timedelta(hours=1, seconds=1), POLICY)


def test_twenty_anonymous_asks_an_hour_per_client_address() -> None:
    asked = [T0 + minutes(i) for i in range(20)]
    with pytest.raises(TooManyCodes, match="address") as refused:
        admit_address(asked, T0 + minutes(30), POLICY)
    assert refused.value.retry_after == 30 * 60
    admit_address(asked[:19], T0 + minutes(30), POLICY)
    admit_address(asked, T0 + timedelta(hours=1, seconds=1), POLICY)


def test_a_device_opens_its_number_and_tenure_only_until_it_expires_or_is_revoked() -> None:
    tenure = datetime(2024, 7, 1, tzinfo=UTC)
    device, token = new_device(NUMBER, tenure, T0, POLICY)
    assert looks_like_device_token(token) and not looks_like_session_token(token)
    assert device.token_hash == token_hash(token) and token not in device.token_hash
    assert device.expires_at == T0 + timedelta(days=90)
    assert device.opens(NUMBER, tenure, T0 + timedelta(days=89))
    assert not device.opens(NUMBER, tenure, T0 + timedelta(days=90))
    assert not device.opens("+8613900139000", tenure, T0)
    assert not device.opens(NUMBER, tenure + timedelta(days=1), T0)  # the number changed hands
    assert not device.opens(NUMBER, None, T0)  # not in service
    assert not replace(device, revoked_at=T0).opens(NUMBER, tenure, T0 + seconds(1))


def test_ten_wrong_guesses_in_its_lane_revoke_a_device_and_a_sign_in_forgives_them() -> None:
    tenure = datetime(2024, 7, 1, tzinfo=UTC)
    device, _ = new_device(NUMBER, tenure, T0, POLICY)
    for i in range(9):
        device = with_device_failure(device, T0 + seconds(i), POLICY)
    assert device.revoked_at is None and device.failures == 9
    renewed = signed_in_with(device, T0 + timedelta(days=30), POLICY)
    assert renewed.failures == 0 and renewed.expires_at == T0 + timedelta(days=120)
    revoked = with_device_failure(device, T0 + minutes(1), POLICY)
    assert revoked.revoked_at == T0 + minutes(1)
    assert not revoked.opens(NUMBER, tenure, T0 + minutes(2))


def test_session_tokens_are_random_prefixed_and_stored_hashed() -> None:
    token = new_session_token()
    assert token.startswith("hos_") and looks_like_session_token(token)
    assert len(token) > 40 and token != new_session_token()
    assert len(token_hash(token)) == 64 and token not in token_hash(token)
    assert not looks_like_session_token("eyJhbGciOiJIUzI1NiJ9.e30.sig")
    assert not looks_like_device_token(token)


def test_a_session_lives_until_it_expires_or_is_revoked() -> None:
    session = Session("h", NUMBER, T0, T0, T0 + timedelta(hours=8))
    assert session.live(T0 + timedelta(hours=7, minutes=59))
    assert not session.live(T0 + timedelta(hours=8))
    assert not replace(session, revoked_at=T0).live(T0 + seconds(1))
