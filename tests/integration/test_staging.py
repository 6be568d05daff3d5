"""The ingest sorter leaves no file behind, even when its process is killed mid-file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
from datetime import UTC, datetime
from handover.adapters.staging import SqliteReportSorter
from handover.domain.lifecycle import EventKind
from handover.domain.numbers import PhoneNumber
from handover.domain.reports import CarrierReport

sorter = SqliteReportSorter(sys.argv[1])
at = datetime(2024, 1, 1, tzinfo=UTC)
for i in range(50_000):
    number = PhoneNumber(f"+86138{i:08d}", "CN")
    sorter.add(CarrierReport(f"e{i}", number, EventKind.ACTIVATED, at, "s", None, i + 2))
first = next(sorter.sorted_reports())
print("sorting", first.event_id, flush=True)
sys.stdin.read()
"""


def test_a_killed_ingest_leaves_no_sort_file(tmp_path: Path) -> None:
    worker = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout is not None
    assert worker.stdout.readline().startswith("sorting")  # mid-file: rows staged and sorted
    assert list(tmp_path.iterdir()) == []
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    assert list(tmp_path.iterdir()) == []
