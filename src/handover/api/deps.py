"""Shared dependencies as `Annotated` aliases: the unit of work and the caller.

They are `async` because they only read `app.state` or verify a token (CPU, cached by the
issuer): FastAPI would otherwise run each one in the thread pool, a hop per dependency.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from handover.api.problems import Problem
from handover.config import Settings
from handover.domain.sign_in import TOKEN_PREFIX
from handover.services import sign_in
from handover.services.access import Principal, TokenIssuer
from handover.services.ports import UnitOfWorkFactory

_bearer = HTTPBearer(auto_error=False, description="An access token from POST /oauth/token")
#: The bearer credentials when there are any: for routes whose answer a token only widens.
optional_bearer = _bearer


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
    return tokens.verify(credentials.credentials)


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

#: The cookie that carries a subscriber's session for the web pages (HttpOnly, Lax).
SESSION_COOKIE = "handover_session"
_session_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="SubscriberSession",
    description="A session token (hos_...) from POST /v1/subscriber/sign-in",
)
_session_cookie = APIKeyCookie(
    name=SESSION_COOKIE, auto_error=False, description="Set by POST /v1/subscriber/sign-in"
)


async def session_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_session_bearer)],
    cookie: Annotated[str | None, Depends(_session_cookie)],
) -> str | None:
    """The caller's session token: a `hos_` bearer token, else the session cookie."""
    if credentials is not None and credentials.credentials.startswith(TOKEN_PREFIX):
        return credentials.credentials
    return cookie


# Not async: it reads the store, so FastAPI runs it in the thread pool.
def _signed_in(
    request: Request, token: Annotated[str | None, Depends(session_token)]
) -> sign_in.SubscriberSession:
    if token is None:
        raise Problem(
            401,
            "not-signed-in",
            "Sign in first",
            "Send Authorization: Bearer hos_... or the handover_session cookie; both come "
            "from POST /v1/subscriber/sign-in.",
            headers=_CHALLENGE,
        )
    return sign_in.session(request.app.state.uow_factory, token, datetime.now(UTC))


#: The signed-in subscriber (a person), from their session; 401 problem details otherwise.
SignedIn = Annotated[sign_in.SubscriberSession, Depends(_signed_in)]
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
