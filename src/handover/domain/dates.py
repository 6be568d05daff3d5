"""Dates as carriers and platforms write them, and instants as Handover writes them.

Kept apart from reports, bindings and freeze so each can read a date without importing
the others.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from handover.domain.rejections import Reason, Rejected, quoted

#: Reports dated this far past the receiving clock are accepted (carrier clock skew).
CLOCK_SKEW = timedelta(minutes=5)
_EARLIEST = datetime(1980, 1, 1, tzinfo=UTC)


def parse_occurred_at(text: str, now: datetime) -> datetime:
    """An ISO 8601 date or date-time; UTC when no offset is given."""
    text = text.strip()
    try:
        if len(text) == 10:
            parsed = datetime.combine(date.fromisoformat(text), datetime.min.time())
        else:
            parsed = datetime.fromisoformat(text)
        # An offset at either end of the calendar (year 1 or 9999) overflows in UTC.
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise Rejected(Reason.INVALID_DATE, f"{quoted(text)} is not an ISO 8601 date") from None
    if parsed < _EARLIEST:
        raise Rejected(Reason.INVALID_DATE, f"{quoted(text)} is before {_EARLIEST.year}")
    if parsed > now + CLOCK_SKEW:
        raise Rejected(Reason.FUTURE_DATE, f"{quoted(text)} is in the future")
    return parsed


def utc(moment: datetime) -> datetime:
    """`moment` in UTC; a naive moment is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def instant(moment: datetime, *, whole_seconds: bool = False) -> str:
    """ISO 8601 in UTC with `Z`: microseconds kept when there are any (an exact round
    trip), or dropped with `whole_seconds` (what people and platforms read)."""
    moment = utc(moment)
    if whole_seconds:
        moment = moment.replace(microsecond=0)
    return moment.isoformat().replace("+00:00", "Z")
