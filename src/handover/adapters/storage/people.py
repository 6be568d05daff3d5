"""SQL storage for people: sign-in codes and devices, sessions and the carriers' subscriber
links."""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import asdict
from datetime import datetime

from sqlalchemy import Connection, delete, insert, or_, select, text, update

from handover.adapters.storage import tables as t
from handover.adapters.storage.dialects import insert_into
from handover.domain.sign_in import Device, Session, SignInCode


def _lock_key(kind: str, value: str) -> int:
    """A PostgreSQL advisory-lock key (signed 64 bits) for one address or number. Two
    values sharing a key only queue behind each other."""
    digest = hashlib.sha256(f"handover:sign-in:{kind}:{value}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class SqlSignInCodeRepository:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.postgres = connection.dialect.name == "postgresql"

    def _lock(self, kind: str, value: str) -> None:
        # Held to commit or rollback. SQLite needs none: BEGIN IMMEDIATE already serialises
        # every writing transaction, and each reads what the ones before it committed.
        if self.postgres:
            lock = text("SELECT pg_advisory_xact_lock(:key)")
            self.connection.execute(lock, {"key": _lock_key(kind, value)})

    def lock_address(self, client_address: str) -> None:
        self._lock("address", client_address[:64])

    def lock_number(self, e164: str) -> None:
        self._lock("number", e164)

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

    def asked(self, client_address: str, at: datetime, forget_before: datetime) -> None:
        c = t.sign_in_requests.c
        address = client_address[:64]
        self.connection.execute(
            delete(t.sign_in_requests).where(
                c.client_address == address, c.created_at < forget_before
            )
        )
        self.connection.execute(
            insert(t.sign_in_requests).values(client_address=address, created_at=at)
        )

    def asked_from(self, client_address: str, since: datetime) -> list[datetime]:
        c = t.sign_in_requests.c
        query = select(c.created_at).where(
            c.client_address == client_address[:64], c.created_at > since
        )
        return list(self.connection.execute(query).scalars())

    def failed(self, code_id: str) -> None:
        c = t.sign_in_codes.c
        self.connection.execute(
            update(t.sign_in_codes).where(c.id == code_id).values(failures=c.failures + 1)
        )

    def use(self, code_id: str, at: datetime) -> bool:
        c = t.sign_in_codes.c
        result = self.connection.execute(
            update(t.sign_in_codes).where(c.id == code_id, c.used_at.is_(None)).values(used_at=at)
        )
        return result.rowcount == 1


class SqlSignInDeviceRepository:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def add(self, device: Device) -> None:
        self.connection.execute(insert(t.sign_in_devices).values(asdict(device)))

    def get(self, token_hash: str) -> Device | None:
        row = self.connection.execute(
            select(t.sign_in_devices).where(t.sign_in_devices.c.token_hash == token_hash)
        ).first()
        return Device(**row._mapping) if row else None

    def save(self, device: Device) -> None:
        self.connection.execute(
            update(t.sign_in_devices)
            .where(t.sign_in_devices.c.id == device.id)
            .values(
                failures=device.failures,
                expires_at=device.expires_at,
                revoked_at=device.revoked_at,
            )
        )


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
