"""Verification of Security Event Tokens (RFC 8417) as SSF 1.0 profiles them.

Every refusal is an `InvalidSet` whose `err` is the RFC 8935 §2.4 code a push receiver
answers with and a poll receiver reports in `setErrs`, so both delivery methods describe a
bad token the same way.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from joserfc import jws
from joserfc.errors import BadSignatureError, JoseError, KeyParameterError

from handover.receiver.events import SecurityEvent
from handover.receiver.jwks import KeySource, UnknownKey

#: The only signature algorithms accepted: those Handover signs with. Never `none` nor HMAC.
ALGORITHMS = frozenset({"ES256", "RS256"})
SET_TYP = "secevent+jwt"
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
#: Members each RFC 9493 format requires, all strings. Other formats are let through.
_FORMAT_MEMBERS: dict[str, tuple[str, ...]] = {
    "phone_number": ("phone_number",),
    "opaque": ("id",),
    "email": ("email",),
    "iss_sub": ("iss", "sub"),
    "account": ("uri",),
    "uri": ("uri",),
    "did": ("url",),
}


class InvalidSet(Exception):
    """The token is refused; `err` is its RFC 8935 / RFC 8936 error code."""

    def __init__(self, err: str, description: str, *, may_pass_later: bool = False) -> None:
        """`may_pass_later`: the same token could verify after a key refresh (its `kid`
        is not known yet, as right after a key rotation): ask for it again, do not refuse
        it for good."""
        super().__init__(f"{err}: {description}")
        self.err = err
        self.description = description
        self.may_pass_later = may_pass_later

    def as_json(self) -> dict[str, str]:
        """The RFC 8935 §2.4 error body (also the value of an RFC 8936 `setErrs` entry)."""
        return {"err": self.err, "description": self.description}


def _malformed(description: str) -> InvalidSet:
    return InvalidSet("invalid_request", description)


def _b64url_json(segment: str, what: str) -> Any:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        return json.loads(raw, object_pairs_hook=_no_duplicate_members)
    except (binascii.Error, ValueError) as exc:
        raise _malformed(f"the {what} is not base64url-encoded JSON") from exc


def _no_duplicate_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Refuse JSON objects that name a member twice: parsers disagree on which one wins."""
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise ValueError(f"duplicate member {name!r}")
        result[name] = value
    return result


def check_subject(sub_id: Any) -> dict[str, Any]:
    """An RFC 9493 subject identifier, checked for the formats this package knows."""
    if not isinstance(sub_id, dict):
        raise _malformed("sub_id is missing or not an object")
    subject_format = sub_id.get("format")
    if not isinstance(subject_format, str) or not subject_format:
        raise _malformed("sub_id has no format")
    for member in _FORMAT_MEMBERS.get(subject_format, ()):
        value = sub_id.get(member)
        if not isinstance(value, str) or not value:
            raise _malformed(f"a {subject_format} sub_id needs a string {member!r}")
    if subject_format == "phone_number" and not _E164.match(sub_id["phone_number"]):
        raise _malformed("sub_id.phone_number is not an E.164 number")
    return sub_id


class SetVerifier:
    """Verifies the SETs of one stream: signed by `issuer` with a key `keys` knows, for
    `audience`. Stateless apart from the key source, so one instance serves all threads.
    """

    def __init__(self, issuer: str, audience: str, keys: KeySource) -> None:
        self.issuer = issuer
        self.audience = audience
        self.keys = keys

    def verify(self, token: str | bytes) -> SecurityEvent:
        """The token's event; raises `InvalidSet`, or `KeysUnavailable` when the key set
        cannot be fetched right now (a reason to retry later, not to refuse the token).
        """
        text = token.decode("ascii", "replace") if isinstance(token, bytes) else token
        text = text.strip()
        segments = text.split(".")
        if len(segments) != 3:
            raise _malformed("not a JWS compact serialization")
        header = _b64url_json(segments[0], "JWS header")
        if not isinstance(header, dict):
            raise _malformed("the JWS header is not an object")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in ALGORITHMS:
            raise InvalidSet("invalid_key", f"algorithm {alg!r} is not accepted")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower().removeprefix("application/") != SET_TYP:
            raise _malformed(f"typ is {typ!r}, not {SET_TYP!r}")
        if "crit" in header:
            raise _malformed("critical header extensions are not supported")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidSet("invalid_key", "the JWS header names no kid")
        try:
            key = self.keys.key(kid)
        except UnknownKey:
            raise InvalidSet(
                "invalid_key", f"no key {kid!r} in the transmitter's JWKS", may_pass_later=True
            ) from None
        try:
            signed = jws.deserialize_compact(text, key, algorithms=[alg])
        except (BadSignatureError, KeyParameterError) as exc:
            raise InvalidSet("invalid_key", f"signature not verified with key {kid!r}") from exc
        except (JoseError, ValueError) as exc:
            raise _malformed(f"the JWS cannot be decoded: {exc}") from exc
        try:
            claims = json.loads(signed.payload, object_pairs_hook=_no_duplicate_members)
        except ValueError as exc:
            raise _malformed("the payload is not JSON") from exc
        if not isinstance(claims, dict):
            raise _malformed("the payload is not a JSON object")
        return self._event(claims)

    def _event(self, claims: dict[str, Any]) -> SecurityEvent:
        iss = claims.get("iss")
        if not isinstance(iss, str):
            raise _malformed("iss is missing")
        if iss != self.issuer:
            raise InvalidSet("invalid_issuer", f"iss {iss!r} is not {self.issuer!r}")
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud
        if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
            raise _malformed("aud is missing or not a string or array of strings")
        if self.audience not in audiences:
            raise InvalidSet("invalid_audience", f"aud does not include {self.audience!r}")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise _malformed("jti is missing")
        iat = claims.get("iat")
        if not isinstance(iat, int) or isinstance(iat, bool):
            raise _malformed("iat is missing or not an integer")
        txn = claims.get("txn")
        if txn is not None and not isinstance(txn, str):
            raise _malformed("txn is not a string")
        # RFC 8417 §2.2 and SSF 1.0: a SET is not an access token, so no `exp`; SSF puts the
        # subject in `sub_id`, never `sub`.
        for forbidden in ("exp", "sub"):
            if forbidden in claims:
                raise _malformed(f"a SET must not carry {forbidden!r}")
        sub_id = check_subject(claims.get("sub_id"))
        events = claims.get("events")
        if not isinstance(events, dict) or len(events) != 1:
            raise _malformed("events must be an object with exactly one member")
        ((event_type, event),) = events.items()
        if not event_type:
            raise _malformed("the event type is empty")
        if not isinstance(event, dict):
            raise _malformed(f"the {event_type} event is not an object")
        return SecurityEvent(
            jti=jti,
            iat=iat,
            txn=txn,
            iss=iss,
            aud=self.audience,
            sub_id=sub_id,
            event_type=event_type,
            event=event,
            claims=claims,
        )
