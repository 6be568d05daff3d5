"""Freeze reminders: when the previous owner of a cancelled number is told, and which are due.

Each freeze has three stages: at cancellation, halfway to the advised release, and a week
before it. The advised release moves while the freeze is extended (see `domain.freeze`), so
the stages are computed, not stored; only the stages already sent are. A stage whose time
has passed is still sent, once, when the worker gets to it (a worker that was down, a
cancellation reported late), so the person hears at least twice before any release; nothing
is due for a number that is no longer frozen (restored or released). Stages that fall due
together (late, or because the advised release moved) are each logged, but the person gets
one message, the latest stage's (`to_send`).

Reminders are kept per freeze (keyed by the cancellation that started it), not per tenure:
a number cancelled, restored and cancelled again by the same subscriber is a new freeze,
reminded afresh, and the first freeze's reminders do not count for its release.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from handover.domain.lifecycle import Number, State
from handover.domain.messages import Channel


class Stage(StrEnum):
    CANCELLATION = "cancellation"
    MID_FREEZE = "mid_freeze"
    BEFORE_RELEASE = "before_release"


@dataclass(frozen=True, slots=True)
class SentReminder:
    """One stage logged for one freeze (`frozen_at`: the cancellation that started it);
    `channel` is None when the person left no contact."""

    e164: str
    frozen_at: datetime
    stage: Stage
    sent_at: datetime
    channel: Channel | None
    log_index: int | None = None


#: Reminders that must have been logged before a number may be released.
REQUIRED_BEFORE_RELEASE = 2
#: How long before the advised release the last reminder goes out.
LAST_NOTICE = timedelta(days=7)


def schedule(cancelled_at: datetime, advised_release: datetime) -> dict[Stage, datetime]:
    """When each stage is due, in stage order (never decreasing: a freeze shorter than two
    weeks has its last reminder at mid-freeze)."""
    mid = cancelled_at + (advised_release - cancelled_at) / 2
    return {
        Stage.CANCELLATION: cancelled_at,
        Stage.MID_FREEZE: mid,
        Stage.BEFORE_RELEASE: max(mid, advised_release - LAST_NOTICE),
    }


def due_stages(
    number: Number, advised_release: datetime, sent: Collection[Stage], now: datetime
) -> list[Stage]:
    """The stages to send at `now`: due, not sent yet, and only while the number is frozen."""
    if number.state is not State.FROZEN or number.cancelled_at is None:
        return []
    return [
        stage
        for stage, at in schedule(number.cancelled_at, advised_release).items()
        if at <= now and stage not in sent
    ]


def to_send(due: Sequence[Stage]) -> Stage | None:
    """The one stage whose message goes out when several are due at once: the latest (its
    text has the dates that still matter). The others are logged without a message of their
    own, so a late cancellation does not queue two or three messages in the same second."""
    return max(due, key=list(Stage).index) if due else None


def second_due(
    cancelled_at: datetime, advised_release: datetime, sent: Collection[Stage]
) -> datetime | None:
    """When the reminder that makes two is due; None once two have been sent."""
    missing = REQUIRED_BEFORE_RELEASE - len(set(sent))
    if missing <= 0:
        return None
    pending = sorted(
        at for stage, at in schedule(cancelled_at, advised_release).items() if stage not in sent
    )
    return pending[missing - 1]
