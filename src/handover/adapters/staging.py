"""A disk-backed sorter for one file's reports (the services' `ReportSorter`).

Carrier files can hold tens of millions of rows, and rows of one number must be applied
in time order. The parsed reports go to a private temporary SQLite database, which sorts
them with its external merge sort in bounded memory. Its name is removed as soon as it is
open, so nothing is left behind however the process ends (even SIGKILL): the space is
freed when the last descriptor closes.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from handover.domain.lifecycle import EventKind
from handover.domain.numbers import PhoneNumber
from handover.domain.reports import CarrierReport
from handover.services.model import Rejection

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FLUSH = 20_000
_KINDS = {kind.value: kind for kind in EventKind}


def _micros(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class SqliteReportSorter:
    def __init__(self, directory: str | None = None, cache_mib: int = 16) -> None:
        handle, self.path = tempfile.mkstemp(
            prefix="handover-ingest-", suffix=".sqlite", dir=directory
        )
        os.close(handle)
        self.db = sqlite3.connect(self.path)
        self.db.executescript(f"""
            PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA temp_store=FILE;
            PRAGMA cache_size=-{cache_mib * 1024};
            CREATE TABLE reports (e164 TEXT, at INTEGER, line INTEGER, event_id TEXT,
                                  kind TEXT, subscriber TEXT, to_carrier TEXT, region TEXT);
            CREATE TABLE rejections (line INTEGER, event_id TEXT, reason TEXT, detail TEXT,
                                     raw TEXT);
        """)
        # Safe to unlink while open: journal_mode=OFF means SQLite never opens the path again,
        # and its sort spill files (temp_store=FILE) are nameless already.
        Path(self.path).unlink()
        self._reports: list[tuple[object, ...]] = []
        self._rejections: list[tuple[object, ...]] = []

    def add(self, report: CarrierReport) -> None:
        self._reports.append(
            (
                report.number.e164,
                _micros(report.occurred_at),
                report.line,
                report.event_id,
                report.kind.value,
                report.subscriber,
                report.to_carrier,
                report.number.region,
            )
        )
        if len(self._reports) >= _FLUSH:
            self._flush()

    def add_rejection(self, rejection: Rejection) -> None:
        self._rejections.append(
            (
                rejection.line,
                rejection.event_id,
                str(rejection.reason),
                rejection.detail,
                rejection.raw,
            )
        )
        if len(self._rejections) >= _FLUSH:
            self._flush()

    def _flush(self) -> None:
        with self.db:
            self.db.executemany("INSERT INTO reports VALUES (?,?,?,?,?,?,?,?)", self._reports)
            self.db.executemany("INSERT INTO rejections VALUES (?,?,?,?,?)", self._rejections)
        self._reports, self._rejections = [], []

    def sorted_reports(self) -> Iterator[CarrierReport]:
        self._flush()
        cursor = self.db.execute("SELECT * FROM reports ORDER BY e164, at, line")
        numbers: dict[tuple[str, str], PhoneNumber] = {}
        for e164, at, line, event_id, kind, subscriber, to_carrier, region in cursor:
            number = numbers.get((e164, region))
            if number is None:
                if len(numbers) > 10_000:
                    numbers.clear()
                number = numbers[(e164, region)] = PhoneNumber(e164, region)
            yield CarrierReport(
                event_id,
                number,
                _KINDS[kind],
                _EPOCH + timedelta(microseconds=at),
                subscriber,
                to_carrier,
                line,
            )

    def rejections(self) -> Iterator[Rejection]:
        self._flush()
        for line, event_id, reason, detail, raw in self.db.execute(
            "SELECT * FROM rejections ORDER BY line"
        ):
            yield Rejection(line, event_id, reason, detail, raw)

    def close(self) -> None:
        self.db.close()
