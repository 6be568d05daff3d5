"""Tenure certificates as compact JWS, signed with the receipt key.

One key signs receipts and certificates, so one JWK Set (`/.well-known/jwks.json`) verifies
both; the explicit `typ` (`handover-tenure+jwt`) keeps one from passing for the other.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from joserfc.util import urlsafe_b64decode

from handover.adapters.receipts import ReceiptSigner, verify
from handover.domain.certificates import CERTIFICATE_TYPE, Status, Unverifiable
from handover.services.receipts import InvalidReceipt

#: Far more than a certificate needs (under 1 kB); refuses pasted novels before decoding.
MAX_TOKEN_LENGTH = 4096
_COMPACT_JWS = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")


class CertificateKeys:
    """Signs certificates with the receipt signer's key and verifies them against its JWKS."""

    def __init__(self, signer: ReceiptSigner) -> None:
        self.signer = signer

    @property
    def issuer(self) -> str:
        return self.signer.issuer

    def sign(self, claims: Mapping[str, Any]) -> str:
        return self.signer.sign(claims, typ=CERTIFICATE_TYPE)

    def jwks(self) -> dict[str, Any]:
        return self.signer.jwks()

    def verify(self, token: str) -> dict[str, Any]:
        """The signed claims; `Unverifiable` as malformed (not a JWS with JSON header and
        payload) or bad signature (another typ, alg, an unknown key, a broken signature)."""
        token = token.strip()
        _require_shape(token)
        try:
            return verify(token, self.jwks(), typ=CERTIFICATE_TYPE)
        except InvalidReceipt as exc:
            raise Unverifiable(Status.BAD_SIGNATURE, str(exc)) from None


def _require_shape(token: str) -> None:
    if not token:
        raise Unverifiable(Status.MALFORMED, "no token")
    if len(token) > MAX_TOKEN_LENGTH or not _COMPACT_JWS.match(token):
        raise Unverifiable(Status.MALFORMED, "not a compact JWS (header.payload.signature)")
    for name, part in zip(("header", "payload"), token.split(".")[:2], strict=True):
        try:
            decoded = json.loads(urlsafe_b64decode(part.encode()))
        except ValueError:
            decoded = None
        if not isinstance(decoded, dict):
            raise Unverifiable(Status.MALFORMED, f"the {name} is not a JSON object")
