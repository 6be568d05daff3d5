"""What goes into the audit log: one canonical JSON entry per accepted change.

Entries name numbers and subscribers only by keyed hashes (HMAC-SHA-256 with the log's
secret key), so the log can be published and its proofs handed out while the personal
data behind them stays in the erasable store.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from handover.domain.cases import Case, CaseAnswered, CaseEvent
from handover.domain.dates import instant
from handover.domain.reports import CarrierReport

ENTRY_VERSION = 1


def pseudonym(key: bytes, value: str) -> str:
    """A keyed hash of personal data; equal values give equal pseudonyms."""
    return hmac.digest(key, value.encode(), "sha256").hex()


def canonical(entry: dict[str, Any]) -> bytes:
    """Deterministic JSON: sorted keys, no insignificant whitespace, UTF-8."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class EntryWriter:
    """Builds the entries of one batch of accepted reports from one carrier.

    Shares the work the entries of a batch have in common: the recording time's text and
    the pseudonyms of numbers and subscribers that recur (a number's reports sort together).
    """

    def __init__(self, key: bytes, carrier: str, recorded_at: datetime) -> None:
        self.key, self.carrier = key, carrier
        self.recorded_at = instant(recorded_at)
        self._pseudonyms: dict[str, str] = {}

    def _pseudonym(self, value: str) -> str:
        found = self._pseudonyms.get(value)
        if found is None:
            if len(self._pseudonyms) > 4096:
                self._pseudonyms.clear()
            found = self._pseudonyms[value] = pseudonym(self.key, value)
        return found

    def number_event(self, report: CarrierReport) -> bytes:
        """The log entry of one accepted lifecycle report."""
        entry: dict[str, Any] = {
            "v": ENTRY_VERSION,
            "type": "number_event",
            "carrier": self.carrier,
            "event_id": report.event_id,
            "number": self._pseudonym(report.number.e164),
            "event": report.kind.value,
            "occurred_at": instant(report.occurred_at),
            "recorded_at": self.recorded_at,
        }
        if report.subscriber is not None:
            entry["subscriber"] = self._pseudonym(f"{self.carrier}:{report.subscriber}")
        if report.to_carrier is not None:
            entry["to_carrier"] = report.to_carrier
        if report.override_reason is not None:
            # A release before the advised date: the carrier's stated reason is the record.
            entry["override"] = {"reason": report.override_reason}
        return canonical(entry)


def number_event_entry(
    key: bytes, carrier: str, report: CarrierReport, recorded_at: datetime
) -> bytes:
    """The log entry of one accepted lifecycle report."""
    return EntryWriter(key, carrier, recorded_at).number_event(report)


@dataclass(frozen=True, slots=True)
class Parties:
    """Who an entry is about, besides the regulator: the carriers whose report it is (and a
    port's recipient), the platform a case is for. A freeze reminder names neither."""

    carriers: frozenset[str] = frozenset()
    platform: str | None = None


def parties(data: bytes) -> Parties:
    """The parties an entry's canonical JSON names."""
    entry = json.loads(data)
    if entry.get("type") == "number_event":
        carriers = {entry["carrier"]} | ({entry["to_carrier"]} if "to_carrier" in entry else set())
        return Parties(carriers=frozenset(carriers))
    if entry.get("type") == "case_event":
        return Parties(platform=entry["platform"])
    return Parties()


def case_entry(key: bytes, case: Case, event: CaseEvent, recorded_at: datetime) -> bytes:
    """The log entry of one thing that happened to a case (opened, answered, escalated,
    cancelled). A rejection's reason is the platform's prose and stays out of the log."""
    entry: dict[str, Any] = {
        "v": ENTRY_VERSION,
        "type": "case_event",
        "event": type(event).__name__.removeprefix("Case").lower(),
        "case": case.id,
        "kind": case.kind.value,
        "requester": case.requester.value,
        "platform": case.platform_id,
        "number": pseudonym(key, case.e164),
        "deadline": instant(case.deadline),
        "at": instant(event.at),
        "recorded_at": instant(recorded_at),
    }
    if isinstance(event, CaseAnswered):
        entry["outcome"] = event.outcome.value
        entry["late"] = event.late
    return canonical(entry)


def freeze_reminder_entry(
    key: bytes,
    e164: str,
    frozen_at: datetime,
    stage: str,
    channel: str | None,
    sent_at: datetime,
) -> bytes:
    """The log entry of one reminder to a previous owner, for the freeze that started at
    `frozen_at` (the cancellation); `channel` is None when the person left no contact (the
    attempt is logged all the same)."""
    return canonical(
        {
            "v": ENTRY_VERSION,
            "type": "freeze_reminder",
            "number": pseudonym(key, e164),
            "frozen_at": instant(frozen_at),
            "stage": stage,
            "channel": channel,
            "recorded_at": instant(sent_at),
        }
    )
