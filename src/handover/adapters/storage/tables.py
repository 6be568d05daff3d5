"""The schema. Alembic migrations in `migrations/` create exactly these tables."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both engines (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        moment: datetime = value.astimezone(UTC)
        return moment.replace(tzinfo=None) if dialect.name == "sqlite" else moment

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


carriers = Table(
    "carriers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("country", String(2), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    #: The first moment this carrier's reports are complete; checks before it are no_data.
    Column("coverage_start", UtcDateTime, nullable=True),
)

#: E.164 prefixes granted to carriers (`domain.ranges`); no prefix is a prefix of another.
number_ranges = Table(
    "number_ranges",
    metadata,
    Column("prefix", String(16), primary_key=True),
    Column("carrier_id", String(64), ForeignKey("carriers.id"), nullable=False),
    Column("granted_at", UtcDateTime, nullable=False),
    Column("granted_by", String(200), nullable=True),
    Column("note", Text, nullable=True),
    Index("ix_number_ranges_carrier", "carrier_id"),
)

#: `activated` reports refused as `outside_range`, for the regulator.
range_refusals = Table(
    "range_refusals",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("carrier_id", String(64), nullable=False),
    Column("e164", String(16), nullable=False),
    Column("event", String(16), nullable=False),
    Column("event_id", String(128), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("refused_at", UtcDateTime, nullable=False),
    Column("ingest_id", String(36), nullable=True),
    Column("line", BigInteger, nullable=False),
    Index("ix_range_refusals_carrier_id", "carrier_id", "id"),
)

clients = Table(
    "clients",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("secret_hash", String(128), nullable=False),
    Column("role", String(16), nullable=False),
    Column("scopes", Text, nullable=False),
    Column("name", String(200), nullable=False),
    Column("carrier_id", String(64), ForeignKey("carriers.id"), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("platform_id", String(64), ForeignKey("platforms.id"), nullable=True),
)

platforms = Table(
    "platforms",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("category", String(32), nullable=False),
    Column("tier", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

numbers = Table(
    "numbers",
    metadata,
    Column("e164", String(16), primary_key=True),
    Column("region", String(3), nullable=False),
    Column("state", String(16), nullable=False),
    Column("carrier_id", String(64), ForeignKey("carriers.id"), nullable=False),
    Column("subscriber", String(128), nullable=True),
    Column("tenure_carrier", String(64), nullable=True),
    Column("tenure_start", UtcDateTime, nullable=True),
    Column("tenure_end", UtcDateTime, nullable=True),
    Column("last_event_at", UtcDateTime, nullable=False),
    Column("cancelled_at", UtcDateTime, nullable=True),
    Column("release_not_before", UtcDateTime, nullable=True),
    Column("disconnected_at", UtcDateTime, nullable=True),
    Column("ported_at", UtcDateTime, nullable=True),
    Column("reassigned_at", UtcDateTime, nullable=True),
    Column("version", Integer, nullable=False),
    Index("ix_numbers_carrier_state", "carrier_id", "state"),
    #: The reminder worker's frozen numbers, by cancellation (`due_candidates`).
    Index("ix_numbers_state_cancelled", "state", "cancelled_at"),
)

tenures = Table(
    "tenures",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("e164", String(16), nullable=False),
    Column("subscriber", String(128), nullable=False),
    Column("carrier_id", String(64), nullable=False),
    Column("start_at", UtcDateTime, nullable=False),
    Column("end_at", UtcDateTime, nullable=True),
    UniqueConstraint("e164", "start_at", name="uq_tenures_e164_start"),
    #: "My numbers": every tenure of one person (a carrier's subscriber refs).
    Index("ix_tenures_carrier_subscriber", "carrier_id", "subscriber"),
)

number_events = Table(
    "number_events",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("carrier_id", String(64), nullable=False),
    Column("event_id", String(128), nullable=False),
    Column("e164", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("subscriber", String(128), nullable=True),
    Column("to_carrier", String(64), nullable=True),
    Column("ingest_id", String(36), nullable=True),
    Column("recorded_at", UtcDateTime, nullable=False),
    UniqueConstraint("carrier_id", "event_id", name="uq_number_events_carrier_event"),
    Index("ix_number_events_e164_seq", "e164", "seq"),
)

ingests = Table(
    "ingests",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("carrier_id", String(64), ForeignKey("carriers.id"), nullable=False),
    Column("source", String(16), nullable=False),
    Column("filename", String(255), nullable=True),
    Column("status", String(16), nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=True),
    Column("rows", BigInteger, nullable=False),
    Column("accepted", BigInteger, nullable=False),
    Column("duplicates", BigInteger, nullable=False),
    Column("rejected", Text, nullable=False),
    Column("error", Text, nullable=True),
    Index("ix_ingests_carrier_received", "carrier_id", "received_at"),
)

ingest_rejections = Table(
    "ingest_rejections",
    metadata,
    Column("ingest_id", String(36), ForeignKey("ingests.id"), primary_key=True),
    Column("line", BigInteger, primary_key=True),
    Column("event_id", String(128), nullable=True),
    Column("reason", String(64), nullable=False),
    Column("detail", Text, nullable=False),
    Column("raw", Text, nullable=True),
)

# The audit log (RFC 9162): entries, the hashes of every complete subtree above them, and
# the signed checkpoints. Rows are only ever inserted.
log_leaves = Table(
    "log_leaves",
    metadata,
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("data", LargeBinary, nullable=False),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

log_nodes = Table(
    "log_nodes",
    metadata,
    Column("level", SmallInteger, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
)

log_checkpoints = Table(
    "log_checkpoints",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

#: One row holding the log's size; appenders lock it so leaf indices are never shared.
log_state = Table(
    "log_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
)

# Shared Signals: streams, the outbox they read, and their delivery state.
streams = Table(
    "streams",
    metadata,
    Column("stream_id", String(64), primary_key=True),
    Column("platform_id", String(64), ForeignKey("platforms.id"), nullable=False),
    Column("audience", String(255), nullable=False),
    Column("method", String(32), nullable=False),
    Column("endpoint_url", Text, nullable=True),
    Column("authorization_header", Text, nullable=True),
    Column("events_requested", Text, nullable=False),
    Column("description", Text, nullable=True),
    Column("signing_alg", String(8), nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_reason", Text, nullable=True),
    Column("min_verification_interval", Integer, nullable=False),
    Column("last_verification_at", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    #: Every outbox signal up to here is delivered (push) or acknowledged (poll), or dropped.
    Column("cursor", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("leased_until", UtcDateTime, nullable=True),
    Column("lease_owner", String(64), nullable=True),
    Index("ix_streams_platform", "platform_id"),
)

#: Subjects added to or removed from a stream (SSF §8.1.3); the default is every subject.
stream_subjects = Table(
    "stream_subjects",
    metadata,
    Column("stream_id", String(64), ForeignKey("streams.stream_id"), primary_key=True),
    Column("subject", String(200), primary_key=True),
    Column("included", Integer, nullable=False),
)

#: The transactional outbox: one row per signal, written with the change that caused it.
signals = Table(
    "signals",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("event_type", String(200), nullable=False),
    Column("subject", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("txn", String(128), nullable=False),
    Column("stream_id", String(64), nullable=True),
    Column("platform_id", String(64), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    #: A receipt's reader proves it was sent the SET of an entry (`txn` is `log:{index}`).
    Index("ix_signals_txn", "txn"),
)

#: Poll acknowledgements above a stream's cursor (receivers may acknowledge out of order).
poll_acks = Table(
    "poll_acks",
    metadata,
    Column("stream_id", String(64), ForeignKey("streams.stream_id"), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("error", Text, nullable=True),
)

#: SETs given up on after the retry limit; an operator can inspect and replay them.
dead_letters = Table(
    "dead_letters",
    metadata,
    Column("stream_id", String(64), ForeignKey("streams.stream_id"), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("jti", String(64), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("error", Text, nullable=False),
    Column("dead_at", UtcDateTime, nullable=False),
    Column("replay_requested_at", UtcDateTime, nullable=True),
    Column("delivered_at", UtcDateTime, nullable=True),
)

#: Accounts platforms registered as bound to a number (only an opaque account ref).
bindings = Table(
    "bindings",
    metadata,
    Column("platform_id", String(64), ForeignKey("platforms.id"), primary_key=True),
    Column("e164", String(16), primary_key=True),
    Column("account_ref", String(128), primary_key=True),
    Column("bound_since", UtcDateTime, nullable=False),
    Column("tier", String(16), nullable=False),
    Column("registered_at", UtcDateTime, nullable=False),
    Index("ix_bindings_e164", "e164"),
)

_SERIAL = BigInteger().with_variant(Integer, "sqlite")

#: A new owner's renewal: one request that fans out into one case per platform.
renewals = Table(
    "renewals",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("e164", String(16), nullable=False),
    Column("tenure_start", UtcDateTime, nullable=False),
    Column("requested_at", UtcDateTime, nullable=False),
    #: When the owner was told every case is answered (None until then).
    Column("completed_at", UtcDateTime, nullable=True),
    Index("ix_renewals_e164", "e164"),
)

#: One request to one platform about one number (a "case": docs/cases.md).
cases = Table(
    "cases",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("renewal_id", String(36), ForeignKey("renewals.id"), nullable=True),
    Column("kind", String(16), nullable=False),
    Column("requester", String(16), nullable=False),
    Column("e164", String(16), nullable=False),
    Column("platform_id", String(64), ForeignKey("platforms.id"), nullable=False),
    #: The requester's tenure start: a renewal touches only accounts bound before it.
    Column("tenure_start", UtcDateTime, nullable=False),
    #: A previous owner's case names one of their bindings; a renewal names none.
    Column("account_ref", String(128), nullable=True),
    Column("migrate_to", String(16), nullable=True),
    Column("state", String(16), nullable=False),
    Column("opened_at", UtcDateTime, nullable=False),
    Column("deadline", UtcDateTime, nullable=False),
    Column("outcome", String(16), nullable=True),
    Column("reason", Text, nullable=True),
    Column("answered_at", UtcDateTime, nullable=True),
    Column("escalated_at", UtcDateTime, nullable=True),
    Column("cancelled_at", UtcDateTime, nullable=True),
    Column("version", Integer, nullable=False),
    Index("ix_cases_platform_state", "platform_id", "state"),
    Index("ix_cases_e164", "e164"),
    Index("ix_cases_state_deadline", "state", "deadline"),
    Index("ix_cases_renewal_id", "renewal_id"),
)

#: Everything that happened to a case, in order, with its audit-log entry.
case_events = Table(
    "case_events",
    metadata,
    Column("id", _SERIAL, primary_key=True, autoincrement=True),
    Column("case_id", String(36), ForeignKey("cases.id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("detail", Text, nullable=False),
    Column("log_index", BigInteger, nullable=True),
    Index("ix_case_events_case_id", "case_id"),
)

#: An owner's complaint about a case; goes to the regulator's queue.
complaints = Table(
    "complaints",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("case_id", String(36), ForeignKey("cases.id"), nullable=False),
    Column("category", String(32), nullable=False),
    Column("text", Text, nullable=False),
    Column("filed_at", UtcDateTime, nullable=False),
    Column("state", String(16), nullable=False),
    Index("ix_complaints_state", "state"),
    Index("ix_complaints_case_id", "case_id"),
)

#: One-time SMS sign-in codes, stored hashed (both forms); single use, short-lived.
sign_in_codes = Table(
    "sign_in_codes",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("e164", String(16), nullable=False),
    Column("code_hash", String(64), nullable=False),
    #: The long code's hash (the form that wrong guesses cannot burn).
    Column("long_hash", String(64), nullable=False),
    Column("client_address", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    #: The lane: the device credential that asked for the code, or NULL (anonymous).
    Column("device_id", String(32), nullable=True),
    #: Wrong 6-digit guesses at this code (5 burn its 6 digits).
    Column("failures", Integer, nullable=False),
    Column("used_at", UtcDateTime, nullable=True),
    Index("ix_sign_in_codes_e164_created", "e164", "created_at"),
)

#: When each client address asked for a sign-in code anonymously (its hourly limit).
sign_in_requests = Table(
    "sign_in_requests",
    metadata,
    Column("id", _SERIAL, primary_key=True, autoincrement=True),
    Column("client_address", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_sign_in_requests_address_created", "client_address", "created_at"),
)

#: Device credentials: a client that signed in asks for codes in a lane of its own.
sign_in_devices = Table(
    "sign_in_devices",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("e164", String(16), nullable=False),
    #: The tenure signed in to: the credential dies when the number changes hands.
    Column("tenure_start", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    #: Wrong 6-digit guesses in the device's lane since its latest sign-in.
    Column("failures", Integer, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
)

#: A person's signed-in session (the token is kept only hashed).
sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("e164", String(16), nullable=False),
    #: The tenure signed in to: the session ends when the number changes hands.
    Column("tenure_start", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
    Index("ix_sessions_e164", "e164"),
)

#: Messages to people (SMS, e-mail), sent by `handover work` after commit (an outbox).
notifications = Table(
    "notifications",
    metadata,
    Column("id", _SERIAL, primary_key=True, autoincrement=True),
    #: Makes a notification idempotent: the same key is queued once.
    Column("dedupe_key", String(200), nullable=False, unique=True),
    Column("channel", String(8), nullable=False),
    Column("recipient", String(254), nullable=False),
    Column("template", String(64), nullable=False),
    Column("params", Text, nullable=False),
    Column("language", String(8), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("send_after", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime, nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("log_index", BigInteger, nullable=True),
    Index("ix_notifications_due", "sent_at", "send_after"),
)

#: A subscriber's alternative contact (another number or an e-mail address), keyed by
#: the carrier's pseudonym for the person, so it follows them across their numbers.
subscriber_contacts = Table(
    "subscriber_contacts",
    metadata,
    Column("carrier_id", String(64), primary_key=True),
    Column("subscriber", String(128), primary_key=True),
    Column("channel", String(8), nullable=False),
    Column("address", String(254), nullable=False),
    Column("language", String(8), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

#: A carrier's attestation that two of its subscriber refs are the same person.
subscriber_links = Table(
    "subscriber_links",
    metadata,
    Column("carrier_id", String(64), ForeignKey("carriers.id"), primary_key=True),
    Column("subscriber", String(128), primary_key=True),
    Column("linked", String(128), primary_key=True),
    Column("attested_at", UtcDateTime, nullable=False),
    Index("ix_subscriber_links_linked", "carrier_id", "linked"),
)

#: Reminders sent to a previous owner during a freeze (cancellation, mid-freeze, before
#: release), one row per stage of one freeze; `frozen_at` is the freeze's start (the
#: number's `cancelled_at`), so a number cancelled again after a restore is a new freeze.
freeze_reminders = Table(
    "freeze_reminders",
    metadata,
    Column("e164", String(16), primary_key=True),
    Column("frozen_at", UtcDateTime, primary_key=True),
    Column("stage", String(16), primary_key=True),
    Column("sent_at", UtcDateTime, nullable=False),
    Column("channel", String(8), nullable=True),
    Column("log_index", BigInteger, nullable=True),
)

#: Releases a carrier forced before the advised date, with its stated reason.
release_overrides = Table(
    "release_overrides",
    metadata,
    Column("carrier_id", String(64), primary_key=True),
    Column("event_id", String(128), primary_key=True),
    Column("e164", String(16), nullable=False),
    Column("advised_release", UtcDateTime, nullable=False),
    Column("reason", Text, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
)

#: Each `handover work` process's last heartbeat (one row per process, replaced each beat):
#: what readiness (`GET /readyz`) and operators read to see the worker is alive.
worker_heartbeats = Table(
    "worker_heartbeats",
    metadata,
    Column("worker_id", String(64), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("beat_at", UtcDateTime, nullable=False),
    Column("consecutive_failures", Integer, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("last_error_at", UtcDateTime, nullable=True),
    Index("ix_worker_heartbeats_beat_at", "beat_at"),
)
