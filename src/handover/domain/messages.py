"""Messages to people: what Handover tells a subscriber, and through which channel.

A `Message` is queued in the same transaction as the change that causes it (a sign-in
code, a freeze reminder, "every platform has answered") and sent by `handover work` after
commit, so nothing leaves the process for a change that was rolled back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class Channel(StrEnum):
    SMS = "sms"
    EMAIL = "email"


@dataclass(frozen=True, slots=True)
class Message:
    """One message to one recipient.

    `dedupe_key` makes queueing idempotent: a second message with the same key is dropped
    (a reminder stage of one tenure, the completion of one renewal). `template` names the
    text; `params` fill it in `language` (`en` or `zh-CN`).
    """

    dedupe_key: str
    channel: Channel
    recipient: str
    template: str
    params: dict[str, Any]
    language: str
    created_at: datetime
    send_after: datetime
    id: int = 0
    sent_at: datetime | None = None
    attempts: int = 0
    last_error: str | None = None
