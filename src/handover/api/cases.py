"""Cases over HTTP: the owner's renewal, the platform's answers, the regulator's lists.

Each reader has its own router and its own response shapes (`case_schemas`). Another
party's case is answered 404, never 403, so its existence is not revealed either.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response
from fastapi.concurrency import run_in_threadpool

from handover.api.case_schemas import (
    BindingCaseCreate,
    ComplaintCreate,
    ComplaintPublic,
    NumberChecklistPublic,
    OutcomeCreate,
    OwnerCase,
    OwnerCaseDetail,
    PlatformCasePublic,
    PlatformRef,
    QueuedComplaint,
    RegulatorCase,
    RegulatorCaseDetail,
    RenewalCreate,
    RenewalOptions,
    RenewalPublic,
)
from handover.api.deps import SignedIn, UowFactory, require_platform, require_scope
from handover.domain.cases import CaseState
from handover.services import cases
from handover.services import checklist as checklist_service
from handover.services.access import Principal

owner = APIRouter(prefix="/v1/subscriber", tags=["subscriber"])
platform = APIRouter(prefix="/v1/platform", tags=["platform"])
regulator = APIRouter(prefix="/v1/regulator", tags=["regulator"])

PlatformId = Annotated[str, Depends(require_platform("cases"))]
RegulatorReader = Annotated[Principal, Depends(require_scope("regulator:read"))]

# The owner (signed in with an SMS code)


@owner.get("/renewal", response_model=RenewalOptions)
async def renewal_options(session: SignedIn, uow_factory: UowFactory) -> RenewalOptions:
    """The platforms you can ask: those still listing your number from before your tenure,
    and every other participating platform. Names only; never anyone's accounts."""
    choice, platforms = await run_in_threadpool(cases.choice_for, uow_factory, session.e164)
    refs = {p.id: PlatformRef.of(p) for p in platforms}
    return RenewalOptions(
        number=choice.e164,
        tenure_start=choice.tenure_start,
        listed=[refs[p] for p in choice.listed],
        others=[refs[p] for p in choice.others],
    )


@owner.post("/renewals", response_model=RenewalPublic, status_code=201)
async def request_renewal(
    body: RenewalCreate, session: SignedIn, uow_factory: UowFactory, response: Response
) -> RenewalPublic:
    """Ask the chosen platforms (and, with `check_all_others`, every other one) to unbind
    accounts left on your number from before your tenure. One case per platform; asking
    again while cases are open opens nothing new and answers 200 with the latest renewal."""
    progress = await run_in_threadpool(
        cases.request_renewal,
        uow_factory,
        session.e164,
        body.platforms,
        body.check_all_others,
    )
    response.headers["Location"] = f"/v1/subscriber/renewals/{progress.renewal.id}"
    if not progress.opened:
        response.status_code = 200
    return RenewalPublic.of(progress)


@owner.get("/renewals/{renewal_id}", response_model=RenewalPublic)
async def renewal(renewal_id: str, session: SignedIn, uow_factory: UowFactory) -> RenewalPublic:
    """Per-platform progress of one of your renewals."""
    progress = await run_in_threadpool(
        cases.renewal_progress, uow_factory, session.e164, renewal_id
    )
    return RenewalPublic.of(progress)


@owner.get("/cases", response_model=list[OwnerCase])
async def my_cases(session: SignedIn, uow_factory: UowFactory) -> list[OwnerCase]:
    found = await run_in_threadpool(cases.owner_cases, uow_factory, session.e164)
    return [OwnerCase.of(item) for item in found]


@owner.get("/cases/{case_id}", response_model=OwnerCaseDetail)
async def my_case(case_id: str, session: SignedIn, uow_factory: UowFactory) -> OwnerCaseDetail:
    detail = await run_in_threadpool(cases.owner_case, uow_factory, session.e164, case_id)
    return OwnerCaseDetail.of_detail(detail)


@owner.post("/cases/{case_id}/complaints", response_model=ComplaintPublic, status_code=201)
async def complain(
    case_id: str, body: ComplaintCreate, session: SignedIn, uow_factory: UowFactory
) -> ComplaintPublic:
    """File a complaint about one of your cases; it goes to the regulator with the case's
    history."""
    complaint = await run_in_threadpool(
        cases.file_complaint, uow_factory, session.e164, case_id, body.category, body.text
    )
    return ComplaintPublic.model_validate(complaint)


@owner.get("/checklist", response_model=list[NumberChecklistPublic])
async def checklist(session: SignedIn, uow_factory: UowFactory) -> list[NumberChecklistPublic]:
    """Before you cancel: every account bound to each number you hold, what became of it,
    and whether the number is ready to give up (no high-value account left on it)."""
    lists, platforms = await run_in_threadpool(
        checklist_service.my_checklist, uow_factory, session.e164
    )
    return [NumberChecklistPublic.of(item, platforms) for item in lists]


@owner.post("/checklist/cases", response_model=OwnerCase, status_code=201)
async def binding_case(
    body: BindingCaseCreate, session: SignedIn, uow_factory: UowFactory, response: Response
) -> OwnerCase:
    """Ask a platform to move one of your accounts to another number you hold (`migrate`)
    or to unbind it. The same request while its case is open answers 200 with that case."""
    case, opened = await run_in_threadpool(
        checklist_service.open_binding_case,
        uow_factory,
        session.e164,
        body.number,
        body.platform,
        body.account_ref,
        body.kind,
        body.migrate_to,
    )
    if not opened:
        response.status_code = 200
    detail = await run_in_threadpool(cases.owner_case, uow_factory, session.e164, case.id)
    return OwnerCase.of(cases.PlatformCase(detail.case, detail.platform))


# The platform


@platform.get("/cases")
async def platform_cases(
    platform_id: PlatformId,
    uow_factory: UowFactory,
    state: Annotated[Literal["open", "answered", "cancelled"] | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, object]:
    """Your cases, oldest first, a page at a time (`next` is the cursor of the next page)."""
    page = await run_in_threadpool(
        cases.platform_cases,
        uow_factory,
        platform_id,
        CaseState(state) if state else None,
        cursor,
        limit,
    )
    items = [PlatformCasePublic.of(case) for case in page]
    return {"items": items, "next": page[-1].id if len(page) == limit else None}


@platform.get("/cases/{case_id}", response_model=PlatformCasePublic)
async def platform_case(
    case_id: str, platform_id: PlatformId, uow_factory: UowFactory
) -> PlatformCasePublic:
    detail = await run_in_threadpool(cases.platform_case, uow_factory, platform_id, case_id)
    return PlatformCasePublic.of(detail.case)


@platform.post("/cases/{case_id}/outcome", response_model=PlatformCasePublic)
async def answer(
    case_id: str,
    body: OutcomeCreate,
    platform_id: PlatformId,
    uow_factory: UowFactory,
    response: Response,
) -> PlatformCasePublic:
    """Answer a case: no_account, unbound, frozen, migrated (… per kind) or rejected with a
    reason the owner reads. The same answer again is 200 and changes nothing; a different
    answer to a closed case is 409."""
    case, changed = await run_in_threadpool(
        cases.answer_case, uow_factory, platform_id, case_id, body.outcome, body.reason
    )
    if not changed:
        response.headers["Idempotent-Replay"] = "true"
    return PlatformCasePublic.of(case)


# The regulator


@regulator.get("/cases/overdue", response_model=list[RegulatorCase])
async def overdue(
    principal: RegulatorReader,
    uow_factory: UowFactory,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[RegulatorCase]:
    """Open cases past their deadline, most overdue first, with their age."""
    now = datetime.now(UTC)
    found = await run_in_threadpool(cases.overdue_cases, uow_factory, now=now, limit=limit)
    return [RegulatorCase.of(item, now) for item in found]


@regulator.get("/cases/{case_id}", response_model=RegulatorCaseDetail)
async def regulator_case(
    case_id: str, principal: RegulatorReader, uow_factory: UowFactory
) -> RegulatorCaseDetail:
    detail = await run_in_threadpool(cases.case_detail, uow_factory, case_id)
    return RegulatorCaseDetail.of_detail(detail, datetime.now(UTC))


@regulator.get("/complaints", response_model=list[QueuedComplaint])
async def complaints(
    principal: RegulatorReader,
    uow_factory: UowFactory,
    state: Annotated[Literal["open", "closed"] | None, Query()] = "open",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[QueuedComplaint]:
    """The complaint queue, oldest first, each with its case's whole history."""
    now = datetime.now(UTC)
    queue = await run_in_threadpool(cases.complaint_queue, uow_factory, state, limit)
    return [
        QueuedComplaint(
            **ComplaintPublic.model_validate(complaint).model_dump(),
            case=RegulatorCaseDetail.of_detail(detail, now),
        )
        for complaint, detail in queue
    ]
