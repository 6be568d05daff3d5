"""Interfaces the services need from the outside world; adapters implement them.

Tests use the SQL adapters on SQLite and PostgreSQL; nothing here knows about either.
"""

from __future__ import annotations

import abc
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Protocol, Self

from handover.domain.bindings import Binding, BindingKey
from handover.domain.cases import Case, CaseRecord, CaseState, Complaint
from handover.domain.contacts import Contact
from handover.domain.freeze import FreezeRecord, ReleaseOverride
from handover.domain.lifecycle import Number, Tenure
from handover.domain.messages import Message
from handover.domain.platforms import Platform
from handover.domain.ranges import NumberRange
from handover.domain.reminders import SentReminder
from handover.domain.renewals import Renewal
from handover.domain.reports import CarrierReport, Fingerprint, Outcome
from handover.domain.sign_in import Device, Session, SignInCode
from handover.domain.ssf.events import SetClaims, Signal
from handover.domain.ssf.streams import SigningAlgorithm, Stream
from handover.services.model import (
    Carrier,
    Client,
    DeadLetter,
    Ingest,
    NumberHistory,
    RangeRefusal,
    Rejection,
    StoredCheckpoint,
    StreamPosition,
    WorkerHeartbeat,
)


class ConcurrentUpdate(Exception):
    """Another transaction changed the same numbers first; decide the reports again."""


class StoreUnavailable(Exception):
    """The store does not answer (down, restarting, unreachable): nothing was done, and the
    same request may succeed once it is back. The unit of work raises it in place of its
    driver's connection errors, so services and entry points never see those."""

    #: Seconds a client is asked to wait before trying again (HTTP `Retry-After`).
    retry_after: int = 5

    def __init__(self, detail: str = "the store is not answering") -> None:
        super().__init__(detail)
        self.detail = detail


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

    def tenures_of(self, carrier_id: str, subscribers: Collection[str]) -> list[tuple[str, Tenure]]:
        """(number, tenure) of every tenure opened by `carrier_id` for these subscriber refs."""


class CarrierRepository(Protocol):
    def add(self, carrier: Carrier) -> None: ...

    def get(self, carrier_id: str) -> Carrier | None: ...

    def ids(self) -> frozenset[str]: ...

    def set_coverage(self, carrier_id: str, start: datetime) -> None: ...

    def all(self) -> list[Carrier]: ...


class RangeRepository(Protocol):
    """The number ranges granted to carriers, and the activations refused outside them."""

    def all(self, *, lock: bool = False) -> list[NumberRange]:
        """Every granted range by prefix; `lock` keeps concurrent grants out until commit."""

    def of_carrier(self, carrier_id: str) -> list[NumberRange]: ...

    def add(self, ranges: Sequence[NumberRange]) -> None: ...

    def remove(self, prefix: str) -> NumberRange | None:
        """Revoke one range; the range it was, or None when nothing was granted there."""

    def add_refusals(self, refusals: Sequence[RangeRefusal]) -> None: ...

    def refusals(self, carrier_id: str | None, after_id: int, limit: int) -> list[RangeRefusal]:
        """Refusals with an id above `after_id`, oldest first, `limit` at most."""


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


class PlatformRepository(Protocol):
    def add(self, platform: Platform) -> None: ...

    def get(self, platform_id: str) -> Platform | None: ...

    def all(self) -> list[Platform]: ...


class StreamRepository(Protocol):
    """Streams, their subjects, and their delivery state (cursor, retries, lease)."""

    def add(self, stream: Stream, cursor: int) -> None: ...

    def get(self, stream_id: str, *, lock: bool = False) -> Stream | None: ...

    def for_platform(self, platform_id: str) -> list[Stream]: ...

    def all(self) -> list[Stream]: ...

    def update(self, stream: Stream) -> None: ...

    def delete(self, stream_id: str) -> None:
        """The stream with its subjects, acknowledgements and dead letters."""

    def set_subject(self, stream_id: str, subject: str, included: bool) -> None: ...

    def subject_rules(self, stream_id: str) -> dict[str, bool]: ...

    def position(self, stream_id: str) -> StreamPosition | None: ...

    def move_cursor(
        self,
        stream_id: str,
        cursor: int,
        owner: str | None = None,
        lease_until: datetime | None = None,
    ) -> bool:
        """Set the cursor and clear retries; with `owner`, only while that worker holds
        the lease, which then runs to `lease_until` (False when the lease was lost)."""

    def claim(
        self, now: datetime, owner: str, lease_until: datetime, last_seq: int, limit: int
    ) -> list[Stream]:
        """Lease enabled push streams with work due (`FOR UPDATE SKIP LOCKED` where the
        store has it), so concurrent workers take different streams."""

    def retry_later(
        self, stream_id: str, owner: str, attempts: int, at: datetime, error: str
    ) -> None: ...

    def release(self, stream_id: str, owner: str) -> None: ...

    def add_dead_letter(self, letter: DeadLetter) -> None: ...

    def dead_letters(self, stream_id: str | None = None) -> list[DeadLetter]: ...

    def request_replay(self, stream_id: str, seq: int | None, now: datetime) -> int:
        """Mark dead letters for delivery again (all of a stream's when `seq` is None)."""

    def replays(self, stream_id: str) -> list[DeadLetter]: ...

    def replayed(self, stream_id: str, seq: int, now: datetime) -> None: ...

    def add_acks(self, stream_id: str, acks: dict[int, str | None]) -> None:
        """Poll acknowledgements (`None`) and SET errors above the cursor."""

    def acks(self, stream_id: str) -> dict[int, str | None]: ...

    def drop_acks(self, stream_id: str, through: int) -> None: ...


class SignalOutbox(Protocol):
    def add(self, signals: Sequence[Signal]) -> None:
        """Append in this transaction. Writers are serialised, so `seq` order is commit
        order and a reader never skips a signal committed after it read a later one."""

    def last_seq(self) -> int: ...

    def with_txn(self, txn: str) -> list[Signal]:
        """The signals carrying this `txn` (an audit-log entry's `log:{index}`)."""

    def after(
        self,
        seq: int,
        *,
        stream_id: str,
        platform_id: str,
        event_types: Collection[str],
        limit: int,
        through: int | None = None,
    ) -> list[Signal]:
        """Signals after `seq` (up to `through`) of these types for every stream, for this
        stream or for this platform, in `seq` order."""

    def positions(
        self,
        seq: int,
        *,
        stream_id: str,
        platform_id: str,
        event_types: Collection[str],
        through: int,
    ) -> list[tuple[int, str]]:
        """Like `after`, but only each signal's `seq` and subject (as stored JSON): enough
        to walk over what a receiver acknowledged without loading it."""

    def get(self, seqs: Collection[int]) -> list[Signal]: ...


class BindingRepository(Protocol):
    def get(self, platform_id: str, keys: Collection[BindingKey]) -> dict[BindingKey, Binding]: ...

    def add(self, bindings: Sequence[Binding], registered_at: datetime) -> None: ...

    def update(self, bindings: Sequence[Binding]) -> None:
        """New `bound_since` and `tier` for bindings that exist."""

    def remove(self, platform_id: str, keys: Collection[BindingKey]) -> int: ...

    def for_platform(
        self, platform_id: str, e164: str | None, after: BindingKey | None, limit: int
    ) -> list[Binding]:
        """The platform's bindings in (number, account ref) order, after `after`."""

    def for_number(self, e164: str) -> list[Binding]:
        """Every platform's bindings on a number (for renewals; never shown whole)."""


class MessageOutbox(Protocol):
    """Messages to people, queued in the transaction that causes them (see `domain.messages`)."""

    def add(self, messages: Sequence[Message]) -> int:
        """Queue messages whose `dedupe_key` is new; how many were queued. A key another
        transaction is queueing at the same time is queued once, without an error."""

    def due(self, now: datetime, limit: int) -> list[Message]:
        """Unsent messages whose `send_after` has come, oldest first (locked, skipping
        rows another worker holds, where the store can)."""

    def claim(self, now: datetime, limit: int, until: datetime) -> list[Message]:
        """Take the `due` messages for sending: their `send_after` moves to `until`, so once
        committed no other worker takes them before then (nor after a sent or failed
        attempt is recorded); a claim never recorded lapses at `until`."""

    def sent(self, message_id: int, at: datetime) -> None: ...

    def failed(self, message_id: int, error: str, retry_at: datetime) -> None:
        """Count a failed attempt and try again at `retry_at` (unless it was sent
        meanwhile, by a worker that took it over after its claim lapsed)."""

    def for_key(self, dedupe_key: str) -> Message | None: ...

    def recent(self, recipient: str | None, limit: int) -> list[Message]:
        """The newest messages (to one recipient, or to anyone), newest first."""


class FreezeRepository(Protocol):
    """What the freeze policy reads and writes: reminders to previous owners, overrides."""

    def records(self, e164s: Collection[str]) -> dict[str, FreezeRecord]:
        """Each number's bindings, the reminders logged per freeze, and the cancellation
        that began the current freeze."""

    def due_candidates(self, now: datetime, max_freeze: timedelta, limit: int) -> list[str]:
        """Frozen numbers with a reminder stage due at `now` (locked, skipping rows another
        worker holds, where the store can)."""

    def add_reminders(self, reminders: Sequence[SentReminder]) -> None: ...

    def reminders(self, e164: str) -> list[SentReminder]: ...

    def add_overrides(self, overrides: Sequence[ReleaseOverride]) -> None: ...

    def overrides(self, carrier_id: str, event_ids: Collection[str]) -> dict[str, str]:
        """The override reasons of the carrier's recorded releases among `event_ids`."""


class ContactRepository(Protocol):
    def get(self, carrier_id: str, subscriber: str) -> Contact | None: ...

    def put(self, contact: Contact) -> None:
        """Create or replace the person's contact (in one statement: concurrent puts do
        not conflict, the last one stands)."""

    def remove(self, carrier_id: str, subscriber: str) -> bool: ...


class CaseRepository(Protocol):
    """Cases with their history, the renewals that group them, and complaints."""

    def add(self, cases: Sequence[Case]) -> None: ...

    def get(self, case_id: str, *, lock: bool = False) -> Case | None: ...

    def update(self, case: Case) -> None:
        """Store a changed case; `ConcurrentUpdate` when another transaction changed it
        since it was read (its `version` moved on)."""

    def for_number(self, e164: str, state: CaseState | None = None) -> list[Case]: ...

    def for_platform(
        self, platform_id: str, state: CaseState | None, after: str | None, limit: int
    ) -> list[Case]:
        """The platform's cases, oldest first, after the case id `after`."""

    def for_renewal(self, renewal_id: str) -> list[Case]: ...

    def overdue(self, now: datetime, limit: int, *, unescalated: bool = False) -> list[Case]:
        """Open cases past their deadline, most overdue first (`unescalated`: only those
        not escalated yet, locked for the escalating worker where the store can)."""

    def add_records(self, records: Sequence[CaseRecord]) -> None: ...

    def history(self, case_id: str) -> list[CaseRecord]: ...

    def add_renewal(self, renewal: Renewal) -> None: ...

    def renewal(self, renewal_id: str) -> Renewal | None: ...

    def renewals_for(self, e164: str, tenure_start: datetime) -> list[Renewal]: ...

    def complete_renewal(self, renewal_id: str, at: datetime) -> None: ...

    def add_complaint(self, complaint: Complaint) -> None: ...

    def complaints(self, state: str | None, limit: int) -> list[Complaint]: ...

    def complaints_for(self, case_id: str) -> list[Complaint]: ...


class SignInCodeRepository(Protocol):
    """Sign-in codes, and when each client address asked for one anonymously."""

    def lock_address(self, client_address: str) -> None:
        """Hold back other transactions locking this address until this one ends (so that
        a count of its requests includes every concurrent one)."""

    def lock_number(self, e164: str) -> None:
        """Hold back other transactions locking this number (known or not) until this one
        ends, so that codes and wrong guesses are counted one transaction at a time."""

    def add(self, code: SignInCode) -> None: ...

    def for_number(self, e164: str, since: datetime) -> list[SignInCode]:
        """The number's codes (every lane) created after `since`, oldest first."""

    def asked(self, client_address: str, at: datetime, forget_before: datetime) -> None:
        """Record that the address asked for a code (and forget its asks before `forget_before`)."""

    def asked_from(self, client_address: str, since: datetime) -> list[datetime]:
        """When the address asked for codes after `since`."""

    def failed(self, code_id: str) -> None:
        """Count one wrong 6-digit guess at the code (atomically)."""

    def use(self, code_id: str, at: datetime) -> bool:
        """Mark the code used; False when it already was (a concurrent sign-in won)."""


class SignInDeviceRepository(Protocol):
    """Device credentials (kept by the hash of their token)."""

    def add(self, device: Device) -> None: ...

    def get(self, token_hash: str) -> Device | None: ...

    def save(self, device: Device) -> None:
        """Store the device's failures, expiry and revocation."""


class SessionRepository(Protocol):
    def add(self, session: Session) -> None: ...

    def get(self, token_hash: str) -> Session | None: ...

    def revoke(self, token_hash: str, at: datetime) -> bool: ...


class SubscriberLinkRepository(Protocol):
    """A carrier's attestations that two of its subscriber refs are one person."""

    def link(self, carrier_id: str, pairs: Collection[tuple[str, str]], at: datetime) -> int:
        """Store the links not stored yet (pairs in `link_pair` order); how many were new."""

    def touching(self, carrier_id: str, subscribers: Collection[str]) -> list[tuple[str, str]]:
        """The carrier's links with either end among `subscribers`."""


class MessageSender(Protocol):
    """Sends one text to one recipient on one channel (an SMS gateway, a mail server).

    Raises `SendFailed` when the message did not go out."""

    def send(self, recipient: str, text: str) -> None: ...


class SendFailed(Exception):
    """A message was not sent; `permanent` when sending it again cannot help."""

    def __init__(self, detail: str, *, permanent: bool = False) -> None:
        super().__init__(detail)
        self.permanent = permanent


class WorkerHeartbeatRepository(Protocol):
    def beat(self, heartbeat: WorkerHeartbeat) -> None:
        """Store this worker's heartbeat, replacing its previous one."""

    def latest(self) -> list[WorkerHeartbeat]:
        """Every worker's last heartbeat, the freshest first."""

    def forget_before(self, before: datetime) -> int:
        """Drop heartbeats older than `before` (workers long gone); how many."""


class UnitOfWork(abc.ABC):
    """One transaction. Leaving the block without `commit()` rolls everything back.

    `log_key` keys the pseudonyms in audit-log entries (see `domain.audit`).
    """

    log_key: bytes
    numbers: NumberRepository
    carriers: CarrierRepository
    ranges: RangeRepository
    clients: ClientRepository
    ingests: IngestRepository
    log: AuditLogRepository
    platforms: PlatformRepository
    streams: StreamRepository
    signals: SignalOutbox
    bindings: BindingRepository
    messages: MessageOutbox
    contacts: ContactRepository
    freeze: FreezeRepository
    sign_in_codes: SignInCodeRepository
    sign_in_devices: SignInDeviceRepository
    sessions: SessionRepository
    subscriber_links: SubscriberLinkRepository
    cases: CaseRepository
    heartbeats: WorkerHeartbeatRepository

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


class ReportSorterFactory(Protocol):
    """A new, empty sorter for each file."""

    def __call__(self) -> ReportSorter: ...


class SetSigner(Protocol):
    """Signs SETs (compact JWS, `typ: secevent+jwt`) with the current key for an algorithm."""

    def sign(self, claims: SetClaims, algorithm: SigningAlgorithm) -> str: ...

    def algorithms(self) -> list[str]: ...

    def jwks(self) -> dict[str, Any]:
        """The public keys receivers verify with (every configured key, old ones too)."""


@dataclass(frozen=True, slots=True)
class PushResult:
    """What a receiver answered to one push (RFC 8935 §2.2/2.3).

    `permanent` means sending the same SET again cannot help (the receiver refused it as
    malformed, 400); anything else that is not `delivered` is worth a retry.
    """

    delivered: bool
    status: int | None = None
    error: str = ""
    permanent: bool = False


class SetSender(Protocol):
    def push(self, url: str, authorization: str | None, token: str) -> PushResult: ...


class CertificateSigner(Protocol):
    """Signs tenure certificates (compact JWS, `typ: handover-tenure+jwt`)."""

    @property
    def issuer(self) -> str: ...

    def sign(self, claims: Mapping[str, Any]) -> str: ...


class CertificateVerifier(Protocol):
    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a token signed as a certificate by one of our keys; raises
        `domain.certificates.Unverifiable` (malformed, or bad signature) otherwise."""
