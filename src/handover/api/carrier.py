"""The carrier's API: lifecycle reports as JSON batches and as bulk CSV files."""

from __future__ import annotations

import os
import tempfile
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from handover.api.deps import AppSettings, CarrierReporter, UowFactory
from handover.api.problems import Problem
from handover.api.schemas import (
    EventBatchIn,
    EventBatchPublic,
    EventResultPublic,
    IngestListPublic,
    IngestPublic,
    RejectionPagePublic,
    RejectionPublic,
    SummaryPublic,
)
from handover.config import Settings
from handover.services import reporting
from handover.services.access import Principal
from handover.services.model import Ingest
from handover.services.ports import ReportSorterFactory

router = APIRouter(prefix="/v1/carrier", tags=["carrier"])
_CSV_TYPES = ("text/csv", "application/csv", "text/plain", "application/octet-stream")


def _carrier(principal: Principal) -> str:
    if principal.carrier_id is None:
        raise Problem(403, "not-a-carrier", "Only a carrier's client may report events")
    return principal.carrier_id


@router.post("/events", response_model=EventBatchPublic)
def report_events(
    batch: EventBatchIn, principal: CarrierReporter, uow_factory: UowFactory, settings: AppSettings
) -> EventBatchPublic:
    """Report up to 10,000 lifecycle events. Each is accepted, a duplicate (same
    `event_id`, same content) or rejected with a reason; rejected events change nothing."""
    result = reporting.report_events(
        uow_factory,
        _carrier(principal),
        [event.model_dump() for event in batch.events],
        region=batch.region,
        policy=settings.freeze_policy,
    )
    return EventBatchPublic(
        accepted=result.accepted,
        duplicates=result.duplicates,
        rejected=result.rejected,
        results=[
            EventResultPublic(
                index=o.line,
                log_index=o.log_index,
                event_id=o.event_id,
                status=o.status.value,
                reason=o.reason.value if o.reason else None,
                detail=o.detail,
            )
            for o in result.outcomes
        ],
    )


@router.post(
    "/files",
    status_code=201,
    response_model=IngestPublic,
    responses={422: {"description": "The file has no valid header"}},
)
async def upload_file(
    request: Request,
    response: Response,
    principal: CarrierReporter,
    uow_factory: UowFactory,
    settings: AppSettings,
    region: Annotated[str | None, Query(max_length=3)] = None,
    filename: Annotated[str | None, Query(max_length=255)] = None,
) -> IngestPublic:
    """Upload a CSV file (`event_id,number,event,occurred_at,subscriber,to_carrier`) as the
    raw request body. It is streamed to disk, then applied; the summary and every rejected
    row stay available under the returned ingest."""
    carrier_id = _carrier(principal)
    content_type = request.headers.get("content-type", "text/csv").split(";")[0].strip()
    if content_type not in _CSV_TYPES:
        raise Problem(
            415, "unsupported-media-type", "Send the file as text/csv", f"got {content_type!r}"
        )
    with tempfile.NamedTemporaryFile(prefix="handover-upload-", dir=settings.spool_dir) as spool:
        async for chunk in request.stream():
            spool.write(chunk)
        spool.flush()
        ingest = await run_in_threadpool(
            _ingest_spooled,
            uow_factory,
            request.app.state.report_sorters,
            settings,
            carrier_id,
            spool.name,
            filename,
            region,
        )
    response.headers["Location"] = f"/v1/carrier/files/{ingest.id}"
    return _public(ingest)


def _ingest_spooled(
    uow_factory: UowFactory,
    sorters: ReportSorterFactory,
    settings: Settings,
    carrier_id: str,
    path: str,
    filename: str | None,
    region: str | None,
) -> Ingest:
    with open(path, "rb") as lines:
        return reporting.ingest_file(
            uow_factory,
            sorters,
            carrier_id,
            lines,
            filename=filename,
            region=region,
            total_bytes=os.path.getsize(path),
            policy=settings.freeze_policy,
        )


@router.get("/files", response_model=IngestListPublic)
def list_files(
    principal: CarrierReporter,
    uow_factory: UowFactory,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> IngestListPublic:
    ingests = reporting.recent_ingests(uow_factory, _carrier(principal), limit)
    return IngestListPublic(items=[_public(ingest) for ingest in ingests])


@router.get("/files/{ingest_id}", response_model=IngestPublic)
def get_file(ingest_id: str, principal: CarrierReporter, uow_factory: UowFactory) -> IngestPublic:
    return _public(_own_ingest(uow_factory, ingest_id, principal))


@router.get("/files/{ingest_id}/rejections", response_model=RejectionPagePublic)
def get_rejections(
    ingest_id: str,
    principal: CarrierReporter,
    uow_factory: UowFactory,
    after_line: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1_000,
) -> RejectionPagePublic:
    """Rejected rows in line order, a page at a time (follow `next_after_line`)."""
    _own_ingest(uow_factory, ingest_id, principal)
    rows = reporting.rejected_rows(uow_factory, ingest_id, after_line, limit)
    return RejectionPagePublic(
        items=[
            RejectionPublic(
                line=r.line, event_id=r.event_id, reason=r.reason, detail=r.detail, raw=r.raw
            )
            for r in rows
        ],
        next_after_line=rows[-1].line if len(rows) == limit else None,
    )


def _own_ingest(uow_factory: UowFactory, ingest_id: str, principal: Principal) -> Ingest:
    ingest = reporting.find_ingest(uow_factory, ingest_id)
    if ingest is None or ingest.carrier_id != _carrier(principal):
        raise Problem(404, "not-found", "No such file", f"no ingest {ingest_id!r} for you")
    return ingest


def _public(ingest: Ingest) -> IngestPublic:
    return IngestPublic(
        id=ingest.id,
        carrier=ingest.carrier_id,
        source=ingest.source,
        filename=ingest.filename,
        status=ingest.status.value,
        received_at=ingest.received_at,
        finished_at=ingest.finished_at,
        rows=ingest.rows,
        summary=SummaryPublic(
            accepted=ingest.accepted,
            duplicates=ingest.duplicates,
            rejected=dict(sorted(ingest.rejected.items())),
        ),
        error=ingest.error,
        rejections_url=f"/v1/carrier/files/{ingest.id}/rejections",
    )
