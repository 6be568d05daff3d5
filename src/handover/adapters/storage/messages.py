"""SQL storage for messages to people: the outbox (SMS, e-mail) and their contacts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, select, update

from handover.adapters.storage import tables as t
from handover.adapters.storage.dialects import insert_into
from handover.domain.contacts import Contact
from handover.domain.messages import Channel, Message


class SqlMessageOutbox:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def add(self, messages: Sequence[Message]) -> int:
        fresh: dict[str, Message] = {}
        for message in messages:
            fresh.setdefault(message.dedupe_key, message)
        if not fresh:
            return 0
        # One statement, no check first: a key queued by a concurrent transaction is
        # skipped (once it commits) instead of failing this whole transaction.
        added = self.connection.execute(
            insert_into(self.connection, t.notifications)
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(t.notifications.c.id),
            [_row(m) for m in fresh.values()],
        )
        return len(added.all())

    def due(self, now: datetime, limit: int) -> list[Message]:
        c = t.notifications.c
        query = (
            select(t.notifications)
            .where(c.sent_at.is_(None), c.send_after <= now)
            .order_by(c.send_after, c.id)
            .limit(limit)
        )
        if self.connection.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return [_message(row._mapping) for row in self.connection.execute(query)]

    def claim(self, now: datetime, limit: int, until: datetime) -> list[Message]:
        messages = self.due(now, limit)
        if messages:
            c = t.notifications.c
            self.connection.execute(
                update(t.notifications)
                .where(c.id.in_([m.id for m in messages]))
                .values(send_after=until)
            )
        return messages

    def sent(self, message_id: int, at: datetime) -> None:
        c = t.notifications.c
        self.connection.execute(
            update(t.notifications)
            .where(c.id == message_id)
            .values(sent_at=at, attempts=c.attempts + 1, last_error=None)
        )

    def failed(self, message_id: int, error: str, retry_at: datetime) -> None:
        c = t.notifications.c
        self.connection.execute(
            update(t.notifications)
            .where(c.id == message_id, c.sent_at.is_(None))
            .values(attempts=c.attempts + 1, last_error=error[:2000], send_after=retry_at)
        )

    def for_key(self, dedupe_key: str) -> Message | None:
        c = t.notifications.c
        row = self.connection.execute(
            select(t.notifications).where(c.dedupe_key == dedupe_key)
        ).first()
        return _message(row._mapping) if row else None

    def recent(self, recipient: str | None, limit: int) -> list[Message]:
        c = t.notifications.c
        query = select(t.notifications).order_by(c.id.desc()).limit(limit)
        if recipient is not None:
            query = query.where(c.recipient == recipient)
        return [_message(row._mapping) for row in self.connection.execute(query)]


def _row(message: Message) -> dict[str, Any]:
    return {
        "dedupe_key": message.dedupe_key,
        "channel": message.channel.value,
        "recipient": message.recipient,
        "template": message.template,
        "params": json.dumps(message.params, ensure_ascii=False, sort_keys=True),
        "language": message.language,
        "created_at": message.created_at,
        "send_after": message.send_after,
        "sent_at": None,
        "attempts": 0,
        "last_error": None,
        "log_index": None,
    }


def _message(row: Any) -> Message:
    return Message(
        dedupe_key=row["dedupe_key"],
        channel=Channel(row["channel"]),
        recipient=row["recipient"],
        template=row["template"],
        params=json.loads(row["params"]),
        language=row["language"],
        created_at=row["created_at"],
        send_after=row["send_after"],
        id=row["id"],
        sent_at=row["sent_at"],
        attempts=row["attempts"],
        last_error=row["last_error"],
    )


class SqlContactRepository:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def get(self, carrier_id: str, subscriber: str) -> Contact | None:
        c = t.subscriber_contacts.c
        row = self.connection.execute(
            select(t.subscriber_contacts).where(
                c.carrier_id == carrier_id, c.subscriber == subscriber
            )
        ).first()
        if row is None:
            return None
        m = row._mapping
        return Contact(
            m["carrier_id"],
            m["subscriber"],
            Channel(m["channel"]),
            m["address"],
            m["language"],
            m["updated_at"],
        )

    def put(self, contact: Contact) -> None:
        row = {
            "carrier_id": contact.carrier,
            "subscriber": contact.subscriber,
            "channel": contact.channel.value,
            "address": contact.address,
            "language": contact.language,
            "updated_at": contact.updated_at,
        }
        statement = insert_into(self.connection, t.subscriber_contacts).values(row)
        self.connection.execute(
            statement.on_conflict_do_update(
                index_elements=["carrier_id", "subscriber"],
                set_={
                    name: statement.excluded[name]
                    for name in ("channel", "address", "language", "updated_at")
                },
            )
        )

    def remove(self, carrier_id: str, subscriber: str) -> bool:
        c = t.subscriber_contacts.c
        result = self.connection.execute(
            delete(t.subscriber_contacts).where(
                c.carrier_id == carrier_id, c.subscriber == subscriber
            )
        )
        return bool(result.rowcount)
