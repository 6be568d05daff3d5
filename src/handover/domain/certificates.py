"""Tenure certificates: "number N has been held by its current subscriber since D".

A certificate is the claim set a new owner hands a debt collector or a support desk. It
proves the number changed hands (`reassigned`, with the date the earlier tenure ended)
without saying anything about who held it before: no subscriber reference of any tenure
is ever a claim. Signing is an adapter's job; this module decides what may be certified,
what the claims are, and how a verified claim set is judged at a given moment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

from handover.domain.dates import instant, utc
from handover.domain.lifecycle import IN_SERVICE, Number

#: The JOSE `typ` of a certificate (RFC 8725 §3.11): nothing else passes for one.
CERTIFICATE_TYPE = "handover-tenure+jwt"
DEFAULT_VALIDITY = timedelta(days=180)
#: How far a verifier's clock may run behind the issuer's before `nbf` refuses it.
CLOCK_SKEW = timedelta(seconds=60)


class NotInService(ValueError):
    """Only a number in service (active or suspended) with a tenure gets a certificate."""


class Status(StrEnum):
    VALID = "valid"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    BAD_SIGNATURE = "bad_signature"
    MALFORMED = "malformed"


class Standing(StrEnum):
    """Whether the ledger still agrees with a genuine, unexpired certificate."""

    CURRENT = "current"
    SUPERSEDED = "superseded"


class Unverifiable(Exception):
    """A token that is not a genuine certificate: `status` is bad signature or malformed."""

    def __init__(self, status: Status, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


@dataclass(frozen=True, slots=True)
class CertificateClaims:
    issuer: str
    jti: str
    issued_at: datetime
    not_before: datetime
    expires_at: datetime
    number: str
    held_since: datetime
    carrier: str
    #: When the earlier tenure ended (a date only); None when the number had none.
    previous_tenure_ended: date | None = None

    @property
    def reassigned(self) -> bool:
        return self.previous_tenure_ended is not None

    def as_jwt(self) -> dict[str, Any]:
        """The JWT claim set (RFC 7519 NumericDates for iat, nbf and exp)."""
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "jti": self.jti,
            "iat": int(self.issued_at.timestamp()),
            "nbf": int(self.not_before.timestamp()),
            "exp": int(self.expires_at.timestamp()),
            "number": self.number,
            "held_since": instant(self.held_since),
            "carrier": self.carrier,
        }
        if self.previous_tenure_ended is not None:
            claims["reassigned"] = True
            claims["previous_tenure_ended"] = self.previous_tenure_ended.isoformat()
        return claims


def certify(
    number: Number, issuer: str, jti: str, now: datetime, validity: timedelta = DEFAULT_VALIDITY
) -> CertificateClaims:
    """The claims certifying `number`'s current tenure; `NotInService` when it has none."""
    if number.state not in IN_SERVICE or number.tenure is None or number.carrier is None:
        state = number.state.value if number.state else "never reported"
        raise NotInService(
            f"{number.e164} is {state}: only a number in service has a tenure certificate"
        )
    ended = None
    if number.reassigned_at is not None and number.disconnected_at is not None:
        ended = utc(number.disconnected_at).date()
    issued = utc(now).replace(microsecond=0)
    return CertificateClaims(
        issuer=issuer,
        jti=jti,
        issued_at=issued,
        not_before=issued,
        expires_at=issued + validity,
        number=number.e164,
        held_since=utc(number.tenure.start),
        carrier=number.carrier,
        previous_tenure_ended=ended,
    )


def read_claims(claims: Mapping[str, Any]) -> CertificateClaims:
    """The claims of a verified token; `Unverifiable(MALFORMED)` when they are not a
    certificate's."""
    try:
        ended = claims.get("previous_tenure_ended")
        if bool(claims.get("reassigned")) != (ended is not None):
            raise ValueError("reassigned and previous_tenure_ended go together")
        return CertificateClaims(
            issuer=_text(claims["iss"]),
            jti=_text(claims["jti"]),
            issued_at=_numeric_date(claims["iat"]),
            not_before=_numeric_date(claims["nbf"]),
            expires_at=_numeric_date(claims["exp"]),
            number=_text(claims["number"]),
            held_since=utc(datetime.fromisoformat(_text(claims["held_since"]))),
            carrier=_text(claims["carrier"]),
            previous_tenure_ended=date.fromisoformat(_text(ended)) if ended else None,
        )
    except (KeyError, TypeError, ValueError, OverflowError, OSError) as exc:
        raise Unverifiable(Status.MALFORMED, f"not a tenure certificate's claims: {exc}") from None


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"expected a non-empty string, got {value!r}")
    return value


def _numeric_date(value: Any) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a NumericDate, got {value!r}")
    return datetime.fromtimestamp(value, UTC)


def in_date(claims: CertificateClaims, now: datetime) -> Status:
    """`VALID`, `NOT_YET_VALID` (before nbf, beyond the clock skew) or `EXPIRED` (at exp)."""
    if utc(now) + CLOCK_SKEW < claims.not_before:
        return Status.NOT_YET_VALID
    if utc(now) >= claims.expires_at:
        return Status.EXPIRED
    return Status.VALID


def standing(claims: CertificateClaims, number: Number | None) -> Standing:
    """`CURRENT` while the ledger's number is in service in the tenure that started at
    `held_since`; `SUPERSEDED` once it was cancelled, released or reassigned since.

    Porting and restoring within the freeze keep the tenure, so they keep a certificate
    current (a restored number is current again).
    """
    if number is None or number.state not in IN_SERVICE or number.tenure is None:
        return Standing.SUPERSEDED
    same_tenure = utc(number.tenure.start) == claims.held_since
    return Standing.CURRENT if same_tenure else Standing.SUPERSEDED


@dataclass(frozen=True, slots=True)
class Verification:
    """What verifying a token found. `claims` is set once the signature verified;
    `standing` once the certificate is also in date."""

    status: Status
    detail: str = ""
    claims: CertificateClaims | None = None
    standing: Standing | None = None

    @property
    def valid(self) -> bool:
        return self.status is Status.VALID

    @property
    def current(self) -> bool:
        """Genuine, in date, and still describing the number's current subscriber."""
        return self.valid and self.standing is Standing.CURRENT


def judge(claims: CertificateClaims, now: datetime, number: Number | None) -> Verification:
    """Time first, then the ledger: a genuine certificate's verdict at `now`."""
    status = in_date(claims, now)
    if status is Status.NOT_YET_VALID:
        return Verification(status, f"valid from {instant(claims.not_before)}", claims)
    if status is Status.EXPIRED:
        return Verification(status, f"expired at {instant(claims.expires_at)}", claims)
    found = standing(claims, number)
    detail = (
        "the number is still held in the certified tenure"
        if found is Standing.CURRENT
        else "the number has been cancelled or has changed hands since it was certified"
    )
    return Verification(status, detail, claims, found)
