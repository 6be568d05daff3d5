"""SQL storage for cases, their history, renewals and complaints."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from handover.adapters.storage import tables as t
from handover.domain.cases import (
    Case,
    CaseKind,
    CaseOutcome,
    CaseRecord,
    CaseState,
    Complaint,
    ComplaintCategory,
    Requester,
)
from handover.domain.renewals import Renewal
from handover.services.ports import ConcurrentUpdate

_FIELDS = (
    "id",
    "renewal_id",
    "e164",
    "platform_id",
    "tenure_start",
    "account_ref",
    "migrate_to",
    "opened_at",
    "deadline",
    "reason",
    "answered_at",
    "escalated_at",
    "cancelled_at",
    "version",
)


class SqlCaseRepository:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def add(self, cases: Sequence[Case]) -> None:
        if cases:
            self.connection.execute(insert(t.cases), [_row(case) for case in cases])

    def get(self, case_id: str, *, lock: bool = False) -> Case | None:
        query = select(t.cases).where(t.cases.c.id == case_id)
        if lock and self.connection.dialect.name == "postgresql":
            query = query.with_for_update()
        row = self.connection.execute(query).first()
        return _case(row._mapping) if row else None

    def update(self, case: Case) -> None:
        c = t.cases.c
        result = self.connection.execute(
            update(t.cases).where(c.id == case.id, c.version == case.version - 1).values(_row(case))
        )
        if result.rowcount != 1:
            raise ConcurrentUpdate(f"case {case.id} changed meanwhile")

    def for_number(self, e164: str, state: CaseState | None = None) -> list[Case]:
        c = t.cases.c
        query = select(t.cases).where(c.e164 == e164)
        if state is not None:
            query = query.where(c.state == state.value)
        return self._cases(query.order_by(c.id))

    def for_platform(
        self, platform_id: str, state: CaseState | None, after: str | None, limit: int
    ) -> list[Case]:
        c = t.cases.c
        query = select(t.cases).where(c.platform_id == platform_id)
        if state is not None:
            query = query.where(c.state == state.value)
        if after is not None:
            query = query.where(c.id > after)
        return self._cases(query.order_by(c.id).limit(limit))

    def for_renewal(self, renewal_id: str) -> list[Case]:
        c = t.cases.c
        return self._cases(select(t.cases).where(c.renewal_id == renewal_id).order_by(c.id))

    def overdue(self, now: datetime, limit: int, *, unescalated: bool = False) -> list[Case]:
        c = t.cases.c
        query = select(t.cases).where(c.state == CaseState.OPEN.value, c.deadline < now)
        if unescalated:
            query = query.where(c.escalated_at.is_(None))
        query = query.order_by(c.deadline, c.id).limit(limit)
        if unescalated and self.connection.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return self._cases(query)

    def add_records(self, records: Sequence[CaseRecord]) -> None:
        if records:
            self.connection.execute(
                insert(t.case_events),
                [
                    {
                        "case_id": record.case_id,
                        "kind": record.what,
                        "at": record.at,
                        "detail": json.dumps(dict(record.detail), sort_keys=True),
                        "log_index": record.log_index,
                    }
                    for record in records
                ],
            )

    def history(self, case_id: str) -> list[CaseRecord]:
        c = t.case_events.c
        rows = self.connection.execute(
            select(t.case_events).where(c.case_id == case_id).order_by(c.id)
        )
        return [
            CaseRecord(m["case_id"], m["kind"], m["at"], json.loads(m["detail"]), m["log_index"])
            for m in (row._mapping for row in rows)
        ]

    def add_renewal(self, renewal: Renewal) -> None:
        self.connection.execute(
            insert(t.renewals).values(
                id=renewal.id,
                e164=renewal.e164,
                tenure_start=renewal.tenure_start,
                requested_at=renewal.requested_at,
                completed_at=renewal.completed_at,
            )
        )

    def renewal(self, renewal_id: str) -> Renewal | None:
        row = self.connection.execute(
            select(t.renewals).where(t.renewals.c.id == renewal_id)
        ).first()
        return _renewal(row._mapping) if row else None

    def renewals_for(self, e164: str, tenure_start: datetime) -> list[Renewal]:
        c = t.renewals.c
        rows = self.connection.execute(
            select(t.renewals)
            .where(c.e164 == e164, c.tenure_start == tenure_start)
            .order_by(c.requested_at, c.id)
        )
        return [_renewal(row._mapping) for row in rows]

    def complete_renewal(self, renewal_id: str, at: datetime) -> None:
        c = t.renewals.c
        self.connection.execute(
            update(t.renewals)
            .where(c.id == renewal_id, c.completed_at.is_(None))
            .values(completed_at=at)
        )

    def add_complaint(self, complaint: Complaint) -> None:
        self.connection.execute(
            insert(t.complaints).values(
                id=complaint.id,
                case_id=complaint.case_id,
                category=complaint.category.value,
                text=complaint.text,
                filed_at=complaint.filed_at,
                state=complaint.state,
            )
        )

    def complaints(self, state: str | None, limit: int) -> list[Complaint]:
        c = t.complaints.c
        query = select(t.complaints).order_by(c.filed_at, c.id).limit(limit)
        if state is not None:
            query = query.where(c.state == state)
        return [_complaint(row._mapping) for row in self.connection.execute(query)]

    def complaints_for(self, case_id: str) -> list[Complaint]:
        c = t.complaints.c
        rows = self.connection.execute(
            select(t.complaints).where(c.case_id == case_id).order_by(c.filed_at, c.id)
        )
        return [_complaint(row._mapping) for row in rows]

    def _cases(self, query: Any) -> list[Case]:
        return [_case(row._mapping) for row in self.connection.execute(query)]


def _row(case: Case) -> dict[str, Any]:
    row = {name: getattr(case, name) for name in _FIELDS}
    row |= {
        "kind": case.kind.value,
        "requester": case.requester.value,
        "state": case.state.value,
        "outcome": case.outcome.value if case.outcome else None,
    }
    return row


def _case(m: Any) -> Case:
    values = {name: m[name] for name in _FIELDS}
    return Case(
        kind=CaseKind(m["kind"]),
        requester=Requester(m["requester"]),
        state=CaseState(m["state"]),
        outcome=CaseOutcome(m["outcome"]) if m["outcome"] else None,
        **values,
    )


def _renewal(m: Any) -> Renewal:
    return Renewal(m["id"], m["e164"], m["tenure_start"], m["requested_at"], m["completed_at"])


def _complaint(m: Any) -> Complaint:
    return Complaint(
        m["id"],
        m["case_id"],
        ComplaintCategory(m["category"]),
        m["text"],
        m["filed_at"],
        m["state"],
    )
