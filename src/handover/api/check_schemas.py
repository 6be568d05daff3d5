"""Bodies of the check APIs, one schema per direction (the batch is parsed by hand, so its
request schemas document the wire format; answers are written as plain dicts for speed)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from handover.api.edge import Inbound

#: Most items one POST /v1/check may carry.
MAX_BATCH_ITEMS = 100_000
#: Most bytes one POST /v1/check body may carry (about 600 bytes an item).
MAX_BATCH_BYTES = 64 * 1024 * 1024


class CheckAnswerPublic(BaseModel):
    """The full answer (see docs/check.md and `handover.domain.check`)."""

    number: str = Field(description="The number in E.164", examples=["+8613812345678"])
    since: str = Field(description="The moment asked about, UTC", examples=["2024-01-01T00:00:00Z"])
    state: str | None = Field(description="Lifecycle state now; null when never reported")
    recycled: bool | None = Field(
        description="CAMARA: the subscriber changed after `since`, or there was none on it; "
        "null without data"
    )
    disconnected: bool | None = Field(
        description="FCC RND: permanently disconnected at or after `since`; null without data"
    )
    rnd: str = Field(description="RND-style answer: yes, no or no_data")
    verdict: str = Field(description="For an SMS-code login: allow, step_up or deny")
    reasons: list[str]
    last_disconnected: str | None
    reassigned_at: str | None
    data_version: int = Field(description="The ledger sequence the answer reflects")
    checked_at: str
    receipt: str | None = Field(
        None, description="With receipt=true: a compact JWS over this answer (see /v1/receipts)"
    )


class CheckItemIn(Inbound):
    """One question of a batch (also one NDJSON line)."""

    model_config = ConfigDict(extra="forbid")

    number: str = Field(examples=["+8613812345678"])
    since: str = Field(
        examples=["2024-01-01"], description="ISO 8601 date or date-time; UTC without an offset"
    )


class CheckBatchIn(Inbound):
    model_config = ConfigDict(extra="forbid")

    items: list[CheckItemIn] = Field(max_length=MAX_BATCH_ITEMS)
    receipt: bool = Field(False, description="Sign a receipt for each answer")


class ItemErrorPublic(BaseModel):
    code: str = Field(description="invalid_item, invalid_number, invalid_date or future_date")
    message: str


class CheckBatchResultPublic(BaseModel):
    """An answer (the fields of `CheckAnswerPublic`) or an `error`, with the item's index."""

    model_config = ConfigDict(extra="allow")

    index: int
    error: ItemErrorPublic | None = None


class CheckBatchPublic(BaseModel):
    count: int
    answered: int
    errors: int
    results: list[CheckBatchResultPublic]


class ReceiptIn(Inbound):
    model_config = ConfigDict(extra="forbid")

    receipt: str = Field(description="A compact JWS from a check answer")


class ReceiptVerificationPublic(BaseModel):
    valid: bool
    kid: str | None = None
    claims: dict[str, Any] | None = None
    error: str | None = None


class CamaraCheckIn(Inbound):
    """CAMARA NumberRecycling v0.2 `CreateCheckNumRecycling`."""

    model_config = ConfigDict(extra="forbid")

    phoneNumber: str | None = Field(  # noqa: N815 - CAMARA's name
        None, pattern=r"^\+[1-9][0-9]{4,14}$", examples=["+8613812345678"]
    )
    specifiedDate: str = Field(  # noqa: N815 - CAMARA's name
        description="RFC 3339 full-date (YYYY-MM-DD)", examples=["2024-10-31"]
    )


class CamaraCheckPublic(BaseModel):
    """CAMARA NumberRecycling v0.2 `CheckNumRecyclingInfo`."""

    phoneNumberRecycled: bool  # noqa: N815 - CAMARA's name


class CamaraErrorPublic(BaseModel):
    """CAMARA `ErrorInfo`."""

    status: int
    code: str
    message: str
