"""The reassigned-number check benchmark: one run, one table, the same data on both stores.

    .venv/bin/python bench/check.py [--numbers 1000000] [--baseline-sample 20000] [--no-http]
                                    [--http-workers 1] [--http-clients 16] [--http-seconds 10]

Builds `--numbers` numbers with realistic lives (`generate.py`'s histories: activations,
suspensions, cancellations, restores, releases after the freeze, recycling, ports),
replayed through the domain, and bulk-loads their `numbers` rows into a fresh PostgreSQL
database and a fresh SQLite file (carriers `cm` and `cu`, covered from 2021-01-01).
The questions are every number (shuffled) with a random `since` date, plus 1% numbers
never reported. Rows:

- baseline A / B: what a straightforward service does, one indexed `SELECT` per number
  (the primary key) on PostgreSQL / SQLite, answered with `domain.check` (timed on a
  random sample of `--baseline-sample` questions);
- the in-memory index (`adapters.check_index.NumpyCheckIndex`): build seconds and bytes
  per number on each store; `answer_batch` over all questions (vectorised core: keys and
  dates already parsed) and `check_many` (strings in, `CheckResult` objects out);
- HTTP (`handover serve --workers N` in a subprocess on the PostgreSQL store, a platform
  client's token): `POST /v1/check` with 100,000 items (from sending the encoded request to
  holding the whole answer), and `GET /v1/check` single lookups from concurrent keep-alive
  connections of a minimal raw-asyncio HTTP/1.1 client (requests/s, p50/p99 latency).

Ratios are against baseline A.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import numpy as np
from sqlalchemy import Engine, select
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generate
import harness
import stores
from handover.adapters.check_index import NumpyCheckIndex, parse_keys, parse_since_seconds
from handover.adapters.storage import tables as t
from handover.adapters.storage.engine import make_engine
from handover.adapters.storage.numbers import _number_from_row, _number_row
from handover.adapters.storage.uow import SqlUnitOfWork
from handover.domain.check import answer, facts_of, seconds
from handover.domain.freeze_policy import FreezePolicy
from handover.domain.lifecycle import EventKind, LifecycleReport, Number
from handover.services import access

PG_URL = os.environ.get("HANDOVER_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
COVERAGE = datetime(2021, 1, 1, tzinfo=UTC)
NUMBER_COLUMNS = [column.name for column in t.numbers.columns]
POLICY = FreezePolicy()


# -- data ----------------------------------------------------------------------------------


def number_rows(count: int, seed: int = 1) -> list[dict[str, Any]]:
    """`count` numbers' current rows: generated lives replayed through the domain."""
    gen = generate._Generator(seed, 0.0, 0.05)
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        e164 = gen.number(index)
        legacy = rng.random() < 0.05
        first = (
            rng.randrange(generate.LEGACY, generate.START)
            if legacy
            else rng.randrange(generate.START, generate.END - generate.DAY)
        )
        number = Number(e164, "CN")
        for event in gen.history(first):
            kind = EventKind(event.kind)
            report = LifecycleReport(
                kind,
                datetime.fromtimestamp(event.at, UTC),
                number.carrier or generate.CARRIER,
                event.subscriber or None,
                event.to_carrier or None,
            )
            number.apply(report, POLICY)
        rows.append(_number_row(number))
    return rows


def questions(rows: list[dict[str, Any]], seed: int, now: datetime) -> tuple[list[str], list[str]]:
    """Every number once (shuffled) plus 1% never reported, each with a random date."""
    rng = random.Random(seed + 1)
    numbers = [row["e164"] for row in rows]
    numbers += [f"+86147{rng.randrange(10**8):08d}" for _ in range(len(rows) // 100)]
    rng.shuffle(numbers)
    start, span = COVERAGE - timedelta(days=180), (now - COVERAGE).days + 170
    since = [(start + timedelta(days=rng.randrange(span))).date().isoformat() for _ in numbers]
    return numbers, since


def fresh_store(kind: str, workdir: Path) -> AbstractContextManager[str]:
    """An empty, migrated store with carriers cm and cu; removed afterwards."""
    return stores.temporary_store(kind, pg_url=PG_URL, workdir=workdir, prepare=_prepare)


def _prepare(url: str) -> None:
    stores.register_carriers(url, COVERAGE)


def load(url: str, rows: list[dict[str, Any]]) -> float:
    """Bulk-load the rows into `numbers` (COPY / one executemany); seconds taken."""
    started = time.perf_counter()
    engine = make_engine(url)
    try:
        if engine.dialect.name == "postgresql":
            raw: Any = engine.raw_connection()
            try:
                with (
                    raw.cursor() as cursor,
                    cursor.copy(f"COPY numbers ({', '.join(NUMBER_COLUMNS)}) FROM STDIN") as copy,
                ):
                    for row in rows:
                        copy.write_row([row[name] for name in NUMBER_COLUMNS])
                raw.commit()
                with raw.cursor() as cursor:
                    cursor.execute("ANALYZE numbers")
                raw.commit()
            finally:
                raw.close()
        else:
            path = make_url(url).database
            assert path is not None
            connection = sqlite3.connect(path)
            marks = ", ".join("?" * len(NUMBER_COLUMNS))
            with connection:
                connection.executemany(
                    f"INSERT INTO numbers ({', '.join(NUMBER_COLUMNS)}) VALUES ({marks})",
                    ([_sqlite_value(row[name]) for name in NUMBER_COLUMNS] for row in rows),
                )
            connection.close()
    finally:
        engine.dispose()
    return time.perf_counter() - started


def _sqlite_value(value: Any) -> Any:
    """What `UtcDateTime` stores on SQLite: naive UTC text with microseconds."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


# -- measurements --------------------------------------------------------------------------


def baseline(url: str, numbers: list[str], since: list[str], now: datetime) -> float:
    """One indexed query per number, answered with domain.check: numbers/s."""
    engine = make_engine(url)
    now_s = seconds(now)
    try:
        with engine.connect() as connection:
            coverage = {
                row.id: seconds(row.coverage_start)
                for row in connection.execute(select(t.carriers.c.id, t.carriers.c.coverage_start))
            }
            started = time.perf_counter()
            for number, day in zip(numbers, since, strict=True):
                row = (
                    connection.execute(select(t.numbers).where(t.numbers.c.e164 == number))
                    .mappings()
                    .first()
                )
                facts = facts_of(_number_from_row(row)) if row else None
                moment = datetime.fromisoformat(day).replace(tzinfo=UTC)
                answer(
                    facts, seconds(moment), coverage.get(facts.carrier) if facts else None, now_s
                )
            elapsed = time.perf_counter() - started
    finally:
        engine.dispose()
    return len(numbers) / elapsed


@dataclass(slots=True)
class IndexFigures:
    build_seconds: float
    numbers: int
    bytes_per_number: float
    batch_rate: float = 0.0
    check_many_rate: float = 0.0
    answers: dict[str, int] = field(default_factory=dict)


def in_process(
    engine: Engine, numbers: list[str], since: list[str], now: datetime, timed: bool = True
) -> IndexFigures:
    index = NumpyCheckIndex(engine)
    figures = IndexFigures(index.build_seconds, len(index), index.nbytes / max(1, len(index)))
    if not timed:
        return figures
    keys = parse_keys(numbers)
    since_s, _, _ = parse_since_seconds(since)
    now_s = seconds(now)
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        result = index.answer_batch(keys, since_s, now_s)
        runs.append(time.perf_counter() - started)
    figures.batch_rate = len(numbers) / min(runs)
    figures.answers = {
        verdict: int(np.count_nonzero(result.verdict == code))
        for code, verdict in enumerate(("allow", "step_up", "deny"))
    }
    chunk = 100_000
    started = time.perf_counter()
    for start in range(0, len(numbers), chunk):
        questions_ = list(
            zip(numbers[start : start + chunk], since[start : start + chunk], strict=True)
        )
        index.check_many(questions_, now)
    figures.check_many_rate = len(numbers) / (time.perf_counter() - started)
    return figures


# -- HTTP ----------------------------------------------------------------------------------


@contextmanager
def server(url: str, workers: int = 1) -> Iterator[str]:
    """`handover serve` on the store, until the block ends; yields its base URL."""
    port = harness.free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "HANDOVER_DATABASE_URL": url, "HANDOVER_PUBLIC_URL": base}
    serve = ["serve", "--port", str(port), "--workers", str(workers)]
    with harness.handover(serve, env) as process:
        harness.wait_http(f"{base}/log/checkpoint", process, "handover serve", timeout=300)
        yield base


def platform_token(url: str, base: str) -> str:
    engine = make_engine(url)
    try:
        _, credentials = access.register_platform(
            partial(SqlUnitOfWork, engine, b"bench"), "bench", "bench", "other", "low"
        )
    finally:
        engine.dispose()
    response = httpx.post(
        f"{base}/oauth/token",
        data={"grant_type": "client_credentials", "scope": "check"},
        auth=(credentials.client_id, credentials.client_secret),
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def http_batch(base: str, token: str, numbers: list[str], since: list[str], size: int) -> float:
    """POST /v1/check with `size` items (best of 3): numbers/s from sending the encoded
    request to holding the whole response (the client's own JSON encoding of the request
    and decoding of the answer, about 32 MB per 100,000, are not timed; the answer is
    decoded and checked afterwards)."""
    items = [{"number": n, "since": s} for n, s in zip(numbers[:size], since[:size], strict=True)]
    body = json.dumps({"items": items}).encode()
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    best = float("inf")
    with httpx.Client(headers=headers, timeout=300) as client:
        for _ in range(3):
            started = time.perf_counter()
            response = client.post(f"{base}/v1/check", content=body)
            response.raise_for_status()
            content = response.content
            best = min(best, time.perf_counter() - started)
            answer = json.loads(content)
            assert answer["count"] == len(items), answer["count"]
    return len(items) / best


def http_single(
    base: str, token: str, numbers: list[str], since: list[str], seconds_: float, clients: int
) -> tuple[float, float, float]:
    """GET /v1/check from `clients` concurrent keep-alive connections: (req/s, p50 ms, p99 ms).

    The load generator is a minimal HTTP/1.1 client on raw asyncio streams
    (`harness.read_response`), so that on a small machine the client's own cost does not
    hide the server's.
    """
    split = urlsplit(base)
    host, port = split.hostname or "127.0.0.1", split.port or 80
    head = f"Host: {host}:{port}\r\nAuthorization: Bearer {token}\r\n\r\n"

    async def run() -> tuple[int, list[float], float]:
        latencies: list[float] = []
        stop = time.perf_counter() + seconds_

        async def worker(offset: int) -> None:
            reader, writer = await asyncio.open_connection(host, port)
            i = offset
            try:
                while time.perf_counter() < stop:
                    query = urlencode(
                        {"number": numbers[i % len(numbers)], "since": since[i % len(since)]}
                    )
                    request = f"GET /v1/check?{query} HTTP/1.1\r\n{head}".encode()
                    started = time.perf_counter()
                    writer.write(request)
                    status, _, body = await harness.read_response(reader)
                    latencies.append(time.perf_counter() - started)
                    assert status in (200, 422), body
                    i += clients
            finally:
                writer.close()

        began = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(clients)))
        return len(latencies), latencies, time.perf_counter() - began

    count, latencies, elapsed = asyncio.run(run())
    cuts = statistics.quantiles(latencies, n=100)
    return count / elapsed, cuts[49] * 1000, cuts[98] * 1000


# -- the table -----------------------------------------------------------------------------


def _rate(value: float) -> str:
    return f"{value:,.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--numbers", type=int, default=1_000_000)
    parser.add_argument("--baseline-sample", type=int, default=20_000)
    parser.add_argument("--http-batch", type=int, default=100_000)
    parser.add_argument("--http-seconds", type=float, default=10.0)
    parser.add_argument("--http-clients", type=int, default=16)
    parser.add_argument("--http-workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--no-http", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    table = run(args)
    print(table)
    return 0


def run(args: argparse.Namespace) -> str:
    now = datetime.now(UTC)
    started = time.perf_counter()
    rows = number_rows(args.numbers, args.seed)
    numbers, since = questions(rows, args.seed, now)
    print(
        f"generated {len(rows):,} numbers in {time.perf_counter() - started:.1f} s", file=sys.stderr
    )
    sample = random.Random(args.seed + 2).sample(
        range(len(numbers)), min(args.baseline_sample, len(numbers))
    )
    sample_numbers, sample_since = [numbers[i] for i in sample], [since[i] for i in sample]
    lines: list[tuple[str, str, str]] = []
    workdir = Path(tempfile.mkdtemp(prefix="handover-bench-check-"))
    try:
        with fresh_store("postgresql", workdir) as pg, fresh_store("sqlite", workdir) as lite:
            for url in (pg, lite):
                print(f"loaded {url.split(':')[0]} in {load(url, rows):.1f} s", file=sys.stderr)
            del rows
            base_a = baseline(pg, sample_numbers, sample_since, now)
            base_b = baseline(lite, sample_numbers, sample_since, now)
            lines.append(
                (
                    "baseline A: one indexed query per number, PostgreSQL",
                    f"{_rate(base_a)} numbers/s",
                    "1.0x",
                )
            )
            lines.append(
                (
                    "baseline B: one indexed query per number, SQLite",
                    f"{_rate(base_b)} numbers/s",
                    f"{base_b / base_a:.1f}x",
                )
            )
            pg_engine, lite_engine = make_engine(pg), make_engine(lite)
            try:
                index = in_process(pg_engine, numbers, since, now)
                lite_build = in_process(lite_engine, numbers, since, now, timed=False)
            finally:
                pg_engine.dispose()
                lite_engine.dispose()
            lines.append(
                (
                    "index build from PostgreSQL (COPY binary)",
                    f"{index.build_seconds:.2f} s for {index.numbers:,} numbers",
                    "",
                )
            )
            lines.append(
                (
                    "index build from SQLite",
                    f"{lite_build.build_seconds:.2f} s for {lite_build.numbers:,} numbers",
                    "",
                )
            )
            lines.append(("index memory", f"{index.bytes_per_number:.1f} bytes/number", ""))
            lines.append(
                (
                    "in-process batch: answer_batch (vectorised)",
                    f"{_rate(index.batch_rate)} numbers/s",
                    f"{index.batch_rate / base_a:,.0f}x",
                )
            )
            lines.append(
                (
                    "in-process batch: check_many (strings → CheckResult)",
                    f"{_rate(index.check_many_rate)} numbers/s",
                    f"{index.check_many_rate / base_a:,.0f}x",
                )
            )
            print(f"verdicts: {index.answers}", file=sys.stderr)
            if args.no_http:
                lines.append(("HTTP rows", "skipped (--no-http)", ""))
            else:
                with server(pg, args.http_workers) as base:
                    token = platform_token(pg, base)
                    batch = http_batch(base, token, numbers, since, args.http_batch)
                    rps, p50, p99 = http_single(
                        base, token, numbers, since, args.http_seconds, args.http_clients
                    )
                lines.append(
                    (
                        f"HTTP batch: POST /v1/check, {args.http_batch:,} items, "
                        f"{args.http_workers} worker(s)",
                        f"{_rate(batch)} numbers/s",
                        f"{batch / base_a:,.0f}x",
                    )
                )
                lines.append(
                    (
                        f"HTTP single: GET /v1/check, {args.http_clients} concurrent clients, "
                        f"{args.http_workers} worker(s)",
                        f"{_rate(rps)} req/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms",
                        "",
                    )
                )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    width = max(len(line[0]) for line in lines)
    value_width = max(len(line[1]) for line in lines)
    header = f"| {'measure':<{width}} | {'result':<{value_width}} | vs A |"
    rule = f"|{'-' * (width + 2)}|{'-' * (value_width + 2)}|------|"
    body = [
        f"| {name:<{width}} | {value:<{value_width}} | {ratio} |" for name, value, ratio in lines
    ]
    return "\n".join(
        [f"{args.numbers:,} numbers, {len(numbers):,} questions", "", header, rule, *body]
    )


if __name__ == "__main__":
    sys.exit(main())
