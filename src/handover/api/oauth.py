"""OAuth 2.0 token endpoint (RFC 6749 §4.4, client credentials)."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import APIRouter, Form, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from handover.api.deps import Tokens, UowFactory
from handover.domain.text import text_fault
from handover.services.access import InvalidClient, InvalidScope, authenticate_client

router = APIRouter(tags=["oauth"])


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    scope: str


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="handover"'
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=status, headers=headers
    )


def _basic(authorization: str | None) -> tuple[str, str] | None:
    if not authorization or not authorization.lower().startswith("basic "):
        return None
    try:
        user, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


@router.post(
    "/oauth/token",
    response_model=TokenResponse,
    responses={400: {"description": "OAuth error"}, 401: {"description": "Bad client"}},
)
def token(
    uow_factory: UowFactory,
    tokens: Tokens,
    grant_type: Annotated[str | None, Form()] = None,
    scope: Annotated[str | None, Form()] = None,
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Exchange client credentials (HTTP Basic or form fields) for a short-lived token."""
    if not grant_type:
        return _oauth_error(400, "invalid_request", "grant_type is missing")
    if grant_type != "client_credentials":
        return _oauth_error(400, "unsupported_grant_type", "only client_credentials is supported")
    credentials = _basic(authorization) or (client_id, client_secret)
    if not credentials[0] or not credentials[1]:
        return _oauth_error(401, "invalid_client", "client credentials are missing")
    if any(text_fault(part or "", line=True) for part in credentials):
        # Form fields and the Basic header are the one form input: OAuth's own error body.
        return _oauth_error(401, "invalid_client", "client credentials hold a control character")
    requested = frozenset(scope.split()) if scope else None
    try:
        principal = authenticate_client(uow_factory, credentials[0], credentials[1], requested)
    except InvalidClient as exc:
        return _oauth_error(401, "invalid_client", str(exc))
    except InvalidScope as exc:
        return _oauth_error(400, "invalid_scope", str(exc))
    access_token, expires_in = tokens.issue(principal)
    body = TokenResponse(
        access_token=access_token, expires_in=expires_in, scope=" ".join(sorted(principal.scopes))
    )
    return JSONResponse(body.model_dump(), headers={"Cache-Control": "no-store"})
