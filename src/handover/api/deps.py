"""Shared dependencies as `Annotated` aliases: the unit of work and the caller.

They are `async` because they only read `app.state` or verify a token (CPU, cached by the
issuer): FastAPI would otherwise run each one in the thread pool, a hop per dependency.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from handover.api.problems import Problem
from handover.config import Settings
from handover.services.access import AccessDenied, Principal, TokenIssuer
from handover.services.ports import UnitOfWorkFactory

_bearer = HTTPBearer(auto_error=False, description="An access token from POST /oauth/token")


async def _uow_factory(request: Request) -> UnitOfWorkFactory:
    factory: UnitOfWorkFactory = request.app.state.uow_factory
    return factory


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _tokens(request: Request) -> TokenIssuer:
    tokens: TokenIssuer = request.app.state.tokens
    return tokens


UowFactory = Annotated[UnitOfWorkFactory, Depends(_uow_factory)]
AppSettings = Annotated[Settings, Depends(_settings)]
Tokens = Annotated[TokenIssuer, Depends(_tokens)]

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="handover"'}


async def _principal(
    tokens: Tokens,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise Problem(
            401,
            "unauthenticated",
            "A bearer token is needed",
            "Get one from POST /oauth/token with client credentials.",
            headers=_CHALLENGE,
        )
    try:
        return tokens.verify(credentials.credentials)
    except AccessDenied as exc:
        raise Problem(
            401,
            "unauthenticated",
            "The bearer token is not valid",
            str(exc),
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        ) from None


CurrentPrincipal = Annotated[Principal, Depends(_principal)]


def require_scope(scope: str) -> Callable[[Principal], Awaitable[Principal]]:
    async def _check(principal: CurrentPrincipal) -> Principal:
        if scope not in principal.scopes:
            raise Problem(
                403,
                "insufficient-scope",
                "The token lacks a scope",
                f"This call needs the {scope!r} scope.",
                headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
            )
        return principal

    return _check


CarrierReporter = Annotated[Principal, Depends(require_scope("carrier:report"))]
NumberReader = Annotated[Principal, Depends(require_scope("numbers:read"))]


def require_platform(scope: str) -> Callable[..., Awaitable[str]]:
    """The calling platform's id, for a platform client holding `scope` (403 otherwise)."""
    check = require_scope(scope)

    # A default, not `Annotated`: the closure's `check` is not visible to postponed annotations.
    async def platform_id(principal: Principal = Depends(check)) -> str:
        if principal.platform_id is None:
            raise Problem(
                403, "not-a-platform", "Only a platform's client may do this", f"scope {scope}"
            )
        return principal.platform_id

    return platform_id
