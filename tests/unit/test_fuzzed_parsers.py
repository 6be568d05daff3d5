"""Hostile input to every parser that reads text from outside: each either answers or
raises its own documented refusal, never anything else (which the API would turn into a
500). Hypothesis builds the inputs: arbitrary text, and near-misses shaped like the real
thing (JOSE headers of any JSON, CSV rows of odd fields)."""

from __future__ import annotations

import base64
import contextlib
import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc.jwk import ECKey, OKPKey

from handover.adapters.receipts import InvalidReceipt, ReceiptSigner
from handover.adapters.receipts import verify as verify_receipt
from handover.adapters.tokens import JwtTokenIssuer
from handover.domain.numbers import parse_number
from handover.domain.rejections import MAX_DETAIL, QUOTED, Rejected
from handover.domain.reports import COLUMNS, parse_report
from handover.receiver import InvalidSet, SetVerifier, StaticKeys
from handover.services.access import AccessDenied, Principal
from handover.services.model import Role

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ISSUER = "https://handover.test"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
#: JOSE headers: the real members with values of any JSON type, plus anything else.
headers = (
    st.fixed_dictionaries(
        {},
        optional={
            name: json_values | st.sampled_from(["HS256", "ES256", "Ed25519", "none"])
            for name in ("alg", "typ", "kid", "crit", "b64", "jku", "x5u", "jwk")
        },
    )
    | json_values
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@st.composite
def jws_like(draw: st.DrawFn) -> str:
    header = _b64(json.dumps(draw(headers)).encode())
    payload = _b64(json.dumps(draw(json_values)).encode())
    signature = _b64(draw(st.binary(max_size=80)))
    return ".".join((header, payload, signature))


tokens_text = jws_like() | st.text(max_size=300)


@settings(max_examples=300, deadline=None)
@given(tokens_text)
def test_an_access_token_is_a_principal_or_access_denied(token: str) -> None:
    issuer = JwtTokenIssuer("k" * 32, ISSUER, 300)
    with contextlib.suppress(AccessDenied):
        issuer.verify(token)


def test_a_real_access_token_still_verifies() -> None:
    issuer = JwtTokenIssuer("k" * 32, ISSUER, 300)
    principal = Principal("cm-client", Role.CARRIER, frozenset({"carrier:report"}), "cm")
    token, _ = issuer.issue(principal)
    assert issuer.verify(token) == principal


_RECEIPT_SIGNER = ReceiptSigner(OKPKey.generate_key("Ed25519"), ISSUER)


@settings(max_examples=300, deadline=None)
@given(tokens_text)
def test_a_receipt_verifies_or_is_invalid(token: str) -> None:
    with contextlib.suppress(InvalidReceipt):
        verify_receipt(token, _RECEIPT_SIGNER.jwks())


@settings(max_examples=100, deadline=None)
@given(headers)
def test_a_receipt_under_the_real_kid_with_any_header_is_invalid(header: Any) -> None:
    """The header names the real key (so the signature step is reached) but is otherwise
    anything at all."""
    if isinstance(header, dict):
        header = {**header, "kid": _RECEIPT_SIGNER.kid}
    token = ".".join((_b64(json.dumps(header).encode()), _b64(b"{}"), _b64(b"x" * 64)))
    with contextlib.suppress(InvalidReceipt):
        verify_receipt(token, _RECEIPT_SIGNER.jwks())


_SET_KEY = ECKey.generate_key("P-256", {"kid": "k1"})
_SET_VERIFIER = SetVerifier(
    ISSUER, "https://platform.test", StaticKeys([ECKey.import_key(_SET_KEY.as_dict())])
)


@settings(max_examples=300, deadline=None)
@given(tokens_text)
def test_a_set_verifies_or_is_refused_with_an_ssf_error(token: str) -> None:
    try:
        _SET_VERIFIER.verify(token)
    except InvalidSet as refused:
        assert refused.err in {
            "invalid_request",
            "invalid_key",
            "invalid_issuer",
            "invalid_audience",
        }


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=40), st.sampled_from([None, "CN", "US", "cn", "ZZ", ""]))
def test_a_number_parses_or_is_rejected(text: str, region: str | None) -> None:
    try:
        number = parse_number(text, region)
    except Rejected as rejected:
        assert len(rejected.detail) <= MAX_DETAIL
    else:
        assert number.e164.startswith("+") and number.e164[1:].isdigit()


@settings(max_examples=500, deadline=None)
@given(
    st.fixed_dictionaries({name: st.none() | st.text(max_size=60) for name in COLUMNS}),
    st.sampled_from([None, "CN", "US"]),
)
def test_a_carrier_row_parses_or_is_rejected(
    fields: dict[str, str | None], region: str | None
) -> None:
    try:
        parse_report(fields, 2, region, NOW)
    except Rejected as rejected:
        assert len(rejected.detail) <= MAX_DETAIL


def test_a_long_bad_value_is_quoted_only_in_part() -> None:
    row = dict.fromkeys(COLUMNS, "")
    row.update(event_id="e1", number="+8613800138000", event="activated", subscriber="s")
    row["occurred_at"] = "x" * 100_000
    try:
        parse_report(row, 2, None, NOW)
    except Rejected as rejected:
        assert rejected.reason == "invalid_date"
        assert len(rejected.detail) < 2 * QUOTED  # the value is quoted in part
    else:
        raise AssertionError("a date of 100,000 x's was accepted")
