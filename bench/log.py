"""Audit-log benchmark: appends per second in batched transactions, and proof latency at
a large log, on SQLite and PostgreSQL.

    .venv/bin/python bench/log.py                          # both stores, the issue's sizes
    .venv/bin/python bench/log.py --stores sqlite --proof-size 100000   # a quick look

Every figure comes with a baseline measured in the same run, on the same fresh store:

* appends: the same entries, in the same batches and transactions, inserted into a plain
  table with the columns of `log_leaves` (same insert path: COPY on PostgreSQL, executemany
  on SQLite) but no leaf hash, no subtree hashes and no `log_state` lock. The ratio is the
  price of the Merkle tree.
* proofs: one primary-key lookup of a leaf hash. The ratio says how many such lookups one
  proof costs (one batched node query, O(log n) rows).

The large log is bulk-loaded straight into `log_leaves` and `log_nodes` (COPY on
PostgreSQL), hashed in chunks with RFC 9162's hashes, then signed through
`services.audit.sign_checkpoint`; every timed proof is also verified against that
checkpoint (outside the timing). Stores are temporary: a SQLite file in a temporary
directory, and a PostgreSQL database created and dropped on the server at --pg-url.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import BigInteger, Column, LargeBinary, MetaData, Table, select, update

sys.path.insert(0, str(Path(__file__).resolve().parent))

import stores
from handover.adapters.storage import tables as t
from handover.adapters.storage.auditlog import SqlAuditLog
from handover.adapters.storage.engine import make_engine
from handover.adapters.storage.uow import SqlUnitOfWork
from handover.bootstrap import NoteSigner
from handover.services import audit
from handover.services.ports import UnitOfWorkFactory
from handover.tlog.tree import root_hash
from handover.tlog.verify import Signer, verify_consistency, verify_inclusion

PG_URL = os.environ.get("HANDOVER_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
LOG_KEY = b"bench-log-key"
#: Leaves hashed and written per bulk-load step; a power of two, so steps stay aligned.
LOAD_CHUNK = 1 << 16

# An entry shaped like `domain.audit.number_event_entry`'s (same keys, same lengths).
_ENTRY = (
    b'{"carrier":"bench","event":"activated","event_id":"bench-%d","number":"%s",'
    b'"occurred_at":"2024-01-01T00:00:00Z","recorded_at":"2025-06-01T12:00:00Z",'
    b'"subscriber":"%s","type":"number_event","v":1}'
)


def entry(index: int) -> bytes:
    digest = hashlib.blake2b(index.to_bytes(8, "big"), digest_size=64).hexdigest().encode()
    return _ENTRY % (index, digest[:64], digest[64:])


# -- stores ----------------------------------------------------------------------------------


def temporary_store(kind: str, pg_url: str = PG_URL) -> AbstractContextManager[str]:
    """The URL of a fresh, migrated store that is removed afterwards."""
    return stores.temporary_store(kind, pg_url=pg_url)


# -- appends ---------------------------------------------------------------------------------

_plain = MetaData()
#: The baseline's table: the columns of `log_leaves`, minus the leaf hash.
plain_entries = Table(
    "bench_plain_entries",
    _plain,
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", t.UtcDateTime, nullable=False),
)


@dataclass(frozen=True)
class AppendRate:
    batch: int
    entries: int
    log_per_s: float
    plain_per_s: float


def append_rate(url: str, entries: int, batch: int) -> AppendRate:
    """Append `entries` to an empty log in transactions of `batch`, then insert the same
    entries into a plain table the same way; entries per second of each."""
    engine = make_engine(url)
    try:
        _plain.create_all(engine)
        data = [entry(i) for i in range(entries)]
        batches = [data[i : i + batch] for i in range(0, entries, batch)]
        uow_factory = partial(SqlUnitOfWork, engine, LOG_KEY)

        started = time.perf_counter()
        for chunk in batches:
            with uow_factory() as uow:
                uow.log.append(chunk, NOW)
                uow.commit()
        log_seconds = time.perf_counter() - started

        started, index = time.perf_counter(), 0
        for chunk in batches:
            with engine.connect() as connection, connection.begin():
                rows = [
                    {"idx": index + offset, "data": item, "created_at": NOW}
                    for offset, item in enumerate(chunk)
                ]
                # The log's own insert path (COPY on PostgreSQL), so only the tree differs.
                SqlAuditLog(connection)._insert(plain_entries, rows)
                index += len(chunk)
        plain_seconds = time.perf_counter() - started
        with uow_factory() as uow:
            assert uow.log.size() == entries
    finally:
        engine.dispose()
    return AppendRate(batch, entries, entries / log_seconds, entries / plain_seconds)


# -- a large log, bulk-loaded ----------------------------------------------------------------


def _leaf_hashes(first: int, count: int) -> tuple[list[bytes], bytearray]:
    sha = hashlib.sha256
    data = [entry(i) for i in range(first, first + count)]
    hashes = bytearray()
    for item in data:
        hashes += sha(b"\x00" + item).digest()
    return data, hashes


def _at(hashes: bytearray, index: int) -> bytes:
    return bytes(hashes[32 * index : 32 * index + 32])


def _parents(below: bytes | bytearray) -> bytearray:
    """The complete parents of a row of aligned hashes (an odd last one has none yet)."""
    sha, parents = hashlib.sha256, bytearray()
    for start in range(0, len(below) - 32, 64):
        parents += sha(b"\x01" + below[start : start + 64]).digest()
    return parents


def bulk_load(url: str, size: int, progress: Callable[[int], None] | None = None) -> None:
    """Fill an empty store's log with `size` entries and every complete subtree hash,
    written directly (the tree appends would build, without the per-append work)."""
    engine = make_engine(url)
    tops = bytearray()  # the root of each full chunk: level log2(LOAD_CHUNK) of the tree
    chunk_level = LOAD_CHUNK.bit_length() - 1
    try:
        for first in range(0, size, LOAD_CHUNK):
            count = min(LOAD_CHUNK, size - first)
            data, level_hashes = _leaf_hashes(first, count)
            leaves = [
                {
                    "idx": first + i,
                    "data": item,
                    "leaf_hash": _at(level_hashes, i),
                    "created_at": NOW,
                }
                for i, item in enumerate(data)
            ]
            nodes: list[dict[str, Any]] = []
            for level in range(1, chunk_level + 1):
                level_hashes = _parents(level_hashes)
                base = first >> level
                nodes += [
                    {"level": level, "idx": base + i, "hash": _at(level_hashes, i)}
                    for i in range(len(level_hashes) // 32)
                ]
            if count == LOAD_CHUNK:
                tops += level_hashes
            with engine.connect() as connection, connection.begin():
                if connection.dialect.name == "postgresql":
                    connection.exec_driver_sql("SET LOCAL synchronous_commit = off")
                log = SqlAuditLog(connection)
                log._insert(t.log_leaves, leaves)
                log._insert(t.log_nodes, nodes)
            if progress:
                progress(first + count)
        higher: list[dict[str, Any]] = []
        level, level_hashes = chunk_level, tops
        while len(level_hashes) >= 64:
            level, level_hashes = level + 1, _parents(level_hashes)
            higher += [
                {"level": level, "idx": i, "hash": _at(level_hashes, i)}
                for i in range(len(level_hashes) // 32)
            ]
        with engine.connect() as connection, connection.begin():
            SqlAuditLog(connection)._insert(t.log_nodes, higher)
            connection.execute(update(t.log_state).where(t.log_state.c.id == 1).values(size=size))
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.exec_driver_sql("VACUUM ANALYZE log_leaves")
                connection.exec_driver_sql("VACUUM ANALYZE log_nodes")
        else:
            with engine.connect() as connection:
                connection.exec_driver_sql("ANALYZE")
    finally:
        engine.dispose()


# -- proofs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Latencies:
    """Seconds per call, sorted."""

    samples: list[float]

    def quantile(self, q: float) -> float:
        return self.samples[min(len(self.samples) - 1, int(q * len(self.samples)))]

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    @property
    def p99(self) -> float:
        return self.quantile(0.99)


@dataclass(frozen=True)
class ProofTimes:
    size: int
    lookup: Latencies
    inclusion: Latencies
    consistency: Latencies
    inclusion_uow: Latencies


def proof_times(url: str, size: int, samples: int, seed: int = 1) -> ProofTimes:
    """Sign a checkpoint of the loaded log, then time proofs through `services.audit`
    (each verified against the checkpoint afterwards) and the baseline point lookup."""
    engine = make_engine(url)
    signer = bench_signer()
    try:
        uow_factory: UnitOfWorkFactory = partial(SqlUnitOfWork, engine, LOG_KEY)
        checkpoint = audit.sign_checkpoint(uow_factory, signer, NOW)
        assert checkpoint.size == size
        rng = random.Random(seed)
        warm = [rng.randrange(size) for _ in range(min(samples, 200))]
        indices = [rng.randrange(size) for _ in range(samples)]
        firsts = [rng.randrange(1, size) if size > 1 else 1 for _ in range(samples)]
        others = [rng.randrange(size) for _ in range(samples)]

        # Interleaved, so the baseline and the proofs meet the same cache conditions. The
        # proofs alone are timed inside one transaction: the use cases' private steps.
        lookup, inclusion, consistency, checks = [], [], [], []
        leaf = select(t.log_leaves.c.leaf_hash)
        with SqlUnitOfWork(engine, LOG_KEY) as uow:
            connection = uow.log.connection
            for i in warm:
                audit._inclusion(uow, i, size)
            for i, first in zip(indices, firsts, strict=True):
                started = time.perf_counter()
                connection.execute(leaf.where(t.log_leaves.c.idx == i)).scalar_one()
                lookup.append(time.perf_counter() - started)

                started = time.perf_counter()
                proof = audit._inclusion(uow, i, size)
                inclusion.append(time.perf_counter() - started)
                checks.append(proof)

                started = time.perf_counter()
                path = audit._consistency(uow, first, size)
                consistency.append(time.perf_counter() - started)
                checks.append((first, path))
            roots = {first: _root(uow, first) for first in firsts[:20]}
        inclusion_uow = []  # as the API serves one: its own connection and transaction
        for i in others:
            started = time.perf_counter()
            audit.prove_inclusion(uow_factory, i, size)
            inclusion_uow.append(time.perf_counter() - started)
    finally:
        engine.dispose()
    for check in checks:
        if isinstance(check, audit.InclusionProof):
            verify_inclusion(check.leaf_hash, check.index, size, check.proof, checkpoint.root_hash)
        elif check[0] in roots:
            verify_consistency(check[0], size, check[1], roots[check[0]], checkpoint.root_hash)
    return ProofTimes(
        size,
        *(Latencies(sorted(x)) for x in (lookup, inclusion, consistency, inclusion_uow)),
    )


def _root(uow: SqlUnitOfWork, size: int) -> bytes:
    """The root of the first `size` entries from the stored nodes, to check proofs with."""

    def get(level: int, index: int) -> bytes:
        return uow.log.nodes([(level, index)])[(level, index)]

    return root_hash(size, get)


def bench_signer() -> NoteSigner:
    seed = hashlib.sha256(b"handover-bench").digest()
    return NoteSigner(Signer("bench.example/log", Ed25519PrivateKey.from_private_bytes(seed)))


# -- the report ------------------------------------------------------------------------------


@dataclass
class Row:
    store: str
    measure: str
    figure: str
    baseline: str
    ratio: str


def _rate(value: float) -> str:
    return f"{value:,.0f}/s"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def append_rows(store: str, rate: AppendRate) -> list[Row]:
    return [
        Row(
            store,
            f"appends, batches of {rate.batch:,} ({rate.entries:,} entries)",
            _rate(rate.log_per_s),
            _rate(rate.plain_per_s) + " plain insert",
            f"{rate.log_per_s / rate.plain_per_s:.2f}x",
        )
    ]


def proof_rows(store: str, times: ProofTimes) -> list[Row]:
    rows = []
    base = times.lookup
    for name, lat in [
        ("inclusion proof", times.inclusion),
        ("consistency proof", times.consistency),
        ("inclusion proof + own transaction", times.inclusion_uow),
    ]:
        for q, ours, theirs in [("p50", lat.p50, base.p50), ("p99", lat.p99, base.p99)]:
            rows.append(
                Row(
                    store,
                    f"{name} at {times.size:,} leaves, {q}",
                    _ms(ours),
                    _ms(theirs) + " PK lookup",
                    f"{ours / theirs:.1f}x",
                )
            )
    return rows


def print_table(rows: Sequence[Row], out: Any = None) -> None:
    out = out or sys.stdout
    header = Row("store", "measure", "figure", "baseline", "ratio")
    cells = [header, *rows]
    fields = ("store", "measure", "figure", "baseline", "ratio")
    widths = [max(len(getattr(row, name)) for row in cells) for name in fields]
    for index, row in enumerate(cells):
        values = [row.store, row.measure, row.figure, row.baseline, row.ratio]
        print(
            "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |",
            file=out,
        )
        if index == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|", file=out)


def load_logged(store: str, url: str, size: int, log: Callable[[str], None]) -> None:
    """`bulk_load`, reporting progress about ten times."""
    started = time.perf_counter()
    step = max(LOAD_CHUNK, size // 10 // LOAD_CHUNK * LOAD_CHUNK)

    def loaded(done: int) -> None:
        if done % step == 0 or done == size:
            seconds = time.perf_counter() - started
            log(f"{store}: loaded {done:,} of {size:,} leaves ({seconds:.0f} s)")

    bulk_load(url, size, loaded)


def run(
    stores: Sequence[str],
    entries: int,
    batches: Sequence[int],
    proof_sizes: dict[str, int],
    samples: int,
    pg_url: str = PG_URL,
    log: Callable[[str], None] = lambda message: print(message, file=sys.stderr),
) -> list[Row]:
    rows: list[Row] = []
    for store in stores:
        for batch in batches:
            with temporary_store(store, pg_url) as url:
                log(f"{store}: appending {entries:,} entries in batches of {batch:,}")
                rows += append_rows(store, append_rate(url, entries, batch))
        size = proof_sizes[store]
        if size <= 0:
            continue
        with temporary_store(store, pg_url) as url:
            load_logged(store, url, size, log)
            rows += proof_rows(store, proof_times(url, size, samples))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", default="sqlite,postgresql", help="comma-separated")
    parser.add_argument("--entries", type=int, default=100_000, help="entries per append run")
    parser.add_argument("--batches", default="1000,10000", help="batch sizes, comma-separated")
    parser.add_argument(
        "--proof-size",
        type=int,
        default=None,
        help="leaves in the proof benchmark's log for every store (default: 10,000,000 on "
        "PostgreSQL, 1,000,000 on SQLite; 0 skips it)",
    )
    parser.add_argument("--samples", type=int, default=1_000, help="proofs timed per kind")
    parser.add_argument("--pg-url", default=PG_URL, help="server for the temporary database")
    args = parser.parse_args(argv)
    stores = [s for s in args.stores.split(",") if s]
    sizes = {"postgresql": 10_000_000, "sqlite": 1_000_000}
    if args.proof_size is not None:
        sizes = dict.fromkeys(sizes, args.proof_size)
    rows = run(
        stores,
        args.entries,
        [int(b) for b in args.batches.split(",")],
        sizes,
        args.samples,
        args.pg_url,
    )
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
