"""Signing in with a one-time SMS code, and the session it opens.

A person proves they hold a number by reading back a 6-digit code sent to it. The rules:

- a code lives 5 minutes and opens one session at most (single use); only the newest
  code of a number counts, so asking again retires the one before;
- codes are stored as HMAC-SHA-256 of (code id, number, code) under a server key. A plain
  hash of a 6-digit code is reversed by trying all 10^6 values, so a copy of the table
  alone would give away live codes; the key (derived from the server's secret) is not in
  the table. Hashes are compared in constant time;
- asking for codes is rate-limited per number (1 per 60 s, 5 per hour) and per client
  address (20 per hour), so Handover cannot be used to flood a phone or a gateway;
- 5 wrong codes for a number within 15 minutes lock the number for 15 minutes (counted
  per code and dated by the code's latest wrong guess): at most ~20 guesses an hour
  against a 10^6 space.

Sessions are 256-bit random bearer tokens (`hos_...`), kept only as SHA-256, bound to the
tenure signed in to: when the number changes hands the session ends with it.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

CODE_DIGITS = 6
TOKEN_PREFIX = "hos_"
#: How long a session lasts after signing in, unless HANDOVER_SESSION_TTL_SECONDS says.
SESSION_TTL = timedelta(hours=8)
_CODE = re.compile(rf"^[0-9]{{{CODE_DIGITS}}}$")


@dataclass(frozen=True, slots=True)
class SignInPolicy:
    code_ttl: timedelta = timedelta(minutes=5)
    #: The shortest gap between two codes to one number, and how many it gets an hour.
    number_gap: timedelta = timedelta(seconds=60)
    number_per_hour: int = 5
    #: Codes one client address may ask for in an hour (whatever the numbers).
    address_per_hour: int = 20
    #: Wrong codes for one number within `failure_window` that lock it for `lockout`.
    max_failures: int = 5
    failure_window: timedelta = timedelta(minutes=15)
    lockout: timedelta = timedelta(minutes=15)

    @property
    def lookback(self) -> timedelta:
        """How far back the codes of a number matter to these rules."""
        return max(timedelta(hours=1), self.failure_window + self.lockout + self.code_ttl)


class SignInRefused(Exception):
    """Why a code was not sent or not accepted; `retry_after` in seconds where waiting helps."""

    def __init__(self, detail: str, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after


class TooManyCodes(SignInRefused):
    """The number or the client address asked for too many codes lately."""


class LockedOut(SignInRefused):
    """Too many wrong codes for this number: no codes are sent or checked for a while."""


class WrongCode(SignInRefused):
    """The code does not match (the attempt counts towards the lockout)."""


class CodeExpired(SignInRefused):
    pass


class NoCodeWaiting(SignInRefused):
    """No code was asked for this number lately, or the last one was already used."""


class MalformedCode(SignInRefused):
    pass


@dataclass(frozen=True, slots=True)
class SignInCode:
    """One code sent (or, for a number not in service, pretended to be sent)."""

    id: str
    e164: str
    code_hash: str
    client_address: str
    created_at: datetime
    expires_at: datetime
    failures: int = 0
    last_failure_at: datetime | None = None
    used_at: datetime | None = None


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def code_hash(key: bytes, code_id: str, e164: str, code: str) -> str:
    message = f"{code_id}\n{e164}\n{code}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def issue_code(
    key: bytes, e164: str, client_address: str, now: datetime, policy: SignInPolicy
) -> tuple[SignInCode, str]:
    """A fresh code for `e164` and its stored form."""
    code, code_id = new_code(), secrets.token_hex(16)
    stored = SignInCode(
        id=code_id,
        e164=e164,
        code_hash=code_hash(key, code_id, e164, code),
        client_address=client_address,
        created_at=now,
        expires_at=now + policy.code_ttl,
    )
    return stored, code


def _seconds(delta: timedelta) -> int:
    return max(1, math.ceil(delta.total_seconds()))


def locked_until(
    codes: Sequence[SignInCode], now: datetime, policy: SignInPolicy
) -> datetime | None:
    """When the number's lockout ends, or None when it is not locked.

    The failures counted are those dated within `failure_window` before the latest one;
    the lock runs `lockout` from that latest wrong guess.
    """
    dated = [c for c in codes if c.failures and c.last_failure_at is not None]
    if not dated:
        return None
    latest = max(c.last_failure_at for c in dated if c.last_failure_at is not None)
    counted = sum(
        c.failures
        for c in dated
        if c.last_failure_at is not None and c.last_failure_at > latest - policy.failure_window
    )
    until = latest + policy.lockout
    return until if counted >= policy.max_failures and until > now else None


def _check_lock(codes: Sequence[SignInCode], now: datetime, policy: SignInPolicy) -> None:
    until = locked_until(codes, now, policy)
    if until is not None:
        raise LockedOut("too many wrong codes for this number; wait", _seconds(until - now))


def admit_request(
    number_codes: Sequence[SignInCode],
    address_requests: Sequence[datetime],
    now: datetime,
    policy: SignInPolicy,
) -> None:
    """Raise unless a new code may be sent, given the number's recent codes and when the
    client address asked for codes in the last hour."""
    _check_lock(number_codes, now, policy)
    hour_ago = now - timedelta(hours=1)
    recent = sorted(c.created_at for c in number_codes if c.created_at > hour_ago)
    if recent and recent[-1] + policy.number_gap > now:
        raise TooManyCodes(
            "a code was sent to this number moments ago",
            _seconds(recent[-1] + policy.number_gap - now),
        )
    if len(recent) >= policy.number_per_hour:
        oldest = recent[-policy.number_per_hour]
        raise TooManyCodes(
            "this number had too many codes this hour", _seconds(oldest + timedelta(hours=1) - now)
        )
    asked = sorted(at for at in address_requests if at > hour_ago)
    if len(asked) >= policy.address_per_hour:
        oldest = asked[-policy.address_per_hour]
        raise TooManyCodes(
            "too many codes asked for from this address this hour",
            _seconds(oldest + timedelta(hours=1) - now),
        )


def check_code(
    key: bytes,
    number_codes: Sequence[SignInCode],
    code: str,
    now: datetime,
    policy: SignInPolicy,
) -> SignInCode:
    """The newest code of the number, when `code` matches it; raise otherwise.

    The caller records a `WrongCode` against the code (`with_failure`) and marks a match
    used, so that it opens one session only.
    """
    code = code.strip()
    if not _CODE.match(code):
        raise MalformedCode(f"the code is {CODE_DIGITS} digits")
    _check_lock(number_codes, now, policy)
    if not number_codes:
        raise NoCodeWaiting("no code was sent to this number lately; ask for one")
    newest = max(number_codes, key=lambda c: c.created_at)
    if newest.used_at is not None:
        raise NoCodeWaiting("this code was already used; ask for a new one")
    if newest.expires_at <= now:
        raise CodeExpired("the code has expired; ask for a new one")
    expected = code_hash(key, newest.id, newest.e164, code)
    if not hmac.compare_digest(expected, newest.code_hash):
        raise WrongCode("the code is not right")
    return newest


def with_failure(code: SignInCode, now: datetime) -> SignInCode:
    """The code after one more wrong guess (as the store records it)."""
    return replace(code, failures=code.failures + 1, last_failure_at=now)


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in session as stored (the token itself is never kept)."""

    token_hash: str
    e164: str
    tenure_start: datetime
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = field(default=None)

    def live(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


def new_session_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def looks_like_session_token(token: str) -> bool:
    return token.startswith(TOKEN_PREFIX) and 20 < len(token) <= 100
