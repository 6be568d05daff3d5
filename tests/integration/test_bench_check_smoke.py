"""bench/check.py runs end to end at a tiny size (no timing is asserted)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import check as bench


def test_bench_functions_at_a_tiny_size(store_url: str, engine: Engine) -> None:
    now = datetime.now(UTC)
    rows = bench.number_rows(300, seed=3)
    numbers, since = bench.questions(rows, 3, now)
    assert len(numbers) == 303
    bench._prepare(store_url)  # already migrated: registers cm and cu, covered from 2021
    bench.load(store_url, rows)
    assert bench.baseline(store_url, numbers[:50], since[:50], now) > 0
    figures = bench.in_process(engine, numbers, since, now)
    assert figures.numbers == 300
    assert figures.bytes_per_number <= 32
    assert sum(figures.answers.values()) == len(numbers)
