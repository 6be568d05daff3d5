"""Signing in with a one-time SMS code, and the session it opens.

A person proves they hold a number by reading back a code texted to it. Every text carries
one code in two forms: **6 digits** to type, and a **long code** (16 characters, 80 bits)
for when the 6 digits have been burnt by someone else's guesses. The rules
(docs/people.md says which threat each one answers):

- **Device lane.** A successful sign-in gives the client a device credential (`hod_` + 256
  random bits, kept only as SHA-256), bound to the number *and* its tenure and valid for 90
  days. A request presenting it gets a code of the device's own, from the device's own text
  budget (1 a minute, 5 an hour), with the device's own count of wrong guesses: nothing
  done without the credential touches the lane. 10 wrong 6-digit guesses since the device
  last signed in revoke it (a stolen credential is no guessing licence).
- **Anonymous lane** (no valid device credential). A number has at most one live anonymous
  code; asking while it lives sends nothing (and answers the same). A code lives until the
  next anonymous text may go out: `backoff(k)` after it, where k counts the anonymous texts
  of the last 24 hours that went unused, itself included: 5, 20, 80, 320, 1280 minutes, at
  least the normal 5 minutes, at most 24 hours. So **any 24 hours hold at most 5 unused
  anonymous texts**, whoever asks; once a code is used, the next text may go after a
  minute. There is no number-wide lockout.
- **Both lanes.** Only a lane's newest code counts, once (single use). 5 wrong 6-digit
  guesses at a code, from anyone, burn its 6 digits: a code has at most 5 guesses
  (1 in 200,000). They do not burn its long code, which guessing cannot reach, nor shorten
  the code's life (so burning does not buy the next text).
- Asking anonymously is limited per client address (20 an hour); the store serialises the
  requests of one address, so the limit is exact under concurrency.
- Codes are stored as HMAC-SHA-256 of (code id, number, code) under a server key: a plain
  hash of a 6-digit code is reversed by trying all 10^6 values, so a copy of the table alone
  would give live codes away. Hashes are compared in constant time.

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
from enum import Enum

CODE_DIGITS = 6
#: The long code: Crockford's base-32 (no I, L, O, U), 16 characters, 80 bits.
LONG_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LONG_CODE_CHARS = 16
TOKEN_PREFIX = "hos_"
#: How long a session lasts after signing in, unless HANDOVER_SESSION_TTL_SECONDS says.
SESSION_TTL = timedelta(hours=8)
DEVICE_PREFIX = "hod_"
_CODE = re.compile(rf"^[0-9]{{{CODE_DIGITS}}}$")
_LONG_CODE = re.compile(rf"^[{LONG_CODE_ALPHABET}]{{{LONG_CODE_CHARS}}}$")
#: What a reader may type for a long-code character (Crockford's decoding), and separators.
_LONG_CODE_READ = str.maketrans({"O": "0", "I": "1", "L": "1", "-": None, " ": None})


@dataclass(frozen=True, slots=True)
class SignInPolicy:
    #: How long a device's code lives, and the least an anonymous code lives.
    code_ttl: timedelta = timedelta(minutes=5)
    #: The shortest gap between two texts of one lane (a device's; anonymous after a use).
    code_gap: timedelta = timedelta(seconds=60)
    #: Texts one device may ask for in an hour.
    device_per_hour: int = 5
    #: How long a device credential lasts from its latest sign-in.
    device_ttl: timedelta = timedelta(days=90)
    #: Wrong 6-digit guesses, since its latest sign-in, that revoke a device credential.
    device_max_failures: int = 10
    #: The anonymous backoff: `backoff_base * backoff_factor**(k - 1)`, at most `backoff_cap`,
    #: with k the unused anonymous texts of the last `backoff_window` (the new one included).
    backoff_base: timedelta = timedelta(minutes=5)
    backoff_factor: int = 4
    backoff_window: timedelta = timedelta(hours=24)
    backoff_cap: timedelta = timedelta(hours=24)
    #: Codes one client address may ask for anonymously in an hour (whatever the numbers).
    address_per_hour: int = 20
    #: Wrong 6-digit guesses that burn a code's 6 digits (its long code still works).
    max_failures: int = 5

    @property
    def lookback(self) -> timedelta:
        """How far back a number's codes matter: the backoff window before the oldest code
        that can still be live (and a device's hour)."""
        return max(self.backoff_window + self.backoff_cap, timedelta(hours=1))


class SignInRefused(Exception):
    """Why a code was not sent or not accepted; `retry_after` in seconds where waiting helps."""

    def __init__(self, detail: str, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after


class TooManyCodes(SignInRefused):
    """The device or the client address asked for too many codes lately."""


class WrongCode(SignInRefused):
    """The code does not match (a wrong 6-digit guess counts against the code)."""


class CodeBurnt(SignInRefused):
    """The code's 6 digits had their 5 wrong guesses: they are no longer checked. The long
    code in the same text still works while the code lives."""


class CodeExpired(SignInRefused):
    pass


class NoCodeWaiting(SignInRefused):
    """No code was asked for this number lately, or the last one was already used."""


class MalformedCode(SignInRefused):
    pass


@dataclass(frozen=True, slots=True)
class SignInCode:
    """One code sent (or, for a number not in service, pretended to be sent).

    `device_id` is the lane: the device that asked for it, or None (anonymous). `failures`
    counts wrong 6-digit guesses.
    """

    id: str
    e164: str
    code_hash: str
    long_hash: str
    client_address: str
    created_at: datetime
    expires_at: datetime
    device_id: str | None = None
    failures: int = 0
    used_at: datetime | None = None

    def live(self, now: datetime) -> bool:
        return self.used_at is None and now < self.expires_at


@dataclass(frozen=True, slots=True)
class IssuedCode:
    stored: SignInCode
    code: str
    long_code: str


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def new_long_code() -> str:
    return "".join(secrets.choice(LONG_CODE_ALPHABET) for _ in range(LONG_CODE_CHARS))


def format_long_code(long_code: str) -> str:
    """In groups of four, as texted: `ABCD-EFGH-JKMN-PQRS`."""
    return "-".join(long_code[i : i + 4] for i in range(0, len(long_code), 4))


def code_hash(key: bytes, code_id: str, e164: str, code: str) -> str:
    """The stored form of either form of a code (they cannot collide: 6 digits vs 16)."""
    message = f"{code_id}\n{e164}\n{code}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


class Form(Enum):
    DIGITS = "digits"
    LONG = "long"


@dataclass(frozen=True, slots=True)
class Attempt:
    """What the person typed, as one of the two forms."""

    form: Form
    value: str


def parse_attempt(text: str) -> Attempt:
    """6 digits, or a long code (any case, dashes and spaces ignored, O read as 0, I/L as 1)."""
    text = text.strip()
    if _CODE.match(text):
        return Attempt(Form.DIGITS, text)
    long_code = text.upper().translate(_LONG_CODE_READ)
    if _LONG_CODE.match(long_code):
        return Attempt(Form.LONG, long_code)
    raise MalformedCode(
        f"the code is {CODE_DIGITS} digits, or the {LONG_CODE_CHARS}-character long code"
    )


def issue_code(
    key: bytes,
    e164: str,
    client_address: str,
    now: datetime,
    expires_at: datetime,
    device_id: str | None = None,
) -> IssuedCode:
    """A fresh code for `e164` in a lane (`device_id`, or None: anonymous), and its stored form."""
    code, long_code, code_id = new_code(), new_long_code(), secrets.token_hex(16)
    stored = SignInCode(
        id=code_id,
        e164=e164,
        code_hash=code_hash(key, code_id, e164, code),
        long_hash=code_hash(key, code_id, e164, long_code),
        client_address=client_address,
        created_at=now,
        expires_at=expires_at,
        device_id=device_id,
    )
    return IssuedCode(stored, code, long_code)


def _seconds(delta: timedelta) -> int:
    return max(1, math.ceil(delta.total_seconds()))


def in_lane(codes: Sequence[SignInCode], device_id: str | None) -> list[SignInCode]:
    """The lane's codes, oldest first."""
    return sorted((c for c in codes if c.device_id == device_id), key=lambda c: c.created_at)


def backoff(unused: int, policy: SignInPolicy) -> timedelta:
    """How long an anonymous code lives (and so how long until the next anonymous text)
    when it is the `unused`-th unused anonymous text of the backoff window."""
    gap = policy.backoff_base
    for _ in range(1, unused):
        if gap >= policy.backoff_cap:
            break
        gap *= policy.backoff_factor
    return max(policy.code_ttl, min(gap, policy.backoff_cap))


def anonymous_expiry(
    codes: Sequence[SignInCode], now: datetime, policy: SignInPolicy
) -> datetime | None:
    """When a new anonymous code would expire, if an anonymous text may go out now; None
    when it may not (the number's anonymous code is live, or was used under a minute ago).

    The new code is counted among the unused texts of the window: a text stops counting
    only when it is used, so whoever asks, at most 5 unused anonymous texts fall in any
    24 hours (the gaps before the 6th add up to 1705 minutes).
    """
    anonymous = in_lane(codes, None)
    if anonymous:
        newest = anonymous[-1]
        if newest.live(now):
            return None
        if newest.used_at is not None and now < newest.created_at + policy.code_gap:
            return None
    since = now - policy.backoff_window
    unused = sum(1 for c in anonymous if c.used_at is None and c.created_at > since)
    return now + backoff(unused + 1, policy)


def admit_device_request(
    device_codes: Sequence[SignInCode], now: datetime, policy: SignInPolicy
) -> None:
    """Raise `TooManyCodes` unless the device may have another text now."""
    hour_ago = now - timedelta(hours=1)
    recent = sorted(c.created_at for c in device_codes if c.created_at > hour_ago)
    if recent and recent[-1] + policy.code_gap > now:
        raise TooManyCodes(
            "this device was sent a code moments ago", _seconds(recent[-1] + policy.code_gap - now)
        )
    if len(recent) >= policy.device_per_hour:
        oldest = recent[-policy.device_per_hour]
        raise TooManyCodes(
            "this device had too many codes this hour", _seconds(oldest + timedelta(hours=1) - now)
        )


def admit_address(asked: Sequence[datetime], now: datetime, policy: SignInPolicy) -> None:
    """Raise `TooManyCodes` when the client address asked for `address_per_hour` codes
    within the hour before `now` (`asked`: when it asked)."""
    hour_ago = now - timedelta(hours=1)
    recent = sorted(at for at in asked if at > hour_ago)
    if len(recent) >= policy.address_per_hour:
        oldest = recent[-policy.address_per_hour]
        raise TooManyCodes(
            "too many codes asked for from this address this hour",
            _seconds(oldest + timedelta(hours=1) - now),
        )


def check_code(
    key: bytes,
    lane_codes: Sequence[SignInCode],
    attempt: Attempt,
    now: datetime,
    policy: SignInPolicy,
) -> SignInCode:
    """The lane's newest code, when `attempt` matches it; raise otherwise.

    The caller records a `WrongCode` in the 6-digit form against the code (`with_failure`)
    and marks a match used, so that it opens one session only. A wrong long code is not
    counted: 80 bits are out of reach of guessing.
    """
    if not lane_codes:
        raise NoCodeWaiting("no code was sent to this number lately; ask for one")
    newest = max(lane_codes, key=lambda c: c.created_at)
    if newest.used_at is not None:
        raise NoCodeWaiting("this code was already used; ask for a new one")
    if newest.expires_at <= now:
        raise CodeExpired("the code has expired; ask for a new one")
    if attempt.form is Form.DIGITS and newest.failures >= policy.max_failures:
        raise CodeBurnt(
            f"too many wrong guesses at this code's {CODE_DIGITS} digits; enter the long "
            "code from the same text, or ask for a new code"
        )
    stored = newest.code_hash if attempt.form is Form.DIGITS else newest.long_hash
    expected = code_hash(key, newest.id, newest.e164, attempt.value)
    if not hmac.compare_digest(expected, stored):
        raise WrongCode("the code is not right")
    return newest


def with_failure(code: SignInCode) -> SignInCode:
    """The code after one more wrong 6-digit guess (as the store records it)."""
    return replace(code, failures=code.failures + 1)


@dataclass(frozen=True, slots=True)
class Device:
    """A device credential as stored (the token itself is never kept)."""

    id: str
    token_hash: str
    e164: str
    #: The tenure signed in to: the credential dies when the number changes hands.
    tenure_start: datetime
    created_at: datetime
    expires_at: datetime
    #: Wrong 6-digit guesses in this device's lane since its latest sign-in.
    failures: int = 0
    revoked_at: datetime | None = None

    def opens(self, e164: str, tenure_start: datetime | None, now: datetime) -> bool:
        """Whether it is a valid credential for `e164` held since `tenure_start` (None:
        the number is not in service)."""
        return (
            self.revoked_at is None
            and now < self.expires_at
            and self.e164 == e164
            and tenure_start is not None
            and self.tenure_start == tenure_start
        )


def new_device(
    e164: str, tenure_start: datetime, now: datetime, policy: SignInPolicy
) -> tuple[Device, str]:
    """A device credential for the holder of `e164`, and its token (given out once)."""
    token = DEVICE_PREFIX + secrets.token_urlsafe(32)
    device = Device(
        id=secrets.token_hex(16),
        token_hash=token_hash(token),
        e164=e164,
        tenure_start=tenure_start,
        created_at=now,
        expires_at=now + policy.device_ttl,
    )
    return device, token


def signed_in_with(device: Device, now: datetime, policy: SignInPolicy) -> Device:
    """The device after a sign-in in its lane or with it: renewed, its failures forgiven."""
    return replace(device, expires_at=now + policy.device_ttl, failures=0)


def with_device_failure(device: Device, now: datetime, policy: SignInPolicy) -> Device:
    """The device after a wrong 6-digit guess in its lane (revoked at the limit)."""
    failures = device.failures + 1
    revoked = now if failures >= policy.device_max_failures else device.revoked_at
    return replace(device, failures=failures, revoked_at=revoked)


def looks_like_device_token(token: str) -> bool:
    return token.startswith(DEVICE_PREFIX) and 20 < len(token) <= 100


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
