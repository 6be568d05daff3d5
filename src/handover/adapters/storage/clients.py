"""SQL storage for OAuth clients (machine credentials; secrets stored hashed)."""

from __future__ import annotations

from sqlalchemy import (
    Connection,
    select,
)

from handover.adapters.storage import tables as t
from handover.services.model import (
    Client,
    Role,
)


class SqlClientRepository:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def add(self, client: Client) -> None:
        self.connection.execute(
            t.clients.insert().values(
                client_id=client.client_id,
                secret_hash=client.secret_hash,
                role=client.role.value,
                scopes=" ".join(sorted(client.scopes)),
                name=client.name,
                carrier_id=client.carrier_id,
                platform_id=client.platform_id,
                created_at=client.created_at,
            )
        )

    def get(self, client_id: str) -> Client | None:
        row = (
            self.connection.execute(select(t.clients).where(t.clients.c.client_id == client_id))
            .mappings()
            .first()
        )
        if row is None:
            return None
        return Client(
            client_id=row["client_id"],
            secret_hash=row["secret_hash"],
            role=Role(row["role"]),
            scopes=frozenset(row["scopes"].split()),
            name=row["name"],
            created_at=row["created_at"],
            carrier_id=row["carrier_id"],
            platform_id=row["platform_id"],
        )
