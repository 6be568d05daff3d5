"""Cases: one request to one platform about one number, with a deadline and an outcome.

A new owner's renewal fans out into one `unbind` case per platform; a previous owner opens
`migrate` or `unbind` cases on their own bindings. Every case ends answered (an outcome
from the platform) or cancelled; one still open past its deadline is escalated once.
The rules of each move live on `Case`, which raises `CaseError` on an illegal one and
otherwise returns the past-tense event that happened.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

from handover.domain.platforms import Category

MAX_REASON = 500


class CaseKind(StrEnum):
    UNBIND = "unbind"
    MIGRATE = "migrate"
    WILL = "will"


class Requester(StrEnum):
    CURRENT_OWNER = "current_owner"
    PREVIOUS_OWNER = "previous_owner"
    HEIR = "heir"


class CaseState(StrEnum):
    OPEN = "open"
    ANSWERED = "answered"
    CANCELLED = "cancelled"


class CaseOutcome(StrEnum):
    NO_ACCOUNT = "no_account"
    UNBOUND = "unbound"
    FROZEN = "frozen"
    MIGRATED = "migrated"
    MEMORIALIZED = "memorialized"
    TRANSFERRED = "transferred"
    DELETED = "deleted"
    REJECTED = "rejected"


#: What a platform may answer to each kind of case.
OUTCOMES: Mapping[CaseKind, frozenset[CaseOutcome]] = MappingProxyType(
    {
        CaseKind.UNBIND: frozenset(
            {CaseOutcome.NO_ACCOUNT, CaseOutcome.UNBOUND, CaseOutcome.FROZEN, CaseOutcome.REJECTED}
        ),
        CaseKind.MIGRATE: frozenset(
            {
                CaseOutcome.NO_ACCOUNT,
                CaseOutcome.MIGRATED,
                CaseOutcome.UNBOUND,
                CaseOutcome.REJECTED,
            }
        ),
        CaseKind.WILL: frozenset(
            {
                CaseOutcome.NO_ACCOUNT,
                CaseOutcome.MEMORIALIZED,
                CaseOutcome.TRANSFERRED,
                CaseOutcome.DELETED,
                CaseOutcome.REJECTED,
            }
        ),
    }
)

#: Outcomes after which the binding the case is about no longer ties an account to the
#: number (so it stops holding a release and leaves the activation notice).
RESOLVING = frozenset(
    {
        CaseOutcome.NO_ACCOUNT,
        CaseOutcome.UNBOUND,
        CaseOutcome.MIGRATED,
        CaseOutcome.DELETED,
        CaseOutcome.TRANSFERRED,
    }
)

#: Deadlines by platform category, in hours (72 h; 24 h where money moves: docs/cases.md).
DEFAULT_DEADLINE_HOURS = 72
FAST_CATEGORIES: Mapping[Category, int] = MappingProxyType(
    {Category.PAYMENT: 24, Category.BANKING: 24, Category.LENDING: 24}
)


class CaseRule(StrEnum):
    """The rule a refused case request breaks (`CaseError.code`)."""

    NOT_IN_SERVICE = "not-in-service"
    UNKNOWN_PLATFORM = "unknown-platform"
    NOTHING_SELECTED = "nothing-selected"
    INVALID_KIND = "invalid-kind"
    INVALID_NUMBER = "invalid-number"
    NO_SUCH_BINDING = "no-such-binding"
    CASE_OPEN = "case-open"
    CASE_CLOSED = "case-closed"
    INVALID_OUTCOME = "invalid-outcome"
    OUTCOME_NOT_ALLOWED = "outcome-not-allowed"
    REASON_REQUIRED = "reason-required"
    INVALID_REASON = "invalid-reason"
    MIGRATE_TO_REQUIRED = "migrate-to-required"
    MIGRATE_TO_NOT_YOURS = "migrate-to-not-yours"
    MIGRATE_TO_SAME = "migrate-to-same"
    INVALID_COMPLAINT = "invalid-complaint"
    NOT_OVERDUE = "not-overdue"
    ALREADY_ESCALATED = "already-escalated"


class CaseError(ValueError):
    """An illegal move on a case: `code` is the rule it breaks, `detail` says why."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = CaseRule(code)
        self.detail = detail


@dataclass(frozen=True, slots=True)
class CasePolicy:
    """How long a platform has to answer, by its category."""

    default_hours: int = DEFAULT_DEADLINE_HOURS
    hours: Mapping[Category, int] = field(default_factory=lambda: FAST_CATEGORIES)

    def deadline(self, category: Category, opened_at: datetime) -> datetime:
        return opened_at + timedelta(hours=self.hours.get(category, self.default_hours))


@dataclass(frozen=True, slots=True)
class CaseEvent:
    case_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class CaseOpened(CaseEvent):
    pass


@dataclass(frozen=True, slots=True)
class CaseAnswered(CaseEvent):
    outcome: CaseOutcome
    reason: str | None
    late: bool


@dataclass(frozen=True, slots=True)
class CaseEscalated(CaseEvent):
    overdue: timedelta


@dataclass(frozen=True, slots=True)
class CaseCancelled(CaseEvent):
    why: str


@dataclass(slots=True)
class Case:
    """One request to one platform about one number.

    `tenure_start` is the requester's tenure start. A current owner's case may touch only
    accounts bound before it; a previous owner's names one binding by `account_ref`.
    """

    id: str
    kind: CaseKind
    requester: Requester
    e164: str
    platform_id: str
    tenure_start: datetime
    opened_at: datetime
    deadline: datetime
    state: CaseState = CaseState.OPEN
    account_ref: str | None = None
    migrate_to: str | None = None
    renewal_id: str | None = None
    outcome: CaseOutcome | None = None
    reason: str | None = None
    answered_at: datetime | None = None
    escalated_at: datetime | None = None
    cancelled_at: datetime | None = None
    version: int = 0

    def answer(self, outcome: CaseOutcome, reason: str | None, now: datetime) -> CaseAnswered:
        """The platform's answer; `CaseError` when the case is closed or the answer wrong."""
        if self.state is not CaseState.OPEN:
            raise CaseError("case-closed", f"the case is {self.state.value}")
        if outcome not in OUTCOMES[self.kind]:
            allowed = ", ".join(sorted(OUTCOMES[self.kind]))
            raise CaseError("outcome-not-allowed", f"a {self.kind} case ends in one of {allowed}")
        reason = (reason or "").strip() or None
        if outcome is CaseOutcome.REJECTED and reason is None:
            raise CaseError("reason-required", "a rejection needs a reason the owner can read")
        if reason is not None and (len(reason) > MAX_REASON or not reason.isprintable()):
            raise CaseError("invalid-reason", f"reason: 1-{MAX_REASON} printable characters")
        self.state, self.outcome, self.reason, self.answered_at = (
            CaseState.ANSWERED,
            outcome,
            reason,
            now,
        )
        self.version += 1
        return CaseAnswered(self.id, now, outcome, reason, late=now > self.deadline)

    def answered_with(self, outcome: CaseOutcome, reason: str | None) -> bool:
        """This case already ended with exactly this answer (a retried request)."""
        return (
            self.state is CaseState.ANSWERED
            and self.outcome is outcome
            and self.reason == ((reason or "").strip() or None)
        )

    def overdue(self, now: datetime) -> bool:
        return self.state is CaseState.OPEN and now > self.deadline

    def escalate(self, now: datetime) -> CaseEscalated:
        """Past its deadline and still open: escalated once, to the regulator's list."""
        if not self.overdue(now):
            raise CaseError("not-overdue", "only an open case past its deadline is escalated")
        if self.escalated_at is not None:
            raise CaseError("already-escalated", "the case was escalated already")
        self.escalated_at = now
        self.version += 1
        return CaseEscalated(self.id, now, now - self.deadline)

    def cancel(self, why: str, now: datetime) -> CaseCancelled:
        if self.state is not CaseState.OPEN:
            raise CaseError("case-closed", f"the case is {self.state.value}")
        self.state, self.cancelled_at = CaseState.CANCELLED, now
        self.version += 1
        return CaseCancelled(self.id, now, why)

    @property
    def resolves_binding(self) -> bool:
        return self.state is CaseState.ANSWERED and self.outcome in RESOLVING


def open_case(
    case_id: str,
    kind: CaseKind,
    requester: Requester,
    e164: str,
    platform_id: str,
    category: Category,
    tenure_start: datetime,
    now: datetime,
    policy: CasePolicy,
    *,
    account_ref: str | None = None,
    migrate_to: str | None = None,
    renewal_id: str | None = None,
) -> tuple[Case, CaseOpened]:
    if kind is CaseKind.MIGRATE and migrate_to is None:
        raise CaseError("migrate-to-required", "a migrate case names the number to move to")
    if migrate_to == e164:
        raise CaseError("migrate-to-same", "an account cannot move to the number it is on")
    case = Case(
        case_id,
        kind,
        requester,
        e164,
        platform_id,
        tenure_start,
        now,
        policy.deadline(category, now),
        account_ref=account_ref,
        migrate_to=migrate_to,
        renewal_id=renewal_id,
    )
    return case, CaseOpened(case_id, now)


class ComplaintCategory(StrEnum):
    NO_ANSWER = "no_answer"
    WRONG_OUTCOME = "wrong_outcome"
    STILL_CONTACTED = "still_contacted"
    OTHER = "other"


MAX_COMPLAINT = 2000


@dataclass(frozen=True, slots=True)
class Complaint:
    id: str
    case_id: str
    category: ComplaintCategory
    text: str
    filed_at: datetime
    state: str = "open"


def new_complaint(
    complaint_id: str, case: Case, category: str, text: str, now: datetime
) -> Complaint:
    try:
        kind = ComplaintCategory(category)
    except ValueError:
        allowed = ", ".join(c.value for c in ComplaintCategory)
        raise CaseError("invalid-complaint", f"category: one of {allowed}") from None
    text = text.strip()
    if not text or len(text) > MAX_COMPLAINT:
        raise CaseError("invalid-complaint", f"text: 1-{MAX_COMPLAINT} characters")
    return Complaint(complaint_id, case.id, kind, text, now)


@dataclass(frozen=True, slots=True)
class CaseRecord:
    """One line of a case's history as everyone sees it (owner, platform, regulator).

    `what` is opened, answered, escalated, cancelled or complaint; `log_index` is the
    audit-log entry that proves it, when it has one.
    """

    case_id: str
    what: str
    at: datetime
    detail: Mapping[str, str | int | bool | None]
    log_index: int | None = None
