"""Why a carrier's report was refused, in machine-readable words."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """The reason a report (one CSV row or one API event) was rejected.

    The values are part of the public interface: carriers count and filter on them.
    """

    MALFORMED_ROW = "malformed_row"
    INVALID_ENCODING = "invalid_encoding"
    MISSING_EVENT_ID = "missing_event_id"
    INVALID_NUMBER = "invalid_number"
    INVALID_DATE = "invalid_date"
    FUTURE_DATE = "future_date"
    UNKNOWN_EVENT = "unknown_event"
    MISSING_SUBSCRIBER = "missing_subscriber"
    MISSING_TO_CARRIER = "missing_to_carrier"
    UNKNOWN_CARRIER = "unknown_carrier"
    ILLEGAL_TRANSITION = "illegal_transition"
    OUT_OF_ORDER = "out_of_order"
    NOT_NUMBER_HOLDER = "not_number_holder"
    OUTSIDE_RANGE = "outside_range"
    FREEZE_NOT_OVER = "freeze_not_over"
    SUBSCRIBER_MISMATCH = "subscriber_mismatch"
    DUPLICATE_EVENT_ID_CONFLICT = "duplicate_event_id_conflict"


#: The longest `Rejected.detail` kept, whatever it quotes: a file of long bad values must
#: not store (and hand back) every one of them whole.
MAX_DETAIL = 1000
#: How much of a faulty value a detail quotes (`quoted`).
QUOTED = 80


def quoted(value: str) -> str:
    """`value` as a detail quotes it: repr, cut to `QUOTED` characters."""
    return repr(value if len(value) <= QUOTED else value[: QUOTED - 1] + "…")


class Rejected(Exception):
    """A report that cannot be accepted; nothing was changed."""

    def __init__(self, reason: Reason, detail: str) -> None:
        if len(detail) > MAX_DETAIL:
            detail = detail[: MAX_DETAIL - 1] + "…"
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
