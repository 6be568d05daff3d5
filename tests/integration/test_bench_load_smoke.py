"""bench/load.py runs end to end for a few seconds at a low rate on SQLite (no timing is
asserted), and Ctrl-C leaves neither a server nor the store behind."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import load as bench

BENCH = Path(bench.__file__).parent
SMALL = ["--store", "sqlite", "--numbers", "300", "--sample-seconds", "1"]


@pytest.mark.slow
def test_load_bench_completes_without_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "load.json"
    # A long --timeout: on a loaded machine the server may lag, and a lagging answer must
    # still arrive (the figures are the benchmark's business, not this test's).
    argv = [*SMALL, "--rate", "50", "--seconds", "4", "--baseline-seconds", "1", "--cases", "3"]
    argv += ["--timeout", "120"]
    assert bench.main([*argv, "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["errors"] == {}
    assert result["overall"]["errors"] == {}
    assert result["baseline"]["errors"] == {}
    assert result["baseline"]["requests"] == 50
    kinds = result["kinds"]
    assert sum(kinds[k]["requests"] for k in kinds if k != "token") == 200
    assert kinds["check"]["requests"] > 150
    assert {"outcome", "outcome_replay", "events"} <= set(kinds)
    assert all(stats["errors"] == {} for stats in kinds.values())
    assert result["cases"] == {"answered": 3, "fresh_left": 0}
    assert result["numbers_activated"] > 0
    assert result["rejected_events"] == {}
    assert result["throughput"]["achieved_per_s"] > 0
    assert 0 < result["overall"]["p50_ms"] <= result["overall"]["p99_ms"]
    assert result["rss"]["serve_start"] > 0 and result["rss"]["work_end"] > 0
    assert result["cpu"]["generator_seconds"] > 0
    assert result["targets"]["errors"]["met"]
    assert not result["targets"]["throughput"]["met"]  # 50/s for 4 s is not the target
    assert any(point["phase"] == "mixed" for point in result["timeline"])
    table = capsys.readouterr().out
    assert "| check" in table and "healthz (baseline)" in table and "target p99" in table


@pytest.mark.slow
def test_ctrl_c_stops_the_servers_and_removes_the_store(tmp_path: Path) -> None:
    argv = [*SMALL, "--rate", "20", "--seconds", "600", "--baseline-seconds", "600"]
    process = subprocess.Popen(
        [sys.executable, str(BENCH / "load.py"), *argv],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    assert process.stderr is not None
    store = port = None
    deadline = time.monotonic() + 120
    for line in process.stderr:
        if found := re.search(
            r"store sqlite:///(\S+); the server will be at http://[\d.]+:(\d+)", line
        ):
            store, port = Path(found[1]), int(found[2])
        if line.lstrip().startswith("baseline t=") or time.monotonic() > deadline:
            break
    assert store is not None and port is not None and store.exists()
    assert len(_processes_using(store)) >= 2
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=60)
    assert process.returncode == 130, rest
    assert not store.exists()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    assert _processes_using(store) == []


def _processes_using(store: Path) -> list[int]:
    """Processes whose environment names the store (`handover serve` and `handover work`)."""
    marker = f"HANDOVER_DATABASE_URL=sqlite:///{store}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found
