"""Realistic carrier lifecycle files with planted errors, and the exact summary they give.

    .venv/bin/python bench/generate.py events.csv --rows 1000000 [--seed 1] [--prior prior.csv]

One carrier (`cm`, China Mobile) reports the lives of its numbers (+86 mobile numbers that
`phonenumbers` accepts): activation, suspension and resumption for arrears, cancellation,
restoration during the freeze, release once the 90-day freeze is over, re-activation by a
new subscriber (recycling) and ports to a second carrier (`cu`). Rows of all numbers are
interleaved in roughly time order, as a daily feed concatenated over almost three years.

Some numbers ("legacy") started before the main file's timeline; their earlier rows go to a
*prior* file, which must be ingested first (yesterday's feed). It makes two of the planted
faults possible: `out_of_order` (a late report dated before a number's last recorded event)
and duplicates of rows already stored. Every genuine row is accepted; the planted rows are
rejected with one known reason each (or are duplicates) and change nothing, so the summary
of each file is known exactly in advance: `generate()` returns it.

The generator is deterministic (seeded) and streams: rows go to month buckets on disk,
and each bucket is sorted and appended to the output, so memory stays bounded.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

HEADER = "event_id,number,event,occurred_at,subscriber,to_carrier"
CARRIER = "cm"
OTHER = "cu"
UNKNOWN = "ct"  # never registered
HOUR, DAY = 3_600, 86_400
FREEZE = 90 * DAY  # CN minimum freeze (domain/freeze_policy.py)
#: The main file covers [START, END); legacy numbers start in [LEGACY, START).
START = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())
END = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())
LEGACY = int(datetime(2021, 1, 1, tzinfo=UTC).timestamp())
#: China Mobile prefixes; every 8-digit suffix is a valid number (checked by the tests).
PREFIXES = ("134", "135", "136", "137", "138", "139", "150", "151", "152", "157", "158",
            "159", "182", "183", "184", "187", "188", "198")  # fmt: skip
#: Numbers from this prefix are never part of a genuine history (see `_never_reported`).
SPARE_PREFIX = "147"
#: The ranges the operator grants the two carriers (`handover carrier grant`): China
#: Mobile's blocks above, China Unicom's elsewhere, so no generated activation is refused.
RANGES: dict[str, tuple[str, ...]] = {
    "cm": tuple(f"+86{prefix}" for prefix in (*PREFIXES, SPARE_PREFIX)),
    "cu": ("+86130", "+86131", "+86132", "+86155", "+86156", "+86166", "+86185", "+86186"),
}
BUCKET = 30 * DAY
_BAD_NUMBERS = ("+86138123", "+8612345678901", "12345", "+86 000 0000 0000", "n/a", "")
_TZ8 = timedelta(hours=8)

#: Relative weights of the planted faults (each planted row gets exactly one).
FAULTS: dict[str, int] = {
    "duplicate": 14,  # an exact repeat of an earlier row (counted as a duplicate)
    "duplicate_event_id_conflict": 6,
    "invalid_number": 8,
    "invalid_date": 8,
    "unknown_event": 6,
    "missing_subscriber": 5,
    "malformed_row": 6,
    "illegal_transition": 12,
    "not_number_holder": 8,
    "freeze_not_over": 8,
    "out_of_order": 8,
    "subscriber_mismatch": 3,
    "future_date": 2,
    "unknown_carrier": 2,
    "missing_to_carrier": 2,
    "missing_event_id": 1,
    "invalid_encoding": 1,
}


@dataclass(slots=True)
class Event:
    at: int  # seconds since the epoch, UTC
    kind: str
    subscriber: str = ""
    to_carrier: str = ""
    #: The number's state and holder once this event is applied.
    state: str = ""
    holder: str = CARRIER


@dataclass(slots=True)
class Summary:
    accepted: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    rows: int = 0

    def as_dict(self) -> dict[str, object]:
        """The shape of `Ingest.summary()` (and of `handover ingest --json`)."""
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": dict(sorted((k, v) for k, v in self.rejected.items() if v)),
        }


@dataclass(slots=True)
class Generated:
    path: Path
    prior_path: Path
    expected: dict[str, object]
    prior_expected: dict[str, object]
    rows: int
    prior_rows: int
    numbers: int


class _SortedWriter:
    """Rows keyed by a time go to month buckets on disk; `finish` writes them in order."""

    def __init__(self, out: TextIO, workdir: Path, name: str) -> None:
        self.out = out
        self.dir = workdir
        self.name = name
        self.buckets: dict[int, TextIO] = {}
        self.seq = 0

    def add(self, key: int, line: str) -> None:
        index = max(0, (key - LEGACY) // BUCKET)
        bucket = self.buckets.get(index)
        if bucket is None:
            bucket = self.buckets[index] = open(  # noqa: SIM115 - closed in finish
                self.dir / f"{self.name}-{index:04d}",
                "w",
                encoding="utf-8",
                errors="surrogateescape",
                newline="\n",
            )
        self.seq += 1
        bucket.write(f"{key:011d}{self.seq:010d}{line}\n")

    def finish(self) -> None:
        for index in sorted(self.buckets):
            path = self.buckets[index].name
            self.buckets[index].close()
            with open(path, encoding="utf-8", errors="surrogateescape", newline="\n") as f:
                records = f.readlines()
            records.sort()
            self.out.writelines(record[21:] for record in records)
            Path(path).unlink()
        self.buckets.clear()


def _stamp(at: int, style: int) -> str:
    """Carriers write China time with an offset mostly, some UTC, some no offset (UTC)."""
    moment = datetime.fromtimestamp(at, UTC)
    if style < 7:
        return (moment + _TZ8).strftime("%Y-%m-%dT%H:%M:%S+08:00")
    if style < 9:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.strftime("%Y-%m-%d %H:%M:%S")


class _Generator:
    def __init__(self, seed: int, error_rate: float, legacy_share: float) -> None:
        self.rng = random.Random(seed)
        self.error_rate = error_rate
        self.legacy_share = legacy_share
        self.event_seq = 0
        self.subscriber_seq = 0
        self.spare_seq = 0
        self.faults = list(FAULTS)
        self.weights = list(FAULTS.values())

    # -- identities -------------------------------------------------------------------

    def number(self, index: int) -> str:
        """Distinct numbers in a scattered order: a bijection of the index mod 10^8."""
        prefix = PREFIXES[index % len(PREFIXES)]
        suffix = (index // len(PREFIXES) * 48_271 + 12_345_678) % 100_000_000
        return f"+86{prefix}{suffix:08d}"

    def _never_reported(self) -> str:
        self.spare_seq += 1
        return f"+86{SPARE_PREFIX}{(self.spare_seq * 7_919) % 100_000_000:08d}"

    def event_id(self) -> str:
        self.event_seq += 1
        return f"{CARRIER}-{self.event_seq:010d}"

    def subscriber(self) -> str:
        self.subscriber_seq += 1
        return f"s{(self.subscriber_seq * 2_654_435_761) % 2**32:08x}"

    # -- one number's genuine life ------------------------------------------------------

    def history(self, start: int) -> list[Event]:
        rng = self.rng
        sub = self.subscriber()
        events = [Event(start, "activated", sub, state="active")]
        state, at = "active", start
        while True:
            if state == "active":
                at += HOUR + int(rng.expovariate(1 / (240 * DAY)))
                roll = rng.random()
                kind = "suspended" if roll < 0.25 else "ported" if roll < 0.33 else "cancelled"
            elif state == "suspended":
                at += HOUR + int(rng.expovariate(1 / (20 * DAY)))
                kind = "resumed" if rng.random() < 0.75 else "cancelled"
            elif state == "frozen":
                if rng.random() < 0.15:
                    at += rng.randrange(HOUR, FREEZE - DAY)
                    kind = "restored"
                else:
                    at += FREEZE + rng.randrange(0, 60 * DAY)
                    kind = "released"
            else:  # released: back in the pool, recycled to a new subscriber
                at += HOUR + int(rng.expovariate(1 / (45 * DAY)))
                kind = "activated"
            if at >= END:
                return events
            event = Event(at, kind)
            if kind == "activated":
                sub = self.subscriber()
                event.subscriber = sub
            elif kind == "restored":
                event.subscriber = sub
            elif kind == "ported":
                event.to_carrier = OTHER
            state = {
                "suspended": "suspended",
                "resumed": "active",
                "cancelled": "frozen",
                "restored": "active",
                "released": "released",
                "activated": "active",
                "ported": "active",
            }[kind]
            event.state = state
            event.holder = OTHER if kind == "ported" else CARRIER
            events.append(event)
            if kind == "ported":
                return events  # the receiving carrier reports from here on

    # -- rows ---------------------------------------------------------------------------

    def row(self, event_id: str, number: str, kind: str, at: str, sub: str, to: str) -> str:
        return f"{event_id},{number},{kind},{at},{sub},{to}"

    def genuine_row(self, number: str, event: Event) -> str:
        rng = self.rng
        shown = number
        if rng.random() < 0.1:  # some rows in national format, read in the carrier's region
            national = number[3:]
            shown = (
                f"{national[:3]} {national[3:7]} {national[7:]}" if rng.random() < 0.5 else national
            )
        return self.row(
            self.event_id(),
            shown,
            event.kind,
            _stamp(event.at, rng.randrange(10)),
            event.subscriber,
            event.to_carrier,
        )

    def plant(
        self,
        fault: str,
        number: str,
        events: list[Event],
        rows: list[tuple[int, str]],
        prior: list[tuple[int, str]],
    ) -> tuple[int, str] | None:
        """One faulty row for this number (key, line), or None when it does not apply."""
        rng = self.rng
        main = [i for i, e in enumerate(events) if e.at >= START]
        if not main:
            return None
        some = events[rng.choice(main)]
        when = _stamp(some.at, rng.randrange(10))
        if fault == "duplicate":
            if prior and rng.random() < 0.3:
                key, line = rng.choice(prior)  # a re-sent row of yesterday's feed
                return max(START, key) + rng.randrange(HOUR, 3 * DAY), line
            key, line = rng.choice(rows)
            return key + rng.randrange(HOUR, 3 * DAY), line
        if fault == "duplicate_event_id_conflict":
            key, line = rng.choice(rows)
            fields = line.split(",")
            fields[4] = fields[4] + "x" if fields[4] else "s-other"
            return key + rng.randrange(HOUR, 3 * DAY), ",".join(fields)
        if fault == "invalid_number":
            bad = rng.choice((*_BAD_NUMBERS, number + "0", "+999" + number[3:]))
            return some.at, self.row(self.event_id(), bad, "suspended", when, "", "")
        if fault == "invalid_date":
            bad = rng.choice(["2025-02-30", "2025/03/01", "31.12.2025", "", "1979-12-31", "soon"])
            return some.at, self.row(self.event_id(), number, "suspended", bad, "", "")
        if fault == "unknown_event":
            kind = rng.choice(["teleported", "sim_swap", "deactivated", "paused"])
            return some.at, self.row(self.event_id(), number, kind, when, "", "")
        if fault == "missing_subscriber":
            kind = rng.choice(["activated", "restored"])
            return some.at, self.row(self.event_id(), number, kind, when, "", "")
        if fault == "missing_to_carrier":
            return some.at, self.row(self.event_id(), number, "ported", when, "", "")
        if fault == "missing_event_id":
            return some.at, self.row("", number, "suspended", when, "", "")
        if fault == "future_date":
            return some.at, self.row(self.event_id(), number, "suspended", "2099-01-01", "", "")
        if fault == "malformed_row":
            line = self.row(self.event_id(), number, "suspended", when, "", "")
            return some.at, rng.choice([line[: rng.randrange(5, 25)], line + ",extra"])
        if fault == "invalid_encoding":
            line = self.row(self.event_id(), number, "activated", when, "\udcff\udcfe", "")
            return some.at, line
        if fault == "unknown_carrier":
            return some.at, self.row(self.event_id(), number, "ported", when, "", UNKNOWN)
        if fault == "out_of_order":
            before = [e for e in events if e.at < START]
            if not before or before[-1].holder != CARRIER:
                return None
            at = (
                rng.randrange(before[0].at, before[-1].at)
                if len(before) > 1
                else before[0].at - DAY
            )
            kind = rng.choice(["suspended", "cancelled", "resumed"])
            late = _stamp(at, rng.randrange(10))
            return START + rng.randrange(0, 30 * DAY), self.row(
                self.event_id(), number, kind, late, "", ""
            )
        # Faults that depend on the state between two genuine events: dated strictly
        # between them (and in the main file), so neither out of order nor reordered.
        gaps = []
        for i, event in enumerate(events):
            until = events[i + 1].at if i + 1 < len(events) else END
            if until - event.at > 2 and max(event.at, START) < until - 1:
                gaps.append((i, max(event.at, START - 1), until))
        if fault == "illegal_transition":
            if rng.random() < 0.15:  # a number nobody ever activated
                spare = self._never_reported()
                return some.at, self.row(self.event_id(), spare, "suspended", when, "", "")
            choices = [(i, lo, hi) for i, lo, hi in gaps if events[i].holder == CARRIER]
            if not choices:
                return None
            i, lo, hi = rng.choice(choices)
            illegal = {
                "active": ["resumed", "released", "restored", "activated"],
                "suspended": ["suspended", "ported", "restored", "activated"],
                "frozen": ["suspended", "resumed", "ported", "activated", "cancelled"],
                "released": ["suspended", "cancelled", "released", "resumed"],
            }[events[i].state]
            kind = rng.choice(illegal)
            sub = self.subscriber() if kind in ("activated", "restored") else ""
            to = OTHER if kind == "ported" else ""
            at = rng.randrange(lo + 1, hi)
            return at, self.row(self.event_id(), number, kind, _stamp(at, 0), sub, to)
        if fault == "not_number_holder":
            choices = [(i, lo, hi) for i, lo, hi in gaps if events[i].holder != CARRIER]
            if not choices:
                return None
            _, lo, hi = choices[-1]
            at = rng.randrange(lo + 1, hi)
            kind = rng.choice(["suspended", "cancelled", "resumed", "activated"])
            sub = self.subscriber() if kind == "activated" else ""
            return at, self.row(self.event_id(), number, kind, _stamp(at, 0), sub, "")
        if fault in ("freeze_not_over", "subscriber_mismatch"):
            choices = [(i, lo, hi) for i, lo, hi in gaps if events[i].state == "frozen"]
            if not choices:
                return None
            i, lo, hi = rng.choice(choices)
            hi = min(hi, events[i].at + FREEZE)  # before the freeze is over
            if hi - lo < 2:
                return None
            at = rng.randrange(lo + 1, hi)
            tenure = next(e for e in reversed(events[: i + 1]) if e.kind == "activated")
            if fault == "freeze_not_over":
                return at, self.row(self.event_id(), number, "released", _stamp(at, 0), "", "")
            other = tenure.subscriber + "x"
            return at, self.row(self.event_id(), number, "restored", _stamp(at, 0), other, "")
        raise AssertionError(fault)

    def generate(
        self, out: TextIO, prior_out: TextIO, rows: int, workdir: Path
    ) -> tuple[Summary, Summary, int]:
        rng = self.rng
        main, prior = (
            _SortedWriter(out, workdir, "main"),
            _SortedWriter(prior_out, workdir, "prior"),
        )
        expected, prior_expected = Summary(), Summary()
        index = 0
        while expected.rows < rows:
            number = self.number(index)
            index += 1
            legacy = rng.random() < self.legacy_share
            first = rng.randrange(LEGACY, START) if legacy else rng.randrange(START, END - DAY)
            events = self.history(first)
            before: list[tuple[int, str]] = []
            after: list[tuple[int, str]] = []
            for event in events:
                line = self.genuine_row(number, event)
                (before if event.at < START else after).append(
                    (event.at + rng.randrange(0, 6 * HOUR), line)
                )
            planted: list[tuple[int, str]] = []
            fault = ""
            if after and rng.random() < self.error_rate * len(after) * 1.15:
                for attempt in range(4):  # a fault that does not fit this life: another
                    if attempt == 0 and before and rng.random() < 0.5:
                        fault = "out_of_order"  # only numbers with a prior life can have it
                    elif attempt == 0 and events[-1].kind == "ported" and rng.random() < 0.3:
                        fault = "not_number_holder"  # only numbers ported away can have it
                    else:
                        fault = rng.choices(self.faults, self.weights)[0]
                    row = self.plant(fault, number, events, after, before)
                    if row is not None:
                        planted.append(row)
                        break
            room = rows - expected.rows
            if len(after) + len(planted) > room:  # the last number: a prefix of its life
                after, planted = after[:room], []
            if planted and fault == "duplicate":
                expected.duplicates += 1
            elif planted:
                expected.rejected[fault] += 1
            for key, line in before:
                prior.add(key, line)
            prior_expected.accepted += len(before)
            prior_expected.rows += len(before)
            for key, line in after + planted:
                main.add(key, line)
            expected.accepted += len(after)
            expected.rows += len(after) + len(planted)
        main.finish()
        prior.finish()
        return expected, prior_expected, index


def generate(
    path: str | Path,
    rows: int,
    *,
    seed: int = 1,
    prior_path: str | Path | None = None,
    error_rate: float = 0.02,
    legacy_share: float = 0.05,
) -> Generated:
    """Write the main file (exactly `rows` data rows) and its prior file; their summaries."""
    path = Path(path)
    prior_path = Path(prior_path) if prior_path else path.with_name(f"{path.stem}.prior.csv")
    generator = _Generator(seed, error_rate, legacy_share)
    with (
        tempfile.TemporaryDirectory(prefix="handover-gen-", dir=path.parent) as workdir,
        open(path, "w", encoding="utf-8", errors="surrogateescape", newline="\n") as out,
        open(prior_path, "w", encoding="utf-8", newline="\n") as prior_out,
    ):
        out.write(HEADER + "\n")
        prior_out.write(HEADER + "\n")
        expected, prior_expected, numbers = generator.generate(out, prior_out, rows, Path(workdir))
    return Generated(
        path,
        prior_path,
        expected.as_dict(),
        prior_expected.as_dict(),
        expected.rows,
        prior_expected.rows,
        numbers,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--prior", type=Path, default=None, help="default: PATH.prior.csv")
    parser.add_argument("--error-rate", type=float, default=0.02)
    args = parser.parse_args(argv)
    result = generate(
        args.path, args.rows, seed=args.seed, prior_path=args.prior, error_rate=args.error_rate
    )
    json.dump(
        {
            "file": str(result.path),
            "rows": result.rows,
            "numbers": result.numbers,
            "expected": result.expected,
            "prior_file": str(result.prior_path),
            "prior_rows": result.prior_rows,
            "prior_expected": result.prior_expected,
        },
        sys.stdout,
        indent=2,
    )
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
