"""People: who holds a number, every number the same person holds or held, their links
and their alternative contact (see `domain.people`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from handover.domain.contacts import Contact, parse_contact
from handover.domain.lifecycle import IN_SERVICE
from handover.domain.people import (
    HeldNumber,
    Holder,
    held_numbers,
    holder_of,
    link_pair,
    parse_links,
    same_person,
)
from handover.services.ports import UnitOfWork, UnitOfWorkFactory


def holder(uow: UnitOfWork, e164: str, *, in_service: bool = True) -> Holder | None:
    """The current tenure's holder of a number in service (active or suspended); with
    `in_service=False` also of a frozen number, whose tenure lasts until release."""
    found = holder_of(uow.numbers.current([e164]).get(e164))
    if found is None or (in_service and found.state not in IN_SERVICE):
        return None
    return found


def _refs_of(uow: UnitOfWork, carrier_id: str, subscriber: str) -> set[str]:
    """The subscriber ref and every ref the carrier linked to it, directly or not."""
    return same_person(subscriber, lambda refs: uow.subscriber_links.touching(carrier_id, refs))


def numbers_of(uow: UnitOfWork, e164: str) -> list[HeldNumber]:
    """Every number the holder of `e164` holds or held, as the holding carrier attests:
    the tenures under the same subscriber ref or a ref linked to it. Empty when `e164`
    has no open tenure."""
    found = holder(uow, e164, in_service=False)
    if found is None:
        return []
    tenures = uow.numbers.tenures_of(found.carrier, _refs_of(uow, found.carrier, found.subscriber))
    return held_numbers(tenures, uow.numbers.current({number for number, _ in tenures}))


def my_numbers(uow_factory: UnitOfWorkFactory, e164: str) -> list[HeldNumber]:
    """Every number the signed-in holder of `e164` holds or held (see `numbers_of`)."""
    with uow_factory() as uow:
        return numbers_of(uow, e164)


@dataclass(frozen=True, slots=True)
class Linked:
    subscriber: str
    #: Every ref now known to be the same person (the subscriber excluded).
    same_as: list[str]
    created: int


def link_subscribers(
    uow_factory: UnitOfWorkFactory,
    carrier_id: str,
    subscriber: object,
    same_as: object,
    now: datetime,
) -> Linked:
    """A carrier attests that its refs are one person (idempotent); `InvalidLinks` on bad
    input."""
    ref, others = parse_links(subscriber, same_as)
    with uow_factory() as uow:
        created = uow.subscriber_links.link(
            carrier_id, [link_pair(ref, other) for other in others], now
        )
        everyone = _refs_of(uow, carrier_id, ref)
        uow.commit()
    return Linked(ref, sorted(everyone - {ref}), created)


def contact(uow_factory: UnitOfWorkFactory, carrier_id: str, subscriber: str) -> Contact | None:
    """The contact stored under exactly this ref (what the person set while signed in)."""
    with uow_factory() as uow:
        return uow.contacts.get(carrier_id, subscriber)


def contact_of(uow: UnitOfWork, carrier_id: str, subscriber: str) -> Contact | None:
    """How to reach the person behind a ref: the contact set under it, else the newest one
    set under a ref the carrier linked to it (a person who set it while signed in with
    their new number is reached about the old one)."""
    own = uow.contacts.get(carrier_id, subscriber)
    if own is not None:
        return own
    found = [uow.contacts.get(carrier_id, ref) for ref in _refs_of(uow, carrier_id, subscriber)]
    known = [c for c in found if c is not None]
    return max(known, key=lambda c: c.updated_at) if known else None


def set_contact(
    uow_factory: UnitOfWorkFactory,
    carrier_id: str,
    subscriber: str,
    channel: str,
    address: str,
    language: str,
    now: datetime,
) -> Contact:
    """Store the person's alternative contact; `InvalidContact` says which field is wrong."""
    found = parse_contact(carrier_id, subscriber, channel, address, language, now)
    with uow_factory() as uow:
        uow.contacts.put(found)
        uow.commit()
    return found


def remove_contact(uow_factory: UnitOfWorkFactory, carrier_id: str, subscriber: str) -> bool:
    with uow_factory() as uow:
        removed = uow.contacts.remove(carrier_id, subscriber)
        uow.commit()
    return removed
