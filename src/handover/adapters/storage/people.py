"""SQL storage for people: sign-in codes, sessions and the carriers' subscriber links."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict
from datetime import datetime

from sqlalchemy import Connection, insert, or_, select, update

from handover.adapters.storage import tables as t
from handover.adapters.storage.dialects import insert_into
from handover.domain.sign_in import Session, SignInCode


class SqlSignInCodeRepository:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def add(self, code: SignInCode) -> None:
        # The columns are the record's fields, by name.
        row = asdict(code) | {"client_address": code.client_address[:64]}
        self.connection.execute(insert(t.sign_in_codes).values(row))

    def for_number(self, e164: str, since: datetime) -> list[SignInCode]:
        c = t.sign_in_codes.c
        query = (
            select(t.sign_in_codes)
            .where(c.e164 == e164, c.created_at > since)
            .order_by(c.created_at)
        )
        return [SignInCode(**row._mapping) for row in self.connection.execute(query)]

    def asked_from(self, client_address: str, since: datetime) -> list[datetime]:
        c = t.sign_in_codes.c
        query = select(c.created_at).where(
            c.client_address == client_address[:64], c.created_at > since
        )
        return list(self.connection.execute(query).scalars())

    def failed(self, code_id: str, at: datetime) -> None:
        c = t.sign_in_codes.c
        self.connection.execute(
            update(t.sign_in_codes)
            .where(c.id == code_id)
            .values(failures=c.failures + 1, last_failure_at=at)
        )

    def use(self, code_id: str, at: datetime) -> bool:
        c = t.sign_in_codes.c
        result = self.connection.execute(
            update(t.sign_in_codes).where(c.id == code_id, c.used_at.is_(None)).values(used_at=at)
        )
        return result.rowcount == 1


class SqlSessionRepository:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def add(self, session: Session) -> None:
        self.connection.execute(insert(t.sessions).values(asdict(session)))

    def get(self, token_hash: str) -> Session | None:
        row = self.connection.execute(
            select(t.sessions).where(t.sessions.c.token_hash == token_hash)
        ).first()
        return Session(**row._mapping) if row else None

    def revoke(self, token_hash: str, at: datetime) -> bool:
        c = t.sessions.c
        result = self.connection.execute(
            update(t.sessions)
            .where(c.token_hash == token_hash, c.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        return result.rowcount == 1


class SqlSubscriberLinkRepository:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def link(self, carrier_id: str, pairs: Collection[tuple[str, str]], at: datetime) -> int:
        if not pairs:
            return 0
        # No check first: a link already stored, or stored by a concurrent call, stands.
        rows = [
            {"carrier_id": carrier_id, "subscriber": a, "linked": b, "attested_at": at}
            for a, b in sorted(set(pairs))
        ]
        added = self.connection.execute(
            insert_into(self.connection, t.subscriber_links)
            .values(rows)
            .on_conflict_do_nothing()
            .returning(t.subscriber_links.c.linked)
        )
        return len(added.all())

    def touching(self, carrier_id: str, subscribers: Collection[str]) -> list[tuple[str, str]]:
        c = t.subscriber_links.c
        refs = sorted(subscribers)
        query = (
            select(c.subscriber, c.linked)
            .where(c.carrier_id == carrier_id, or_(c.subscriber.in_(refs), c.linked.in_(refs)))
            .order_by(c.subscriber, c.linked)
        )
        return [(row.subscriber, row.linked) for row in self.connection.execute(query)]
