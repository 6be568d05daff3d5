"""bench/fanout.py runs end to end at `--quick` size on SQLite (no timing is asserted).

Real processes: a uvicorn receiver, a spawned push worker, `handover serve` for polling.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import fanout as bench


@pytest.mark.slow
def test_fanout_bench_quick_loses_no_set() -> None:
    args = bench.parse_args(["--quick"])
    assert args.store == "sqlite"
    result = bench.run(args)
    per_method = (args.numbers + args.latency_batches * args.latency_size) * args.streams
    for integrity in (result.push, result.poll):
        assert integrity.expected == per_method
        assert integrity.received == per_method
        assert integrity.lost == 0
        assert integrity.extra == 0
    assert result.figures["push_rate"] > 0
    assert result.figures["poll_rate"] > 0
    assert result.figures["sign_1"] > 0
    assert bench.render(args, result).row_count == len(result.rows)
