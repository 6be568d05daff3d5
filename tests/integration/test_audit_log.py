"""The audit log on both stores: one leaf per accepted report, no personal data in clear,
checkpoints that never disagree, proofs and receipts that verify, and tamper detection.

Tampering is done with direct SQL on the log tables, as an insider with database access
would; `audit.verify_store` and `handover log verify` must then name the first bad leaf.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, insert, select, text, update
from typer.testing import CliRunner

from handover import bootstrap
from handover.adapters.staging import SqliteReportSorter
from handover.adapters.storage import tables as t
from handover.adapters.storage.uow import SqlUnitOfWork
from handover.cli import app as cli
from handover.config import Settings
from handover.domain.audit import pseudonym
from handover.domain.freeze_policy import FreezePolicy
from handover.domain.reports import Status
from handover.services import audit, reporting
from handover.services.access import Principal
from handover.services.model import ROLE_SCOPES, Role, StoredCheckpoint
from handover.services.ports import UnitOfWorkFactory
from handover.tlog.tree import MemoryTree
from handover.tlog.verify import (
    ProofBundle,
    TlogError,
    b64encode,
    leaf_hash,
    open_checkpoint,
    verify_bundle,
    verify_consistency,
    verify_inclusion,
)

POLICY = FreezePolicy()

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
REGULATOR = Principal("reg", Role.REGULATOR, ROLE_SCOPES[Role.REGULATOR])
TEST_LOG_KEY = b"test-log-key"  # the key of the `uow_factory` fixture (tests/conftest.py)
HEADER = "event_id,number,event,occurred_at,subscriber,to_carrier\n"
Events = list[dict[str, str | None]]
#: Every key an entry may have (domain/audit.py); none holds personal data in clear.
ENTRY_KEYS = {"v", "type", "carrier", "event_id", "number", "event", "occurred_at"} | {
    "recorded_at",
    "subscriber",
    "to_carrier",
}


def number(i: int) -> str:
    return f"+86138{10_000_000 + i:08d}"


def activations(tag: str, count: int, start: int = 0) -> Events:
    return [
        {
            "event_id": f"{tag}-{i}",
            "number": number(i),
            "event": "activated",
            "occurred_at": "2024-01-01",
            "subscriber": f"SUBSCRIBER-{tag}-{i}",
        }
        for i in range(start, start + count)
    ]


@pytest.fixture
def signer() -> bootstrap.NoteSigner:
    """The signer `handover log verify` trusts in this environment (derived in development)."""
    return bootstrap.checkpoint_signer(Settings())


def report(uow_factory: UnitOfWorkFactory, events: Events) -> reporting.BatchResult:
    return reporting.report_events(uow_factory, "cm", events, now=NOW, policy=POLICY)


def checkpoint(uow_factory: UnitOfWorkFactory, signer: audit.CheckpointSigner) -> StoredCheckpoint:
    return audit.sign_checkpoint(uow_factory, signer, NOW)


def log_rows(engine: Engine) -> list[tuple[int, bytes, bytes]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(t.log_leaves.c.idx, t.log_leaves.c.data, t.log_leaves.c.leaf_hash).order_by(
                t.log_leaves.c.idx
            )
        )
        return [(row.idx, bytes(row.data), bytes(row.leaf_hash)) for row in rows]


def entries(engine: Engine) -> list[dict[str, Any]]:
    return [json.loads(data) for _, data, _ in log_rows(engine)]


def log_size(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(t.log_state.c.size)).scalar_one())


def ledger_size(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(t.number_events)).scalar())


def assert_dense(engine: Engine) -> None:
    """Leaves 0..size-1, each hashed as stored, and as many as accepted ledger events."""
    rows = log_rows(engine)
    assert [index for index, _, _ in rows] == list(range(log_size(engine)))
    assert all(stored == leaf_hash(data) for _, data, stored in rows)
    assert len(rows) == ledger_size(engine)


# -- one leaf per accepted report ----------------------------------------------------------


def test_each_accepted_report_of_a_batch_is_one_leaf(
    uow_factory: UnitOfWorkFactory, carriers: tuple[str, str], engine: Engine
) -> None:
    batch: Events = [
        *activations("a", 3),
        {
            "event_id": "bad-number",
            "number": "+86123",
            "event": "activated",
            "occurred_at": "2024-01-01",
            "subscriber": "x",
        },
        {
            "event_id": "bad-move",
            "number": number(0),
            "event": "resumed",
            "occurred_at": "2024-02-01",
            "subscriber": None,
        },
        {
            "event_id": "a-0-cancel",
            "number": number(0),
            "event": "cancelled",
            "occurred_at": "2024-03-01",
            "subscriber": None,
        },
    ]
    result = report(uow_factory, batch)
    assert (result.accepted, sum(result.rejected.values())) == (4, 2)

    accepted = [o for o in result.outcomes if o.status is Status.ACCEPTED]
    assert sorted(o.log_index for o in accepted if o.log_index is not None) == [0, 1, 2, 3]
    assert all(o.log_index is None for o in result.outcomes if o.status is not Status.ACCEPTED)
    logged = entries(engine)
    for outcome in accepted:
        assert outcome.log_index is not None
        entry = logged[outcome.log_index]
        assert (entry["carrier"], entry["event_id"]) == ("cm", outcome.event_id)
    assert_dense(engine)

    again = report(uow_factory, batch)  # every accepted one is now a duplicate
    assert (again.accepted, again.duplicates) == (0, 4)
    more = report(uow_factory, [batch[3], batch[4]])  # rejected again
    assert more.accepted == 0
    assert log_size(engine) == 4
    assert_dense(engine)


def test_each_accepted_row_of_a_file_is_one_leaf(
    uow_factory: UnitOfWorkFactory,
    carriers: tuple[str, str],
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reporting, "CHUNK_ROWS", 2)  # several chunks, each its own transaction
    rows = [f"f-{i},{number(i)},activated,2024-01-01,SUBSCRIBER-f-{i},\n" for i in range(7)]
    rows += [
        f"f-c0,{number(0)},cancelled,2024-03-01,,\n",
        f"f-bad,{number(1)},resumed,2024-03-01,,\n",  # illegal: number 1 is active
        "f-nan,not-a-number,activated,2024-01-01,s,\n",
        "f-short,+8613800000000,activated\n",
    ]
    body = (HEADER + "".join(rows)).encode()

    def ingest() -> Any:
        lines = body.splitlines(keepends=True)
        return reporting.ingest_file(
            uow_factory, SqliteReportSorter, "cm", lines, now=NOW, policy=POLICY
        )

    first = ingest()
    assert (first.accepted, first.duplicates, sum(first.rejected.values())) == (8, 0, 3)
    assert log_size(engine) == 8
    assert sorted(e["event_id"] for e in entries(engine)) == sorted(
        [f"f-{i}" for i in range(7)] + ["f-c0"]
    )
    assert_dense(engine)

    second = ingest()
    assert (second.accepted, second.duplicates) == (0, 8)
    assert log_size(engine) == 8
    assert_dense(engine)


class _FailingCommit(SqlUnitOfWork):
    def commit(self) -> None:
        raise RuntimeError("the disk is full")


def test_a_rolled_back_transaction_adds_no_leaf(
    uow_factory: UnitOfWorkFactory, carriers: tuple[str, str], engine: Engine
) -> None:
    report(uow_factory, activations("a", 2))
    with pytest.raises(RuntimeError, match="disk is full"):
        report(lambda: _FailingCommit(engine, TEST_LOG_KEY), activations("b", 3, start=10))
    assert log_size(engine) == 2
    assert_dense(engine)

    with uow_factory() as uow:  # appended directly, never committed
        assert uow.log.append([b'{"x":1}', b'{"x":2}'], NOW) == 2
        assert uow.log.size() == 4
    assert log_size(engine) == 2
    assert [e["event_id"] for e in entries(engine)] == ["a-0", "a-1"]

    later = report(uow_factory, activations("b", 3, start=10))  # indices continue densely
    assert sorted(o.log_index for o in later.outcomes if o.log_index is not None) == [2, 3, 4]
    assert_dense(engine)


# -- no personal data in clear -------------------------------------------------------------


def test_entries_hold_no_number_or_subscriber_in_clear(
    uow_factory: UnitOfWorkFactory, carriers: tuple[str, str], engine: Engine, signer: Any
) -> None:
    batch = activations("p", 5)
    batch.append(
        {
            "event_id": "p-port",
            "number": number(4),
            "event": "ported",
            "occurred_at": "2024-05-01",
            "subscriber": None,
            "to_carrier": "cu",
        }
    )
    assert report(uow_factory, batch).accepted == 6
    unicom = reporting.report_events(
        uow_factory,
        "cu",
        [
            {
                "event_id": "u-1",
                "number": "+8613000000050",  # in cu's range
                "event": "activated",
                "occurred_at": "2024-05-02",
                "subscriber": "SUBSCRIBER-p-4",
            }
        ],
        now=NOW,
        policy=POLICY,
    )
    assert unicom.accepted == 1
    checkpoint(uow_factory, signer)
    with engine.connect() as connection:
        blobs = [bytes(row[0]) for row in connection.execute(select(t.log_leaves.c.data))]
        blobs += [row[0].encode() for row in connection.execute(select(t.log_checkpoints.c.note))]
    assert len(blobs) == 8
    for i in [0, 1, 2, 3, 4, 50]:
        e164 = number(i)
        for form in (e164, e164[1:], e164[3:]):  # +86138..., 86138..., national 138...
            assert not any(form.encode() in blob for blob in blobs), form
        assert not any(f"SUBSCRIBER-p-{i}".encode() in blob for blob in blobs)

    logged = entries(engine)
    assert all(set(e) <= ENTRY_KEYS for e in logged)
    by_id = {e["event_id"]: e for e in logged}
    # Keyed hashes: stable for the same number, distinct across numbers, and not a plain hash.
    assert by_id["p-4"]["number"] == by_id["p-port"]["number"]
    assert by_id["p-4"]["number"] == pseudonym(TEST_LOG_KEY, number(4))
    assert by_id["p-4"]["number"] != pseudonym(b"another-key", number(4))
    assert len({by_id[f"p-{i}"]["number"] for i in range(5)} | {by_id["u-1"]["number"]}) == 6
    # Subscriber references are scoped by carrier: the same string at two carriers differs.
    assert by_id["p-4"]["subscriber"] == pseudonym(TEST_LOG_KEY, "cm:SUBSCRIBER-p-4")
    assert by_id["u-1"]["subscriber"] != by_id["p-4"]["subscriber"]
    assert "subscriber" not in by_id["p-port"] and by_id["p-port"]["to_carrier"] == "cu"

    # Stable across transactions: a later report on number 0 carries the same pseudonym.
    cancel = {
        "event_id": "p-0-cancel",
        "number": number(0),
        "event": "cancelled",
        "occurred_at": "2024-06-01",
        "subscriber": None,
    }
    assert report(uow_factory, [cancel]).accepted == 1
    assert entries(engine)[-1]["event_id"] == "p-0-cancel"
    assert entries(engine)[-1]["number"] == by_id["p-0"]["number"]


# -- checkpoints, proofs, receipts ---------------------------------------------------------


def grow(uow_factory: UnitOfWorkFactory, engine: Engine, size: int) -> None:
    """Grow the log to `size` entries with one batch of activations."""
    done = log_size(engine)
    assert report(uow_factory, activations("g", size - done, start=done)).accepted == size - done


def test_checkpoints_are_signed_once_per_size_and_grow(
    uow_factory: UnitOfWorkFactory, carriers: tuple[str, str], engine: Engine, signer: Any
) -> None:
    empty = checkpoint(uow_factory, signer)
    assert empty.size == 0
    sizes = [1, 2, 3, 5, 8, 13]
    signed = []
    for size in sizes:
        grow(uow_factory, engine, size)
        first = checkpoint(uow_factory, signer)
        again = checkpoint(uow_factory, signer)
        assert again == first  # the same size: the same checkpoint, nothing new signed
        parsed, names = open_checkpoint(first.note, [signer.verifier()])
        assert (parsed.origin, parsed.size, parsed.root_hash) == (
            signer.origin,
            size,
            first.root_hash,
        )
        assert names == (signer.origin,)
        signed.append(first)
    with uow_factory() as uow:
        stored = uow.log.checkpoints()
    assert [c.size for c in stored] == [0, *sizes]
    assert stored[1:] == signed

    # The signed roots are the roots of the stored entries.
    tree = MemoryTree()
    for _, data, _ in log_rows(engine):
        tree.append(data)
    assert [c.root_hash for c in signed] == [tree.root(size) for size in sizes]


def test_every_inclusion_and_consistency_proof_verifies(
    uow_factory: UnitOfWorkFactory, carriers: tuple[str, str], engine: Engine, signer: Any
) -> None:
    signed = []
    for size in (1, 4, 6, 7, 11):
        grow(uow_factory, engine, size)
        signed.append(checkpoint(uow_factory, signer))
    with uow_factory() as uow:
        leaves = {index: stored for index, _, stored in uow.log.leaves()}
    for cp in signed:
        root = open_checkpoint(cp.note, [signer.verifier()])[0].root_hash
        for index in range(cp.size):
            proof = audit.prove_inclusion(uow_factory, index, cp.size)
            assert proof.leaf_hash == leaves[index]
            verify_inclusion(proof.leaf_hash, index, cp.size, proof.proof, root)
    latest = audit.prove_inclusion(uow_factory, 3)  # against the latest checkpoint
    assert (latest.size, latest.leaf_hash) == (11, leaves[3])
    for old in signed:
        for new in signed:
            if old.size <= new.size:
                path = audit.prove_consistency(uow_factory, old.size, new.size)
                verify_consistency(old.size, new.size, path, old.root_hash, new.root_hash)
    with pytest.raises(TlogError):  # and a proof for another leaf does not
        proof = audit.prove_inclusion(uow_factory, 2, 11)
        verify_inclusion(leaves[3], 2, 11, proof.proof, signed[-1].root_hash)
    for bad in [(0, 0), (3, 3), (11, 12), (-1, 5)]:
        with pytest.raises(audit.OutOfRange):
            audit.prove_inclusion(uow_factory, *bad)
    for bad in [(0, 5), (6, 5), (5, 12)]:
        with pytest.raises(audit.OutOfRange):
            audit.prove_consistency(uow_factory, *bad)


def test_proofs_read_a_constant_number_of_statements(
    uow_factory: UnitOfWorkFactory, engine: Engine
) -> None:
    """O(log n): the nodes a proof needs come in one batched query, whatever the size."""
    tree = MemoryTree()
    with uow_factory() as uow:
        data = [f'{{"n":{i}}}'.encode() for i in range(1500)]
        uow.log.append(data, NOW)
        uow.commit()
    for item in data:
        tree.append(item)
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        # Each proof in its own transaction (on SQLite its BEGIN IMMEDIATE is a statement).
        for index, size in [(0, 1500), (777, 1500), (1499, 1500), (1023, 1025)]:
            statements.clear()
            proof = audit.prove_inclusion(uow_factory, index, size)
            assert proof.proof == tree.inclusion_proof(index, size)
            assert len(statements) <= 4, statements
        for first, second in [(1, 1500), (1024, 1500), (999, 1001), (1500, 1500)]:
            statements.clear()
            assert audit.prove_consistency(uow_factory, first, second) == tree.consistency_proof(
                first, second
            )
            assert len(statements) <= 3, statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_receipts_verify_offline(
    uow_factory: UnitOfWorkFactory, carriers: tuple[str, str], signer: Any, tmp_path: Path
) -> None:
    assert report(uow_factory, activations("r", 5)).accepted == 5
    verifier = signer.verifier()
    bundles = [audit.receipt(uow_factory, index, signer, NOW, REGULATOR) for index in range(5)]
    for missing in (-1, 5):
        with pytest.raises(audit.OutOfRange):
            audit.receipt(uow_factory, missing, signer, NOW)
    with uow_factory() as uow:
        stored = {index: data for index, data, _ in uow.log.leaves()}
    for index, bundle in enumerate(bundles):
        entry = verify_bundle(bundle, verifier)
        assert (entry.index, entry.checkpoint.size, entry.leaf_data) == (index, 5, stored[index])
    with uow_factory() as uow:
        assert len(uow.log.checkpoints()) == 1  # the first receipt signed; the others reused it

    # The same with the standalone verifier, in another process.
    key = verifier.key_string()
    good = tmp_path / "good.tlog-proof"
    good.write_text(bundles[3])
    parsed = ProofBundle.parse(bundles[3])
    forged = ProofBundle(
        parsed.index, parsed.proof, parsed.checkpoint, parsed.extra.replace(b"r-3", b"r-9")
    )
    bad = tmp_path / "forged.tlog-proof"
    bad.write_text(forged.format())
    command = [sys.executable, "-m", "handover.tlog", "verify-bundle", "--key", key]
    ok = subprocess.run([*command, str(good)], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("OK: ") and "is entry 3 of" in ok.stdout
    failed = subprocess.run([*command, str(bad)], capture_output=True, text=True, timeout=60)
    assert failed.returncode == 1 and failed.stderr.startswith("FAILED: ")

    # The public's receipt has no entry: it verifies with the leaf hash, and only with it.
    public = audit.receipt(uow_factory, 3, signer, NOW)
    assert ProofBundle.parse(public).extra is None
    (tmp_path / "public.tlog-proof").write_text(public)
    leaf = b64encode(leaf_hash(stored[3]))
    for extra, code in [(["--leaf-hash", leaf], 0), ([], 1)]:
        run = [*command, *extra, str(tmp_path / "public.tlog-proof")]
        done = subprocess.run(run, capture_output=True, text=True, timeout=60)
        assert done.returncode == code, done.stderr


# -- Handover never signs two inconsistent checkpoints ------------------------------------


def rewrite_leaf(engine: Engine, index: int, data: bytes) -> None:
    """Replace entry `index` as a careful insider would: its data, its leaf hash and every
    stored subtree hash above it, so the stored tree is self-consistent again."""
    rows = log_rows(engine)
    tree = MemoryTree()
    for i, old, _ in rows:
        tree.append(data if i == index else old)
    with engine.begin() as connection:
        connection.execute(
            update(t.log_leaves)
            .where(t.log_leaves.c.idx == index)
            .values(data=data, leaf_hash=leaf_hash(data))
        )
        c = t.log_nodes.c
        for row in connection.execute(select(c.level, c.idx, c.hash)).all():
            if bytes(row.hash) != tree.nodes[(row.level, row.idx)]:
                connection.execute(
                    update(t.log_nodes)
                    .where(c.level == row.level, c.idx == row.idx)
                    .values(hash=tree.nodes[(row.level, row.idx)])
                )


@pytest.mark.parametrize("signed_size", [6, 8])
def test_no_checkpoint_is_signed_over_rewritten_history(
    uow_factory: UnitOfWorkFactory,
    carriers: tuple[str, str],
    engine: Engine,
    signer: Any,
    signed_size: int,
) -> None:
    assert report(uow_factory, activations("h", signed_size)).accepted == signed_size
    before = checkpoint(uow_factory, signer)
    rewrite_leaf(engine, 1, b'{"event":"never happened"}')
    assert report(uow_factory, activations("h", 3, start=signed_size)).accepted == 3

    with pytest.raises(audit.LogInconsistent):
        audit.sign_checkpoint(uow_factory, signer, NOW)
    with uow_factory() as uow:
        assert uow.log.checkpoints() == [before]  # nothing new was signed
    found = audit.verify_store(uow_factory, [signer.verifier()])
    # Every stored hash agrees with the entries; only the signature catches the rewrite.
    assert found.problems == [
        f"checkpoint {signed_size}: signed root differs from the stored entries' root"
    ]


# -- tampering with the store --------------------------------------------------------------

SIZE, BAD = 12, 6  # leaves 0..11, checkpoints at 5 and 12; the tampering hits leaf 6


def _set_leaf(connection: Any, index: int, **values: Any) -> None:
    connection.execute(update(t.log_leaves).where(t.log_leaves.c.idx == index).values(**values))


def _leaf(connection: Any, index: int) -> Any:
    return connection.execute(select(t.log_leaves).where(t.log_leaves.c.idx == index)).one()


def edit_data(connection: Any) -> None:
    data = bytes(_leaf(connection, BAD).data).replace(b'"activated"', b'"cancelled"')
    _set_leaf(connection, BAD, data=data)


def edit_data_and_hash(connection: Any) -> None:
    data = bytes(_leaf(connection, BAD).data).replace(b'"activated"', b'"cancelled"')
    _set_leaf(connection, BAD, data=data, leaf_hash=leaf_hash(data))


def delete_row(connection: Any) -> None:
    connection.execute(t.log_leaves.delete().where(t.log_leaves.c.idx == BAD))


def delete_last_row(connection: Any) -> None:
    connection.execute(t.log_leaves.delete().where(t.log_leaves.c.idx == SIZE - 1))


def swap_data(connection: Any) -> None:
    a, b = _leaf(connection, BAD), _leaf(connection, 9)
    _set_leaf(connection, BAD, data=b.data)
    _set_leaf(connection, 9, data=a.data)


def swap_rows(connection: Any) -> None:
    """Reorder whole rows (entry and leaf hash): only the subtree hashes notice."""
    a, b = _leaf(connection, BAD), _leaf(connection, 9)
    _set_leaf(connection, BAD, data=b.data, leaf_hash=b.leaf_hash)
    _set_leaf(connection, 9, data=a.data, leaf_hash=a.leaf_hash)


def insert_beyond(connection: Any) -> None:
    data = b'{"event":"inserted"}'
    connection.execute(
        insert(t.log_leaves).values(idx=SIZE, data=data, leaf_hash=leaf_hash(data), created_at=NOW)
    )


def shrink_size(connection: Any) -> None:
    connection.execute(update(t.log_state).values(size=SIZE - 1))


def edit_node(connection: Any) -> None:
    c = t.log_nodes.c
    connection.execute(update(t.log_nodes).where(c.level == 1, c.idx == 3).values(hash=bytes(32)))


def delete_node(connection: Any) -> None:
    c = t.log_nodes.c
    connection.execute(t.log_nodes.delete().where(c.level == 1, c.idx == 3))


def edit_checkpoint(connection: Any) -> None:
    c = t.log_checkpoints.c
    note = connection.execute(select(c.note).where(c.size == 5)).scalar_one()
    connection.execute(
        update(t.log_checkpoints).where(c.size == 5).values(note=note.replace("\n5\n", "\n4\n"))
    )


TAMPERING: Mapping[str, tuple[Callable[[Any], None], str]] = {
    "edit entry": (edit_data, f"leaf {BAD}: entry does not match its stored hash"),
    "edit entry and hash": (edit_data_and_hash, f"node (1, 3) over leaves {BAD}..7:"),
    "delete row": (delete_row, f"leaf {BAD}: missing"),
    "delete last row": (delete_last_row, f"leaf {SIZE - 1}: missing"),
    "reorder entries": (swap_data, f"leaf {BAD}: entry does not match its stored hash"),
    "reorder rows": (swap_rows, f"node (1, 3) over leaves {BAD}..7:"),
    "insert beyond the size": (insert_beyond, f"leaf {SIZE}: stored beyond the log size"),
    "shrink the size": (shrink_size, f"leaf {SIZE - 1}: stored beyond the log size"),
    "edit subtree hash": (edit_node, f"node (1, 3) over leaves {BAD}..7:"),
    "delete subtree hash": (delete_node, f"node (1, 3) over leaves {BAD}..7: missing"),
    "edit checkpoint note": (edit_checkpoint, "checkpoint 5: signature does not verify"),
}


@pytest.fixture
def signed_log(
    uow_factory: UnitOfWorkFactory, carriers: tuple[str, str], signer: Any
) -> UnitOfWorkFactory:
    assert report(uow_factory, activations("t", 5)).accepted == 5
    checkpoint(uow_factory, signer)
    assert report(uow_factory, activations("t", SIZE - 5, start=5)).accepted == SIZE - 5
    checkpoint(uow_factory, signer)
    return uow_factory


def cli_verify(store_url: str) -> Any:
    result = CliRunner().invoke(
        cli, ["log", "verify"], env={"HANDOVER_DATABASE_URL": store_url}, prog_name="handover"
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def test_an_untouched_log_verifies(
    signed_log: UnitOfWorkFactory, store_url: str, signer: Any
) -> None:
    found = audit.verify_store(signed_log, [signer.verifier()])
    assert found.ok, found.problems
    assert (found.size, found.leaves_checked, found.checkpoints_checked) == (SIZE, SIZE, 2)
    result = cli_verify(store_url)
    assert result.exit_code == 0, result.output
    assert f"OK: {SIZE} entries and 2 checkpoints verify" in result.stdout


@pytest.mark.parametrize("kind", list(TAMPERING))
def test_tampering_names_the_first_bad_leaf(
    signed_log: UnitOfWorkFactory, engine: Engine, store_url: str, signer: Any, kind: str
) -> None:
    tamper, first_problem = TAMPERING[kind]
    with engine.begin() as connection:
        tamper(connection)
    found = audit.verify_store(signed_log, [signer.verifier()])
    assert not found.ok
    assert found.problems[0].startswith(first_problem), found.problems

    result = cli_verify(store_url)
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines()[0] == f"FAILED: {found.problems[0]}"
    assert "OK" not in result.stdout


def test_a_forged_signature_key_is_not_trusted(signed_log: UnitOfWorkFactory) -> None:
    other = bootstrap.checkpoint_signer(Settings(secret_key="another-secret-entirely-0123456789"))
    found = audit.verify_store(signed_log, [other.verifier()])
    assert [p.split(":")[0] for p in found.problems] == ["checkpoint 5", "checkpoint 12"]


# -- concurrent appenders ------------------------------------------------------------------


def test_concurrent_batches_build_one_dense_log(
    uow_factory: UnitOfWorkFactory, carriers: tuple[str, str], engine: Engine, signer: Any
) -> None:
    results: dict[str, list[reporting.BatchResult]] = {"a": [], "b": []}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run(tag: str, offset: int) -> None:
        try:
            barrier.wait()
            for batch in range(6):
                events = activations(tag, 15, start=offset + 15 * batch)
                results[tag].append(
                    reporting.report_events(uow_factory, "cm", events, policy=POLICY)
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=args) for args in (("a", 0), ("b", 1000))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors

    indices = [
        o.log_index
        for result in results["a"] + results["b"]
        for o in result.outcomes
        if o.log_index is not None
    ]
    assert sorted(indices) == list(range(180))
    assert_dense(engine)
    logged = entries(engine)
    for result in results["a"] + results["b"]:
        for o in result.outcomes:
            assert o.log_index is not None and logged[o.log_index]["event_id"] == o.event_id
    checkpoint(uow_factory, signer)
    found = audit.verify_store(uow_factory, [signer.verifier()])
    assert found.ok and found.size == 180, found.problems


def test_entries_are_recorded_at_the_transaction_time_and_sign_nothing(
    uow_factory: UnitOfWorkFactory, carriers: tuple[str, str], engine: Engine
) -> None:
    later = NOW + timedelta(hours=1)
    reporting.report_events(uow_factory, "cm", activations("w", 1), now=later, policy=POLICY)
    (entry,) = entries(engine)
    assert entry["recorded_at"] == "2025-06-01T13:00:00Z"
    assert entry["occurred_at"] == "2024-01-01T00:00:00Z"
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM log_checkpoints")).scalar() == 0
