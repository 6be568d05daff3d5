"""The full check answer as a JSON-ready record, and signed receipts of it.

A receipt is the caller's proof, in a dispute, that it asked about a number and what
Handover answered at the time (the FCC RND safe-harbor record): number, date, the
answer, the data version it reflects, when, by whom, signed by Handover.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from handover.domain.dates import instant
from handover.services.check import CheckResult


class InvalidReceipt(ValueError):
    """A receipt that does not verify (bad signature, unknown key, malformed)."""


class ReceiptSigner(Protocol):
    issuer: str
    #: The signing key's id (`kid`), as the JWK Set names it.
    kid: str

    def sign(self, claims: Mapping[str, Any]) -> str:
        """A compact JWS over `claims`."""

    def jwks(self) -> dict[str, Any]:
        """The public half of the signing key, as a JWK Set (RFC 7517)."""


def _iso(epoch: int | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def answer_record(result: CheckResult) -> dict[str, Any]:
    """The full answer: every field of `domain.check.CheckAnswer`, times in ISO 8601 UTC."""
    a = result.answer
    return {
        "number": result.e164,
        "since": instant(result.since, whole_seconds=True),
        "state": a.state.value if a.state is not None else None,
        "recycled": a.recycled,
        "disconnected": a.disconnected,
        "rnd": a.rnd.value,
        "verdict": a.verdict.value,
        "reasons": [reason.value for reason in a.reasons],
        "last_disconnected": _iso(a.last_disconnected),
        "reassigned_at": _iso(a.reassigned_at),
        "data_version": result.data_version,
    }


def receipt_claims(
    result: CheckResult, client_id: str | None, issuer: str, now: datetime
) -> dict[str, Any]:
    """The claims a receipt signs: the full answer plus iss, iat, jti and the caller."""
    claims = answer_record(result)
    claims.update(
        {
            "iss": issuer,
            "iat": int(now.timestamp()),
            "jti": secrets.token_hex(16),
        }
    )
    if client_id is not None:
        claims["client_id"] = client_id
    return claims


def sign_receipt(
    signer: ReceiptSigner, result: CheckResult, client_id: str | None, now: datetime
) -> str:
    return signer.sign(receipt_claims(result, client_id, signer.issuer, now))
