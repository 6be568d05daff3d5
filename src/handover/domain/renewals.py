"""Renewal: a new owner's request that fans out into one case per platform (docs/cases.md).

The owner sees the platforms that still list the number from before their tenure began,
and may also ask every other participating platform to check. Only accounts bound before
the tenure's start may be touched; the boundary travels with each case.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from handover.domain.bindings import Binding, platforms_listing_before
from handover.domain.cases import CaseError
from handover.domain.lifecycle import IN_SERVICE, Number, Tenure


@dataclass(frozen=True, slots=True)
class RenewalChoice:
    """What the owner chooses from: platforms by id, never the accounts behind them."""

    e164: str
    tenure_start: datetime
    #: Platforms with a binding from before the tenure (named in the activation notice).
    listed: tuple[str, ...]
    #: Every other participating platform ("check all others").
    others: tuple[str, ...]


def current_tenure(number: Number | None) -> Tenure:
    """The tenure of a number in service; `CaseError` for one nobody holds now."""
    if number is None or number.tenure is None:
        raise CaseError("not-in-service", "the number has no subscriber")
    if number.state not in IN_SERVICE:
        raise CaseError("not-in-service", f"the number is {number.state}")
    return number.tenure


def renewal_choice(
    number: Number | None, bindings: Iterable[Binding], platforms: Iterable[str]
) -> RenewalChoice:
    tenure = current_tenure(number)
    assert number is not None
    listed = platforms_listing_before(bindings, tenure.start)
    others = sorted(set(platforms) - set(listed))
    return RenewalChoice(number.e164, tenure.start, tuple(listed), tuple(others))


def platforms_to_ask(
    choice: RenewalChoice,
    selected: Collection[str],
    check_all_others: bool,
    already_open: Collection[str],
) -> list[str]:
    """The platforms that get a new case: those chosen, less those with one still open.

    Choosing a platform that does not take part is an error, not silently skipped: the
    owner must learn that it will never be asked.
    """
    known = set(choice.listed) | set(choice.others)
    unknown = sorted(set(selected) - known)
    if unknown:
        raise CaseError("unknown-platform", f"not participating: {', '.join(unknown)}")
    wanted = set(selected) | (set(choice.others) if check_all_others else set())
    if not wanted:
        raise CaseError("nothing-selected", "choose platforms or check all others")
    return sorted(wanted - set(already_open))


@dataclass(frozen=True, slots=True)
class Renewal:
    """One submitted renewal; `completed_at` is when its last case was answered."""

    id: str
    e164: str
    tenure_start: datetime
    requested_at: datetime
    completed_at: datetime | None = None
