"""SSF stream management (SSF 1.0 §8.1): one function per receiver request.

Every function takes the calling platform's id: a platform sees and changes only its own
streams, and another platform's stream is refused exactly like a missing one (`NOT_FOUND`).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from handover.domain.ssf.events import (
    STREAM_UPDATED,
    VERIFICATION,
    Signal,
    phone_subject,
    stream_subject,
)
from handover.domain.ssf.streams import (
    Refusal,
    Stream,
    StreamError,
    StreamStatus,
    check_echoed,
    new_stream,
    parse_request,
    parse_status,
    replaced,
    updated,
)
from handover.services.ports import UnitOfWork, UnitOfWorkFactory

#: Streams one platform may hold (SSF allows a transmitter to limit them).
MAX_STREAMS_PER_PLATFORM = 20
MAX_STATE = 256
#: How long an operator's pause or disable waits for the receiver to have the
#: stream-updated event before the stream stops (seconds).
OPERATOR_WAIT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Transmitter:
    """The transmitter's own facts the stream rules need."""

    issuer: str
    #: The URL a poll stream is served at, from its id.
    poll_url: Callable[[str], str]
    #: Accept http push endpoints on loopback hosts (development and tests only).
    allow_http: bool = False
    #: Accept push endpoints inside private networks (development, or a private deployment).
    allow_private: bool = False


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def _owned(uow: UnitOfWork, platform_id: str, stream_id: Any, *, lock: bool = False) -> Stream:
    if not isinstance(stream_id, str) or not stream_id:
        raise StreamError(Refusal.INVALID_REQUEST, "stream_id is required")
    stream = uow.streams.get(stream_id, lock=lock)
    if stream is None or stream.platform_id != platform_id:
        raise StreamError(Refusal.NOT_FOUND, f"no stream {stream_id!r}")
    return stream


def create_stream(
    uow_factory: UnitOfWorkFactory,
    transmitter: Transmitter,
    platform_id: str,
    body: Any,
    now: datetime | None = None,
) -> Stream:
    request = parse_request(
        body, allow_http=transmitter.allow_http, allow_private=transmitter.allow_private
    )
    if any(name in body for name in ("stream_id", "iss", "aud", "events_delivered")):
        raise StreamError(
            Refusal.INVALID_REQUEST, "stream_id, iss, aud and events_delivered are set by Handover"
        )
    with uow_factory() as uow:
        if uow.platforms.get(platform_id) is None:
            raise StreamError(Refusal.FORBIDDEN, "only a registered platform may create streams")
        if len(uow.streams.for_platform(platform_id)) >= MAX_STREAMS_PER_PLATFORM:
            raise StreamError(
                Refusal.TOO_MANY_STREAMS, f"a platform may hold {MAX_STREAMS_PER_PLATFORM} streams"
            )
        stream_id = secrets.token_hex(12)
        stream = new_stream(
            request,
            stream_id,
            platform_id,
            audience=f"{transmitter.issuer}/platforms/{platform_id}",
            poll_url=transmitter.poll_url(stream_id),
            now=_now(now),
        )
        # A new stream starts at the present: it is told what happens from now on.
        uow.streams.add(stream, cursor=uow.signals.last_seq())
        uow.commit()
    return stream


def get_streams(
    uow_factory: UnitOfWorkFactory, platform_id: str, stream_id: str | None
) -> list[Stream]:
    """The platform's streams, or the one named (`NOT_FOUND` when it is not the platform's)."""
    with uow_factory() as uow:
        if stream_id is None:
            return uow.streams.for_platform(platform_id)
        return [_owned(uow, platform_id, stream_id)]


def update_stream(
    uow_factory: UnitOfWorkFactory,
    transmitter: Transmitter,
    platform_id: str,
    body: Any,
    *,
    replace: bool,
    now: datetime | None = None,
) -> Stream:
    """PATCH (`replace=False`) or PUT (`replace=True`) a stream's configuration."""
    request = parse_request(
        body, allow_http=transmitter.allow_http, allow_private=transmitter.allow_private
    )
    with uow_factory() as uow:
        stream = _owned(uow, platform_id, body.get("stream_id"), lock=True)
        check_echoed(body, stream, transmitter.issuer)
        change = replaced if replace else updated
        stream = change(stream, request, transmitter.poll_url(stream.stream_id), _now(now))
        uow.streams.update(stream)
        uow.commit()
    return stream


def delete_stream(uow_factory: UnitOfWorkFactory, platform_id: str, stream_id: str | None) -> None:
    with uow_factory() as uow:
        _owned(uow, platform_id, stream_id, lock=True)
        assert stream_id is not None
        uow.streams.delete(stream_id)
        uow.commit()


def set_status(
    uow_factory: UnitOfWorkFactory,
    platform_id: str | None,
    body: Any,
    now: datetime | None = None,
) -> Stream:
    """Enable, pause or disable a stream at its receiver's request (SSF §8.1.2.2).

    `platform_id` None is Handover's own operator, who should use `operator_set_status`:
    that one tells the receiver. Leaving `disabled` starts the stream at the present: what
    happened while it was disabled is dropped, unlike a pause, which holds events.
    """
    status, reason = parse_status(body)
    with uow_factory() as uow:
        stream = _stream_for(uow, platform_id, body.get("stream_id"))
        stream = _change_status(uow, stream, status, reason, _now(now))
        uow.commit()
    return stream


@dataclass(frozen=True, slots=True)
class StatusChange:
    stream: Stream
    #: Whether the receiver had the stream-updated event before the change took effect.
    told: bool


def operator_set_status(
    uow_factory: UnitOfWorkFactory,
    stream_id: str,
    status_name: str,
    reason: str | None,
    *,
    wait: float = OPERATOR_WAIT_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> StatusChange:
    """Handover's operator changes a stream's status and tells the receiver (SSF §8.1.5).

    Stopping a stream (pause, disable) sends stream-updated *before* the stream stops, as
    SSF requires: the event is queued, then the change waits up to `wait` seconds for the
    receiver to have it (its cursor passes the event), and takes effect either way.
    Enabling queues the event after the change, so it is the first thing delivered.
    """
    status, reason = parse_status({"status": status_name, "reason": reason})
    payload = {"status": status.value} | ({"reason": reason} if reason else {})
    with uow_factory() as uow:
        stream = _stream_for(uow, None, stream_id)
        if stream.status is status:
            return StatusChange(stream, True)
        stopping = status is not StreamStatus.ENABLED and stream.status is StreamStatus.ENABLED
        if not stopping:
            stream = _change_status(uow, stream, status, reason, datetime.now(UTC))
        uow.signals.add([_addressed(stream, STREAM_UPDATED, payload, datetime.now(UTC))])
        notice = uow.signals.last_seq()  # ours: outbox writers are serialised
        uow.commit()
    told = not stopping or _wait_for_cursor(uow_factory, stream_id, notice, wait, clock, sleep)
    if stopping:
        with uow_factory() as uow:
            stream = _stream_for(uow, None, stream_id)
            stream = _change_status(uow, stream, status, reason, datetime.now(UTC))
            uow.commit()
    return StatusChange(stream, told)


def _wait_for_cursor(
    uow_factory: UnitOfWorkFactory,
    stream_id: str,
    seq: int,
    wait: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> bool:
    deadline = clock() + wait
    while True:
        with uow_factory() as uow:
            position = uow.streams.position(stream_id)
        if position is None or position.cursor >= seq:
            return position is not None
        if clock() >= deadline:
            return False
        sleep(0.1)


def _stream_for(uow: UnitOfWork, platform_id: str | None, stream_id: Any) -> Stream:
    if platform_id is not None:
        return _owned(uow, platform_id, stream_id, lock=True)
    found = uow.streams.get(str(stream_id), lock=True) if stream_id else None
    if found is None:
        raise StreamError(Refusal.NOT_FOUND, f"no stream {stream_id!r}")
    return found


def _change_status(
    uow: UnitOfWork, stream: Stream, status: StreamStatus, reason: str | None, at: datetime
) -> Stream:
    was = stream.status
    stream = stream.with_status(status, reason, at)
    uow.streams.update(stream)
    if was is StreamStatus.DISABLED and status is not StreamStatus.DISABLED:
        last = uow.signals.last_seq()
        uow.streams.move_cursor(stream.stream_id, last)
        uow.streams.drop_acks(stream.stream_id, last)
    return stream


def _addressed(stream: Stream, event_type: str, payload: Mapping[str, Any], at: datetime) -> Signal:
    return Signal(
        event_type,
        stream_subject(stream.stream_id),
        dict(payload),
        at,
        txn=secrets.token_hex(8),
        stream_id=stream.stream_id,
        created_at=at,
    )


def change_subject(
    uow_factory: UnitOfWorkFactory, platform_id: str, body: Any, *, include: bool
) -> None:
    """Add (`include`) or remove a subject (SSF §8.1.3); only `phone_number` subjects."""
    if not isinstance(body, Mapping):
        raise StreamError(Refusal.INVALID_REQUEST, "the body must be a JSON object")
    subject = body.get("subject")
    if not isinstance(subject, Mapping) or subject.get("format") != "phone_number":
        raise StreamError(
            Refusal.INVALID_REQUEST, 'subject must be {"format": "phone_number", ...}'
        )
    if set(subject) != {"format", "phone_number"}:
        raise StreamError(
            Refusal.INVALID_REQUEST, "a phone_number subject has exactly format and phone_number"
        )
    try:
        key = phone_subject(str(subject.get("phone_number")))["phone_number"]
    except ValueError as exc:
        raise StreamError(Refusal.INVALID_REQUEST, str(exc)) from None
    if "verified" in body and not isinstance(body["verified"], bool):
        raise StreamError(Refusal.INVALID_REQUEST, "verified must be a boolean")
    with uow_factory() as uow:
        stream = _owned(uow, platform_id, body.get("stream_id"), lock=True)
        uow.streams.set_subject(stream.stream_id, key, include)
        uow.commit()


def request_verification(
    uow_factory: UnitOfWorkFactory, platform_id: str, body: Any, now: datetime | None = None
) -> None:
    """Queue a verification event (SSF §8.1.4.2); `TOO_SOON` when asked more often than
    the stream allows."""
    if not isinstance(body, Mapping):
        raise StreamError(Refusal.INVALID_REQUEST, "the body must be a JSON object")
    state = body.get("state")
    if state is not None and (not isinstance(state, str) or len(state) > MAX_STATE):
        raise StreamError(
            Refusal.INVALID_REQUEST, f"state must be a string of at most {MAX_STATE} characters"
        )
    moment = _now(now)
    with uow_factory() as uow:
        stream = _owned(uow, platform_id, body.get("stream_id"), lock=True)
        stream = stream.verification_requested(moment)
        uow.streams.update(stream)
        payload = {"state": state} if state is not None else {}
        uow.signals.add([_addressed(stream, VERIFICATION, payload, moment)])
        uow.commit()
