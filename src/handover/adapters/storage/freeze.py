"""SQL storage for the freeze policy: reminders sent to previous owners, release overrides,
and what a frozen number's release advice is computed from."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, exists, func, insert, not_, or_, select

from handover.adapters.storage import tables as t
from handover.adapters.storage.bindings import _binding
from handover.domain.freeze import FreezeRecord, ReleaseOverride
from handover.domain.lifecycle import EventKind, State
from handover.domain.messages import Channel
from handover.domain.platforms import Tier
from handover.domain.reminders import LAST_NOTICE, SentReminder, Stage

_IN_BATCH = 5_000
_JULIAN_EPOCH = 2440587.5  # SQLite's julianday() of 1970-01-01T00:00:00Z


class SqlFreezeRepository:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.is_postgres = connection.dialect.name == "postgresql"

    def records(self, e164s: Collection[str]) -> dict[str, FreezeRecord]:
        bindings: dict[str, list[Any]] = defaultdict(list)
        reminders: dict[str, dict[datetime, set[Stage]]] = defaultdict(lambda: defaultdict(set))
        cancellations: dict[str, tuple[int, datetime, datetime]] = {}
        b, r, e, n = t.bindings.c, t.freeze_reminders.c, t.number_events.c, t.numbers.c
        for batch in _batches(e164s):
            query = select(t.bindings).where(b.e164.in_(batch)).order_by(b.platform_id)
            for row in self.connection.execute(query).mappings():
                bindings[row["e164"]].append(_binding(row))
            sent = select(r.e164, r.frozen_at, r.stage).where(r.e164.in_(batch))
            for e164, frozen_at, stage in self.connection.execute(sent):
                reminders[e164][frozen_at].add(Stage(stage))
            # Only the cancellation that started the current freeze, not the whole history.
            cancelled = (
                select(e.e164, e.seq, e.occurred_at, e.recorded_at)
                .join(t.numbers, n.e164 == e.e164)
                .where(
                    e.e164.in_(batch),
                    e.kind == EventKind.CANCELLED.value,
                    e.occurred_at == n.cancelled_at,
                )
            )
            for e164, seq, occurred_at, recorded_at in self.connection.execute(cancelled):
                if e164 not in cancellations or cancellations[e164][0] < seq:
                    cancellations[e164] = (seq, occurred_at, recorded_at)
        return {
            e164: FreezeRecord(
                tuple(bindings.get(e164, ())),
                {start: frozenset(stages) for start, stages in reminders.get(e164, {}).items()},
                cancellations[e164][1:] if e164 in cancellations else None,
            )
            for e164 in e164s
        }

    def due_candidates(self, now: datetime, max_freeze: timedelta, limit: int) -> list[str]:
        """Frozen numbers with a reminder stage due at `now`, the oldest freezes first.

        Mirrors `domain.reminders.schedule` in SQL so that numbers waiting for a later stage
        are not read every cycle: with k stages of the current freeze sent, the next is due
        at cancellation (k=0), at mid-freeze (k=1: cancelled_at + release_not_before <=
        2 now, and with unresolved high bindings cancelled_at <= now - max/2), or 7 days
        before the release (k=2). The frozen numbers are found through
        `ix_numbers_state_cancelled`, and k is counted once per number (a grouped join on
        the reminders of the current freezes). On PostgreSQL the rows are locked, skipping
        those another worker holds.
        """
        n, r, b = t.numbers.c, t.freeze_reminders.c, t.bindings.c
        frozen = and_(n.state == State.FROZEN.value, n.cancelled_at <= now)
        counted = (
            select(r.e164, r.frozen_at, func.count().label("sent"))
            .join(t.numbers, and_(n.e164 == r.e164, n.cancelled_at == r.frozen_at))
            .where(frozen)
            .group_by(r.e164, r.frozen_at)
            .cte("sent_per_freeze")
        )
        sent = func.coalesce(counted.c.sent, 0)
        held = exists().where(
            b.e164 == n.e164, b.tier == Tier.HIGH.value, b.bound_since >= n.tenure_start
        )
        mid = self._sum_at_most(n.cancelled_at, n.release_not_before, now)
        held_mid = n.cancelled_at <= now - max_freeze / 2
        before = n.release_not_before <= now + LAST_NOTICE
        held_before = n.cancelled_at <= now - max_freeze + LAST_NOTICE
        query = (
            select(n.e164)
            .select_from(
                t.numbers.outerjoin(
                    counted,
                    and_(counted.c.e164 == n.e164, counted.c.frozen_at == n.cancelled_at),
                )
            )
            .where(
                frozen,
                or_(
                    sent == 0,
                    and_(sent == 1, mid, or_(not_(held), held_mid)),
                    and_(sent == 2, mid, before, or_(not_(held), and_(held_mid, held_before))),
                ),
            )
            .order_by(n.cancelled_at, n.e164)
            .limit(limit)
        )
        if self.is_postgres:
            query = query.with_for_update(of=t.numbers, skip_locked=True)
        return list(self.connection.execute(query).scalars())

    def _sum_at_most(self, first: Any, second: Any, now: datetime) -> ColumnElement[bool]:
        """`first + second <= 2 * now` on instants: both halves of a midpoint comparison."""
        seconds = now.astimezone(UTC).timestamp()
        if self.is_postgres:
            total = func.extract("epoch", first) + func.extract("epoch", second)
            return total <= 2 * seconds
        days = func.julianday(first) + func.julianday(second)
        return days <= 2 * (seconds / 86_400 + _JULIAN_EPOCH)

    def add_reminders(self, reminders: Sequence[SentReminder]) -> None:
        if reminders:
            self.connection.execute(
                insert(t.freeze_reminders),
                [
                    {
                        "e164": reminder.e164,
                        "frozen_at": reminder.frozen_at,
                        "stage": reminder.stage.value,
                        "sent_at": reminder.sent_at,
                        "channel": reminder.channel.value if reminder.channel else None,
                        "log_index": reminder.log_index,
                    }
                    for reminder in reminders
                ],
            )

    def reminders(self, e164: str) -> list[SentReminder]:
        r = t.freeze_reminders.c
        query = select(t.freeze_reminders).where(r.e164 == e164).order_by(r.sent_at, r.stage)
        return [
            SentReminder(
                row["e164"],
                row["frozen_at"],
                Stage(row["stage"]),
                row["sent_at"],
                Channel(row["channel"]) if row["channel"] else None,
                row["log_index"],
            )
            for row in self.connection.execute(query).mappings()
        ]

    def add_overrides(self, overrides: Sequence[ReleaseOverride]) -> None:
        if overrides:
            self.connection.execute(
                insert(t.release_overrides),
                [
                    {
                        "carrier_id": o.carrier_id,
                        "event_id": o.event_id,
                        "e164": o.e164,
                        "advised_release": o.advised_release,
                        "reason": o.reason,
                        "recorded_at": o.recorded_at,
                    }
                    for o in overrides
                ],
            )

    def overrides(self, carrier_id: str, event_ids: Collection[str]) -> dict[str, str]:
        o = t.release_overrides.c
        found: dict[str, str] = {}
        for batch in _batches(event_ids):
            query = select(o.event_id, o.reason).where(
                o.carrier_id == carrier_id, o.event_id.in_(batch)
            )
            found.update({event_id: reason for event_id, reason in self.connection.execute(query)})
        return found


def _batches(values: Collection[str]) -> list[list[str]]:
    ordered = sorted(values)
    return [ordered[i : i + _IN_BATCH] for i in range(0, len(ordered), _IN_BATCH)]
