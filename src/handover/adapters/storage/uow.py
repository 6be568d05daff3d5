"""The SQL unit of work: one connection, one transaction."""

from __future__ import annotations

from typing import Self

from sqlalchemy import Connection, Engine

from handover.adapters.storage.auditlog import SqlAuditLog
from handover.adapters.storage.bindings import SqlBindingRepository
from handover.adapters.storage.carriers import SqlCarrierRepository
from handover.adapters.storage.cases import SqlCaseRepository
from handover.adapters.storage.clients import SqlClientRepository
from handover.adapters.storage.freeze import SqlFreezeRepository
from handover.adapters.storage.ingests import SqlIngestRepository
from handover.adapters.storage.messages import SqlContactRepository, SqlMessageOutbox
from handover.adapters.storage.numbers import SqlNumberRepository
from handover.adapters.storage.people import (
    SqlSessionRepository,
    SqlSignInCodeRepository,
    SqlSignInDeviceRepository,
    SqlSubscriberLinkRepository,
)
from handover.adapters.storage.platforms import SqlPlatformRepository
from handover.adapters.storage.ranges import SqlRangeRepository
from handover.adapters.storage.ssf import SqlSignalOutbox, SqlStreamRepository
from handover.services.ports import UnitOfWork


class SqlUnitOfWork(UnitOfWork):
    def __init__(self, engine: Engine, log_key: bytes) -> None:
        self.engine = engine
        self.log_key = log_key
        self.connection: Connection | None = None

    def __enter__(self) -> Self:
        self.connection = self.engine.connect()
        self.connection.begin()
        self.numbers = SqlNumberRepository(self.connection)
        self.carriers = SqlCarrierRepository(self.connection)
        self.ranges = SqlRangeRepository(self.connection)
        self.clients = SqlClientRepository(self.connection)
        self.ingests = SqlIngestRepository(self.connection)
        self.log = SqlAuditLog(self.connection)
        self.platforms = SqlPlatformRepository(self.connection)
        self.streams = SqlStreamRepository(self.connection)
        self.signals = SqlSignalOutbox(self.connection)
        self.bindings = SqlBindingRepository(self.connection)
        self.messages = SqlMessageOutbox(self.connection)
        self.contacts = SqlContactRepository(self.connection)
        self.freeze = SqlFreezeRepository(self.connection)
        self.sign_in_codes = SqlSignInCodeRepository(self.connection)
        self.sign_in_devices = SqlSignInDeviceRepository(self.connection)
        self.sessions = SqlSessionRepository(self.connection)
        self.subscriber_links = SqlSubscriberLinkRepository(self.connection)
        self.cases = SqlCaseRepository(self.connection)
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self.connection is not None
        try:
            self.rollback()
        finally:
            self.connection.close()
            self.connection = None

    def commit(self) -> None:
        assert self.connection is not None
        self.connection.commit()

    def rollback(self) -> None:
        if self.connection is not None and self.connection.in_transaction():
            self.connection.rollback()
