"""Wiring: build the adapters the entry points (API, CLI, worker) share from `Settings`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import partial
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from handover.adapters.storage.engine import make_engine
from handover.adapters.storage.uow import SqlUnitOfWork
from handover.adapters.tokens import JwtTokenIssuer
from handover.config import Settings
from handover.services.ports import UnitOfWorkFactory
from handover.tlog.verify import Signer, Verifier, sign_note


@dataclass(frozen=True, slots=True)
class NoteSigner:
    """The audit log's checkpoint signer (the services' `CheckpointSigner`)."""

    signer: Signer

    @property
    def origin(self) -> str:
        return self.signer.name

    def sign(self, text: str) -> str:
        return sign_note(text, self.signer)

    def verifier(self) -> Verifier:
        return self.signer.verifier()


def _derived(settings: Settings, purpose: str) -> bytes:
    """A development-only key derived from the secret (production sets every key)."""
    return hashlib.sha256(f"handover:{purpose}:{settings.secret_key}".encode()).digest()


def log_key(settings: Settings) -> bytes:
    return settings.log_key.encode() if settings.log_key else _derived(settings, "log-key")


def checkpoint_signer(settings: Settings) -> NoteSigner:
    if settings.log_signer_key:
        return NoteSigner(Signer.from_key(settings.log_signer_key))
    name = f"{urlsplit(settings.public_url).netloc or 'handover.localhost'}/log"
    key = Ed25519PrivateKey.from_private_bytes(_derived(settings, "log-signer"))
    return NoteSigner(Signer(name, key))


def uow_factory(settings: Settings, engine: Engine | None = None) -> UnitOfWorkFactory:
    return partial(SqlUnitOfWork, engine or make_engine(settings.database_url), log_key(settings))


def token_issuer(settings: Settings) -> JwtTokenIssuer:
    return JwtTokenIssuer(settings.secret_key, settings.public_url, settings.token_ttl_seconds)
