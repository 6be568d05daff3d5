"""Who may call Handover: carriers and machine clients with OAuth 2.0 client credentials.

Client secrets are 256-bit random values, so a single SHA-256 is a sufficient one-way
hash (the same reasoning as GitHub's and PyPI's API tokens); a slow password hash would
only add latency to every token request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

from handover.domain.platforms import Platform, new_platform
from handover.services.model import ROLE_SCOPES, Carrier, Client, Role
from handover.services.ports import UnitOfWork, UnitOfWorkFactory

_CARRIER_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


class AccessDenied(Exception):
    pass


class InvalidToken(AccessDenied):
    """A bearer token that is not valid now (malformed, forged, expired, another issuer's)."""


class InvalidClient(AccessDenied):
    """Unknown client or wrong secret (the two are not told apart)."""


class InvalidScope(AccessDenied):
    pass


class AlreadyExists(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated machine client behind a request."""

    client_id: str
    role: Role
    scopes: frozenset[str]
    carrier_id: str | None = None
    platform_id: str | None = None


@dataclass(frozen=True, slots=True)
class IssuedCredentials:
    client_id: str
    client_secret: str


class TokenIssuer(Protocol):
    def issue(self, principal: Principal) -> tuple[str, int]:
        """A bearer token for `principal` and its lifetime in seconds."""

    def verify(self, token: str) -> Principal:
        """The principal a token was issued to; raises `InvalidToken` when invalid."""


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def register_carrier(
    uow_factory: UnitOfWorkFactory,
    carrier_id: str,
    name: str,
    country: str,
    *,
    coverage_start: datetime | None = None,
) -> tuple[Carrier, IssuedCredentials]:
    """Create a carrier and its first client credentials (the secret is shown once).

    `coverage_start`: from when its reports are complete (default: from registration)."""
    if not _CARRIER_ID.match(carrier_id):
        raise ValueError("carrier id: 1-64 of a-z, 0-9, '-', '_', starting with a letter or digit")
    country = country.upper()
    if not _COUNTRY.match(country):
        raise ValueError("country: an ISO 3166 alpha-2 code such as CN or US")
    with uow_factory() as uow:
        if uow.carriers.get(carrier_id) is not None:
            raise AlreadyExists(f"carrier {carrier_id!r} already exists")
        carrier = Carrier(carrier_id, name, country, datetime.now(UTC), coverage_start)
        uow.carriers.add(carrier)
        credentials = _add_client(uow, Role.CARRIER, f"{name} reporting", carrier_id=carrier_id)
        uow.commit()
    return carrier, credentials


def set_coverage(
    uow_factory: UnitOfWorkFactory, carrier_id: str, start: datetime
) -> Carrier | None:
    """Set from when a carrier's reports are complete; None when it is not registered."""
    with uow_factory() as uow:
        carrier = uow.carriers.get(carrier_id)
        if carrier is None:
            return None
        uow.carriers.set_coverage(carrier_id, start)
        uow.commit()
    return replace(carrier, coverage_start=start)


def list_carriers(uow_factory: UnitOfWorkFactory) -> list[Carrier]:
    """Every registered carrier, by id."""
    with uow_factory() as uow:
        return uow.carriers.all()


def register_client(uow_factory: UnitOfWorkFactory, role: Role, name: str) -> IssuedCredentials:
    """Create client credentials for a role that belongs to no carrier or platform (the
    regulator, an operator); the secret is shown once."""
    with uow_factory() as uow:
        credentials = _add_client(uow, role, name)
        uow.commit()
    return credentials


def _add_client(
    uow: UnitOfWork,
    role: Role,
    name: str,
    *,
    carrier_id: str | None = None,
    platform_id: str | None = None,
) -> IssuedCredentials:
    scopes = ROLE_SCOPES[role]
    if (role is Role.CARRIER) != (carrier_id is not None):
        raise ValueError("carrier clients, and only they, belong to a carrier")
    if (role is Role.PLATFORM) != (platform_id is not None):
        raise ValueError("platform clients, and only they, belong to a platform")
    client_id = f"{role.value}-{secrets.token_hex(8)}"
    secret = secrets.token_urlsafe(32)
    uow.clients.add(
        Client(
            client_id,
            hash_secret(secret),
            role,
            scopes,
            name,
            datetime.now(UTC),
            carrier_id,
            platform_id,
        )
    )
    return IssuedCredentials(client_id, secret)


def authenticate_client(
    uow_factory: UnitOfWorkFactory, client_id: str, secret: str, requested: frozenset[str] | None
) -> Principal:
    """Check client credentials and narrow the scopes to those requested (RFC 6749 §3.3)."""
    with uow_factory() as uow:
        client = uow.clients.get(client_id)
    expected = client.secret_hash if client else hash_secret("")
    if not hmac.compare_digest(expected, hash_secret(secret)) or client is None:
        raise InvalidClient("unknown client or wrong secret")
    scopes = client.scopes if requested is None else requested
    if not scopes <= client.scopes:
        raise InvalidScope(f"this client may ask only for {' '.join(sorted(client.scopes))}")
    return Principal(client.client_id, client.role, scopes, client.carrier_id, client.platform_id)


def register_platform(
    uow_factory: UnitOfWorkFactory, platform_id: str, name: str, category: str, tier: str
) -> tuple[Platform, IssuedCredentials]:
    """Create a platform (a tenant) and its first client credentials (shown once)."""
    platform = new_platform(platform_id, name, category, tier, datetime.now(UTC))
    with uow_factory() as uow:
        if uow.platforms.get(platform_id) is not None:
            raise AlreadyExists(f"platform {platform_id!r} already exists")
        uow.platforms.add(platform)
        credentials = _add_client(uow, Role.PLATFORM, name, platform_id=platform_id)
        uow.commit()
    return platform, credentials


def list_platforms(uow_factory: UnitOfWorkFactory) -> list[Platform]:
    """Every registered platform."""
    with uow_factory() as uow:
        return uow.platforms.all()
