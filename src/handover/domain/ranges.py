"""Number ranges: the E.164 prefixes the operator grants to carriers.

Number blocks are allocated by prefix (`+86138` is every number starting with it), and a
block belongs to one carrier: no granted prefix is a prefix of another. A number never
reported before may be activated only by the carrier holding its range (`covers`); later
reports follow the lifecycle's holder rules (`domain.lifecycle`).

Lookups run on the ingest path, a million rows a minute: a `RangeTable` keeps one dict
per prefix length, so finding a number's range costs one dict probe per length in use.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

#: The shortest prefix granted: a country code alone ("+1", "+86") is a whole country.
MIN_DIGITS = 1
#: E.164 numbers have at most 15 digits; a prefix is at most a whole number.
MAX_DIGITS = 15


class RangeRule(StrEnum):
    """Why a grant or a revocation was refused."""

    INVALID_PREFIX = "invalid_prefix"
    OVERLAP = "overlap"
    NOT_GRANTED = "not_granted"
    UNKNOWN_CARRIER = "unknown_carrier"


class RangeError(ValueError):
    """A grant or revocation the operator cannot make; `code` says which rule."""

    def __init__(self, code: RangeRule, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class NumberRange:
    """One prefix granted to one carrier, with who granted it and why."""

    prefix: str
    carrier_id: str
    granted_at: datetime
    granted_by: str | None = None
    note: str | None = None


def parse_prefix(text: str) -> str:
    """`text` as a canonical prefix: `+` then 1 to 15 digits (spaces and dashes dropped)."""
    compact = "".join(text.split()).replace("-", "")
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    digits = compact[1:]
    if (
        not compact.startswith("+")
        or not digits.isascii()
        or not digits.isdigit()
        or not MIN_DIGITS <= len(digits) <= MAX_DIGITS
        or digits.startswith("0")
    ):
        raise RangeError(
            RangeRule.INVALID_PREFIX,
            f"{text!r} is not an E.164 prefix: '+' then 1 to {MAX_DIGITS} digits, "
            "not starting with 0",
        )
    return compact


class RangeTable:
    """Prefixes and their carriers, no prefix a prefix of another; longest-prefix lookup.

    `by_length[n]` maps every granted prefix of `n` characters to its carrier. With no
    overlaps at most one prefix matches a number, so the first match is the only one.
    """

    __slots__ = ("_lengths", "by_length")

    def __init__(self, grants: Iterable[tuple[str, str]] = ()) -> None:
        self.by_length: dict[int, dict[str, str]] = {}
        self._lengths: tuple[int, ...] = ()
        for prefix, carrier_id in grants:
            self.add(prefix, carrier_id)

    def __len__(self) -> int:
        return sum(len(level) for level in self.by_length.values())

    def holder(self, e164: str) -> str | None:
        """The carrier holding the range `e164` falls in, or None."""
        for length in self._lengths:
            found = self.by_length[length].get(e164[:length])
            if found is not None:
                return found
        return None

    def covers(self, e164: str) -> bool:
        """Whether any granted prefix starts `e164`."""
        return any(e164[:length] in self.by_length[length] for length in self._lengths)

    def clash(self, prefix: str) -> str | None:
        """A granted prefix that `prefix` would overlap (equal, shorter or longer), or None."""
        for length, level in self.by_length.items():
            if length <= len(prefix):
                if prefix[:length] in level:
                    return prefix[:length]
            else:
                for granted in level:
                    if granted.startswith(prefix):
                        return granted
        return None

    def add(self, prefix: str, carrier_id: str) -> None:
        """Grant `prefix`; `RangeError(OVERLAP)` when it overlaps a granted one."""
        clash = self.clash(prefix)
        if clash is not None:
            raise RangeError(
                RangeRule.OVERLAP,
                f"{prefix} overlaps {clash}, granted to {self.holder_of(clash)}",
            )
        self.by_length.setdefault(len(prefix), {})[prefix] = carrier_id
        # Longest first: with no overlaps the order does not change the answer, but a
        # longer prefix is the more specific block, and most numbers match the longest.
        self._lengths = tuple(sorted(self.by_length, reverse=True))

    def holder_of(self, prefix: str) -> str | None:
        """The carrier `prefix` itself is granted to (an exact prefix, not a number)."""
        return self.by_length.get(len(prefix), {}).get(prefix)


def grant(table: RangeTable, carrier_id: str, prefixes: Iterable[str]) -> list[str]:
    """Add `prefixes` (raw text) for `carrier_id` to `table`, all or none.

    Returns the canonical prefixes; `RangeError` on an invalid prefix, or one overlapping a
    granted prefix or another prefix of the same grant.
    """
    wanted = [parse_prefix(text) for text in prefixes]
    trial = RangeTable(
        (prefix, carrier) for level in table.by_length.values() for prefix, carrier in level.items()
    )
    for prefix in wanted:
        trial.add(prefix, carrier_id)
    for prefix in wanted:
        table.add(prefix, carrier_id)
    return wanted
