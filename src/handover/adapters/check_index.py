"""The reassigned-number check's in-memory index: numpy arrays built from the store.

Each tracked number takes 27 bytes: its E.164 digits as a `uint64` key (one sorted array,
searched with `np.searchsorted`), four `uint32` timestamps (tenure start, last
disconnection, port, reassignment) in seconds since 1979-12-31T23:59:59 UTC so that 0
means "none" (the domain refuses events before 1980, and `uint32` reaches 2116), the state
as `uint8` and the holding carrier as a `uint16` code.

The index is built from the `numbers` table in one read snapshot (PostgreSQL: a binary
`COPY (SELECT ...) TO STDOUT` parsed straight into numpy; SQLite: a plain cursor), then
kept current by `refresh()`: it reads the events past the highest sequence it has seen,
plus the sequence numbers it has not seen below that mark (a transaction can commit a lower
sequence after a higher one; such holes are re-read for `hole_grace` seconds), reloads
those numbers' rows and lays them over the base arrays in a small sorted delta, which is
merged into the base when it grows. Readers never lock: each question reads one immutable
snapshot, and `refresh()` swaps in a new one. `start(interval)` runs `refresh()` every
`interval` seconds in a thread (HANDOVER_CHECK_REFRESH_SECONDS, 0.5 by default), so an
event accepted by any process is answered within a second.

Answers equal `domain.check.answer` on the facts `domain.check.facts_of` derives from the
same rows, field by field (`tests/integration/test_check_index.py` proves it against
`services.check.StoreIndex`); `answer_batch` computes them for whole arrays at once.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Engine

from handover.domain.check import (
    RECENT_PORT,
    CheckAnswer,
    FutureDate,
    NumberFacts,
    Reason,
    Rnd,
    Verdict,
    answer,
    seconds,
)
from handover.domain.lifecycle import State
from handover.domain.numbers import parse_number
from handover.domain.rejections import Rejected
from handover.services.check import CheckResult, InvalidQuestion, check, parse_since

log = logging.getLogger(__name__)

#: Stored timestamps count seconds from here: 1980-01-01T00:00:00Z is 1, 0 is "none".
BASE = int(datetime(1980, 1, 1, tzinfo=UTC).timestamp()) - 1
_MAX_STORED = 2**32 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RECENT_PORT = int(RECENT_PORT.total_seconds())
_NO_COVERAGE = np.iinfo(np.int64).min

#: Codes of the answer arrays: state 0 = none, else 1 + its index in `STATES`; the rest
#: index their tuples; reason `r` is bit `REASONS.index(r)` (ascending bits = domain order).
STATES: tuple[State, ...] = tuple(State)
RNDS: tuple[Rnd, ...] = tuple(Rnd)
VERDICTS: tuple[Verdict, ...] = tuple(Verdict)
REASONS: tuple[Reason, ...] = tuple(Reason)
_STATE = {state: code for code, state in enumerate(STATES, 1)}
_RND = {rnd: code for code, rnd in enumerate(RNDS)}
_VERDICT = {verdict: code for code, verdict in enumerate(VERDICTS)}
_BIT = {reason: 1 << i for i, reason in enumerate(REASONS)}
_REASON_TUPLES: tuple[tuple[Reason, ...], ...] = tuple(
    tuple(reason for reason in REASONS if mask & _BIT[reason]) for mask in range(1 << len(REASONS))
)
_BOOL: tuple[bool | None, ...] = (False, True, None)  # index by int8 value (-1 -> None)
_STATE_OBJECTS: tuple[State | None, ...] = (None, *STATES)

#: Tunables: hole re-reading window, events read per query, the delta's merge threshold.
HOLE_GRACE_SECONDS = 120.0
HOLE_SCAN = 100_000
MAX_HOLES = 100_000
EVENT_PAGE = 200_000
MERGE_MIN = 65_536
MERGE_FRACTION = 64
_IN_BATCH = 5_000


# -- keys and dates ------------------------------------------------------------------------


def e164_key(e164: str) -> int | None:
    """The digits of a canonical E.164 string (`+` and 2..15 ASCII digits) as an integer."""
    if (
        3 <= len(e164) <= 16
        and e164[0] == "+"
        and e164[1] != "0"
        and e164.isascii()
        and e164[1:].isdigit()
    ):
        return int(e164[1:])
    return None


def key_e164(key: int) -> str:
    return f"+{key}"


def parse_keys(numbers: Sequence[str]) -> NDArray[np.uint64]:
    """Keys of canonical E.164 strings; 0 (never a key) where a string is not canonical."""
    return np.array(
        [
            int(text[1:])
            if isinstance(text, str)
            and 3 <= len(text) <= 16
            and text[0] == "+"
            and text[1] != "0"
            and text.isascii()
            and text[1:].isdigit()
            else 0
            for text in numbers
        ],
        dtype=np.uint64,
    )


_PLAIN_DATE = re.compile(
    r"(?!0000)[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"(?:T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z?)?",
    re.ASCII,
)


def parse_since_seconds(
    values: Sequence[str | date | datetime],
) -> tuple[NDArray[np.int64], dict[int, datetime], dict[int, InvalidQuestion]]:
    """Whole seconds of each `since`, exactly as `services.check.parse_since` reads it.

    Plain dates and `YYYY-MM-DDTHH:MM:SS[Z]` are converted by numpy in one go; anything
    else goes through `parse_since`. Returns the seconds, the moments parsed one by one
    (index -> datetime) and the refused ones (index -> InvalidQuestion).
    """
    out = np.zeros(len(values), dtype=np.int64)
    slow: dict[int, datetime] = {}
    bad: dict[int, InvalidQuestion] = {}
    fast_index: list[int] = []
    fast_text: list[str] = []
    others: list[int] = []
    match = _PLAIN_DATE.fullmatch
    for i, value in enumerate(values):
        if isinstance(value, str) and match(value):
            fast_index.append(i)
            fast_text.append(value[:-1] if value[-1] == "Z" else value)
        else:
            others.append(i)
    one_by_one: Sequence[int] = others
    if fast_text:
        try:
            parsed = np.array(fast_text, dtype="datetime64[s]").astype(np.int64)
            out[fast_index] = parsed
        except ValueError:  # e.g. 2025-02-30: let parse_since say so, one by one
            one_by_one = range(len(values))
    for i in one_by_one:
        value = values[i]
        try:
            moment = parse_since(value)
        except InvalidQuestion as exc:
            bad[i] = exc
            continue
        slow[i] = moment
        out[i] = seconds(moment)
    return out, slow, bad


def moment_of(second: int) -> datetime:
    """The UTC datetime of whole epoch seconds (any year datetime can hold)."""
    return _EPOCH + timedelta(seconds=int(second))


def _stored(epoch: NDArray[np.int64]) -> NDArray[np.uint32]:
    """Epoch seconds (0 = none) to the stored uint32 form; refuses what does not fit."""
    present = epoch != 0
    shifted = epoch - BASE
    if np.any(present & ((shifted < 1) | (shifted > _MAX_STORED))):
        raise ValueError("a number has a timestamp before 1980 or after 2116")
    return np.where(present, shifted, 0).astype(np.uint32)


def _epoch(stored: NDArray[np.uint32]) -> NDArray[np.int64]:
    wide = stored.astype(np.int64)
    return np.where(wide != 0, wide + BASE, 0)


# -- the arrays ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Block:
    """Numbers sorted by key, one array per fact."""

    keys: NDArray[np.uint64]
    tenure: NDArray[np.uint32]
    disconnected: NDArray[np.uint32]
    ported: NDArray[np.uint32]
    reassigned: NDArray[np.uint32]
    state: NDArray[np.uint8]
    carrier: NDArray[np.uint16]

    FACTS = ("tenure", "disconnected", "ported", "reassigned", "state", "carrier")

    @classmethod
    def empty(cls) -> _Block:
        stamp = np.zeros(0, np.uint32)
        return cls(np.zeros(0, np.uint64), stamp, stamp, stamp, stamp, np.zeros(0, np.uint8),
                   np.zeros(0, np.uint16))  # fmt: skip

    @classmethod
    def from_rows(cls, rows: NDArray[np.int64]) -> _Block:
        """Rows of `_ROW_COLUMNS` (0 for NULL), derived as `domain.check.facts_of` does."""
        if len(rows) == 0:
            return cls.empty()
        key, state, carrier, tenure, cancelled, disconnected, ported, reassigned = rows.T
        released = state == _STATE[State.RELEASED]
        frozen = state == _STATE[State.FROZEN]
        order = np.argsort(key, kind="stable")
        return cls(
            key.astype(np.uint64)[order],
            _stored(np.where(released, 0, tenure))[order],
            _stored(np.where(frozen, cancelled, disconnected))[order],
            _stored(ported)[order],
            _stored(reassigned)[order],
            state.astype(np.uint8)[order],
            carrier.astype(np.uint16)[order],
        )

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def nbytes(self) -> int:
        return int(self.keys.nbytes) + sum(int(getattr(self, n).nbytes) for n in self.FACTS)

    def take(self, index: NDArray[Any]) -> _Block:
        return _Block(self.keys[index], *(getattr(self, n)[index] for n in self.FACTS))

    def find(self, keys: NDArray[np.uint64]) -> tuple[NDArray[np.bool_], NDArray[np.intp]]:
        """Which keys are here, and where (a valid position even where absent)."""
        if len(self.keys) == 0:
            return np.zeros(len(keys), np.bool_), np.zeros(len(keys), np.intp)
        pos = np.searchsorted(self.keys, keys)
        np.minimum(pos, len(self.keys) - 1, out=pos)
        return self.keys[pos] == keys, pos

    def overlay(self, newer: _Block) -> _Block:
        """This block with `newer`'s rows added or replacing its own (both sorted)."""
        if len(self) == 0:
            return newer
        kept = self.take(~np.isin(self.keys, newer.keys))
        merged = _Block(
            np.concatenate([kept.keys, newer.keys]),
            *(np.concatenate([getattr(kept, n), getattr(newer, n)]) for n in self.FACTS),
        )
        return merged.take(np.argsort(merged.keys, kind="stable"))

    def merge(self, delta: _Block) -> _Block:
        """A new block: this one updated and extended by `delta`, in O(n), keys sorted."""
        if len(delta) == 0:
            return self
        found, pos = self.find(delta.keys)
        insert_at = np.searchsorted(self.keys, delta.keys[~found])
        columns = []
        for name in ("keys", *self.FACTS):
            column = getattr(self, name).copy()
            incoming = getattr(delta, name)
            column[pos[found]] = incoming[found]
            columns.append(np.insert(column, insert_at, incoming[~found]))
        return _Block(*columns)


@dataclass(frozen=True, slots=True)
class _Snapshot:
    main: _Block
    delta: _Block
    carriers: tuple[str, ...]  # by code; code 0 is no carrier
    coverage: NDArray[np.int64]  # by code; _NO_COVERAGE when unknown
    coverage_by_id: dict[str, int]
    seq: int
    tracked: int


@dataclass(frozen=True, slots=True)
class BatchAnswers:
    """`domain.check.answer` for arrays of questions, one array per answer field.

    `future` marks questions whose date is after now (the domain raises `FutureDate`;
    their other fields mean nothing). `state` is 0 (none) or 1 + index in `STATES`;
    `recycled`/`disconnected` are 1, 0 or -1 (None); `rnd`, `verdict` index `RNDS`,
    `VERDICTS`; `reasons` is a bitmask over `REASONS`; times are epoch seconds, 0 = none.
    """

    found: NDArray[np.bool_]
    future: NDArray[np.bool_]
    state: NDArray[np.uint8]
    recycled: NDArray[np.int8]
    disconnected: NDArray[np.int8]
    rnd: NDArray[np.uint8]
    verdict: NDArray[np.uint8]
    reasons: NDArray[np.uint8]
    last_disconnected: NDArray[np.int64]
    reassigned_at: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.found)

    def answers(self) -> list[CheckAnswer | None]:
        """Every answer as the domain's object; None where the date is in the future."""
        columns = zip(
            self.future.tolist(),
            self.state.tolist(),
            self.recycled.tolist(),
            self.disconnected.tolist(),
            self.rnd.tolist(),
            self.verdict.tolist(),
            self.reasons.tolist(),
            self.last_disconnected.tolist(),
            self.reassigned_at.tolist(),
            strict=True,
        )
        states, flags, rnds, verdicts, reasons = (
            _STATE_OBJECTS,
            _BOOL,
            RNDS,
            VERDICTS,
            _REASON_TUPLES,
        )
        return [
            None
            if future
            else CheckAnswer(
                states[state],
                flags[recycled],
                flags[disconnected],
                rnds[rnd],
                verdicts[verdict],
                reasons[mask],
                last or None,
                reassigned or None,
            )
            for future, state, recycled, disconnected, rnd, verdict, mask, last, reassigned in (
                columns
            )
        ]

    def answer(self, i: int) -> CheckAnswer:
        """The domain's answer object for question `i`; raises `FutureDate` like it."""
        if self.future[i]:
            raise FutureDate("the date is in the future")
        state = int(self.state[i])
        last, reassigned = int(self.last_disconnected[i]), int(self.reassigned_at[i])
        return CheckAnswer(
            STATES[state - 1] if state else None,
            _BOOL[self.recycled[i]],
            _BOOL[self.disconnected[i]],
            RNDS[self.rnd[i]],
            VERDICTS[self.verdict[i]],
            _REASON_TUPLES[self.reasons[i]],
            last or None,
            reassigned or None,
        )


@dataclass(frozen=True, slots=True)
class BatchResults:
    """Questions parsed and answered (`NumpyCheckIndex.resolve`): what `check_many` turns
    into `CheckResult`s, kept as arrays for writers that need no per-answer objects.

    `problems` holds each refused question's `InvalidQuestion` (a bad number, else a bad
    date, else a future date), by position; the other positions are answered by `answers`
    about `e164s.get(i)` (when the text was not canonical E.164 or not in the index) or the
    question's own text, at `since` (epoch seconds; `slow` holds the moments parsed one by
    one), as of `data_version`.
    """

    answers: BatchAnswers
    since: NDArray[np.int64]
    slow: dict[int, datetime]
    e164s: dict[int, str]
    problems: dict[int, InvalidQuestion]
    data_version: int


# -- reading the store ---------------------------------------------------------------------

_ROW_COLUMNS = 8  # key, state, carrier, tenure_start, cancelled, disconnected, ported, reassigned
_TIMES = (
    "tenure_start",
    "cancelled_at",
    "disconnected_at",
    "ported_at",
    "reassigned_at",
)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _numbers_select(postgres: bool, codes: dict[str, int]) -> str:
    """The numbers table as integer rows (`_ROW_COLUMNS`), whole seconds, 0 for NULL."""
    states = " ".join(f"WHEN {_quote(s.value)} THEN {code}" for s, code in _STATE.items())
    carriers = " ".join(f"WHEN {_quote(c)} THEN {code}" for c, code in codes.items())
    carrier = f"CASE carrier_id {carriers} ELSE 0 END" if carriers else "0"
    if postgres:
        times = [f"COALESCE(floor(extract(epoch FROM {name}))::int8, 0)" for name in _TIMES]
        head = [
            "substr(e164, 2)::int8",
            f"(CASE state {states} ELSE 0 END)::int8",
            f"({carrier})::int8",
        ]
    else:
        # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff'; strftime would round the fraction.
        times = [
            f"COALESCE(CAST(strftime('%s', substr({n}, 1, 19)) AS INTEGER), 0)" for n in _TIMES
        ]
        head = [
            "CAST(substr(e164, 2) AS INTEGER)",
            f"CASE state {states} ELSE 0 END",
            carrier,
        ]
    return f"SELECT {', '.join(head + times)} FROM numbers"


_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_COPY_ROW = np.dtype(
    [("n", ">i2")]
    + [item for i in range(_ROW_COLUMNS) for item in ((f"l{i}", ">i4"), (f"v{i}", ">i8"))]
)


def _copy_rows(cursor: Any, select: str) -> NDArray[np.int64]:
    """`COPY (select) TO STDOUT` in binary, every column a non-null int8, into an array."""
    parts: list[NDArray[np.int64]] = []
    pending = bytearray()
    header_done = False
    size = _COPY_ROW.itemsize

    def parse(final: bool) -> None:
        nonlocal pending
        whole = len(pending) // size * size
        if final and bytes(pending[whole:]) not in (b"\xff\xff", b""):
            raise ValueError("unexpected end of the COPY stream")
        if whole:
            records = np.frombuffer(bytes(pending[:whole]), dtype=_COPY_ROW)
            if np.any(records["n"] != _ROW_COLUMNS) or np.any(
                np.stack([records[f"l{i}"] for i in range(_ROW_COLUMNS)]) != 8
            ):
                raise ValueError("unexpected COPY row layout")
            parts.append(
                np.stack([records[f"v{i}"].astype(np.int64) for i in range(_ROW_COLUMNS)], axis=1)
            )
            del pending[:whole]

    with cursor.copy(f"COPY ({select}) TO STDOUT (FORMAT BINARY)") as copy:
        for chunk in copy:
            pending += chunk
            if not header_done and len(pending) >= 19:
                if not pending.startswith(_COPY_SIGNATURE):
                    raise ValueError("not a binary COPY stream")
                extension = int.from_bytes(pending[15:19], "big")
                if len(pending) < 19 + extension:
                    continue
                del pending[: 19 + extension]
                header_done = True
            if header_done and len(pending) >= 1 << 23:
                parse(final=False)
    parse(final=True)
    if not parts:
        return np.zeros((0, _ROW_COLUMNS), np.int64)
    return np.concatenate(parts)


def _cursor_rows(cursor: Any, select: str, params: Sequence[Any] = ()) -> NDArray[np.int64]:
    cursor.execute(select, params)
    parts = []
    while batch := cursor.fetchmany(65_536):
        parts.append(np.array(batch, dtype=np.int64))
    if not parts:
        return np.zeros((0, _ROW_COLUMNS), np.int64)
    return np.concatenate(parts)


@contextmanager
def _read_snapshot(engine: Engine) -> Iterator[Any]:
    """A DB-API cursor in one read-only snapshot that never blocks writers.

    SQLite: a deferred `BEGIN` (the engine's own transactions take the write lock).
    PostgreSQL: REPEATABLE READ, so the events and the numbers read agree.
    """
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "postgresql":
            raw.rollback()
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        else:
            cursor.execute("BEGIN")
        try:
            yield cursor
        finally:
            cursor.close()
    finally:
        try:
            raw.rollback()
        finally:
            raw.close()


# -- the index -----------------------------------------------------------------------------


class NumpyCheckIndex:
    """A `services.check.CheckIndex` answering from numpy arrays; see the module doc."""

    def __init__(
        self,
        engine: Engine,
        *,
        merge_min: int = MERGE_MIN,
        hole_grace: float = HOLE_GRACE_SECONDS,
    ) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self.merge_min = merge_min
        self.hole_grace = hole_grace
        self._lock = threading.Lock()
        self._codes: dict[str, int] = {}
        self._holes = np.zeros(0, np.int64)
        self._hole_times = np.zeros(0, np.float64)
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None
        self.build_seconds = 0.0
        self._snap = self._build()

    # -- the CheckIndex protocol -----------------------------------------------------------

    def facts(self, e164: str) -> NumberFacts | None:
        key = e164_key(e164)
        if key is None:
            return None
        snap = self._snap
        keys = np.array([key], dtype=np.uint64)
        for block in (snap.delta, snap.main):
            hit, pos = block.find(keys)
            if hit[0]:
                i = int(pos[0])
                state = int(block.state[i])
                tenure, disconnected, ported, reassigned = (
                    int(x) + BASE if int(x) else None
                    for x in (
                        block.tenure[i],
                        block.disconnected[i],
                        block.ported[i],
                        block.reassigned[i],
                    )
                )
                return NumberFacts(
                    STATES[state - 1],
                    snap.carriers[int(block.carrier[i])],
                    tenure,
                    disconnected,
                    ported,
                    reassigned,
                )
        return None

    def coverage_start(self, carrier_id: str) -> int | None:
        return self._snap.coverage_by_id.get(carrier_id)

    @property
    def data_version(self) -> int:
        return self._snap.seq

    # -- size ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._snap.tracked

    @property
    def nbytes(self) -> int:
        snap = self._snap
        return snap.main.nbytes + snap.delta.nbytes

    # -- batch answers ---------------------------------------------------------------------

    def answer_batch(
        self,
        keys: NDArray[np.uint64],
        since: NDArray[np.int64],
        now: int,
    ) -> BatchAnswers:
        """`domain.check.answer` for each (key, since) at `now` (epoch seconds)."""
        snap = self._snap
        keys = np.asarray(keys, dtype=np.uint64)
        since = np.asarray(since, dtype=np.int64)
        found, pos = snap.main.find(keys)
        if len(snap.main):
            columns = {name: getattr(snap.main, name)[pos] for name in _Block.FACTS}
        else:
            columns = {
                name: np.zeros(len(keys), getattr(snap.main, name).dtype) for name in _Block.FACTS
            }
        if len(snap.delta):
            in_delta, dpos = snap.delta.find(keys)
            if in_delta.any():
                where = dpos[in_delta]
                for name in _Block.FACTS:
                    columns[name][in_delta] = getattr(snap.delta, name)[where]
                found |= in_delta
        missing = ~found
        state = columns["state"]
        state[missing] = 0
        tenure = _epoch(columns["tenure"])
        last = _epoch(columns["disconnected"])
        ported = _epoch(columns["ported"])
        reassigned = _epoch(columns["reassigned"])
        for array in (tenure, last, ported, reassigned):
            array[missing] = 0

        before_coverage = found & (since < snap.coverage[columns["carrier"]])
        no_data = missing | before_coverage
        no_tenure = tenure == 0
        recycled = no_tenure | (since < tenure)
        disconnected = (last != 0) & (last >= since)
        recent_port = (ported != 0) & (now - ported <= _RECENT_PORT)
        reasons = np.where(
            recycled, np.where(no_tenure, _BIT[Reason.NO_SUBSCRIBER], _BIT[Reason.RECYCLED]), 0
        ).astype(np.uint8)
        reasons |= disconnected.astype(np.uint8) * np.uint8(_BIT[Reason.DISCONNECTED])
        reasons |= (state == _STATE[State.FROZEN]).astype(np.uint8) * np.uint8(_BIT[Reason.FROZEN])
        reasons |= (state == _STATE[State.SUSPENDED]).astype(np.uint8) * np.uint8(
            _BIT[Reason.SUSPENDED]
        )
        reasons |= recent_port.astype(np.uint8) * np.uint8(_BIT[Reason.PORTED_RECENTLY])
        reasons[before_coverage] = _BIT[Reason.BEFORE_COVERAGE]
        reasons[missing] = _BIT[Reason.NEVER_REPORTED]

        verdict = np.where(
            recycled,
            _VERDICT[Verdict.DENY],
            np.where(reasons != 0, _VERDICT[Verdict.STEP_UP], _VERDICT[Verdict.ALLOW]),
        ).astype(np.uint8)
        verdict[no_data] = _VERDICT[Verdict.STEP_UP]
        rnd = np.where(disconnected, _RND[Rnd.YES], _RND[Rnd.NO]).astype(np.uint8)
        rnd[no_data] = _RND[Rnd.NO_DATA]
        recycled_out = recycled.astype(np.int8)
        recycled_out[no_data] = -1
        disconnected_out = disconnected.astype(np.int8)
        disconnected_out[no_data] = -1
        return BatchAnswers(
            found=found,
            future=since > now,
            state=state,
            recycled=recycled_out,
            disconnected=disconnected_out,
            rnd=rnd,
            verdict=verdict,
            reasons=reasons,
            last_disconnected=last,
            reassigned_at=reassigned,
        )

    def resolve(
        self,
        numbers: Sequence[str],
        since_values: Sequence[str | date | datetime],
        now: datetime,
    ) -> BatchResults:
        """Parse and answer questions as `services.check.check` would, without per-answer
        objects: canonical E.164 strings are looked up directly (a number the index holds is
        valid); the others, and numbers not found, are parsed with `phonenumbers`."""
        keys = parse_keys(numbers)
        since, slow, bad_dates = parse_since_seconds(since_values)
        now_s = seconds(now)
        result = self.answer_batch(keys, since, now_s)
        e164s: dict[int, str] = {}
        problems: dict[int, InvalidQuestion] = {}
        reparsed: list[int] = []
        for i in np.flatnonzero(~result.found).tolist():
            try:
                e164 = parse_number(numbers[i]).e164
            except Rejected as exc:
                problems[i] = InvalidQuestion("invalid_number", exc.detail)
                continue
            e164s[i] = e164
            key = e164_key(e164) or 0
            if key != keys[i]:
                keys[i] = key
                reparsed.append(i)
        if reparsed:
            again = self.answer_batch(keys[reparsed], since[reparsed], now_s)
            for name in BatchAnswers.__dataclass_fields__:
                getattr(result, name)[reparsed] = getattr(again, name)
        version = self._snap.seq
        for i, problem in bad_dates.items():
            problems.setdefault(i, problem)
        if result.future.any():
            for i in np.flatnonzero(result.future).tolist():
                problems.setdefault(i, InvalidQuestion("future_date", "the date is in the future"))
        return BatchResults(result, since, slow, e164s, problems, version)

    def check_one(self, number: str, since: str | date | datetime, now: datetime) -> CheckResult:
        """`services.check.check` over this index, skipping `phonenumbers` for a canonical
        E.164 number the index holds (the store holds only numbers that parsed to exactly
        that text); any other number is parsed as `check` does."""
        facts = self.facts(number)
        if facts is None:
            return check(self, number, since, now)
        moment = parse_since(since)
        coverage = self.coverage_start(facts.carrier)
        try:
            result = answer(facts, seconds(moment), coverage, seconds(now))
        except FutureDate:
            raise InvalidQuestion("future_date", "the date is in the future") from None
        return CheckResult(number, moment, result, self.data_version)

    def check_many(
        self,
        questions: Sequence[tuple[str, str | date | datetime]],
        now: datetime | None = None,
    ) -> list[CheckResult | InvalidQuestion]:
        """`services.check.check_many` over this index, vectorised; the same results."""
        now = now or datetime.now(UTC)
        numbers = [number for number, _ in questions]
        resolved = self.resolve(numbers, [value for _, value in questions], now)
        problems, e164s, slow = resolved.problems, resolved.e164s, resolved.slow
        version = resolved.data_version
        answers = resolved.answers.answers()
        moments: dict[int, datetime] = {}
        out: list[CheckResult | InvalidQuestion] = []
        for i, (got, second) in enumerate(zip(answers, resolved.since.tolist(), strict=True)):
            problem = problems.get(i)
            if problem is not None:
                out.append(problem)
            else:
                assert got is not None
                moment = slow.get(i) or moments.get(second)
                if moment is None:
                    moment = moments[second] = moment_of(second)
                out.append(CheckResult(e164s.get(i) or numbers[i], moment, got, version))
        return out

    # -- building and refreshing -----------------------------------------------------------

    def _carriers(self, cursor: Any) -> tuple[tuple[str, ...], NDArray[np.int64], dict[str, int]]:
        cursor.execute("SELECT id, created_at, coverage_start FROM carriers")
        coverage: dict[str, int] = {}
        for carrier_id, created_at, coverage_start in cursor.fetchall():
            self._codes.setdefault(carrier_id, len(self._codes) + 1)
            moment = coverage_start or created_at
            coverage[carrier_id] = seconds(_as_utc(moment))
        if len(self._codes) >= 2**16:
            raise ValueError("more carriers than a uint16 code holds")
        names = [""] * (len(self._codes) + 1)
        by_code = np.full(len(names), _NO_COVERAGE, np.int64)
        for carrier_id, code in self._codes.items():
            names[code] = carrier_id
            if carrier_id in coverage:
                by_code[code] = coverage[carrier_id]
        return tuple(names), by_code, coverage

    def _build(self) -> _Snapshot:
        started = time.perf_counter()
        with self._lock, _read_snapshot(self.engine) as cursor:
            carriers, coverage, coverage_by_id = self._carriers(cursor)
            seq = self._max_seq(cursor)
            if seq:
                cursor.execute(
                    self._sql("SELECT seq FROM number_events WHERE seq > ? ORDER BY seq"),
                    (seq - HOLE_SCAN,),
                )
                seen = np.array([row[0] for row in cursor.fetchall()], np.int64)
                self._add_holes(max(seq - HOLE_SCAN, 0), seen, seq)
            select = _numbers_select(self.postgres, self._codes)
            rows = _copy_rows(cursor, select) if self.postgres else _cursor_rows(cursor, select)
        main = _Block.from_rows(rows)
        del rows
        snap = _Snapshot(main, _Block.empty(), carriers, coverage, coverage_by_id, seq, len(main))
        self.build_seconds = time.perf_counter() - started
        return snap

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self.postgres else statement

    def _max_seq(self, cursor: Any) -> int:
        cursor.execute("SELECT max(seq) FROM number_events")
        return int(cursor.fetchone()[0] or 0)

    def _add_holes(self, after: int, seen: NDArray[np.int64], upto: int) -> None:
        """Sequence numbers in (after, upto] not in `seen`: maybe committed later."""
        if upto <= after:
            return
        missing = np.setdiff1d(np.arange(after + 1, upto + 1, dtype=np.int64), seen)
        if len(missing):
            self._holes = np.concatenate([self._holes, missing])
            self._hole_times = np.concatenate(
                [self._hole_times, np.full(len(missing), time.monotonic())]
            )
            if len(self._holes) > MAX_HOLES:
                log.warning("check index: %d sequence holes, forgetting the oldest", len(missing))
                self._holes = self._holes[-MAX_HOLES:]
                self._hole_times = self._hole_times[-MAX_HOLES:]

    def refresh(self) -> int:
        """Catch up with the store's events; returns how many numbers were reloaded."""
        with self._lock:
            old = self._snap
            with _read_snapshot(self.engine) as cursor:
                carriers, coverage, coverage_by_id = self._carriers(cursor)
                changed: set[str] = set()
                seq = old.seq
                while True:
                    cursor.execute(
                        self._sql(
                            "SELECT seq, e164 FROM number_events WHERE seq > ? "
                            f"ORDER BY seq LIMIT {EVENT_PAGE}"
                        ),
                        (seq,),
                    )
                    page = cursor.fetchall()
                    if not page:
                        break
                    seqs = np.array([row[0] for row in page], np.int64)
                    changed.update(row[1] for row in page)
                    self._add_holes(seq, seqs, int(seqs[-1]))
                    seq = int(seqs[-1])
                    if len(page) < EVENT_PAGE:
                        break
                changed |= self._filled_holes(cursor)
                rows = self._reload(cursor, sorted(changed))
            fresh = _Block.from_rows(rows)
            delta = old.delta.overlay(fresh) if len(fresh) else old.delta
            main = old.main
            if len(delta) > max(self.merge_min, len(main) // MERGE_FRACTION):
                main, delta = main.merge(delta), _Block.empty()
            if delta is old.delta:
                tracked = old.tracked
            else:
                tracked = len(main) + int(np.count_nonzero(~main.find(delta.keys)[0]))
            self._snap = _Snapshot(main, delta, carriers, coverage, coverage_by_id, seq, tracked)
            return len(fresh)

    def _filled_holes(self, cursor: Any) -> set[str]:
        """Numbers of events committed late into seen sequence holes; expires old holes."""
        if len(self._holes) == 0:
            return set()
        fresh = self._hole_times > time.monotonic() - self.hole_grace
        self._holes, self._hole_times = self._holes[fresh], self._hole_times[fresh]
        found: set[str] = set()
        filled: list[int] = []
        holes = self._holes.tolist()
        for start in range(0, len(holes), _IN_BATCH):
            batch = holes[start : start + _IN_BATCH]
            if self.postgres:
                cursor.execute("SELECT seq, e164 FROM number_events WHERE seq = ANY(%s)", (batch,))
            else:
                marks = ", ".join("?" * len(batch))
                cursor.execute(f"SELECT seq, e164 FROM number_events WHERE seq IN ({marks})", batch)
            for seq, e164 in cursor.fetchall():
                filled.append(seq)
                found.add(e164)
        if filled:
            keep = ~np.isin(self._holes, np.array(filled, np.int64))
            self._holes, self._hole_times = self._holes[keep], self._hole_times[keep]
        return found

    def _reload(self, cursor: Any, e164s: list[str]) -> NDArray[np.int64]:
        select = _numbers_select(self.postgres, self._codes)
        parts = [np.zeros((0, _ROW_COLUMNS), np.int64)]
        for start in range(0, len(e164s), _IN_BATCH):
            batch = e164s[start : start + _IN_BATCH]
            if self.postgres:
                parts.append(_cursor_rows(cursor, f"{select} WHERE e164 = ANY(%s)", (batch,)))
            else:
                marks = ", ".join("?" * len(batch))
                parts.append(_cursor_rows(cursor, f"{select} WHERE e164 IN ({marks})", batch))
        return np.concatenate(parts)

    # -- keeping current in the background -------------------------------------------------

    def start(self, interval: float) -> NumpyCheckIndex:
        """Refresh every `interval` seconds in a daemon thread until `stop()`."""
        if self._thread is not None:
            return self
        stop = self._stop = threading.Event()

        def run() -> None:
            while not stop.wait(interval):
                try:
                    self.refresh()
                except Exception:  # keep answering from the last snapshot; retry
                    log.exception("check index refresh failed")

        self._thread = threading.Thread(target=run, name="check-index-refresh", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._stop is not None and self._thread is not None:
            self._stop.set()
            self._thread.join()
        self._stop = self._thread = None


def _as_utc(moment: Any) -> datetime:
    """A carriers row's time: a datetime (PostgreSQL) or SQLite's stored text."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    assert isinstance(moment, datetime)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
