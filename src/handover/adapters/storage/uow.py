"""The SQL unit of work: one connection, one transaction."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy import Connection, Engine

from handover.adapters.storage.auditlog import SqlAuditLog
from handover.adapters.storage.bindings import SqlBindingRepository
from handover.adapters.storage.carriers import SqlCarrierRepository
from handover.adapters.storage.cases import SqlCaseRepository
from handover.adapters.storage.clients import SqlClientRepository
from handover.adapters.storage.errors import is_store_away, translated, unavailable
from handover.adapters.storage.freeze import SqlFreezeRepository
from handover.adapters.storage.heartbeats import SqlWorkerHeartbeatRepository
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
from handover.services.ports import StoreUnavailable, UnitOfWork


class SqlUnitOfWork(UnitOfWork):
    """A connection and its transaction. A driver error meaning the store is away, whether
    raised opening it, inside the block or committing, leaves as `StoreUnavailable`."""

    def __init__(self, engine: Engine, log_key: bytes) -> None:
        self.engine = engine
        self.log_key = log_key
        self.connection: Connection | None = None

    def __enter__(self) -> Self:
        with translated():
            self.connection = self.engine.connect()
            try:
                self.connection.begin()
            except BaseException:
                self.connection.close()
                self.connection = None
                raise
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
        self.heartbeats = SqlWorkerHeartbeatRepository(self.connection)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self.connection is not None
        away = exc is not None and is_store_away(exc)
        try:
            with translated():
                try:
                    self.rollback()
                finally:
                    self.connection.close()
        except StoreUnavailable:
            if exc is None:
                raise
            # Already leaving with an error: that one says more than the rollback's.
        finally:
            self.connection = None
        if away:
            assert exc is not None
            raise unavailable(exc) from exc

    def commit(self) -> None:
        assert self.connection is not None
        with translated():
            self.connection.commit()

    def rollback(self) -> None:
        if self.connection is not None and self.connection.in_transaction():
            self.connection.rollback()
