"""A crash mid-file loses no accepted row, and running the same file again is safe.

`handover ingest` runs as a child process and is killed (SIGKILL) once it has committed
some chunks; the file is then ingested again and the ledger must equal that of one clean
run of the same file.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, func, select

import granted
from handover.adapters.staging import SqliteReportSorter
from handover.adapters.storage import tables as t
from handover.adapters.storage.engine import make_engine
from handover.adapters.storage.uow import SqlUnitOfWork
from handover.domain.freeze_policy import FreezePolicy
from handover.services import reporting
from handover.services.model import Carrier, IngestStatus

POLICY = FreezePolicy()

NUMBERS = 5_000
#: Small chunks (the file holds 20 of them) so the kill surely lands mid-file.
CHUNK_ROWS = 1_000
BAD_NUMBERS = 50
EARLY_RESUMES = 50
GOOD_ROWS = NUMBERS * 4
RUNNER = (
    "import sys; from handover.services import reporting; "
    "assert hasattr(reporting, 'CHUNK_ROWS'); "
    f"reporting.CHUNK_ROWS = {CHUNK_ROWS}; "
    "from handover.cli import app; sys.argv[0] = 'handover'; app()"
)


def write_file(path: Path) -> Path:
    """Four lawful events per number, shuffled, plus rows that are always rejected."""
    rows = []
    for i in range(NUMBERS):
        number = f"+86138{i:08d}"
        rows += [
            f"a{i},{number},activated,2024-01-01,s{i},",
            f"s{i},{number},suspended,2024-02-01T08:00:00+08:00,,",
            f"r{i},{number},resumed,2024-03-01,,",
            f"c{i},{number},cancelled,2024-04-01,,",
        ]
    rows += [f"bad{i},+86123{i},activated,2024-01-01,s," for i in range(BAD_NUMBERS)]
    # resumed while active: illegal in a first run; dated before the last event on a re-run
    rows += [f"early{i},+86138{i:08d},resumed,2024-01-15,," for i in range(EARLY_RESUMES)]
    random.Random(7).shuffle(rows)
    path.write_text("event_id,number,event,occurred_at,subscriber,to_carrier\n" + "\n".join(rows))
    return path


def snapshot(engine: Engine) -> dict[str, Any]:
    """The ledger's content, independent of insertion order and bookkeeping columns."""
    with engine.connect() as connection:
        numbers = sorted(tuple(row) for row in connection.execute(select(t.numbers)))
        tenures = sorted(
            (row.e164, row.subscriber, row.carrier_id, row.start_at, row.end_at)
            for row in connection.execute(select(t.tenures))
        )
        events = sorted(
            (row.carrier_id, row.event_id, row.e164, row.kind, row.occurred_at, row.subscriber)
            for row in connection.execute(select(t.number_events))
        )
    return {"numbers": numbers, "tenures": tenures, "events": events}


def count_events(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(select(func.count()).select_from(t.number_events)).scalar_one()
        )


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_file(tmp_path_factory.mktemp("crash") / "events.csv")


@pytest.fixture(scope="module")
def clean_run(
    csv_file: Path, sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The ledger after one uninterrupted run of the file (on a fresh SQLite store)."""
    path = tmp_path_factory.mktemp("clean") / "clean.db"
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    uow_factory = lambda: SqlUnitOfWork(engine, b"test-log-key")  # noqa: E731
    with uow_factory() as uow:
        uow.carriers.add(Carrier("cm", "China Mobile", "CN", datetime.now(UTC)))
        uow.commit()
    granted.grant(uow_factory, "cm")
    with csv_file.open("rb") as lines:
        result = reporting.ingest_file(
            uow_factory, SqliteReportSorter, "cm", lines, region="CN", policy=POLICY
        )
    assert result.summary() == {
        "accepted": GOOD_ROWS,
        "duplicates": 0,
        "rejected": {"illegal_transition": EARLY_RESUMES, "invalid_number": BAD_NUMBERS},
    }
    ledger = snapshot(engine)
    engine.dispose()
    return ledger


def handover_ingest(csv_file: Path, store_url: str, spool: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HANDOVER_DATABASE_URL": store_url, "HANDOVER_SPOOL_DIR": str(spool)}
    return subprocess.Popen(
        [sys.executable, "-c", RUNNER, "ingest", str(csv_file), "--carrier", "cm", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
def test_a_crash_mid_file_loses_nothing_and_a_rerun_completes_it(
    csv_file: Path,
    clean_run: dict[str, Any],
    store_url: str,
    engine: Engine,
    uow_factory,
    carriers,
    tmp_path: Path,
) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    # a plain reader: the store's own SQLite engine would take the write lock to read
    poller = create_engine(store_url) if store_url.startswith("sqlite") else engine
    child = handover_ingest(csv_file, store_url, spool)
    committed = 0
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and child.poll() is None:
            committed = count_events(poller)
            if committed >= 2 * CHUNK_ROWS:
                break
            time.sleep(0.01)
    finally:
        child.send_signal(signal.SIGKILL)
        _, stderr = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL, stderr.decode()
    committed = count_events(engine)
    assert 0 < committed < GOOD_ROWS, "the kill should land mid-file"
    assert committed % 4 == 0
    # whole chunks only: every committed number has all four of its events
    with engine.connect() as connection:
        per_number = connection.execute(
            select(t.number_events.c.e164, func.count())
            .group_by(t.number_events.c.e164)
            .having(func.count() != 4)
        ).all()
    assert per_number == []
    with uow_factory() as uow:
        (killed,) = uow.ingests.recent("cm", 10)
    assert killed.status is IngestStatus.PROCESSING and killed.accepted == committed

    rerun = handover_ingest(csv_file, store_url, spool)
    stdout, stderr = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, stderr.decode()
    result = json.loads(stdout)
    assert result["accepted"] == GOOD_ROWS - committed
    assert result["duplicates"] == committed
    rejected = result["rejected"]
    assert rejected["invalid_number"] == BAD_NUMBERS
    # an early resume is illegal on a number the killed run did not reach, and dated
    # before the last event on one it did
    assert rejected.get("illegal_transition", 0) + rejected.get("out_of_order", 0) == EARLY_RESUMES
    assert sum(rejected.values()) == BAD_NUMBERS + EARLY_RESUMES
    assert snapshot(engine) == clean_run

    # and once more: everything is a duplicate, nothing changes
    again = handover_ingest(csv_file, store_url, spool)
    stdout, stderr = again.communicate(timeout=120)
    assert again.returncode == 0, stderr.decode()
    assert json.loads(stdout) == {
        "accepted": 0,
        "duplicates": GOOD_ROWS,
        "rejected": {"invalid_number": BAD_NUMBERS, "out_of_order": EARLY_RESUMES},
    }
    assert snapshot(engine) == clean_run
