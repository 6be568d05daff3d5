"""Short-lived bearer tokens: JWT access tokens (RFC 9068 profile) signed with HS256.

Verified tokens are remembered by their text until they expire (a small LRU), so a client
reusing its token is not re-verified on every request: a token's claims cannot change, and
an entry is used only while `exp` is still ahead, exactly as the full check would judge it.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import OrderedDict

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from joserfc.util import urlsafe_b64decode

from handover.services.access import InvalidToken, Principal
from handover.services.model import Role

_ALGORITHM = "HS256"
#: Verified tokens remembered (least recently used forgotten first).
VERIFIED_CACHE_SIZE = 1024


class JwtTokenIssuer:
    def __init__(self, secret_key: str, issuer: str, ttl_seconds: int) -> None:
        self.key = OctKey.import_key(secret_key.encode())
        self.issuer = issuer
        self.ttl = ttl_seconds
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._lock = threading.Lock()

    def issue(self, principal: Principal) -> tuple[str, int]:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": principal.client_id,
            "client_id": principal.client_id,
            "aud": self.issuer,
            "iat": now,
            "exp": now + self.ttl,
            "jti": secrets.token_hex(12),
            "role": principal.role.value,
            "scope": " ".join(sorted(principal.scopes)),
        }
        if principal.carrier_id:
            claims["carrier"] = principal.carrier_id
        if principal.platform_id:
            claims["platform"] = principal.platform_id
        token = jwt.encode(
            {"alg": _ALGORITHM, "typ": "at+jwt"}, claims, self.key, algorithms=[_ALGORITHM]
        )
        return token, self.ttl

    def verify(self, token: str) -> Principal:
        """The token's principal; raises `InvalidToken` when it is not valid (now)."""
        hit = self._verified.get(token)
        if hit is not None:
            principal, expires = hit
            # joserfc refuses a token when exp <= int(now): the same test.
            if expires > int(time.time()):
                with self._lock:
                    if token in self._verified:
                        self._verified.move_to_end(token)
                return principal
            with self._lock:
                self._verified.pop(token, None)
        principal, expires = self._verify(token)
        with self._lock:
            self._verified[token] = (principal, expires)
            while len(self._verified) > VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
        _check_header(token)
        try:
            decoded = jwt.decode(token, self.key, algorithms=[_ALGORITHM])
            jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.issuer},
                exp={"essential": True},
                sub={"essential": True},
            ).validate(decoded.claims)
            claims = decoded.claims
            principal = Principal(
                claims["sub"],
                Role(claims["role"]),
                frozenset(claims.get("scope", "").split()),
                claims.get("carrier"),
                claims.get("platform"),
            )
            return principal, float(claims["exp"])
        except (JoseError, KeyError, ValueError, TypeError) as exc:
            raise InvalidToken(f"invalid access token: {exc}") from None


def _check_header(token: str) -> None:
    """Refuse, before any signature work, a token whose header is not the one Handover
    writes: an object with `alg` HS256 and no `crit` (RFC 8725 §3.1: the verifier decides
    the algorithm; an extension Handover does not know must not reach the JOSE library,
    which has answered odd `crit` values with exceptions other than its own)."""
    encoded = token.split(".", 1)[0]
    try:
        header = json.loads(urlsafe_b64decode(encoded.encode("ascii")))
    except (ValueError, UnicodeEncodeError):
        raise InvalidToken("invalid access token: the header is not base64url JSON") from None
    if not isinstance(header, dict) or header.get("alg") != _ALGORITHM or "crit" in header:
        raise InvalidToken("invalid access token: not a Handover access token header")
