"""Settings from the environment (`HANDOVER_*`); refuses default secrets outside development.

A setting that stands for a rule's or a use case's default takes it from there
(`FreezePolicy`, `DeliveryPolicy`, ...), so each default is written once.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from handover.domain.certificates import DEFAULT_VALIDITY
from handover.domain.freeze_policy import FreezePolicy
from handover.domain.sign_in import SESSION_TTL
from handover.services.ssf.delivery import DeliveryPolicy

DEVELOPMENT_SECRET = "development-only-secret-do-not-use-in-production"
_FREEZE = FreezePolicy()
_DELIVERY = DeliveryPolicy()


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HANDOVER_", extra="ignore")

    environment: Environment = Environment.DEVELOPMENT
    database_url: str = "sqlite:///./handover.db"
    #: Signs access tokens. Must be set (32+ characters) outside development and test.
    secret_key: str = DEVELOPMENT_SECRET
    token_ttl_seconds: int = 900
    public_url: str = "http://127.0.0.1:8000"
    #: Where uploaded files are spooled and sorted; the system temp dir when unset.
    spool_dir: str | None = None
    #: The largest request body any route takes, in bytes, unless it has a limit of its own
    #: (batches: `handover.api.limits`); larger bodies get 413.
    max_body_bytes: int = 1024 * 1024
    #: The largest carrier file (`POST /v1/carrier/files`, streamed to disk), in bytes.
    max_upload_bytes: int = 16 * 1024**3
    #: Keys the pseudonyms of numbers and subscribers in audit-log entries. Never change it:
    #: the same number must keep the same pseudonym. Derived from the secret in development.
    log_key: str | None = None
    #: The audit log's C2SP signer key (`PRIVATE+KEY+name+hash+key`), e.g. from
    #: `python -m handover.tlog generate-key handover.example/log`. Derived in development.
    log_signer_key: str | None = None
    #: Seconds between checkpoints signed by `handover work`.
    checkpoint_interval_seconds: int = 60
    #: `GET /readyz` answers 503 when no `handover work` process has finished a round for
    #: this many seconds; 0 leaves the worker out of readiness (the store alone is checked).
    worker_stale_seconds: float = 30.0
    #: Signs check receipts (compact JWS): a private JWK (JSON; OKP Ed25519 or EC P-256) or a
    #: PKCS#8 PEM. Its public half is published at /.well-known/jwks.json. Derived (Ed25519)
    #: from the secret in development; required in production.
    receipt_key: str | None = None
    #: How often the API's check index catches up with the store, in seconds (in a
    #: background thread); 0 refreshes it before every answer instead.
    check_refresh_seconds: float = 0.5
    #: The longest a number's freeze is extended while high-value accounts bound during the
    #: cancelled tenure stay registered (days from cancellation; see docs/freeze.md).
    max_freeze_days: int = _FREEZE.max_freeze_days
    #: How long a tenure certificate stays valid (days); signed with the receipt key.
    certificate_ttl_days: int = DEFAULT_VALIDITY.days

    #: Signs SETs: a JWK Set of private keys (JSON, or `@path`), one EC P-256 key at least
    #: and RSA for streams that ask for RS256; the first key of each algorithm signs. Make one
    #: with `handover ssf generate-keys`. Derived in development; required in production.
    ssf_signing_keys: str | None = None
    #: Accept http push endpoints on loopback hosts; unset means: except in production.
    ssf_allow_http: bool | None = None
    #: Accept push endpoints in private networks (10/8, 192.168/16, loopback, link-local...);
    #: unset means: except in production. Keeps platforms from aiming Handover inward.
    ssf_allow_private_endpoints: bool | None = None
    #: Push delivery: attempts per SET before it is dead-lettered, the first retry delay
    #: and the longest one (seconds; exponential with jitter in between).
    #: The default gives a receiver that is down about two days (at the 10-minute ceiling)
    #: before its first SET is dead-lettered.
    delivery_retry_limit: int = _DELIVERY.retry_limit
    delivery_base_delay: float = _DELIVERY.base_delay
    delivery_max_delay: float = _DELIVERY.max_delay
    #: How long a worker may hold a stream without renewing its lease (seconds).
    delivery_lease_seconds: float = _DELIVERY.lease_seconds
    #: Streams one worker delivers at once, and how long a receiver may take to answer.
    delivery_workers: int = _DELIVERY.workers
    push_timeout_seconds: float = 5.0
    #: The longest a poll request without `returnImmediately` waits for events (seconds).
    poll_wait_seconds: float = 15.0

    #: How sign-in codes and other messages reach people: `console` writes them to the
    #: server log (development and the demo; refused in production), `http` POSTs
    #: `{"to", "text"}` to a carrier's SMS gateway with the token as a bearer token.
    #: Production refuses to build the console senders (the API and `work` do not start).
    sms_sender: Literal["console", "http"] = "console"
    sms_gateway_url: str | None = None
    sms_gateway_token: str | None = None
    #: E-mail to people's alternative contacts: `console` (as for SMS) or `smtp`.
    email_sender: Literal["console", "smtp"] = "console"
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_from: str = "handover@localhost"
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: str | None = None
    #: How long a gateway or mail server may take to accept one message (seconds).
    message_timeout_seconds: float = 10.0
    #: How long a subscriber's session lasts after signing in with an SMS code.
    session_ttl_seconds: int = int(SESSION_TTL.total_seconds())

    @property
    def freeze_policy(self) -> FreezePolicy:
        return FreezePolicy(max_freeze_days=self.max_freeze_days)

    @property
    def push_over_http(self) -> bool:
        if self.ssf_allow_http is not None:
            return self.ssf_allow_http
        return self.environment is not Environment.PRODUCTION

    @property
    def push_to_private(self) -> bool:
        if self.ssf_allow_private_endpoints is not None:
            return self.ssf_allow_private_endpoints
        return self.environment is not Environment.PRODUCTION

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> Settings:
        if self.environment is Environment.PRODUCTION and (
            self.secret_key == DEVELOPMENT_SECRET or len(self.secret_key) < 32
        ):
            raise ValueError(
                "HANDOVER_SECRET_KEY must be set to a random value of 32+ characters "
                "in production; generate one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
            )
        if self.environment is Environment.PRODUCTION and not (
            self.log_key and self.log_signer_key
        ):
            raise ValueError(
                "HANDOVER_LOG_KEY and HANDOVER_LOG_SIGNER_KEY must be set in production"
            )
        if self.environment is Environment.PRODUCTION and not self.receipt_key:
            raise ValueError(
                "HANDOVER_RECEIPT_KEY (an Ed25519 or P-256 private JWK or PEM) must be set "
                "in production"
            )
        if self.environment is Environment.PRODUCTION and not self.ssf_signing_keys:
            raise ValueError(
                "HANDOVER_SSF_SIGNING_KEYS (a private JWK Set; `handover ssf generate-keys`) "
                "must be set in production"
            )
        if self.sms_sender == "http" and not self.sms_gateway_url:
            raise ValueError("HANDOVER_SMS_SENDER=http needs HANDOVER_SMS_GATEWAY_URL")
        if not 300 <= self.session_ttl_seconds <= 7 * 24 * 3600:
            raise ValueError("HANDOVER_SESSION_TTL_SECONDS must be between 300 and 604800")
        if self.delivery_retry_limit < 1 or self.delivery_workers < 1:
            raise ValueError("HANDOVER_DELIVERY_RETRY_LIMIT and _WORKERS must be at least 1")
        if not 1 <= self.certificate_ttl_days <= 3650:
            raise ValueError("HANDOVER_CERTIFICATE_TTL_DAYS must be between 1 and 3650")
        if not 1 <= self.max_freeze_days <= 3650:
            raise ValueError("HANDOVER_MAX_FREEZE_DAYS must be between 1 and 3650")
        if not 60 <= self.token_ttl_seconds <= 3600:
            raise ValueError("HANDOVER_TOKEN_TTL_SECONDS must be between 60 and 3600")
        return self
