"""What platforms are told: event types and the Security Event Tokens that carry them.

A *signal* is one thing that happened which some platforms must learn (a number was
recycled, cancelled, restored or ported; a case was opened, is overdue or was cancelled).
It is written to the outbox with the state change that caused it and becomes one SET
(RFC 8417, SSF 1.0 §4) per stream that asked for its type. This module decides which
events make which signal and what the SET's claims are; signing and sending are adapters'
work.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from handover.domain.cases import (
    Case,
    CaseCancelled,
    CaseEscalated,
    CaseEvent,
    CaseOpened,
    Requester,
)
from handover.domain.lifecycle import (
    NumberActivated,
    NumberCancelled,
    NumberEvent,
    NumberPorted,
    NumberRestored,
)

RISC = "https://schemas.openid.net/secevent/risc/event-type/"
SSF = "https://schemas.openid.net/secevent/ssf/event-type/"

IDENTIFIER_RECYCLED = RISC + "identifier-recycled"
VERIFICATION = SSF + "verification"
STREAM_UPDATED = SSF + "stream-updated"
NUMBER_CANCELLED = "urn:handover:secevent:number-cancelled"
NUMBER_RESTORED = "urn:handover:secevent:number-restored"
NUMBER_PORTED = "urn:handover:secevent:number-ported"
CASE_OPENED = "urn:handover:secevent:case-opened"
CASE_CANCELLED = "urn:handover:secevent:case-cancelled"
CASE_REMINDER = "urn:handover:secevent:case-reminder"

#: Types a receiver may ask for in `events_requested` (SSF §8.1.1 `events_supported`).
#: Verification and stream-updated are always delivered and need not be requested.
EVENTS_SUPPORTED: tuple[str, ...] = (
    IDENTIFIER_RECYCLED,
    NUMBER_CANCELLED,
    NUMBER_RESTORED,
    NUMBER_PORTED,
    CASE_OPENED,
    CASE_CANCELLED,
    CASE_REMINDER,
    VERIFICATION,
    STREAM_UPDATED,
)
#: Stream-level types every stream receives whatever it requested.
ALWAYS_DELIVERED = frozenset({VERIFICATION, STREAM_UPDATED})

_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
#: Personalises SET ids, so a retransmission of one signal on one stream keeps its `jti`.
_JTI_KEY = b"handover set id"


@dataclass(frozen=True, slots=True)
class Signal:
    """One outbox entry: an event for every stream that wants `event_type`, or for one.

    `stream_id` set means the signal is addressed to that stream only (verification,
    stream-updated); `platform_id` set means to that platform's streams only (cases).
    `seq` is the outbox order, assigned by the store.
    """

    event_type: str
    subject: dict[str, str]
    payload: dict[str, Any]
    occurred_at: datetime
    txn: str
    stream_id: str | None = None
    platform_id: str | None = None
    seq: int = 0
    created_at: datetime | None = None


def phone_subject(e164: str) -> dict[str, str]:
    """An RFC 9493 `phone_number` subject identifier (strict E.164)."""
    if not _E164.match(e164):
        raise ValueError(f"{e164!r} is not an E.164 number")
    return {"format": "phone_number", "phone_number": e164}


def stream_subject(stream_id: str) -> dict[str, str]:
    """The subject of a stream-level event (SSF §8.1.5, §8.1.4): the stream itself."""
    return {"format": "opaque", "id": stream_id}


def _timestamp(moment: datetime) -> int:
    return int(moment.timestamp())


def signal_for(event: NumberEvent, txn: str) -> Signal | None:
    """The signal a lifecycle event makes, or None for events platforms need not hear.

    A number changes subscriber only when it is activated after an earlier tenure; a first
    activation, a suspension or a resumption tells a platform nothing about who holds it.
    `txn` ties the SET to the accepted carrier report (its audit-log entry).
    """
    subject = phone_subject(event.e164)
    at = {"event_timestamp": _timestamp(event.occurred_at)}
    match event:
        case NumberActivated(reassigned=True):
            return Signal(IDENTIFIER_RECYCLED, subject, at, event.occurred_at, txn)
        case NumberCancelled():
            payload = at | {
                "earliest_release": event.release_not_before.date().isoformat(),
                "release_not_before": _timestamp(event.release_not_before),
            }
            return Signal(NUMBER_CANCELLED, subject, payload, event.occurred_at, txn)
        case NumberRestored():
            return Signal(NUMBER_RESTORED, subject, at, event.occurred_at, txn)
        case NumberPorted():
            return Signal(NUMBER_PORTED, subject, at, event.occurred_at, txn)
    return None


def case_signal(case: Case, event: CaseEvent, txn: str) -> Signal | None:
    """The signal a case event makes, addressed to the case's platform only.

    A new owner's case carries `bound_before` (the tenure's start) instead of accounts:
    the platform itself finds the accounts bound to the number before that moment.
    """
    base: dict[str, Any] = {
        "case_id": case.id,
        "kind": case.kind.value,
        "deadline": _timestamp(case.deadline),
    }
    match event:
        case CaseOpened():
            payload = base | {"requester": case.requester.value}
            if case.requester is Requester.CURRENT_OWNER:
                payload["bound_before"] = _timestamp(case.tenure_start)
            if case.account_ref is not None:
                payload["account_ref"] = case.account_ref
            if case.migrate_to is not None:
                payload["migrate_to"] = phone_subject(case.migrate_to)
            event_type = CASE_OPENED
        case CaseEscalated():
            payload = base | {"overdue_seconds": int(event.overdue.total_seconds())}
            event_type = CASE_REMINDER
        case CaseCancelled():
            payload = base | {"reason": event.why}
            event_type = CASE_CANCELLED
        case _:
            return None
    subject = phone_subject(case.e164)
    return Signal(event_type, subject, payload, event.at, txn, platform_id=case.platform_id)


@dataclass(frozen=True, slots=True)
class SetClaims:
    """The claims of one SET (SSF §4.1): never `sub` nor `exp`, exactly one event."""

    iss: str
    aud: str
    jti: str
    iat: int
    txn: str
    sub_id: dict[str, str]
    events: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "iss": self.iss,
            "aud": self.aud,
            "jti": self.jti,
            "iat": self.iat,
            "txn": self.txn,
            "sub_id": self.sub_id,
            "events": self.events,
        }


def set_id(stream_id: str, seq: int) -> str:
    """The SET's `jti`: the same for every retransmission of one signal on one stream.

    It starts with the outbox position so an acknowledgement finds its signal; the rest
    binds it to the stream, so a jti from another stream is never taken for one of ours.
    """
    digest = hashlib.blake2b(f"{stream_id}/{seq}".encode(), digest_size=10, key=_JTI_KEY)
    return f"{seq}-{digest.hexdigest()}"


def seq_of(stream_id: str, jti: str) -> int | None:
    """The outbox position a `jti` of this stream names, or None if it is not one of ours."""
    head, _, _ = jti.partition("-")
    if not (head.isascii() and head.isdigit()) or len(head) > 18:
        return None
    seq = int(head)
    return seq if set_id(stream_id, seq) == jti else None


def set_claims(
    signal: Signal,
    stream_id: str,
    issuer: str,
    audience: str,
    now: datetime,
    jti: str | None = None,
) -> SetClaims:
    """The SET for `signal` on one stream; `jti` when the caller has it already."""
    return SetClaims(
        iss=issuer,
        aud=audience,
        jti=jti or set_id(stream_id, signal.seq),
        iat=_timestamp(now),
        txn=signal.txn,
        sub_id=signal.subject,
        events={signal.event_type: signal.payload},
    )
