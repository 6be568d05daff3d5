"""Issuing and verifying tenure certificates (rules in `domain.certificates`)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from handover.domain.certificates import (
    CertificateClaims,
    NotInService,
    Status,
    Unverifiable,
    Verification,
    certify,
    in_date,
    judge,
    read_claims,
)
from handover.domain.numbers import parse_number
from handover.services.ports import CertificateSigner, CertificateVerifier, UnitOfWorkFactory


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    token: str
    claims: CertificateClaims


def issue_certificate(
    uow_factory: UnitOfWorkFactory,
    signer: CertificateSigner,
    e164: str,
    now: datetime,
    validity: timedelta,
) -> IssuedCertificate:
    """Certify the current tenure of `e164`; `NotInService` unless it is active or
    suspended (an unknown number is not in service either)."""
    e164 = parse_number(e164).e164
    with uow_factory() as uow:
        number = uow.numbers.current([e164]).get(e164)
    if number is None:
        raise NotInService(f"{e164} is not on record: only a number in service is certified")
    claims = certify(number, signer.issuer, secrets.token_urlsafe(16), now, validity)
    return IssuedCertificate(signer.sign(claims.as_jwt()), claims)


def verify_certificate(
    uow_factory: UnitOfWorkFactory, verifier: CertificateVerifier, token: str, now: datetime
) -> Verification:
    """The signature first, then the time, then the ledger's current tenure of the number."""
    try:
        claims = read_claims(verifier.verify(token))
    except Unverifiable as refused:
        return Verification(refused.status, refused.detail)
    if in_date(claims, now) is not Status.VALID:
        return judge(claims, now, None)
    with uow_factory() as uow:
        number = uow.numbers.current([claims.number]).get(claims.number)
    return judge(claims, now, number)
