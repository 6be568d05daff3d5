"""Tenure certificates over HTTP: issue one, verify one, print one.

- `POST /v1/subscriber/certificates` (a signed-in subscriber): a certificate of their number.
- `POST /v1/certificates/verify` (public, JSON) and `GET /certificates/verify` (public page).
- `GET /certificates/print?token=` (public): the A4 page with both languages and a QR code;
  only a valid, current certificate prints.

Certificates are signed with the receipt key; `/.well-known/jwks.json` verifies them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from handover import bootstrap
from handover.api.deps import AppSettings, SignedIn, UowFactory
from handover.api.edge import Inbound
from handover.domain.certificates import CertificateClaims, Standing, Status, Verification
from handover.services.certificates import issue_certificate, verify_certificate
from handover.web import render
from handover.web.qr import qr_svg

router = APIRouter(tags=["certificates"])

VERIFY_PAGE = "/certificates/verify"
PRINT_PAGE = "/certificates/print"
#: Longer bodies than any certificate are refused by validation, not read.
MAX_BODY_TOKEN = 16_384


async def _keys(request: Request) -> bootstrap.CertificateKeys:
    return bootstrap.certificate_keys(request.app.state.receipt_signer)


Keys = Annotated[bootstrap.CertificateKeys, Depends(_keys)]


class TokenIn(Inbound):
    token: str = Field(max_length=MAX_BODY_TOKEN, description="The certificate (compact JWS)")


class CertificateClaimsPublic(BaseModel):
    iss: str
    jti: str
    iat: int
    nbf: int
    exp: int
    number: str
    held_since: str
    carrier: str
    reassigned: bool = False
    previous_tenure_ended: str | None = None


class IssuedCertificatePublic(BaseModel):
    token: str
    claims: CertificateClaimsPublic
    print_url: str
    verify_url: str


class CertificateVerificationPublic(BaseModel):
    """`valid`: genuine and in date; `current`: valid and the number is still held in the
    certified tenure. Rely on a certificate only when `current` is true."""

    valid: bool
    status: Status
    current: bool
    standing: Standing | None = None
    detail: str = ""
    number: str | None = None
    held_since: str | None = None
    carrier: str | None = None
    reassigned: bool | None = None
    previous_tenure_ended: str | None = None
    issuer: str | None = None
    issued_at: str | None = None
    expires_at: str | None = None
    jti: str | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _moment(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _shown(moment: datetime) -> str:
    """A moment as people read it on the pages: `2025-03-01 08:30:15 UTC`."""
    return _moment(moment).replace("T", " ").replace("Z", " UTC")


def _day(moment: datetime | date | None) -> str | None:
    if isinstance(moment, datetime):
        return moment.astimezone(UTC).date().isoformat()
    return moment.isoformat() if moment is not None else None


def _page_url(base: str, path: str, token: str) -> str:
    return f"{base.rstrip('/')}{path}?{urlencode({'token': token})}"


@router.post(
    "/v1/subscriber/certificates",
    response_model=IssuedCertificatePublic,
    status_code=201,
    responses={401: {"description": "Not signed in"}, 409: {"description": "Not in service"}},
)
def issue(
    person: SignedIn, uow_factory: UowFactory, keys: Keys, settings: AppSettings
) -> IssuedCertificatePublic:
    """A tenure certificate of the signed-in subscriber's number: "held by its current
    subscriber since D", signed, with links to print and verify it."""
    validity = timedelta(days=settings.certificate_ttl_days)
    issued = issue_certificate(uow_factory, keys, person.e164, _now(), validity)
    base = settings.public_url
    return IssuedCertificatePublic(
        token=issued.token,
        claims=CertificateClaimsPublic(**issued.claims.as_jwt()),
        print_url=_page_url(base, PRINT_PAGE, issued.token),
        verify_url=_page_url(base, VERIFY_PAGE, issued.token),
    )


@router.post("/v1/certificates/verify", response_model=CertificateVerificationPublic)
def verify(body: TokenIn, uow_factory: UowFactory, keys: Keys) -> CertificateVerificationPublic:
    """Is this certificate genuine (signed by a key in our JWKS, typed as a certificate), in
    date, and still current (the number has not been cancelled or changed hands since)?
    Anyone may ask; a token that is not a certificate is an answer, not an error."""
    found = verify_certificate(uow_factory, keys, body.token, _now())
    answer = CertificateVerificationPublic(
        valid=found.valid,
        status=found.status,
        current=found.current,
        standing=found.standing,
        detail=found.detail,
    )
    claims = found.claims
    if claims is not None:
        answer = answer.model_copy(update=_summary(claims))
    return answer


def _summary(claims: CertificateClaims) -> dict[str, Any]:
    return {
        "number": claims.number,
        "held_since": _moment(claims.held_since),
        "carrier": claims.carrier,
        "reassigned": claims.reassigned,
        "previous_tenure_ended": _day(claims.previous_tenure_ended),
        "issuer": claims.issuer,
        "issued_at": _moment(claims.issued_at),
        "expires_at": _moment(claims.expires_at),
        "jti": claims.jti,
    }


def _view(found: Verification) -> dict[str, Any]:
    """What the pages show of a verification: the verdict's words and the claims' dates."""
    claims = found.claims
    key = f"verdict.{found.status.value}"
    if found.valid:
        key = "verdict.current" if found.current else "verdict.superseded"
    view: dict[str, Any] = {
        "status": found.status.value,
        "standing": found.standing.value if found.standing else None,
        "current": found.current,
        "verdict_key": key,
        "detail": "" if found.current else found.detail,
        "claims": None,
        "params": {},
    }
    if claims is not None:
        shown = {
            "number": claims.number,
            "held_since": _day(claims.held_since),
            "previous_tenure_ended": _day(claims.previous_tenure_ended),
            "carrier": claims.carrier,
            "issuer": claims.issuer,
            "issued_at": _shown(claims.issued_at),
            "expires_at": _shown(claims.expires_at),
            "jti": claims.jti,
        }
        view["claims"] = shown
        view["params"] = {
            "number": claims.number,
            "since": shown["held_since"],
            "expires": shown["expires_at"],
            "not_before": _shown(claims.not_before),
        }
    return view


@router.get(VERIFY_PAGE, response_class=HTMLResponse, include_in_schema=False)
def verify_page(
    request: Request, uow_factory: UowFactory, keys: Keys, token: str = ""
) -> HTMLResponse:
    """The public verify page: a verdict for `?token=`, and a form to paste one."""
    result = None
    if token.strip():
        result = _view(verify_certificate(uow_factory, keys, token, _now()))
    context = {"result": result, "token": token, "verify_path": VERIFY_PAGE, "note": None}
    return render(request, "certificates/verify.html", context)


@router.get(PRINT_PAGE, response_class=HTMLResponse, include_in_schema=False)
def print_page(
    request: Request, uow_factory: UowFactory, keys: Keys, settings: AppSettings, token: str = ""
) -> HTMLResponse:
    """The printable certificate (A4, English and Chinese, with a QR code to the verify
    page); a token that is not valid and current gets the verify page's verdict, 400."""
    found = verify_certificate(uow_factory, keys, token, _now())
    if not found.current:
        context = {
            "result": _view(found),
            "token": token,
            "verify_path": VERIFY_PAGE,
            "note": "print.refused",
        }
        return render(request, "certificates/verify.html", context, status_code=400)
    base = settings.public_url.rstrip("/")
    verify_url = _page_url(base, VERIFY_PAGE, token.strip())
    context = {
        "result": _view(found),
        "token": token.strip(),
        "qr": qr_svg(verify_url, title="Verify · 验证"),
        "verify_url": verify_url,
        "verify_page": f"{base}{VERIFY_PAGE}",
        "jwks_url": f"{base}/.well-known/jwks.json",
    }
    return render(request, "certificates/print.html", context)
