"""Carrier reporting: batches over the API and streamed bulk files.

Both paths parse every report, apply the reports of each number in `occurred_at` order,
and end every report as accepted, duplicate or rejected (see `domain.reports`). Files are
applied in chunks, each its own transaction, so a crash loses no accepted row and running
the same file again only finds duplicates.
"""

from __future__ import annotations

import csv
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from handover.domain.freeze_policy import FreezePolicy
from handover.domain.lifecycle import NumberRestored
from handover.domain.ranges import RangeTable
from handover.domain.rejections import Reason, Rejected
from handover.domain.reports import (
    COLUMNS,
    MAX_EVENT_ID,
    CarrierReport,
    Outcome,
    Status,
    decide,
    parse_report,
)
from handover.domain.ssf.events import Signal, signal_for
from handover.services.audit import append_accepted
from handover.services.cases import cancel_on_restore
from handover.services.freeze import record_overrides, release_records, with_overrides
from handover.services.model import Ingest, IngestStatus, RangeRefusal, Rejection
from handover.services.ports import (
    ConcurrentUpdate,
    ReportSorter,
    ReportSorterFactory,
    UnitOfWork,
    UnitOfWorkFactory,
)
from handover.services.ranges import carrier_ranges

MAX_BATCH = 10_000
#: A chunk that loses a race with a concurrent writer is re-decided this many times at most.
CONCURRENCY_ATTEMPTS = 5
#: Rows per transaction when applying a file; a chunk always holds whole numbers.
CHUNK_ROWS = 5_000
REJECTION_BATCH = 5_000
RAW_KEPT = 300

#: Called with (phase, done, total): phase "read" counts bytes, "apply" counts rows.
Progress = Callable[[str, int, int | None], None]


class UnknownCarrier(LookupError):
    """The reporting carrier is not registered (its client outlived it)."""


class FileRejected(ValueError):
    """The file as a whole cannot be read (no header, wrong columns); nothing was stored."""


class BatchTooLarge(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class BatchResult:
    accepted: int
    duplicates: int
    rejected: dict[str, int]
    outcomes: list[Outcome]


def report_events(
    uow_factory: UnitOfWorkFactory,
    carrier_id: str,
    items: Sequence[Mapping[str, str | None]],
    *,
    region: str | None = None,
    policy: FreezePolicy,
    now: datetime | None = None,
) -> BatchResult:
    """Apply one API batch in one transaction; `line` in each outcome is the item index.

    National numbers are read in `region`, by default the carrier's country."""
    if len(items) > MAX_BATCH:
        raise BatchTooLarge(f"a batch holds at most {MAX_BATCH} events, got {len(items)}")
    now = now or datetime.now(UTC)
    region, ranges = _carrier(uow_factory, carrier_id, region)
    outcomes: list[Outcome] = []
    reports: list[CarrierReport] = []
    for index, item in enumerate(items):
        try:
            reports.append(parse_report(item, index, region, now, overrides=True))
        except Rejected as error:
            outcomes.append(Outcome.rejected(index, str(item.get("event_id") or ""), error))
    reports.sort(key=CarrierReport.sort_key)
    for attempt in range(1, CONCURRENCY_ATTEMPTS + 1):
        try:
            with uow_factory() as uow:
                applied = _apply_chunk(uow, carrier_id, None, reports, ranges, policy, now)
                uow.commit()
            break
        except ConcurrentUpdate:
            if attempt == CONCURRENCY_ATTEMPTS:
                raise
    outcomes += applied
    outcomes.sort(key=lambda outcome: outcome.line)
    counts = _count(outcomes)
    return BatchResult(counts.accepted, counts.duplicates, dict(counts.rejected), outcomes)


def ingest_file(
    uow_factory: UnitOfWorkFactory,
    sorters: ReportSorterFactory,
    carrier_id: str,
    lines: Iterable[bytes],
    *,
    filename: str | None = None,
    region: str | None = None,
    total_bytes: int | None = None,
    progress: Progress | None = None,
    policy: FreezePolicy,
    now: datetime | None = None,
    source: str = "file",
) -> Ingest:
    """Stream a carrier's CSV file into the ledger and keep its summary and rejections.

    National numbers are read in `region`, by default the carrier's country. The file's
    reports are sorted by a new sorter from `sorters`, closed (and its spill file removed)
    on every path, refused files too. `UnknownCarrier` before anything is read.
    """
    region, ranges = _carrier(uow_factory, carrier_id, region)
    sorter = sorters()
    try:
        return _ingest(
            uow_factory,
            sorter,
            carrier_id,
            lines,
            filename,
            region,
            ranges,
            total_bytes,
            progress,
            policy,
            now or datetime.now(UTC),
            source,
        )
    finally:
        sorter.close()


def _carrier(
    uow_factory: UnitOfWorkFactory, carrier_id: str, region: str | None
) -> tuple[str, RangeTable]:
    """The region national numbers are read in (the one given, else the carrier's
    country) and the carrier's granted ranges, read once for the whole batch or file.
    The carrier must be registered either way (`UnknownCarrier`)."""
    with uow_factory() as uow:
        carrier = uow.carriers.get(carrier_id)
        if carrier is None:
            raise UnknownCarrier(f"carrier {carrier_id!r} is not registered")
        ranges = carrier_ranges(uow, carrier_id)
    return (region.upper() if region else carrier.country), ranges


def _ingest(
    uow_factory: UnitOfWorkFactory,
    sorter: ReportSorter,
    carrier_id: str,
    lines: Iterable[bytes],
    filename: str | None,
    region: str | None,
    ranges: RangeTable,
    total_bytes: int | None,
    progress: Progress | None,
    policy: FreezePolicy,
    now: datetime,
    source: str,
) -> Ingest:
    rows = iter(lines)
    header = _read_header(rows)
    with uow_factory() as uow:
        ingest = Ingest(str(uuid.uuid4()), carrier_id, source, filename, received_at=now)
        uow.ingests.add(ingest)
        uow.commit()
    try:
        _stage(sorter, rows, header, region, now, total_bytes, progress, ingest)
        _store_parse_rejections(uow_factory, sorter, ingest)
        _apply_sorted(uow_factory, sorter, ingest, ranges, policy, now, progress)
    except BaseException as exc:
        ingest.status, ingest.error = IngestStatus.FAILED, f"{type(exc).__name__}: {exc}"
        ingest.finished_at = datetime.now(UTC)
        with uow_factory() as uow:
            uow.ingests.update(ingest)
            uow.commit()
        raise
    ingest.status, ingest.finished_at = IngestStatus.COMPLETED, datetime.now(UTC)
    with uow_factory() as uow:
        uow.ingests.update(ingest)
        uow.commit()
    return ingest


def recent_ingests(
    uow_factory: UnitOfWorkFactory, carrier_id: str | None, limit: int
) -> list[Ingest]:
    """The newest ingests with their summaries: one carrier's, or everyone's (`None`)."""
    with uow_factory() as uow:
        return uow.ingests.recent(carrier_id, limit)


def find_ingest(uow_factory: UnitOfWorkFactory, ingest_id: str) -> Ingest | None:
    """One ingest with its summary; None when there is no such ingest."""
    with uow_factory() as uow:
        return uow.ingests.get(ingest_id)


def rejected_rows(
    uow_factory: UnitOfWorkFactory, ingest_id: str, after_line: int, limit: int
) -> list[Rejection]:
    """An ingest's rejected rows after line `after_line`, in line order, `limit` at most."""
    with uow_factory() as uow:
        return uow.ingests.rejections(ingest_id, after_line, limit)


def _read_header(rows: Iterator[bytes]) -> tuple[list[str], int]:
    """The header's column names and its line number (blank lines before it are skipped)."""
    expected = ",".join(COLUMNS)
    for line_no, first in enumerate(rows, start=1):  # noqa: B007 - used after the loop
        if first.strip():
            break
    else:
        raise FileRejected(f"the file is empty; the first line must be the header {expected}")
    try:
        text = first.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError:
        raise FileRejected("the header line is not UTF-8") from None
    if "\r" in text:
        raise FileRejected("lines must end with LF or CRLF; this file uses bare CR")
    try:
        header = [name.strip().lower() for name in _split(text)]
    except csv.Error as exc:
        raise FileRejected(f"the header is not CSV: {exc}") from None
    missing = [name for name in COLUMNS if name not in header]
    if missing:
        raise FileRejected(f"the header lacks {', '.join(missing)}; expected {expected}")
    if len(set(header)) != len(header):
        raise FileRejected("the header names a column twice")
    return header, line_no


def _split(text: str) -> list[str]:
    return next(csv.reader((text,)), [])


def _stage(
    sorter: ReportSorter,
    rows: Iterator[bytes],
    header: tuple[list[str], int],
    region: str | None,
    now: datetime,
    total_bytes: int | None,
    progress: Progress | None,
    ingest: Ingest,
) -> None:
    """First pass: parse every row; good reports go to the sorter, faults are kept."""
    columns, header_line = header
    read = 0
    for line_no, raw in enumerate(rows, start=header_line + 1):
        read += len(raw)
        if progress and line_no % 50_000 == 0:
            progress("read", read, total_bytes)
        if not raw.strip():
            continue
        ingest.rows += 1
        parsed = _parse_line(raw, line_no, columns, region, now)
        if isinstance(parsed, Rejection):
            sorter.add_rejection(parsed)
        else:
            sorter.add(parsed)
    if progress:
        progress("read", read, total_bytes)


def _parse_line(
    raw: bytes, line_no: int, columns: list[str], region: str | None, now: datetime
) -> CarrierReport | Rejection:
    try:
        text = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        return _rejection(
            line_no,
            None,
            Reason.INVALID_ENCODING,
            f"not UTF-8 at byte {exc.start}",
            raw.decode("utf-8", "replace"),
        )
    try:
        # Without quotes or line breaks a CSV line is its comma-separated fields (csv.reader
        # gives the same list), and str.split is several times faster than a reader per line.
        plain = text and '"' not in text and "\r" not in text and "\n" not in text
        fields = text.split(",") if plain else _split(text)
    except csv.Error as exc:
        guess = dict(zip(columns, text.split(","), strict=False)).get("event_id")
        return _rejection(line_no, guess, Reason.MALFORMED_ROW, f"not CSV: {exc}", text)
    row = dict(zip(columns, fields, strict=False))
    event_id = row.get("event_id")
    if len(fields) != len(columns):
        detail = f"expected {len(columns)} fields, found {len(fields)}"
        return _rejection(line_no, event_id, Reason.MALFORMED_ROW, detail, text)
    try:
        return parse_report(row, line_no, region, now)
    except Rejected as error:
        return _rejection(line_no, event_id, error.reason, error.detail, text)


def _rejection(line_no: int, event_id: str | None, reason: str, detail: str, raw: str) -> Rejection:
    """A rejection safe to store: bounded lengths and no NUL (PostgreSQL refuses it in text)."""
    event_id = event_id.strip()[:MAX_EVENT_ID].replace("\x00", "\ufffd") if event_id else None
    return Rejection(
        line_no,
        event_id or None,
        reason,
        detail.replace("\x00", "\ufffd"),
        raw[:RAW_KEPT].replace("\x00", "\ufffd"),
    )


def _store_parse_rejections(
    uow_factory: UnitOfWorkFactory, sorter: ReportSorter, ingest: Ingest
) -> None:
    batch: list[Rejection] = []
    for rejection in sorter.rejections():
        batch.append(rejection)
        if len(batch) >= REJECTION_BATCH:
            _commit_rejections(uow_factory, ingest, batch)
            batch = []
    if batch:
        _commit_rejections(uow_factory, ingest, batch)


def _commit_rejections(
    uow_factory: UnitOfWorkFactory, ingest: Ingest, batch: list[Rejection]
) -> None:
    for rejection in batch:
        ingest.rejected[rejection.reason] += 1
    with uow_factory() as uow:
        uow.ingests.add_rejections(ingest.id, batch)
        uow.ingests.update(ingest)
        uow.commit()


def _apply_sorted(
    uow_factory: UnitOfWorkFactory,
    sorter: ReportSorter,
    ingest: Ingest,
    ranges: RangeTable,
    policy: FreezePolicy,
    now: datetime,
    progress: Progress | None,
) -> None:
    """Second pass: apply whole numbers in chunks, one transaction per chunk."""
    total = ingest.rows - sum(ingest.rejected.values())
    done = 0
    for chunk in _chunks(sorter.sorted_reports()):
        _commit_chunk(uow_factory, ingest, chunk, ranges, policy, now)
        done += len(chunk)
        if progress:
            progress("apply", done, total)


def _commit_chunk(
    uow_factory: UnitOfWorkFactory,
    ingest: Ingest,
    chunk: Sequence[CarrierReport],
    ranges: RangeTable,
    policy: FreezePolicy,
    now: datetime,
) -> None:
    """Apply one chunk and its counters atomically, retrying if a concurrent writer won."""
    for attempt in range(1, CONCURRENCY_ATTEMPTS + 1):
        try:
            with uow_factory() as uow:
                outcomes = _apply_chunk(
                    uow, ingest.carrier_id, ingest.id, chunk, ranges, policy, now
                )
                counts = _count(outcomes)
                updated = replace(
                    ingest,
                    accepted=ingest.accepted + counts.accepted,
                    duplicates=ingest.duplicates + counts.duplicates,
                    rejected=ingest.rejected + Counter(counts.rejected),
                )
                uow.ingests.add_rejections(
                    ingest.id,
                    [
                        _rejection(o.line, o.event_id, o.reason or "", o.detail or "", "")
                        for o in outcomes
                        if o.status is Status.REJECTED
                    ],
                )
                uow.ingests.update(updated)
                uow.commit()
        except ConcurrentUpdate:
            if attempt == CONCURRENCY_ATTEMPTS:
                raise
            continue
        ingest.accepted, ingest.duplicates = updated.accepted, updated.duplicates
        ingest.rejected = updated.rejected
        return


def _chunks(reports: Iterator[CarrierReport]) -> Iterator[list[CarrierReport]]:
    chunk: list[CarrierReport] = []
    for report in reports:
        if len(chunk) >= CHUNK_ROWS and report.number.e164 != chunk[-1].number.e164:
            yield chunk
            chunk = []
        chunk.append(report)
    if chunk:
        yield chunk


def _apply_chunk(
    uow: UnitOfWork,
    carrier_id: str,
    ingest_id: str | None,
    reports: Sequence[CarrierReport],
    ranges: RangeTable,
    policy: FreezePolicy,
    now: datetime,
) -> list[Outcome]:
    numbers = uow.numbers.lock({report.number.e164 for report in reports})
    recorded = uow.numbers.recorded(carrier_id, {report.event_id for report in reports})
    with_overrides(uow, carrier_id, recorded)
    holds = release_records(uow, reports)
    outcomes = decide(
        carrier_id,
        reports,
        numbers,
        recorded,
        uow.carriers.ids(),
        policy,
        holds,
        now,
        ranges=ranges,
    )
    uow.ranges.add_refusals(_range_refusals(carrier_id, ingest_id, outcomes, now))
    accepted = [outcome for outcome in outcomes if outcome.status is Status.ACCEPTED]
    changed = {outcome.report.number.e164 for outcome in accepted if outcome.report}
    uow.numbers.record(carrier_id, ingest_id, accepted, [numbers[e164] for e164 in changed], now)
    first = append_accepted(uow, carrier_id, accepted, now)
    logged = [outcome.logged(first + position) for position, outcome in enumerate(accepted)]
    uow.signals.add(_signals(logged, now))
    restored = [o.event for o in accepted if isinstance(o.event, NumberRestored)]
    if restored:
        cancel_on_restore(uow, restored, now)
    record_overrides(uow, carrier_id, accepted, now)
    return logged + [outcome for outcome in outcomes if outcome.status is not Status.ACCEPTED]


def _range_refusals(
    carrier_id: str, ingest_id: str | None, outcomes: Iterable[Outcome], now: datetime
) -> list[RangeRefusal]:
    """What the regulator keeps of each `outside_range` refusal (reports parsed, so whole)."""
    return [
        RangeRefusal(
            carrier_id,
            report.number.e164,
            report.kind.value,
            report.event_id,
            report.occurred_at,
            now,
            ingest_id,
            report.line,
        )
        for outcome in outcomes
        if outcome.reason is Reason.OUTSIDE_RANGE and (report := outcome.report) is not None
    ]


def _signals(logged: Iterable[Outcome], now: datetime) -> list[Signal]:
    """The outbox entries for accepted reports, in the same transaction as the reports.

    `txn` names the report's audit-log entry, so a platform can ask for its receipt.
    """
    signals = []
    for outcome in logged:
        if outcome.event is None:
            continue
        signal = signal_for(outcome.event, f"log:{outcome.log_index}")
        if signal is not None:
            signals.append(replace(signal, created_at=now))
    return signals


@dataclass(slots=True)
class _Counts:
    accepted: int
    duplicates: int
    rejected: dict[str, int]


def _count(outcomes: Iterable[Outcome]) -> _Counts:
    counts = _Counts(0, 0, {})
    for outcome in outcomes:
        if outcome.status is Status.ACCEPTED:
            counts.accepted += 1
        elif outcome.status is Status.DUPLICATE:
            counts.duplicates += 1
        else:
            reason = str(outcome.reason)
            counts.rejected[reason] = counts.rejected.get(reason, 0) + 1
    return counts
