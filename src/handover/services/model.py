"""Records the services keep beside the domain: carriers, clients, ingests, histories."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from handover.domain.lifecycle import EventKind, State, Tenure


class Role(StrEnum):
    CARRIER = "carrier"
    PLATFORM = "platform"
    REGULATOR = "regulator"
    OPERATOR = "operator"


#: Scopes a machine client may hold, by role.
ROLE_SCOPES: dict[Role, frozenset[str]] = {
    Role.CARRIER: frozenset({"carrier:report", "numbers:read"}),
    Role.PLATFORM: frozenset({"check", "ssf.read", "ssf.manage", "cases", "bindings"}),
    Role.REGULATOR: frozenset({"numbers:read", "regulator:read"}),
    Role.OPERATOR: frozenset({"numbers:read", "carrier:report", "operator"}),
}


@dataclass(frozen=True, slots=True)
class Carrier:
    id: str
    name: str
    country: str
    created_at: datetime
    #: From when the carrier's reports are complete; unset means from its registration.
    coverage_start: datetime | None = None

    @property
    def covered_from(self) -> datetime:
        return self.coverage_start or self.created_at


@dataclass(frozen=True, slots=True)
class Client:
    """A machine client (OAuth 2.0 client credentials); the secret is kept only hashed."""

    client_id: str
    secret_hash: str
    role: Role
    scopes: frozenset[str]
    name: str
    created_at: datetime
    carrier_id: str | None = None
    platform_id: str | None = None


class IngestStatus(StrEnum):
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass(slots=True)
class Ingest:
    """One file (or API batch) a carrier sent, with its running summary."""

    id: str
    carrier_id: str
    source: str
    filename: str | None
    received_at: datetime
    status: IngestStatus = IngestStatus.PROCESSING
    finished_at: datetime | None = None
    rows: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    error: str | None = None

    def summary(self) -> dict[str, object]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": dict(sorted(self.rejected.items())),
        }


@dataclass(frozen=True, slots=True)
class Rejection:
    line: int
    event_id: str | None
    reason: str
    detail: str
    raw: str | None = None


@dataclass(frozen=True, slots=True)
class RangeRefusal:
    """An `activated` report refused as `outside_range`, kept for the regulator.

    `ingest_id` and `line` name the file row; an API batch has no ingest, and `line` is
    then the item's index in the batch. `id` is the store's, in refusal order.
    """

    carrier_id: str
    e164: str
    event: str
    event_id: str
    occurred_at: datetime
    refused_at: datetime
    ingest_id: str | None
    line: int
    id: int | None = None


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    seq: int
    event_id: str
    carrier_id: str
    kind: EventKind
    occurred_at: datetime
    subscriber: str | None
    to_carrier: str | None
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class NumberHistory:
    e164: str
    region: str
    state: State
    carrier_id: str
    release_not_before: datetime | None
    tenures: list[Tenure]
    events: list[RecordedEvent]


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    """A signed checkpoint of the audit log (C2SP tlog-checkpoint in a signed note)."""

    size: int
    root_hash: bytes
    note: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StreamPosition:
    """Where a stream's delivery stands in the outbox, and its retry state."""

    stream_id: str
    cursor: int
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A SET given up on after the retry limit (or refused by the receiver as malformed)."""

    stream_id: str
    seq: int
    jti: str
    attempts: int
    error: str
    dead_at: datetime
    replay_requested_at: datetime | None = None
    delivered_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class WorkerHeartbeat:
    """What a `handover work` process last said about itself (`services.health`)."""

    worker_id: str
    host: str
    pid: int
    started_at: datetime
    #: When the worker last finished a round (its heartbeat).
    beat_at: datetime
    #: Rounds in a row that failed (the store away, or a step raising); 0 when healthy.
    consecutive_failures: int = 0
    #: The latest failure, and when (kept after recovery, until the next failure).
    last_error: str | None = None
    last_error_at: datetime | None = None
