"""The event types a Handover transmitter sends, and the SET that carries one.

The URIs repeat those in `handover.domain.ssf.events` on purpose: this package is vendored by
platforms and so imports nothing else from Handover.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RISC = "https://schemas.openid.net/secevent/risc/event-type/"
SSF = "https://schemas.openid.net/secevent/ssf/event-type/"

IDENTIFIER_RECYCLED = RISC + "identifier-recycled"
VERIFICATION = SSF + "verification"
STREAM_UPDATED = SSF + "stream-updated"
NUMBER_CANCELLED = "urn:handover:secevent:number-cancelled"
NUMBER_RESTORED = "urn:handover:secevent:number-restored"
NUMBER_PORTED = "urn:handover:secevent:number-ported"
CASE_OPENED = "urn:handover:secevent:case-opened"
CASE_CANCELLED = "urn:handover:secevent:case-cancelled"
CASE_REMINDER = "urn:handover:secevent:case-reminder"

#: Types about a phone number (their `sub_id` has the `phone_number` format).
NUMBER_EVENTS: tuple[str, ...] = (
    IDENTIFIER_RECYCLED,
    NUMBER_CANCELLED,
    NUMBER_RESTORED,
    NUMBER_PORTED,
    CASE_OPENED,
    CASE_CANCELLED,
    CASE_REMINDER,
)
#: Types about the stream itself (their `sub_id` has the `opaque` format).
STREAM_EVENTS: tuple[str, ...] = (VERIFICATION, STREAM_UPDATED)


@dataclass(frozen=True, slots=True)
class SecurityEvent:
    """One verified SET (RFC 8417) with its single event.

    `aud` is the audience the verifier was configured with (which the token named);
    `claims` is the whole verified payload, for anything not lifted into a field.
    """

    jti: str
    iat: int
    txn: str | None
    iss: str
    aud: str
    sub_id: dict[str, Any]
    event_type: str
    event: dict[str, Any]
    claims: dict[str, Any]

    @property
    def phone_number(self) -> str | None:
        """The E.164 number this event is about, or None for a stream-level event."""
        if self.sub_id.get("format") == "phone_number":
            return str(self.sub_id["phone_number"])
        return None
