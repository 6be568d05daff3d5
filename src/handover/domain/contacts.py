"""A subscriber's alternative contact: how Handover reaches someone whose number is gone.

It is keyed by the carrier's pseudonym for the person (`carrier`, `subscriber`), so it
follows them across the numbers they hold and outlives the number they cancel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from handover.domain.message_texts import LANGUAGES
from handover.domain.messages import Channel
from handover.domain.numbers import parse_number
from handover.domain.rejections import Rejected

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")


class InvalidContact(ValueError):
    """A contact that cannot be used; the message names the field."""


@dataclass(frozen=True, slots=True)
class Contact:
    carrier: str
    subscriber: str
    channel: Channel
    address: str
    language: str
    updated_at: datetime


def parse_contact(
    carrier: str, subscriber: str, channel: str, address: str, language: str, now: datetime
) -> Contact:
    """A contact from what the person typed; `InvalidContact` saying which field is wrong."""
    try:
        kind = Channel(channel)
    except ValueError:
        raise InvalidContact("channel: sms or email") from None
    if language not in LANGUAGES:
        raise InvalidContact(f"language: one of {', '.join(LANGUAGES)}")
    address = address.strip()
    if kind is Channel.SMS:
        try:
            address = parse_number(address).e164
        except Rejected as exc:
            raise InvalidContact(f"address: {exc.detail}") from None
    elif len(address) > 254 or not _EMAIL.match(address):
        raise InvalidContact("address: an e-mail address such as name@example.com")
    return Contact(carrier, subscriber, kind, address, language, now)
