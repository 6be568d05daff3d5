"""The activation notice: what a new subscriber is told when a used number is handed over.

"This number was used before; these platforms still list it." The current tenure's start
is the boundary: only bindings from before it belong to an earlier holder.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from handover.domain.bindings import Binding, platforms_listing_before
from handover.domain.lifecycle import IN_SERVICE, Number
from handover.domain.rejections import Reason, Rejected


class NoSubscriber(Rejected):
    """The number has no subscriber now, so there is nobody to tell."""

    def __init__(self, detail: str) -> None:
        super().__init__(Reason.ILLEGAL_TRANSITION, detail)


@dataclass(frozen=True, slots=True)
class ActivationNotice:
    e164: str
    tenure_start: datetime
    #: The number had an earlier tenure (it was recycled to this subscriber).
    used_before: bool
    #: Platforms that still list the number from before this tenure, by id.
    platforms: tuple[str, ...]


def activation_notice(number: Number, bindings: Iterable[Binding]) -> ActivationNotice:
    """The notice for a number in service; `NoSubscriber` when it has none now."""
    if number.tenure is None or number.state not in IN_SERVICE:
        state = number.state.value if number.state else "never reported"
        raise NoSubscriber(f"the number has no subscriber now ({state})")
    start = number.tenure.start
    left = platforms_listing_before(bindings, start)
    return ActivationNotice(number.e164, start, number.reassigned_at is not None, tuple(left))
