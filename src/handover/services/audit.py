"""The audit log's use cases: append, sign checkpoints, serve proofs, verify the store.

The log is RFC 9162's Merkle tree; `handover.tlog` holds the algorithms and the
standalone verifier. Proofs are computed from stored complete-subtree hashes: the walk
depends only on sizes and indices, so the hashes one proof needs are fetched in one query.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeVar

from handover.domain.audit import EntryWriter, parties
from handover.domain.reports import Outcome
from handover.services.access import Principal
from handover.services.model import StoredCheckpoint
from handover.services.ports import UnitOfWork, UnitOfWorkFactory
from handover.tlog.tree import GetNode, consistency_proof, inclusion_proof, root_hash
from handover.tlog.verify import (
    Checkpoint,
    NoteError,
    ProofBundle,
    ProofError,
    Verifier,
    leaf_hash,
    node_hash,
    open_checkpoint,
    verify_consistency,
)

T = TypeVar("T")
HASH = 32


class CheckpointSigner(Protocol):
    """Signs checkpoint text as a C2SP signed note under the log's origin."""

    @property
    def origin(self) -> str: ...

    def sign(self, text: str) -> str: ...

    def verifier(self) -> Verifier: ...


class LogInconsistent(Exception):
    """The stored tree does not extend the last signed checkpoint; nothing is signed."""


class OutOfRange(ValueError):
    """A proof asked for entries or tree sizes the log does not have."""


class NoSuchEntry(OutOfRange):
    """An inclusion proof of an entry outside the tree asked about."""


class NoSuchTreeSizes(OutOfRange):
    """A consistency proof between tree sizes the log does not have (in that order)."""


class NoLogEntry(OutOfRange):
    """A receipt asked for an entry the log does not have."""


class NotAParty(Exception):
    """The caller asked for an entry's contents but the entry is not about it."""


#: The scope that reads every entry's contents.
READ_ALL = "regulator:read"


class NoCheckpoint(LookupError):
    """No checkpoint covers any entry yet, and the question needs one."""


def append_accepted(
    uow: UnitOfWork, carrier_id: str, accepted: Sequence[Outcome], recorded_at: datetime
) -> int:
    """Log every accepted report in this transaction; the first entry's index."""
    writer = EntryWriter(uow.log_key, carrier_id, recorded_at)
    entries = [
        writer.number_event(outcome.report) for outcome in accepted if outcome.report is not None
    ]
    return uow.log.append(entries, recorded_at)


def _batched(uow: UnitOfWork, compute: Callable[[GetNode], T]) -> T:
    """Run a tree computation twice: once to learn which nodes it reads, once for real."""
    wanted: list[tuple[int, int]] = []

    def record(level: int, index: int) -> bytes:
        wanted.append((level, index))
        return bytes(HASH)

    compute(record)
    nodes = uow.log.nodes(wanted)
    missing = [key for key in wanted if key not in nodes]
    if missing:
        raise LogInconsistent(f"stored subtree hashes are missing: {missing[:3]}")
    return compute(lambda level, index: nodes[(level, index)])


def sign_checkpoint(
    uow_factory: UnitOfWorkFactory, signer: CheckpointSigner, now: datetime
) -> StoredCheckpoint:
    """Sign the log's current size and root, unless the latest checkpoint already has it.

    The new root is checked against the previous checkpoint with a consistency proof first,
    so Handover never signs two checkpoints that disagree about history (`LogInconsistent`).
    """
    with uow_factory() as uow:
        checkpoint = _sign(uow, signer, now)
        uow.commit()
    return checkpoint


def latest_checkpoint(
    uow_factory: UnitOfWorkFactory, signer: CheckpointSigner, now: datetime
) -> StoredCheckpoint:
    """The latest signed checkpoint; the first one is signed when there is none yet."""
    with uow_factory() as uow:
        latest = uow.log.checkpoint()
        if latest is None:
            latest = _sign(uow, signer, now)
            uow.commit()
    return latest


def _sign(uow: UnitOfWork, signer: CheckpointSigner, now: datetime) -> StoredCheckpoint:
    size = uow.log.size(lock=True)
    latest = uow.log.checkpoint()
    if latest is not None and latest.size == size:
        return latest
    root = _batched(uow, lambda get: root_hash(size, get))
    if latest is not None and latest.size > 0:
        proof = _batched(uow, lambda get: consistency_proof(latest.size, size, get))
        try:
            verify_consistency(latest.size, size, proof, latest.root_hash, root)
        except ProofError as exc:
            raise LogInconsistent(f"size {size} does not extend checkpoint {latest.size}") from exc
    note = signer.sign(Checkpoint(signer.origin, size, root).format())
    checkpoint = StoredCheckpoint(size, root, note, now)
    uow.log.add_checkpoint(checkpoint)
    return checkpoint


@dataclass(frozen=True, slots=True)
class InclusionProof:
    index: int
    size: int
    leaf_hash: bytes
    proof: list[bytes]


def prove_inclusion(
    uow_factory: UnitOfWorkFactory, index: int, size: int | None = None
) -> InclusionProof:
    """Entry `index` is in the tree of `size` entries (default: the latest checkpoint's).

    `NoCheckpoint` when no size is given and no checkpoint covers an entry yet."""
    with uow_factory() as uow:
        if size is None:
            latest = uow.log.checkpoint()
            if latest is None or latest.size == 0:
                raise NoCheckpoint("Ask for tree_size explicitly or wait for the next checkpoint.")
            size = latest.size
        return _inclusion(uow, index, size)


def _inclusion(uow: UnitOfWork, index: int, size: int) -> InclusionProof:
    if not 0 <= index < size <= uow.log.size():
        raise NoSuchEntry(f"need 0 <= index < size <= log size; got index {index}, size {size}")
    leaf, proof = _batched(uow, lambda get: (get(0, index), inclusion_proof(index, size, get)))
    return InclusionProof(index, size, leaf, proof)


def prove_consistency(uow_factory: UnitOfWorkFactory, first: int, second: int) -> list[bytes]:
    """The tree of `second` entries extends the tree of `first` (RFC 9162 §2.1.4)."""
    with uow_factory() as uow:
        return _consistency(uow, first, second)


def _consistency(uow: UnitOfWork, first: int, second: int) -> list[bytes]:
    if not 0 < first <= second <= uow.log.size():
        raise NoSuchTreeSizes(f"need 0 < first <= second <= log size; got {first}, {second}")
    return _batched(uow, lambda get: consistency_proof(first, second, get))


def receipt(
    uow_factory: UnitOfWorkFactory,
    index: int,
    signer: CheckpointSigner,
    now: datetime,
    reader: Principal | None = None,
) -> str:
    """A C2SP tlog-proof bundle for entry `index`, against a checkpoint that covers it
    (signed now when none does yet); `OutOfRange` when the log has no such entry.

    For the public (`reader` None) the bundle proves the leaf hash only; for a `reader` that
    is a party to the entry (or holds `regulator:read`) it carries the entry in its `extra`
    line. Any other reader gets `NotAParty`."""
    with uow_factory() as uow:
        if not 0 <= index < uow.log.size():
            raise NoLogEntry(f"the log has no entry {index}")
        entry: bytes | None = None
        if reader is not None:
            [(_, entry, _)] = list(uow.log.leaves(index, index + 1))
            if not _may_read(uow, reader, index, entry):
                raise NotAParty(f"entry {index} is not about {reader.client_id}")
        checkpoint = uow.log.checkpoint()
        if checkpoint is None or checkpoint.size <= index:
            checkpoint = _sign(uow, signer, now)
        proof = _inclusion(uow, index, checkpoint.size)
        uow.commit()
    return ProofBundle(index, tuple(proof.proof), checkpoint.note, entry).format()


def _may_read(uow: UnitOfWork, reader: Principal, index: int, entry: bytes) -> bool:
    """The regulator reads every entry; a carrier the entries of its reports (and of ports
    to it); a platform its cases' entries and those of the SETs it was sent (`txn`)."""
    if READ_ALL in reader.scopes:
        return True
    named = parties(entry)
    if reader.carrier_id is not None and reader.carrier_id in named.carriers:
        return True
    if reader.platform_id is None:
        return False
    if named.platform is not None:
        return named.platform == reader.platform_id
    return _was_sent(uow, reader.platform_id, f"log:{index}")


def _was_sent(uow: UnitOfWork, platform_id: str, txn: str) -> bool:
    """A SET with `txn` was queued for one of the platform's streams: a signal for every
    platform (or for it) of a type a stream of its requested, that existed (streams start
    at the present) when the signal was written."""
    streams = uow.streams.for_platform(platform_id)
    for signal in uow.signals.with_txn(txn):
        if signal.platform_id not in (None, platform_id):
            continue
        for stream in streams:
            if signal.stream_id not in (None, stream.stream_id):
                continue
            created = signal.created_at
            if stream.wants(signal.event_type) and created and stream.created_at <= created:
                return True
    return False


def entries(
    uow_factory: UnitOfWorkFactory, start: int, limit: int
) -> list[tuple[int, bytes, bytes]]:
    """Up to `limit` entries from index `start`: (index, entry, leaf hash) in index order."""
    with uow_factory() as uow:
        size = uow.log.size()  # bounds the query: a huge `start` is no database error
        return list(uow.log.leaves(start, min(start + limit, size))) if start < size else []


@dataclass(slots=True)
class LogReport:
    """What `verify_store` found; `problems[0]` names the first bad leaf or checkpoint."""

    size: int = 0
    leaves_checked: int = 0
    checkpoints_checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_store(
    uow_factory: UnitOfWorkFactory,
    verifiers: Iterable[Verifier],
    progress: Callable[[int], None] | None = None,
) -> LogReport:
    """Recompute the whole tree from the stored entries and check every stored hash and
    every signed checkpoint against it. Memory: 32 bytes per leaf and per inner node."""
    with uow_factory() as uow:
        return _verify(uow, verifiers, progress)


def _verify(
    uow: UnitOfWork, verifiers: Iterable[Verifier], progress: Callable[[int], None] | None
) -> LogReport:
    report = LogReport(size=uow.log.size())
    levels = [_recompute_leaves(uow, report, progress)]
    level = 0
    while len(levels[level]) > HASH:
        levels.append(_recompute_level(uow, report, level + 1, levels[level]))
        level += 1

    def get(lv: int, ix: int) -> bytes:
        return bytes(levels[lv][ix * HASH : (ix + 1) * HASH])

    trusted = list(verifiers)
    for checkpoint in uow.log.checkpoints():
        report.checkpoints_checked += 1
        _check_checkpoint(checkpoint, trusted, get, report)
    return report


def _recompute_leaves(
    uow: UnitOfWork, report: LogReport, progress: Callable[[int], None] | None
) -> bytearray:
    hashes, expected = bytearray(), 0
    for index, data, stored in uow.log.leaves():
        if index >= report.size:
            report.problems.append(f"leaf {index}: stored beyond the log size {report.size}")
            break
        if index != expected:
            report.problems.append(f"leaf {expected}: missing (the next stored leaf is {index})")
            break
        digest = leaf_hash(data)
        if digest != stored:
            report.problems.append(f"leaf {index}: entry does not match its stored hash")
        hashes += digest
        expected += 1
        report.leaves_checked = expected
        if progress and expected % 100_000 == 0:
            progress(expected)
    if expected < report.size and not report.problems:
        report.problems.append(f"leaf {expected}: missing (the log size is {report.size})")
    return hashes


def _recompute_level(uow: UnitOfWork, report: LogReport, level: int, below: bytearray) -> bytearray:
    count = len(below) // HASH // 2
    hashes = bytearray()
    for index in range(count):
        start = 2 * index * HASH
        hashes += node_hash(
            bytes(below[start : start + HASH]), bytes(below[start + HASH : start + 2 * HASH])
        )
    expected = 0
    for index, stored in uow.log.stored_nodes(level):
        if index != expected:  # rows come in index order: a gap is a deleted node
            report.problems.append(_node_problem(level, expected, "missing"))
            return hashes
        if index >= count or stored != bytes(hashes[index * HASH : (index + 1) * HASH]):
            report.problems.append(
                _node_problem(level, index, "stored hash does not match the entries")
            )
            return hashes
        expected += 1
    if expected < count and not any(p.startswith("node") for p in report.problems):
        report.problems.append(_node_problem(level, expected, "missing"))
    return hashes


def _node_problem(level: int, index: int, what: str) -> str:
    first = index << level
    return f"node ({level}, {index}) over leaves {first}..{first + (1 << level) - 1}: {what}"


def _check_checkpoint(
    checkpoint: StoredCheckpoint, verifiers: list[Verifier], get: GetNode, report: LogReport
) -> None:
    try:
        parsed, _ = open_checkpoint(checkpoint.note, verifiers)
    except NoteError as exc:
        report.problems.append(f"checkpoint {checkpoint.size}: signature does not verify ({exc})")
        return
    if parsed.size != checkpoint.size or parsed.root_hash != checkpoint.root_hash:
        report.problems.append(f"checkpoint {checkpoint.size}: row differs from its signed note")
        return
    if parsed.size > report.leaves_checked:
        report.problems.append(f"checkpoint {parsed.size}: covers leaves the store lacks")
        return
    if root_hash(parsed.size, get) != parsed.root_hash:
        report.problems.append(
            f"checkpoint {parsed.size}: signed root differs from the stored entries' root"
        )
