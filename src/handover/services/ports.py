"""Interfaces the services need from the outside world; adapters implement them.

Tests use the SQL adapters on SQLite and PostgreSQL; nothing here knows about either.
"""

from __future__ import annotations

import abc
from collections.abc import Collection, Iterable, Iterator, Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from handover.domain.lifecycle import Number
from handover.domain.reports import CarrierReport, Fingerprint, Outcome
from handover.services.model import (
    Carrier,
    Client,
    Ingest,
    NumberHistory,
    Rejection,
    StoredCheckpoint,
)


class ConcurrentUpdate(Exception):
    """Another transaction changed the same numbers first; decide the reports again."""


class NumberRepository(Protocol):
    def lock(self, e164s: Collection[str]) -> dict[str, Number]:
        """The aggregates for these numbers, locked until the unit of work ends."""

    def current(self, e164s: Collection[str]) -> dict[str, Number]:
        """The aggregates as committed, without locking (for reads)."""

    def last_seq(self) -> int:
        """The highest stored event sequence number; 0 for an empty store."""

    def recorded(self, carrier_id: str, event_ids: Collection[str]) -> dict[str, Fingerprint]:
        """Fingerprints of the carrier's already recorded reports among `event_ids`."""

    def record(
        self,
        carrier_id: str,
        ingest_id: str | None,
        accepted: Sequence[Outcome],
        numbers: Iterable[Number],
        recorded_at: datetime,
    ) -> None:
        """Store accepted reports, the numbers they changed and the tenures they touched.

        Raises `ConcurrentUpdate` when a number changed (or was created) since `lock`.
        """

    def history(self, e164: str) -> NumberHistory | None: ...


class CarrierRepository(Protocol):
    def add(self, carrier: Carrier) -> None: ...

    def get(self, carrier_id: str) -> Carrier | None: ...

    def ids(self) -> frozenset[str]: ...

    def set_coverage(self, carrier_id: str, start: datetime) -> None: ...

    def all(self) -> list[Carrier]: ...


class ClientRepository(Protocol):
    def add(self, client: Client) -> None: ...

    def get(self, client_id: str) -> Client | None: ...


class IngestRepository(Protocol):
    def add(self, ingest: Ingest) -> None: ...

    def update(self, ingest: Ingest) -> None: ...

    def get(self, ingest_id: str) -> Ingest | None: ...

    def recent(self, carrier_id: str | None, limit: int) -> list[Ingest]: ...

    def add_rejections(self, ingest_id: str, rejections: Sequence[Rejection]) -> None: ...

    def rejections(self, ingest_id: str, after_line: int, limit: int) -> list[Rejection]: ...


class AuditLogRepository(Protocol):
    def size(self, *, lock: bool = False) -> int:
        """Entries in the log; `lock` holds appends until the unit of work ends."""

    def append(self, entries: Sequence[bytes], created_at: datetime) -> int:
        """Append in order, in this transaction; the index of the first entry."""

    def nodes(self, wanted: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Stored hashes of complete subtrees by (level, index); level 0 are leaves."""

    def leaves(self, start: int = 0, end: int | None = None) -> Iterator[tuple[int, bytes, bytes]]:
        """(index, entry, stored leaf hash) in index order."""

    def stored_nodes(self, level: int) -> Iterator[tuple[int, bytes]]: ...

    def add_checkpoint(self, checkpoint: StoredCheckpoint) -> None: ...

    def checkpoint(self, size: int | None = None) -> StoredCheckpoint | None:
        """The checkpoint of that size, or the latest one."""

    def checkpoints(self) -> list[StoredCheckpoint]: ...


class UnitOfWork(abc.ABC):
    """One transaction. Leaving the block without `commit()` rolls everything back.

    `log_key` keys the pseudonyms in audit-log entries (see `domain.audit`).
    """

    log_key: bytes
    numbers: NumberRepository
    carriers: CarrierRepository
    clients: ClientRepository
    ingests: IngestRepository
    log: AuditLogRepository

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.rollback()

    @abc.abstractmethod
    def commit(self) -> None: ...

    @abc.abstractmethod
    def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...


class ReportSorter(Protocol):
    """Holds parsed reports of one file and gives them back in apply order.

    Implementations spill to disk so a file of any size sorts in bounded memory.
    """

    def add(self, report: CarrierReport) -> None: ...

    def add_rejection(self, rejection: Rejection) -> None: ...

    def sorted_reports(self) -> Iterator[CarrierReport]: ...

    def rejections(self) -> Iterator[Rejection]: ...

    def close(self) -> None: ...
