"""Short-lived bearer tokens: JWT access tokens (RFC 9068 profile) signed with HS256."""

from __future__ import annotations

import secrets
import time

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from handover.services.access import AccessDenied, Principal
from handover.services.model import Role

_ALGORITHM = "HS256"


class JwtTokenIssuer:
    def __init__(self, secret_key: str, issuer: str, ttl_seconds: int) -> None:
        self.key = OctKey.import_key(secret_key.encode())
        self.issuer = issuer
        self.ttl = ttl_seconds

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
        token = jwt.encode(
            {"alg": _ALGORITHM, "typ": "at+jwt"}, claims, self.key, algorithms=[_ALGORITHM]
        )
        return token, self.ttl

    def verify(self, token: str) -> Principal:
        try:
            decoded = jwt.decode(token, self.key, algorithms=[_ALGORITHM])
            jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.issuer},
                exp={"essential": True},
                sub={"essential": True},
            ).validate(decoded.claims)
            claims = decoded.claims
            return Principal(
                claims["sub"],
                Role(claims["role"]),
                frozenset(claims.get("scope", "").split()),
                claims.get("carrier"),
            )
        except (JoseError, KeyError, ValueError) as exc:
            raise AccessDenied(f"invalid access token: {exc}") from None
