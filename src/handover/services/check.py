"""The reassigned-number check as a use case: parse the question, look the number up,
answer with `domain.check`.

Answers come from a `CheckIndex`: the in-memory index in production
(`adapters.check_index`), or `StoreIndex`, which reads the store directly and is the
reference every index answer must equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Protocol

from handover.domain.check import (
    CheckAnswer,
    FutureDate,
    NumberFacts,
    Unanswered,
    answer,
    facts_of,
    seconds,
    unanswered,
)
from handover.domain.numbers import parse_number
from handover.domain.rejections import Rejected
from handover.services.ports import UnitOfWorkFactory


class CheckIndex(Protocol):
    def facts(self, e164: str) -> NumberFacts | None:
        """What is known of the number now; None when it was never reported."""

    def coverage_start(self, carrier_id: str) -> int | None:
        """First second the carrier's reports cover (epoch seconds)."""

    @property
    def data_version(self) -> int:
        """The store's event sequence the answers reflect (for receipts)."""


class InvalidQuestion(ValueError):
    """A check that cannot be answered: a bad number or date, or a date in the future."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class CheckResult:
    e164: str
    since: datetime
    answer: CheckAnswer
    data_version: int


def parse_since(value: str | date | datetime) -> datetime:
    """A date (its first second, UTC) or an ISO 8601 date-time (UTC without an offset)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidQuestion("invalid_date", f"{value!r} is not an ISO 8601 date") from None
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:
        raise InvalidQuestion("invalid_date", f"{value!r} is out of range") from None


def check(
    index: CheckIndex,
    number: str,
    since: str | date | datetime,
    now: datetime | None = None,
    region: str | None = None,
) -> CheckResult:
    """Answer one question; raises `InvalidQuestion` for bad input."""
    try:
        e164 = parse_number(number, region).e164
    except Rejected as exc:
        raise InvalidQuestion("invalid_number", exc.detail) from None
    moment = parse_since(since)
    facts = index.facts(e164)
    coverage = index.coverage_start(facts.carrier) if facts else None
    try:
        result = answer(facts, seconds(moment), coverage, seconds(now or datetime.now(UTC)))
    except FutureDate:
        raise InvalidQuestion("future_date", "the date is in the future") from None
    return CheckResult(e164, moment, result, index.data_version)


def recycled_since(
    index: CheckIndex,
    uow_factory: UnitOfWorkFactory,
    number: str,
    since: date,
    now: datetime | None = None,
) -> bool | Unanswered:
    """CAMARA's question: did the subscriber of `number` change after `since`? Without data,
    why not (the carriers' countries are read only then); `InvalidQuestion` for bad input."""
    result = check(index, number, since, now)
    if result.answer.recycled is not None:
        return result.answer.recycled
    return unanswered(
        result.answer, parse_number(result.e164).region, carrier_countries(uow_factory)
    )


def check_many(
    index: CheckIndex,
    questions: Iterable[tuple[str, str | date | datetime]],
    now: datetime | None = None,
) -> Iterator[CheckResult | InvalidQuestion]:
    """Answer many questions in order; a bad one yields its `InvalidQuestion`."""
    now = now or datetime.now(UTC)
    for number, since in questions:
        try:
            yield check(index, number, since, now)
        except InvalidQuestion as exc:
            yield exc


def carrier_countries(uow_factory: UnitOfWorkFactory) -> set[str]:
    """The countries of the registered carriers: where Handover has numbers to answer for
    (a number never reported there is unknown; elsewhere it is not served)."""
    with uow_factory() as uow:
        return {carrier.country for carrier in uow.carriers.all()}


class StoreIndex:
    """A `CheckIndex` that reads the store on every lookup (the reference; slow)."""

    def __init__(self, uow_factory: UnitOfWorkFactory) -> None:
        self.uow_factory = uow_factory
        with uow_factory() as uow:
            self._coverage: Mapping[str, int] = {
                carrier.id: seconds(carrier.covered_from) for carrier in uow.carriers.all()
            }

    def facts(self, e164: str) -> NumberFacts | None:
        with self.uow_factory() as uow:
            number = uow.numbers.current([e164]).get(e164)
        return facts_of(number) if number else None

    def coverage_start(self, carrier_id: str) -> int | None:
        return self._coverage.get(carrier_id)

    @property
    def data_version(self) -> int:
        with self.uow_factory() as uow:
            return uow.numbers.last_seq()
