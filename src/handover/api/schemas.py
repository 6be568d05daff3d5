"""Request and response bodies, one schema per direction."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from handover.api.edge import Inbound
from handover.domain.reports import MAX_OVERRIDE_REASON
from handover.services.reporting import MAX_BATCH


class EventIn(Inbound):
    """One lifecycle report. Fields are text so each fault is reported per event."""

    model_config = ConfigDict(extra="forbid")
    judged_per_item = frozenset({"*"})  # domain.reports.parse_report rejects this event

    event_id: str = Field(description="The carrier's own id; repeating it is idempotent")
    number: str = Field(
        description="E.164, or national with the batch's region", examples=["+8613812345678"]
    )
    event: str = Field(
        examples=["activated"],
        description="activated, suspended, resumed, cancelled, restored, released or ported",
    )
    occurred_at: str = Field(
        examples=["2026-01-05T08:00:00+08:00"],
        description="ISO 8601 date or date-time; UTC without an offset",
    )
    subscriber: str | None = Field(None, description="The carrier's pseudonym for the holder")
    to_carrier: str | None = Field(None, description="The receiving carrier of a port")
    override_reason: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_OVERRIDE_REASON,
        description="Only on `released`: release before the advised date (see "
        "`/v1/carrier/numbers/{n}/release-advice`) for this stated reason, which is recorded "
        "and logged. The country's minimum freeze cannot be overridden.",
    )


class EventBatchIn(Inbound):
    model_config = ConfigDict(extra="forbid")
    judged_per_item = frozenset({"events"})

    events: list[EventIn] = Field(max_length=MAX_BATCH)
    region: str | None = Field(
        None,
        description="Region for national numbers; defaults to the carrier's country",
        examples=["CN"],
    )


class EventResultPublic(BaseModel):
    index: int
    event_id: str
    status: str
    reason: str | None = None
    detail: str | None = None
    log_index: int | None = Field(
        None, description="The accepted event's entry in the audit log (see /log/receipts)"
    )


class EventBatchPublic(BaseModel):
    accepted: int
    duplicates: int
    rejected: dict[str, int]
    results: list[EventResultPublic]


class SummaryPublic(BaseModel):
    accepted: int
    duplicates: int
    rejected: dict[str, int]


class IngestPublic(BaseModel):
    id: str
    carrier: str
    source: str
    filename: str | None
    status: str
    received_at: datetime
    finished_at: datetime | None
    rows: int
    summary: SummaryPublic
    error: str | None
    rejections_url: str


class IngestListPublic(BaseModel):
    items: list[IngestPublic]


class RejectionPublic(BaseModel):
    line: int
    event_id: str | None
    reason: str
    detail: str
    raw: str | None


class RejectionPagePublic(BaseModel):
    items: list[RejectionPublic]
    next_after_line: int | None


class TenurePublic(BaseModel):
    subscriber: str
    carrier: str
    start: datetime
    end: datetime | None


class RecordedEventPublic(BaseModel):
    seq: int
    event_id: str
    carrier: str
    event: str
    occurred_at: datetime
    subscriber: str | None
    to_carrier: str | None
    recorded_at: datetime


class NumberHistoryPublic(BaseModel):
    number: str
    region: str
    state: str
    carrier: str
    release_not_before: datetime | None
    tenures: list[TenurePublic]
    events: list[RecordedEventPublic]


class RangeRefusalPublic(BaseModel):
    """An `activated` report refused as `outside_range`: who tried to claim which number."""

    id: int
    carrier: str
    number: str
    event: str
    event_id: str
    occurred_at: datetime
    refused_at: datetime
    #: The file it came from (`/v1/carrier/files/{ingest}`); null for an API batch.
    ingest: str | None
    #: The file's line, or the item's index in an API batch.
    line: int


class RangeRefusalPagePublic(BaseModel):
    items: list[RangeRefusalPublic]
    next_after: int | None
