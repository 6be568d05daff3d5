"""bench/log.py at a tiny size, so the benchmark cannot rot. No timing is asserted.

The bulk loader writes the tree directly, so it is checked like a real log: the store
verifies (`audit.verify_store`) and its root is the root appends would have built.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from functools import partial
from pathlib import Path
from types import ModuleType

import pytest

from handover.adapters.storage.engine import make_engine
from handover.adapters.storage.uow import SqlUnitOfWork
from handover.services import audit
from handover.tlog.tree import MemoryTree
from handover.tlog.verify import leaf_hash

BENCH = Path(__file__).resolve().parents[2] / "bench" / "log.py"
PG_URL = os.environ.get("HANDOVER_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
STORES = [s for s in os.environ.get("HANDOVER_TEST_STORES", "sqlite,postgresql").split(",") if s]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_log", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_log"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_bulk_loaded_tree_is_the_one_appends_build(
    bench: ModuleType, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench, "LOAD_CHUNK", 64)  # many chunks, a partial last one
    size = 64 * 9 + 37
    bench.bulk_load(store_url, size)
    times = bench.proof_times(store_url, size, samples=20)  # signs a checkpoint, checks proofs
    assert times.size == size and len(times.inclusion.samples) == 20

    tree = MemoryTree()
    for index in range(size):
        tree.append(bench.entry(index))
    engine = make_engine(store_url)
    try:
        report = audit.verify_store(
            partial(SqlUnitOfWork, engine, b"k"), [bench.bench_signer().verifier()]
        )
        with SqlUnitOfWork(engine, b"k") as uow:
            checkpoint = uow.log.checkpoint()
            nodes = uow.log.nodes(tree.nodes)
    finally:
        engine.dispose()
    assert report.ok, report.problems
    assert (report.leaves_checked, report.checkpoints_checked) == (size, 1)
    assert checkpoint is not None and checkpoint.root_hash == tree.root()
    assert nodes == tree.nodes  # every complete subtree stored, and nothing else missing


def test_the_append_benchmark_appends(bench: ModuleType, store_url: str) -> None:
    rate = bench.append_rate(store_url, 250, 100)
    assert (rate.batch, rate.entries) == (100, 250)
    assert rate.log_per_s > 0 and rate.plain_per_s > 0
    engine = make_engine(store_url)
    try:
        with SqlUnitOfWork(engine, b"k") as uow:
            rows = list(uow.log.leaves())
        report = audit.verify_store(partial(SqlUnitOfWork, engine, b"k"), [])
    finally:
        engine.dispose()
    assert [(index, data) for index, data, _ in rows] == [(i, bench.entry(i)) for i in range(250)]
    assert all(stored == leaf_hash(data) for _, data, stored in rows)
    assert report.ok, report.problems


def test_entries_look_like_the_logs(bench: ModuleType) -> None:
    import json

    entry = json.loads(bench.entry(7))
    assert set(entry) == {
        "v", "type", "carrier", "event_id", "number", "event",
        "occurred_at", "recorded_at", "subscriber",
    }  # fmt: skip
    assert len(entry["number"]) == len(entry["subscriber"]) == 64
    assert bench.entry(7) != bench.entry(8)


def test_the_command_prints_one_table(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--stores", "sqlite", "--entries", "120", "--batches", "50,120"]
    argv += ["--proof-size", "300", "--samples", "5"]
    assert bench.main(argv) == 0
    header, rule, *body = capsys.readouterr().out.splitlines()
    assert [cell.strip() for cell in header.split("|")[1:-1]] == [
        "store", "measure", "figure", "baseline", "ratio",
    ]  # fmt: skip
    assert set(rule) == {"|", "-"}
    assert len(body) == 2 + 6  # two batch sizes, six proof figures
    assert all(line.split("|")[-2].strip().endswith("x") for line in body)


@pytest.mark.skipif("postgresql" not in STORES, reason="HANDOVER_TEST_STORES excludes it")
def test_a_temporary_postgresql_database_is_dropped(bench: ModuleType) -> None:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    with bench.temporary_store("postgresql", PG_URL) as url:
        name = make_url(url).database
        engine = make_engine(url)
        with engine.connect() as connection:
            assert connection.execute(text("SELECT size FROM log_state")).scalar() == 0
        engine.dispose()
    admin = make_engine(PG_URL)
    try:
        with admin.connect() as connection:
            found = connection.execute(
                text("SELECT count(*) FROM pg_database WHERE datname = :name"), {"name": name}
            ).scalar()
    finally:
        admin.dispose()
    assert found == 0
