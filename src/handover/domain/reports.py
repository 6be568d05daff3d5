"""Carrier reports: parsing one raw row and deciding what each report does.

A report is one row of a carrier's file or one item of an API batch. Every report ends as
exactly one `Outcome`: accepted, a duplicate of one already recorded (same `event_id`,
same content), or rejected with a `Reason`. Rejected reports change nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from handover.domain.dates import parse_occurred_at
from handover.domain.freeze import FreezeRecord, release_hold
from handover.domain.freeze_policy import FreezePolicy
from handover.domain.lifecycle import EventKind, LifecycleReport, Number, NumberEvent, State
from handover.domain.numbers import PhoneNumber, parse_number
from handover.domain.ranges import RangeTable
from handover.domain.rejections import Reason, Rejected, quoted

COLUMNS = ("event_id", "number", "event", "occurred_at", "subscriber", "to_carrier")
MAX_EVENT_ID = 128
MAX_REF = 128
#: The longest reason a carrier may give for releasing a number before its advised date.
MAX_OVERRIDE_REASON = 500
_EVENT_KINDS = {kind.value: kind for kind in EventKind}

#: What makes two reports with one event_id "the same report": the stored columns, and the
#: override reason when the report carries one.
Fingerprint = (
    tuple[str, str, datetime, str | None, str | None]
    | tuple[str, str, datetime, str | None, str | None, str]
)


@dataclass(frozen=True, slots=True)
class CarrierReport:
    event_id: str
    number: PhoneNumber
    kind: EventKind
    occurred_at: datetime
    subscriber: str | None
    to_carrier: str | None
    line: int
    #: A release before the advised date, on purpose (API only; see `domain.freeze`).
    override_reason: str | None = None

    @property
    def fingerprint(self) -> Fingerprint:
        """An override is part of a release's content; reports without one keep the
        fingerprint they always had."""
        base = (
            self.number.e164,
            self.kind.value,
            self.occurred_at,
            self.subscriber,
            self.to_carrier,
        )
        return base if self.override_reason is None else (*base, self.override_reason)

    def sort_key(self) -> tuple[str, datetime, int]:
        """Rows of one number are applied in `occurred_at` order, ties in line order."""
        return (self.number.e164, self.occurred_at, self.line)


class Status(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Outcome:
    line: int
    event_id: str
    status: Status
    reason: Reason | None = None
    detail: str | None = None
    report: CarrierReport | None = None
    event: NumberEvent | None = None
    #: Where the accepted report sits in the audit log, once it is stored.
    log_index: int | None = None

    @classmethod
    def rejected(cls, line: int, event_id: str, error: Rejected) -> Outcome:
        return cls(line, event_id, Status.REJECTED, error.reason, error.detail)

    def logged(self, log_index: int) -> Outcome:
        """This outcome at `log_index` in the audit log (`dataclasses.replace`, only faster)."""
        return Outcome(
            self.line,
            self.event_id,
            self.status,
            self.reason,
            self.detail,
            self.report,
            self.event,
            log_index,
        )


def parse_report(
    fields: Mapping[str, str | None],
    line: int,
    region: str | None,
    now: datetime,
    *,
    overrides: bool = False,
) -> CarrierReport:
    """Validate one raw row (column name -> text); raises `Rejected` with the first fault.

    With `overrides` (API batches) a `released` report may carry an `override_reason`;
    files keep their columns, so an override is never read from one.
    """
    for name in COLUMNS:
        if "\x00" in (fields.get(name) or ""):
            # No store keeps NUL in text (PostgreSQL refuses it): a garbled row, not data.
            raise Rejected(Reason.MALFORMED_ROW, f"{name} contains a NUL character")
    event_id = (fields.get("event_id") or "").strip()
    if not event_id:
        raise Rejected(Reason.MISSING_EVENT_ID, "event_id is empty")
    if len(event_id) > MAX_EVENT_ID:
        raise Rejected(Reason.MISSING_EVENT_ID, f"event_id longer than {MAX_EVENT_ID}")
    number = parse_number(fields.get("number") or "", region)
    raw_kind = (fields.get("event") or "").strip().lower()
    kind = _EVENT_KINDS.get(raw_kind)
    if kind is None:
        raise Rejected(
            Reason.UNKNOWN_EVENT, f"{quoted(raw_kind)} is not one of {', '.join(_EVENT_KINDS)}"
        )
    occurred_at = parse_occurred_at(fields.get("occurred_at") or "", now)
    subscriber = _ref(fields.get("subscriber"), "subscriber")
    to_carrier = _ref(fields.get("to_carrier"), "to_carrier") if kind is EventKind.PORTED else None
    if kind in (EventKind.ACTIVATED, EventKind.RESTORED) and subscriber is None:
        raise Rejected(Reason.MISSING_SUBSCRIBER, f"{kind} needs a subscriber")
    if kind is EventKind.PORTED and to_carrier is None:
        raise Rejected(Reason.MISSING_TO_CARRIER, "ported needs to_carrier")
    override = _override(fields.get("override_reason"), kind) if overrides else None
    return CarrierReport(
        event_id, number, kind, occurred_at, subscriber, to_carrier, line, override
    )


def _override(value: str | None, kind: EventKind) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not 1 <= len(value) <= MAX_OVERRIDE_REASON:
        raise Rejected(Reason.MALFORMED_ROW, f"override_reason: 1-{MAX_OVERRIDE_REASON} characters")
    if kind is not EventKind.RELEASED:
        raise Rejected(Reason.MALFORMED_ROW, "override_reason is only for released")
    return value


def _ref(value: str | None, name: str) -> str | None:
    value = (value or "").strip()
    if len(value) > MAX_REF:
        raise Rejected(Reason.MALFORMED_ROW, f"{name} longer than {MAX_REF} characters")
    return value or None


def decide(
    carrier: str,
    reports: Iterable[CarrierReport],
    numbers: MutableMapping[str, Number],
    recorded: MutableMapping[str, Fingerprint],
    known_carriers: frozenset[str] | set[str],
    policy: FreezePolicy,
    freeze: Mapping[str, FreezeRecord] | None = None,
    now: datetime | None = None,
    *,
    ranges: RangeTable | None = None,
) -> list[Outcome]:
    """Apply `reports` (sorted by `CarrierReport.sort_key`) from `carrier`.

    `numbers` holds the current aggregates by E.164 (new ones are added); `recorded` maps
    the carrier's already recorded event ids to their fingerprints and grows with every
    accepted report, so a repeated event id is a duplicate or a conflict. `freeze` holds
    what extends the freeze of numbers being released (bindings, reminders; see
    `domain.freeze`), judged at `now`; a number without a record rests its minimum only.
    `ranges` holds the prefixes granted to `carrier` (`domain.ranges`): a number never
    reported before is activated only inside them, else `outside_range`. The reporting
    services always pass it; `None` (no range rule) is for tests of the other rules.
    """
    outcomes = []
    for report in reports:
        outcomes.append(
            _decide_one(
                carrier,
                report,
                numbers,
                recorded,
                known_carriers,
                policy,
                freeze or {},
                now,
                ranges,
            )
        )
    return outcomes


def _decide_one(
    carrier: str,
    report: CarrierReport,
    numbers: MutableMapping[str, Number],
    recorded: MutableMapping[str, Fingerprint],
    known_carriers: frozenset[str] | set[str],
    policy: FreezePolicy,
    freeze: Mapping[str, FreezeRecord],
    now: datetime | None,
    ranges: RangeTable | None,
) -> Outcome:
    seen = recorded.get(report.event_id)
    if seen is not None:
        if seen == report.fingerprint:
            return Outcome(report.line, report.event_id, Status.DUPLICATE, report=report)
        conflict = Rejected(
            Reason.DUPLICATE_EVENT_ID_CONFLICT,
            "event_id already recorded with different content",
        )
        return Outcome.rejected(report.line, report.event_id, conflict)
    if report.kind is EventKind.PORTED and report.to_carrier not in known_carriers:
        named = quoted(report.to_carrier or "")
        unknown = Rejected(Reason.UNKNOWN_CARRIER, f"carrier {named} is unknown")
        return Outcome.rejected(report.line, report.event_id, unknown)
    e164 = report.number.e164
    number = numbers.get(e164)
    if number is None:
        if ranges is not None and report.kind is EventKind.ACTIVATED and not ranges.covers(e164):
            outside = Rejected(
                Reason.OUTSIDE_RANGE, "the number is outside the ranges granted to the carrier"
            )
            return Outcome(
                report.line,
                report.event_id,
                Status.REJECTED,
                outside.reason,
                outside.detail,
                report=report,
            )
        number = Number(e164=e164, region=report.number.region)
    command = LifecycleReport(
        report.kind,
        report.occurred_at,
        carrier,
        report.subscriber,
        report.to_carrier,
        report.override_reason,
    )
    record = freeze.get(e164) if report.kind is EventKind.RELEASED else None
    try:
        hold = None
        if record is not None and number.state is State.FROZEN:
            hold = release_hold(number, record, policy, now or report.occurred_at)
        event = number.apply(command, policy, hold)
    except Rejected as error:
        return Outcome.rejected(report.line, report.event_id, error)
    numbers[e164] = number
    recorded[report.event_id] = report.fingerprint
    return Outcome(report.line, report.event_id, Status.ACCEPTED, report=report, event=event)
