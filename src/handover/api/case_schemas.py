"""Request and response bodies of the case endpoints, one shape per reader.

The owner reads platform names and statuses only (`OwnerCase`); the platform reads its own
cases with what it needs to act (`PlatformCasePublic`); the regulator reads everything but
account refs (`RegulatorCase`). Nobody but the platform that holds it sees an account ref.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from handover.api.edge import Inbound
from handover.domain.bindings import MAX_ACCOUNT_REF
from handover.domain.cases import MAX_COMPLAINT, MAX_REASON, Case, CaseRecord
from handover.domain.checklist import NumberChecklist
from handover.domain.platforms import Platform
from handover.services.cases import CaseDetail, PlatformCase, RenewalProgress


class _Strict(Inbound):
    model_config = ConfigDict(extra="forbid")


class RenewalCreate(_Strict):
    platforms: list[str] = Field(default_factory=list, max_length=1000)
    check_all_others: bool = False


class OutcomeCreate(_Strict):
    outcome: Literal[
        "no_account",
        "unbound",
        "frozen",
        "migrated",
        "memorialized",
        "transferred",
        "deleted",
        "rejected",
    ]
    reason: str | None = Field(default=None, max_length=MAX_REASON)


class ComplaintCreate(_Strict):
    category: Literal["no_answer", "wrong_outcome", "still_contacted", "other"]
    text: str = Field(min_length=1, max_length=MAX_COMPLAINT)


class PlatformRef(BaseModel):
    id: str
    name: str
    category: str

    @classmethod
    def of(cls, platform: Platform) -> PlatformRef:
        return cls(id=platform.id, name=platform.name, category=platform.category)


class HistoryEntry(BaseModel):
    what: str
    at: datetime
    detail: dict[str, str | int | bool | None]
    log_index: int | None

    @classmethod
    def of(cls, record: CaseRecord) -> HistoryEntry:
        return cls(
            what=record.what, at=record.at, detail=dict(record.detail), log_index=record.log_index
        )


class OwnerCase(BaseModel):
    """One platform's progress on the owner's request."""

    id: str
    kind: str
    number: str
    migrate_to: str | None
    platform: PlatformRef
    state: str
    outcome: str | None
    reason: str | None
    opened_at: datetime
    deadline: datetime
    answered_at: datetime | None
    escalated: bool

    @classmethod
    def of(cls, item: PlatformCase) -> OwnerCase:
        case, platform = item.case, item.platform
        return cls(
            id=case.id,
            kind=case.kind,
            number=case.e164,
            migrate_to=case.migrate_to,
            platform=PlatformRef.of(platform),
            state=case.state,
            outcome=case.outcome,
            reason=case.reason,
            opened_at=case.opened_at,
            deadline=case.deadline,
            answered_at=case.answered_at,
            escalated=case.escalated_at is not None,
        )


class OwnerCaseDetail(OwnerCase):
    history: list[HistoryEntry]

    @classmethod
    def of_detail(cls, detail: CaseDetail) -> OwnerCaseDetail:
        base = OwnerCase.of(PlatformCase(detail.case, detail.platform))
        return cls(**base.model_dump(), history=[HistoryEntry.of(r) for r in detail.history])


class RenewalPublic(BaseModel):
    id: str
    number: str
    tenure_start: datetime
    requested_at: datetime
    completed_at: datetime | None
    done: bool
    counts: dict[str, int]
    cases: list[OwnerCase]

    @classmethod
    def of(cls, progress: RenewalProgress) -> RenewalPublic:
        renewal = progress.renewal
        counts: dict[str, int] = {}
        for item in progress.cases:
            key = item.case.outcome or item.case.state
            counts[key] = counts.get(key, 0) + 1
        return cls(
            id=renewal.id,
            number=renewal.e164,
            tenure_start=renewal.tenure_start,
            requested_at=renewal.requested_at,
            completed_at=renewal.completed_at,
            done=progress.done,
            counts=counts,
            cases=[OwnerCase.of(item) for item in progress.cases],
        )


class RenewalOptions(BaseModel):
    number: str
    tenure_start: datetime
    listed: list[PlatformRef] = Field(
        description="Platforms still listing the number from before your tenure"
    )
    others: list[PlatformRef] = Field(description="Every other participating platform")


class PlatformCasePublic(BaseModel):
    id: str
    kind: str
    requester: str
    number: str
    bound_before: datetime | None = Field(
        description="A new owner's case: touch only accounts bound before this moment"
    )
    account_ref: str | None
    migrate_to: str | None
    state: str
    opened_at: datetime
    deadline: datetime
    outcome: str | None
    reason: str | None
    answered_at: datetime | None
    escalated_at: datetime | None

    @classmethod
    def of(cls, case: Case) -> PlatformCasePublic:
        return cls(
            id=case.id,
            kind=case.kind,
            requester=case.requester,
            number=case.e164,
            bound_before=case.tenure_start if case.requester == "current_owner" else None,
            account_ref=case.account_ref,
            migrate_to=case.migrate_to,
            state=case.state,
            opened_at=case.opened_at,
            deadline=case.deadline,
            outcome=case.outcome,
            reason=case.reason,
            answered_at=case.answered_at,
            escalated_at=case.escalated_at,
        )


class RegulatorCase(BaseModel):
    id: str
    kind: str
    requester: str
    number: str
    platform: PlatformRef
    state: str
    opened_at: datetime
    deadline: datetime
    overdue_seconds: int
    escalated_at: datetime | None
    outcome: str | None
    answered_at: datetime | None

    @classmethod
    def of(cls, item: PlatformCase | CaseDetail, now: datetime) -> RegulatorCase:
        case, platform = item.case, item.platform
        end = case.answered_at or case.cancelled_at or now
        return cls(
            id=case.id,
            kind=case.kind,
            requester=case.requester,
            number=case.e164,
            platform=PlatformRef.of(platform),
            state=case.state,
            opened_at=case.opened_at,
            deadline=case.deadline,
            overdue_seconds=max(0, int((end - case.deadline).total_seconds())),
            escalated_at=case.escalated_at,
            outcome=case.outcome,
            answered_at=case.answered_at,
        )


class ComplaintPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    case_id: str
    category: str
    text: str
    filed_at: datetime
    state: str


class RegulatorCaseDetail(RegulatorCase):
    reason: str | None
    history: list[HistoryEntry]
    complaints: list[ComplaintPublic]

    @classmethod
    def of_detail(cls, detail: CaseDetail, now: datetime) -> RegulatorCaseDetail:
        return cls(
            **RegulatorCase.of(detail, now).model_dump(),
            reason=detail.case.reason,
            history=[HistoryEntry.of(r) for r in detail.history],
            complaints=[ComplaintPublic.model_validate(c) for c in detail.complaints],
        )


class QueuedComplaint(ComplaintPublic):
    case: RegulatorCaseDetail


class BindingCaseCreate(_Strict):
    number: str = Field(max_length=32)
    platform: str = Field(max_length=64)
    account_ref: str = Field(min_length=1, max_length=MAX_ACCOUNT_REF)
    kind: Literal["migrate", "unbind"]
    migrate_to: str | None = Field(default=None, max_length=32)


class ChecklistItemPublic(BaseModel):
    platform: PlatformRef
    account_ref: str
    tier: str | None
    bound_since: datetime | None
    status: str = Field(description="untouched, open, or the platform's outcome")
    resolved: bool
    case: OwnerCase | None


class ReadinessPublic(BaseModel):
    total: int
    resolved: int
    open: int
    untouched: int
    high_unresolved: int
    ready: bool


class NumberChecklistPublic(BaseModel):
    number: str
    tenure_start: datetime
    readiness: ReadinessPublic
    items: list[ChecklistItemPublic]

    @classmethod
    def of(
        cls, checklist: NumberChecklist, platforms: Mapping[str, Platform]
    ) -> NumberChecklistPublic:
        items = []
        for item in checklist.items:
            platform = platforms[item.platform_id]
            items.append(
                ChecklistItemPublic(
                    platform=PlatformRef.of(platform),
                    account_ref=item.account_ref,
                    tier=item.tier,
                    bound_since=item.binding.bound_since if item.binding else None,
                    status=item.status,
                    resolved=item.resolved,
                    case=OwnerCase.of(PlatformCase(item.case, platform)) if item.case else None,
                )
            )
        readiness = checklist.readiness
        return cls(
            number=checklist.e164,
            tenure_start=checklist.tenure_start,
            readiness=ReadinessPublic(**asdict(readiness), ready=readiness.ready),
            items=items,
        )
