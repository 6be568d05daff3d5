"""Wiring: build the adapters the entry points (API, CLI, worker) share from `Settings`.

This is the entry points' one door to `handover.adapters`: `api`, `web`, `cli` and
`commands` import no adapter module themselves (`tests/unit/test_layering.py`).
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from handover.adapters import receipts
from handover.adapters.certificates import CertificateKeys as CertificateKeys  # for annotations
from handover.adapters.messaging import (
    ConsoleEmailSender,
    ConsoleSmsSender,
    HttpSmsSender,
    SmtpEmailSender,
)
from handover.adapters.receipts import ReceiptSigner, load_key
from handover.adapters.ssf.push import HttpSetSender
from handover.adapters.ssf.signing import (
    JoseSetSigner,
    development_signer,
    generate_keys,
    load_keys,
)
from handover.adapters.staging import SqliteReportSorter
from handover.adapters.storage import migrate
from handover.adapters.storage.engine import make_engine
from handover.adapters.storage.errors import translated
from handover.adapters.storage.uow import SqlUnitOfWork
from handover.adapters.tokens import JwtTokenIssuer
from handover.config import Environment, Settings
from handover.domain.messages import Channel
from handover.services.check import CheckIndex, CheckResult, InvalidQuestion, StoreIndex, check
from handover.services.check import check_many as _check_many
from handover.services.ports import MessageSender, ReportSorterFactory, UnitOfWorkFactory
from handover.services.ssf.delivery import DeliveryPolicy, PushWorker
from handover.services.ssf.transmitter import Transmitter
from handover.services.worker import Worker, WorkPolicy
from handover.tlog.verify import Signer, Verifier, sign_note

if TYPE_CHECKING:  # numpy is imported only where the in-memory index is built
    from handover.adapters.check_index import BatchResults as BatchResults  # for annotations


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
    """A key derived from the secret: the development default of keys production must
    set, and the sign-in code key everywhere (it never leaves the process)."""
    return hashlib.sha256(f"handover:{purpose}:{settings.secret_key}".encode()).digest()


def log_key(settings: Settings) -> bytes:
    return settings.log_key.encode() if settings.log_key else _derived(settings, "log-key")


def checkpoint_signer(settings: Settings) -> NoteSigner:
    if settings.log_signer_key:
        return NoteSigner(Signer.from_key(settings.log_signer_key))
    name = f"{urlsplit(settings.public_url).netloc or 'handover.localhost'}/log"
    key = Ed25519PrivateKey.from_private_bytes(_derived(settings, "log-signer"))
    return NoteSigner(Signer(name, key))


def set_signer(settings: Settings) -> JoseSetSigner:
    """Signs SETs: HANDOVER_SSF_SIGNING_KEYS, or development keys derived from the secret."""
    if settings.ssf_signing_keys:
        return load_keys(settings.ssf_signing_keys)
    cache = Path(settings.spool_dir or tempfile.gettempdir())
    return development_signer(_derived(settings, "ssf-signer"), cache)


def generate_set_keys() -> dict[str, Any]:
    """A new private JWK Set (ES256 and RS256) for HANDOVER_SSF_SIGNING_KEYS."""
    return generate_keys()


def transmitter(settings: Settings) -> Transmitter:
    base = settings.public_url.rstrip("/")
    return Transmitter(
        issuer=base,
        poll_url=lambda stream_id: f"{base}/ssf/poll/{stream_id}",
        allow_http=settings.push_over_http,
        allow_private=settings.push_to_private,
    )


def delivery_policy(settings: Settings) -> DeliveryPolicy:
    return DeliveryPolicy(
        retry_limit=settings.delivery_retry_limit,
        base_delay=settings.delivery_base_delay,
        max_delay=settings.delivery_max_delay,
        lease_seconds=settings.delivery_lease_seconds,
        workers=settings.delivery_workers,
    )


def push_worker(settings: Settings, engine: Engine | None = None) -> PushWorker:
    return PushWorker(
        uow_factory(settings, engine),
        set_signer(settings),
        HttpSetSender(
            settings.push_timeout_seconds,
            max_connections=settings.delivery_workers,
            allow_private=settings.push_to_private,
        ),
        settings.public_url.rstrip("/"),
        delivery_policy(settings),
    )


def engine_for(settings: Settings) -> Engine:
    """The store at HANDOVER_DATABASE_URL (SQLite or PostgreSQL)."""
    return make_engine(settings.database_url)


def upgrade_store(engine: Engine) -> None:
    """Apply every migration the store lacks; `StoreUnavailable` when it does not answer."""
    with translated():
        migrate.upgrade(engine)


def worker(settings: Settings, engine: Engine | None = None) -> Worker:
    """What `handover work` works with: push delivery, the checkpoint signer, the message
    senders, the freeze policy, and the timers' intervals."""
    engine = engine or engine_for(settings)
    return Worker(
        uow_factory(settings, engine),
        push_worker(settings, engine),
        checkpoint_signer(settings),
        message_senders(settings),
        settings.freeze_policy,
        settings.public_url,
        WorkPolicy(checkpoint_interval=settings.checkpoint_interval_seconds),
    )


def uow_factory(settings: Settings, engine: Engine | None = None) -> UnitOfWorkFactory:
    return partial(SqlUnitOfWork, engine or engine_for(settings), log_key(settings))


def report_sorters(settings: Settings) -> ReportSorterFactory:
    """A new sorter per ingested file, spilling to HANDOVER_SPOOL_DIR (or the temp dir)."""
    return partial(SqliteReportSorter, settings.spool_dir)


def token_issuer(settings: Settings) -> JwtTokenIssuer:
    return JwtTokenIssuer(settings.secret_key, settings.public_url, settings.token_ttl_seconds)


def sign_in_key(settings: Settings) -> bytes:
    """Keys the HMAC of stored sign-in codes; derived from the secret (codes live minutes,
    so a new secret only voids the codes in flight)."""
    return _derived(settings, "sign-in-codes")


def message_senders(settings: Settings) -> dict[Channel, MessageSender]:
    """One sender per channel, as HANDOVER_SMS_SENDER and HANDOVER_EMAIL_SENDER say.

    Production refuses the console senders here rather than in `Settings`, so commands that
    send nothing still run with production settings."""
    if settings.environment is Environment.PRODUCTION and "console" in (
        settings.sms_sender,
        settings.email_sender,
    ):
        raise ValueError(
            "HANDOVER_SMS_SENDER=http and HANDOVER_EMAIL_SENDER=smtp must be set in "
            "production (the console senders only write messages to the log)"
        )
    sms: MessageSender = ConsoleSmsSender()
    if settings.sms_sender == "http":
        assert settings.sms_gateway_url is not None  # the settings validator insists
        sms = HttpSmsSender(
            settings.sms_gateway_url, settings.sms_gateway_token, settings.message_timeout_seconds
        )
    email: MessageSender = ConsoleEmailSender()
    if settings.email_sender == "smtp":
        email = SmtpEmailSender(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_from,
            starttls=settings.smtp_starttls,
            username=settings.smtp_username,
            password=settings.smtp_password,
            timeout=settings.message_timeout_seconds,
        )
    return {Channel.SMS: sms, Channel.EMAIL: email}


def receipt_signer(settings: Settings) -> ReceiptSigner:
    """Signs check receipts: HANDOVER_RECEIPT_KEY, or an Ed25519 key derived in development."""
    if settings.receipt_key:
        key = load_key(settings.receipt_key)
    else:
        from joserfc.jwk import OKPKey

        derived = Ed25519PrivateKey.from_private_bytes(_derived(settings, "receipt-signer"))
        key = OKPKey.import_key(derived)
    return ReceiptSigner(key, settings.public_url)


def certificate_keys(signer: ReceiptSigner) -> CertificateKeys:
    """Signs tenure certificates with the receipt key and verifies them against its JWKS."""
    return CertificateKeys(signer)


def verify_receipt(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """The claims of a check receipt signed by a key in `jwks`; raises
    `services.receipts.InvalidReceipt` when it does not verify."""
    return receipts.verify(token, jwks)


def receipt_key_id(token: str) -> str | None:
    """The `kid` a receipt's header names (not verified); `InvalidReceipt` when it is not a
    compact JWS."""
    kid = receipts.header_of(token).get("kid")
    return kid if isinstance(kid, str) else None


class RefreshingStoreIndex(StoreIndex):
    """`StoreIndex` whose carriers' coverage starts can be re-read (`refresh`)."""

    def refresh(self) -> None:
        StoreIndex.__init__(self, self.uow_factory)


def check_index(settings: Settings, engine: Engine) -> CheckIndex:
    """The check index every entry point uses: the one place to choose it.

    The in-memory `NumpyCheckIndex` when it is available, else the store-reading reference.
    """
    try:
        from handover.adapters.check_index import NumpyCheckIndex
    except ImportError:
        return RefreshingStoreIndex(uow_factory(settings, engine))
    index: CheckIndex = NumpyCheckIndex(engine)
    return index


def keep_fresh(index: CheckIndex, interval: float) -> Callable[[], None] | None:
    """Refresh the index every `interval` seconds in the background when it can (`start`);
    returns how to stop, or None when the caller must `fresh()` it before each answer."""
    start = getattr(index, "start", None)
    if interval <= 0 or not callable(start):
        return None
    start(interval)
    stop: Callable[[], None] = index.stop  # type: ignore[attr-defined]
    return stop


def fresh(index: CheckIndex) -> CheckIndex:
    """The index, brought up to date first when it can be (`refresh()`); raises
    `StoreUnavailable` when the store does not answer."""
    refresh = getattr(index, "refresh", None)
    if callable(refresh):
        with translated():  # it reads the store itself: its outage is `StoreUnavailable` too
            refresh()
    return index


def check_one(
    index: CheckIndex, number: str, since: str | date | datetime, now: datetime | None = None
) -> CheckResult:
    """`services.check.check`, or the index's own `check_one` when it has one (the same
    answer; the in-memory index skips parsing a canonical number it holds)."""
    fast = getattr(index, "check_one", None)
    if not callable(fast):
        return check(index, number, since, now)
    result: CheckResult = fast(number, since, now or datetime.now(UTC))
    return result


#: Questions handed to an index's vectorised `check_many` at a time (bounds memory).
CHECK_CHUNK = 10_000


def check_many(
    index: CheckIndex,
    questions: Iterable[tuple[str, str | date | datetime]],
    now: datetime | None = None,
) -> Iterator[CheckResult | InvalidQuestion]:
    """`services.check.check_many`, or the index's own vectorised `check_many` when it has one
    (same results in the same order), fed `CHECK_CHUNK` questions at a time."""
    fast = getattr(index, "check_many", None)
    if not callable(fast):
        yield from _check_many(index, questions, now)
        return
    chunk: list[tuple[str, str | date | datetime]] = []
    for question in questions:
        chunk.append(question)
        if len(chunk) >= CHECK_CHUNK:
            yield from fast(chunk, now)
            chunk = []
    if chunk:
        yield from fast(chunk, now)
