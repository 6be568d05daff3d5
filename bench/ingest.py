"""The ingest benchmark: rows/s and peak memory of `handover ingest` on each store.

    ./run bench [--rows 1000000] [--stores sqlite,postgresql] [--memory-rows 5000000]

For each store: a fresh store (a temporary SQLite file; a temporary PostgreSQL database,
created and dropped), carriers `cm` and `cu` registered, the generator's prior file
ingested, then the timed run: `handover ingest FILE --carrier cm --json` in its own
process, whose peak RSS is read from the kernel (`wait4`). The printed summary must equal
the generator's expected one exactly, or the benchmark fails.

Baselines measured in the same run, on the same file: reading and splitting the CSV
(`csv.reader`, no rules, nothing stored) and a plain load of the raw rows into one
unindexed table with the store's fastest bulk path (SQLite `executemany` in one
transaction, PostgreSQL `COPY`). The ratios say what the rules, the sort, the history
and the audit log cost over merely moving the bytes.

`--memory-rows M` also ingests an M-row file on `--memory-store` and prints the peak RSS
of both sizes: it must not grow with the file.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generate
import stores

PG_URL = os.environ.get("HANDOVER_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
HANDOVER = str(Path(sys.executable).parent / "handover")


class BenchmarkFailed(RuntimeError):
    pass


@dataclass(slots=True)
class Run:
    seconds: float
    peak_rss_mb: float
    summary: dict[str, object]


def fresh_store(kind: str, workdir: Path) -> AbstractContextManager[str]:
    """The URL of an empty, migrated store with carriers cm and cu; removed afterwards."""
    return stores.temporary_store(kind, pg_url=PG_URL, workdir=workdir, prepare=_prepare)


def _prepare(url: str) -> None:
    stores.register_carriers(url)


def run_ingest(url: str, path: Path, workdir: Path, expected: dict[str, object]) -> Run:
    """`handover ingest` in a child process: wall time, its peak RSS, the exact summary."""
    env = {
        **os.environ,
        "HANDOVER_DATABASE_URL": url,
        "HANDOVER_SPOOL_DIR": str(workdir),
        "HANDOVER_ENVIRONMENT": "development",
    }
    command = [HANDOVER, "ingest", str(path), "--carrier", "cm", "--json"]
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=errors)
        assert child.stdout is not None
        out = child.stdout.read()
        # wait4 gives this child's own rusage (RUSAGE_CHILDREN would be the max over all).
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        err = errors.read().decode(errors="replace")
    if child.returncode != 0:
        raise BenchmarkFailed(f"{' '.join(command)} exited {child.returncode}:\n{err}")
    summary = json.loads(out)
    if summary != expected:
        raise BenchmarkFailed(
            f"{path.name}: the summary differs from the generator's\n"
            f"  got      {json.dumps(summary, sort_keys=True)}\n"
            f"  expected {json.dumps(expected, sort_keys=True)}"
        )
    return Run(seconds, usage.ru_maxrss / 1024, summary)  # ru_maxrss is in KiB on Linux


def _rows(path: Path) -> Iterator[list[str]]:
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.reader(f)
        next(reader)
        for row in reader:
            yield (row + [""] * 6)[:6]  # truncated rows too: a plain load takes every row


def baseline_read(path: Path) -> float:
    """Read and split every row: the floor of any Python ingest."""
    started = time.perf_counter()
    count = sum(1 for _ in _rows(path))
    assert count > 0
    return time.perf_counter() - started


def baseline_load(kind: str, url: str, path: Path) -> float:
    """Read the rows and store them as they are in one unindexed table: no rules at all."""
    started = time.perf_counter()
    if kind == "sqlite":
        database = sqlite3.connect(make_url(url).database or "")
        with database:
            database.execute("PRAGMA journal_mode=WAL")
            database.execute("CREATE TABLE raw (a TEXT, b TEXT, c TEXT, d TEXT, e TEXT, f TEXT)")
            database.executemany("INSERT INTO raw VALUES (?,?,?,?,?,?)", _rows(path))
        database.close()
        return time.perf_counter() - started
    import psycopg

    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as connection:
        connection.execute("CREATE TABLE raw (a TEXT, b TEXT, c TEXT, d TEXT, e TEXT, f TEXT)")
        with connection.cursor().copy("COPY raw FROM STDIN") as copy:
            for row in _rows(path):
                copy.write_row(row)
    return time.perf_counter() - started


def _mb(value: float) -> str:
    return f"{value:,.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Ingest benchmark (see docs/benchmarks.md).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the timed file")
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument(
        "--memory-rows", type=int, default=0, help="also ingest a file this big (0: skip)"
    )
    parser.add_argument("--memory-store", default="postgresql")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary dir")
    args = parser.parse_args(argv)
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="handover-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        return _bench(args, stores, workdir)
    except BenchmarkFailed as exc:
        print(f"BENCHMARK FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


def _generate(rows: int, seed: int, workdir: Path) -> generate.Generated:
    started = time.perf_counter()
    made = generate.generate(workdir / f"events-{rows}.csv", rows, seed=seed)
    size = made.path.stat().st_size / 2**20
    print(
        f"generated {made.rows:,} rows ({size:,.0f} MiB, {made.numbers:,} numbers; "
        f"prior file {made.prior_rows:,} rows) in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    print(f"  expected {json.dumps(made.expected)}", flush=True)
    return made


def _bench(args: argparse.Namespace, stores: list[str], workdir: Path) -> int:
    cpus = os.cpu_count()
    print(f"ingest benchmark: {args.rows:,} rows, stores {', '.join(stores)}, {cpus} CPUs")
    made = _generate(args.rows, args.seed, workdir)
    read = baseline_read(made.path)
    print(f"baseline: reading and splitting the CSV takes {read:.1f} s", flush=True)
    results = []
    for kind in stores:
        with fresh_store(kind, workdir) as url:
            run_ingest(url, made.prior_path, workdir, made.prior_expected)
            run = run_ingest(url, made.path, workdir, made.expected)
            load = baseline_load(kind, url, made.path)
        print(
            f"{kind}: {run.seconds:.1f} s, peak RSS {run.peak_rss_mb:.0f} MB, summary exact; "
            f"plain load {load:.1f} s",
            flush=True,
        )
        results.append((kind, args.rows, run, load))
    print()
    header = (
        f"{'store':<11} {'rows':>10} {'seconds':>8} {'rows/s':>8} {'peak RSS MB':>11} "
        f"{'plain load s':>12} {'x plain load':>12} {'x CSV read':>10}"
    )
    print(header)
    print("-" * len(header))
    for kind, rows, run, load in results:
        print(
            f"{kind:<11} {rows:>10,} {run.seconds:>8.1f} {rows / run.seconds:>8,.0f} "
            f"{_mb(run.peak_rss_mb):>11} {load:>12.1f} {run.seconds / load:>12.1f} "
            f"{run.seconds / read:>10.1f}"
        )
    if args.memory_rows:
        _memory(args, workdir, results)
    return 0


def _memory(
    args: argparse.Namespace, workdir: Path, results: list[tuple[str, int, Run, float]]
) -> None:
    print(f"\nmemory growth on {args.memory_store}: {args.memory_rows:,} rows", flush=True)
    big = _generate(args.memory_rows, args.seed, workdir)
    with fresh_store(args.memory_store, workdir) as url:
        run_ingest(url, big.prior_path, workdir, big.prior_expected)
        run = run_ingest(url, big.path, workdir, big.expected)
    print(
        f"{args.memory_store}: {run.seconds:.1f} s, peak RSS {run.peak_rss_mb:.0f} MB, "
        "summary exact"
    )
    small = next((r for r in results if r[0] == args.memory_store), None)
    print()
    print(f"{'store':<11} {'rows':>10} {'seconds':>8} {'rows/s':>8} {'peak RSS MB':>11}")
    if small is not None:
        _, rows, small_run, _ = small
        print(
            f"{args.memory_store:<11} {rows:>10,} {small_run.seconds:>8.1f} "
            f"{rows / small_run.seconds:>8,.0f} {_mb(small_run.peak_rss_mb):>11}"
        )
    print(
        f"{args.memory_store:<11} {args.memory_rows:>10,} {run.seconds:>8.1f} "
        f"{args.memory_rows / run.seconds:>8,.0f} {_mb(run.peak_rss_mb):>11}"
    )
    if small is not None:
        growth = run.peak_rss_mb / small[2].peak_rss_mb
        print(f"peak RSS x{growth:.2f} for a file x{args.memory_rows / small[1]:.1f} as big")
    big.path.unlink(missing_ok=True)
    big.prior_path.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
