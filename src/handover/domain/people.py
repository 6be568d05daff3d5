"""People, as far as Handover knows them: a carrier's pseudonyms and the tenures behind them.

Handover stores no national ID. A person is known by the carrier's subscriber ref on a
tenure; when the same person held numbers under several refs, the carrier attests that the
refs belong together (a link). Links are symmetric and transitive, and never cross
carriers: a ref means something only to the carrier that issued it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from handover.domain.lifecycle import Number, State, Tenure
from handover.domain.reports import MAX_REF

#: Refs one link call may name, and refs one person may gather (bounds every walk).
MAX_LINKS = 100
MAX_REFS = 1_000


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds a number now: the current tenure's carrier-scoped pseudonym.

    `carrier` is the carrier whose pseudonym `subscriber` is (the one that opened the
    tenure), which after a port is not the carrier serving the number.
    """

    e164: str
    carrier: str
    subscriber: str
    tenure_start: datetime
    state: State


@dataclass(frozen=True, slots=True)
class HeldNumber:
    """A number a person holds or held; `state` is the number's while the tenure lasts,
    None once it ended (what became of the number afterwards is someone else's)."""

    e164: str
    start: datetime
    end: datetime | None
    state: State | None

    @property
    def current(self) -> bool:
        return self.state is not None


def holder_of(number: Number | None) -> Holder | None:
    """The holder of a number with an open tenure (frozen included), else None."""
    if number is None or number.state is None or number.state is State.RELEASED:
        return None
    tenure = number.tenure
    if tenure is None or tenure.end is not None:
        return None
    return Holder(number.e164, tenure.carrier, tenure.subscriber, tenure.start, number.state)


def held_numbers(
    tenures: Iterable[tuple[str, Tenure]], numbers: Mapping[str, Number]
) -> list[HeldNumber]:
    """Each tenure as a held number, current ones first, then the latest first."""
    held = []
    for e164, tenure in tenures:
        holder = holder_of(numbers.get(e164))
        current = (
            holder is not None
            and holder.tenure_start == tenure.start
            and holder.carrier == tenure.carrier
            and holder.subscriber == tenure.subscriber
        )
        state = holder.state if current and holder is not None else None
        held.append(HeldNumber(e164, tenure.start, tenure.end, state))
    return sorted(held, key=lambda h: (not h.current, -h.start.timestamp(), h.e164))


def same_person(
    subscriber: str, neighbours: Callable[[Collection[str]], Iterable[tuple[str, str]]]
) -> set[str]:
    """Every ref linked to `subscriber`, directly or through others, itself included.

    `neighbours(refs)` gives the links (pairs) that touch any of `refs`; the walk stops at
    `MAX_REFS`.
    """
    found = {subscriber}
    frontier: set[str] = {subscriber}
    while frontier and len(found) < MAX_REFS:
        reached = {ref for pair in neighbours(frontier) for ref in pair}
        frontier = reached - found
        found |= set(sorted(frontier)[: MAX_REFS - len(found)])
    return found


class InvalidLinks(ValueError):
    """Links a carrier sent that cannot be used; the message names the field."""


def _ref(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidLinks(f"{name}: a non-empty subscriber ref")
    if len(value.strip()) > MAX_REF:
        raise InvalidLinks(f"{name}: at most {MAX_REF} characters")
    return value.strip()


def parse_links(subscriber: Any, same_as: Any) -> tuple[str, list[str]]:
    """A carrier's "these refs are one person" from what it sent; `InvalidLinks` says what
    is wrong."""
    ref = _ref(subscriber, "subscriber")
    if not isinstance(same_as, list) or not same_as:
        raise InvalidLinks("same_as: a list of one or more subscriber refs")
    if len(same_as) > MAX_LINKS:
        raise InvalidLinks(f"same_as: at most {MAX_LINKS} refs at a time")
    others = [_ref(value, f"same_as[{index}]") for index, value in enumerate(same_as)]
    if ref in others:
        raise InvalidLinks("same_as: a ref is always the same as itself; name others")
    return ref, sorted(set(others))


def link_pair(a: str, b: str) -> tuple[str, str]:
    """A link as stored: the two refs in order, so A~B and B~A are one link."""
    return (a, b) if a < b else (b, a)
