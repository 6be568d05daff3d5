"""The audit log over HTTP: checkpoints, proofs and receipts are public; entries are for
the regulator and operators."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel

from handover.api.deps import UowFactory, require_scope
from handover.api.problems import Problem
from handover.services import audit
from handover.services.access import Principal
from handover.services.ports import UnitOfWork
from handover.tlog.verify import b64encode

router = APIRouter(prefix="/log", tags=["audit log"])
_NOTE = "text/plain; charset=utf-8"
LogReader = Annotated[Principal, Depends(require_scope("regulator:read"))]


class InclusionProofPublic(BaseModel):
    index: int
    tree_size: int
    leaf_hash: str
    proof: list[str]


class ConsistencyProofPublic(BaseModel):
    first: int
    second: int
    proof: list[str]


class EntryPublic(BaseModel):
    index: int
    leaf_hash: str
    entry: str


def _signer(request: Request) -> audit.CheckpointSigner:
    signer: audit.CheckpointSigner = request.app.state.signer
    return signer


@router.get("/key", response_class=PlainTextResponse)
def verifier_key(request: Request) -> PlainTextResponse:
    """The C2SP verifier key that signs checkpoints."""
    return PlainTextResponse(_signer(request).verifier().key_string() + "\n", media_type=_NOTE)


@router.get("/checkpoint", response_class=PlainTextResponse)
def checkpoint(uow_factory: UowFactory, request: Request) -> PlainTextResponse:
    """The latest signed checkpoint (C2SP tlog-checkpoint in a signed note)."""
    with uow_factory() as uow:
        latest = uow.log.checkpoint()
        if latest is None:
            latest = audit.sign_checkpoint(uow, _signer(request), datetime.now(UTC))
            uow.commit()
    return PlainTextResponse(latest.note, media_type=_NOTE)


@router.get("/proof/inclusion", response_model=InclusionProofPublic)
def inclusion(
    uow_factory: UowFactory,
    index: Annotated[int, Query(ge=0)],
    tree_size: Annotated[int | None, Query(ge=1, description="Default: latest checkpoint")] = None,
) -> InclusionProofPublic:
    with uow_factory() as uow:
        size = tree_size or _checkpoint_size(uow)
        proof = audit.prove_inclusion(uow, index, size)
    return InclusionProofPublic(
        index=index,
        tree_size=size,
        leaf_hash=b64encode(proof.leaf_hash),
        proof=[b64encode(node) for node in proof.proof],
    )


@router.get("/proof/consistency", response_model=ConsistencyProofPublic)
def consistency(
    uow_factory: UowFactory,
    first: Annotated[int, Query(ge=1)],
    second: Annotated[int, Query(ge=1)],
) -> ConsistencyProofPublic:
    with uow_factory() as uow:
        proof = audit.prove_consistency(uow, first, second)
    return ConsistencyProofPublic(
        first=first, second=second, proof=[b64encode(node) for node in proof]
    )


@router.get("/receipts/{index}", response_class=PlainTextResponse)
def receipt(index: int, uow_factory: UowFactory, request: Request) -> PlainTextResponse:
    """A C2SP tlog-proof bundle for one entry: verifies offline with `python -m handover.tlog`."""
    with uow_factory() as uow:
        if not 0 <= index < uow.log.size():
            raise Problem(404, "not-found", "No such log entry", f"the log has no entry {index}")
        bundle = audit.receipt(uow, index, _signer(request), datetime.now(UTC))
        uow.commit()
    return PlainTextResponse(bundle, media_type=_NOTE)


@router.get("/entries", response_model=list[EntryPublic])
def entries(
    uow_factory: UowFactory,
    _reader: LogReader,
    start: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1_000,
) -> list[EntryPublic]:
    """Entries in index order (canonical JSON; numbers and subscribers pseudonymised)."""
    with uow_factory() as uow:
        size = uow.log.size()  # bounds the query: a huge `start` is no database error
        rows = list(uow.log.leaves(start, min(start + limit, size))) if start < size else []
    return [
        EntryPublic(index=i, leaf_hash=b64encode(h), entry=data.decode()) for i, data, h in rows
    ]


def _checkpoint_size(uow: UnitOfWork) -> int:
    latest = uow.log.checkpoint()
    if latest is None or latest.size == 0:
        raise Problem(
            409,
            "no-checkpoint",
            "No checkpoint covers any entry yet",
            "Ask for tree_size explicitly or wait for the next checkpoint.",
        )
    return latest.size
