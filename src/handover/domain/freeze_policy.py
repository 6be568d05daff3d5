"""Freeze policy: how long a cancelled number must rest before it may be recycled."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType

#: Minimum freeze in days per region. China's telecom service standard asks for at least
#: 90 days; the US FCC reassigned-numbers rules assume at least 45.
DEFAULT_MINIMUM_FREEZE_DAYS: Mapping[str, int] = MappingProxyType({"CN": 90, "US": 45})


@dataclass(frozen=True, slots=True)
class FreezePolicy:
    minimum_days: Mapping[str, int] = field(default_factory=lambda: DEFAULT_MINIMUM_FREEZE_DAYS)
    default_days: int = 90
    #: The longest a freeze may be extended (unresolved high-value bindings), in days from
    #: cancellation; the minimum wins where it is longer.
    max_freeze_days: int = 365

    def minimum_freeze(self, region: str) -> timedelta:
        return timedelta(days=self.minimum_days.get(region, self.default_days))

    def maximum_freeze(self) -> timedelta:
        return timedelta(days=self.max_freeze_days)
