"""The audit log over HTTP: checkpoints, proofs and receipts (leaf hash only) are public;
an entry's contents are for the parties it names and the regulator."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel

from handover.api.deps import Tokens, UowFactory, optional_bearer, require_scope
from handover.services import audit
from handover.services.access import Principal
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
    latest = audit.latest_checkpoint(uow_factory, _signer(request), datetime.now(UTC))
    return PlainTextResponse(latest.note, media_type=_NOTE)


@router.get("/proof/inclusion", response_model=InclusionProofPublic)
def inclusion(
    uow_factory: UowFactory,
    index: Annotated[int, Query(ge=0)],
    tree_size: Annotated[int | None, Query(ge=1, description="Default: latest checkpoint")] = None,
) -> InclusionProofPublic:
    proof = audit.prove_inclusion(uow_factory, index, tree_size)
    return InclusionProofPublic(
        index=index,
        tree_size=proof.size,
        leaf_hash=b64encode(proof.leaf_hash),
        proof=[b64encode(node) for node in proof.proof],
    )


@router.get("/proof/consistency", response_model=ConsistencyProofPublic)
def consistency(
    uow_factory: UowFactory,
    first: Annotated[int, Query(ge=1)],
    second: Annotated[int, Query(ge=1)],
) -> ConsistencyProofPublic:
    proof = audit.prove_consistency(uow_factory, first, second)
    return ConsistencyProofPublic(
        first=first, second=second, proof=[b64encode(node) for node in proof]
    )


@router.get("/receipts/{index}", response_class=PlainTextResponse)
def receipt(
    index: int,
    uow_factory: UowFactory,
    request: Request,
    tokens: Tokens,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(optional_bearer)],
) -> PlainTextResponse:
    """A C2SP tlog-proof bundle for one entry: verifies offline with `python -m handover.tlog`.

    Without a token it proves the leaf hash only; with the token of a party to the entry
    (its carrier, its platform) or of the regulator it carries the entry too (403 else)."""
    reader = None if credentials is None else tokens.verify(credentials.credentials)
    bundle = audit.receipt(uow_factory, index, _signer(request), datetime.now(UTC), reader)
    return PlainTextResponse(bundle, media_type=_NOTE)


@router.get("/entries", response_model=list[EntryPublic])
def entries(
    uow_factory: UowFactory,
    _reader: LogReader,
    start: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1_000,
) -> list[EntryPublic]:
    """Entries in index order (canonical JSON; numbers and subscribers pseudonymised)."""
    rows = audit.entries(uow_factory, start, limit)
    return [
        EntryPublic(index=i, leaf_hash=b64encode(h), entry=data.decode()) for i, data, h in rows
    ]
