"""Signed check receipts: compact JWS (RFC 7515) with Ed25519 (RFC 9864 `Ed25519`) or ES256.

A receipt is a JWT-shaped claim set signed with the server's receipt key; the key's public
half is published as a JWK Set (RFC 7517) at `/.well-known/jwks.json`, and its `kid` is the
key's RFC 7638 thumbprint, so anyone holding the JWKS can verify a receipt offline.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, OKPKey

from handover.services.receipts import InvalidReceipt

#: The receipt's JOSE `typ` (RFC 8725 §3.11: explicit typing).
RECEIPT_TYPE = "handover-receipt+jwt"
ALGORITHMS = ("Ed25519", "ES256")


class InvalidReceiptKey(ValueError):
    """A receipt key that is neither an Ed25519 nor a P-256 private key."""


def _algorithm(key: OKPKey | ECKey) -> str:
    if isinstance(key, OKPKey) and key.curve_name == "Ed25519":
        return "Ed25519"
    if isinstance(key, ECKey) and key.curve_name == "P-256":
        return "ES256"
    raise InvalidReceiptKey("the receipt key must be an Ed25519 (OKP) or a P-256 (EC) key")


def load_key(text: str) -> OKPKey | ECKey:
    """A private signing key from a JWK (JSON) or a PEM (PKCS#8 or SEC1)."""
    text = text.strip()
    key: OKPKey | ECKey
    try:
        if text.startswith("{"):
            data = json.loads(text)
            kty = data.get("kty")
            if kty == "OKP":
                key = OKPKey.import_key(data)
            elif kty == "EC":
                key = ECKey.import_key(data)
            else:
                raise InvalidReceiptKey(f"unsupported JWK kty {kty!r} (use OKP or EC)")
        else:
            try:
                key = OKPKey.import_key(text)
            except (JoseError, ValueError, TypeError):
                key = ECKey.import_key(text)
    except InvalidReceiptKey:
        raise
    except (JoseError, ValueError, TypeError) as exc:
        raise InvalidReceiptKey(f"cannot read the receipt key: {exc}") from None
    _algorithm(key)
    if not key.is_private:
        raise InvalidReceiptKey("the receipt key must be a private key")
    return key


class ReceiptSigner:
    """Signs receipts with one key; publishes its public half."""

    def __init__(self, key: OKPKey | ECKey, issuer: str) -> None:
        self.key = key
        self.issuer = issuer
        self.algorithm = _algorithm(key)
        self.kid = key.thumbprint()

    def sign(self, claims: Mapping[str, Any], typ: str = RECEIPT_TYPE) -> str:
        """A compact JWS over `claims`; `typ` types it (another kind of statement signed
        with the same key, such as a tenure certificate, names its own)."""
        header = {"alg": self.algorithm, "kid": self.kid, "typ": typ}
        return jwt.encode(header, dict(claims), self.key, algorithms=[self.algorithm])

    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = dict(self.key.as_dict(private=False))
        jwk.update({"kid": self.kid, "use": "sig", "alg": self.algorithm})
        return jwk

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk()]}


def header_of(token: str) -> dict[str, Any]:
    """The unverified protected header (to show which key a receipt names)."""
    from joserfc.util import urlsafe_b64decode

    try:
        encoded = token.strip().split(".")[0]
        header = json.loads(urlsafe_b64decode(encoded.encode()))
    except (ValueError, IndexError) as exc:
        raise InvalidReceipt(f"not a compact JWS: {exc}") from None
    if not isinstance(header, dict):
        raise InvalidReceipt("not a compact JWS: the header is not a JSON object")
    return header


def verify(token: str, jwks: Mapping[str, Any], typ: str = RECEIPT_TYPE) -> dict[str, Any]:
    """The claims of a receipt (or another statement of type `typ`) signed by a key in
    `jwks`; raises `InvalidReceipt`."""
    token = token.strip()
    header = header_of(token)
    if header.get("alg") not in ALGORITHMS:
        raise InvalidReceipt(f"algorithm {header.get('alg')!r} is not accepted")
    if header.get("typ") != typ:
        raise InvalidReceipt(f"typ {header.get('typ')!r} is not {typ!r}")
    keys = [k for k in jwks.get("keys", []) if k.get("kid") == header.get("kid")]
    if not keys:
        raise InvalidReceipt(f"no key with kid {header.get('kid')!r} in the key set")
    try:
        key_set = KeySet.import_key_set({"keys": keys})
        decoded = jwt.decode(token, key_set, algorithms=list(ALGORITHMS))
    except (JoseError, ValueError, TypeError) as exc:
        raise InvalidReceipt(f"signature does not verify: {exc}") from None
    claims: dict[str, Any] = dict(decoded.claims)
    return claims
