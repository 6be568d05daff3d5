"""The previous owner's checklist: every binding on a number they hold, and what became of it.

Before cancelling, a person sees each account still bound to their number, asks the
platform to move it to another of their numbers (`migrate`) or to let it go (`unbind`),
and sees whether the number is ready to give up. Only bindings made during their own
tenure are theirs; older ones were left by whoever held the number before.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from handover.domain.bindings import Binding
from handover.domain.cases import Case, CaseState, Requester
from handover.domain.platforms import Tier


@dataclass(frozen=True, slots=True)
class ChecklistItem:
    platform_id: str
    account_ref: str
    #: The binding as registered now; None once a case resolved it and it was removed.
    binding: Binding | None
    #: The latest case about this binding, if any.
    case: Case | None

    @property
    def tier(self) -> Tier | None:
        return self.binding.tier if self.binding else None

    @property
    def status(self) -> str:
        """untouched, open, or the platform's outcome (cancelled cases count as untouched)."""
        if self.case is None or self.case.state is CaseState.CANCELLED:
            return "untouched"
        if self.case.state is CaseState.OPEN:
            return "open"
        assert self.case.outcome is not None
        return self.case.outcome.value

    @property
    def resolved(self) -> bool:
        return self.binding is None or (self.case is not None and self.case.resolves_binding)


@dataclass(frozen=True, slots=True)
class Readiness:
    total: int
    resolved: int
    open: int
    untouched: int
    high_unresolved: int

    @property
    def ready(self) -> bool:
        """Nothing valuable would be left for the next holder of the number."""
        return self.high_unresolved == 0


@dataclass(frozen=True, slots=True)
class NumberChecklist:
    e164: str
    tenure_start: datetime
    items: list[ChecklistItem]

    @property
    def readiness(self) -> Readiness:
        items = self.items
        return Readiness(
            total=len(items),
            resolved=sum(item.resolved for item in items),
            open=sum(item.status == "open" for item in items),
            untouched=sum(item.status == "untouched" and not item.resolved for item in items),
            high_unresolved=sum(item.tier is Tier.HIGH and not item.resolved for item in items),
        )


def own_bindings(bindings: Iterable[Binding], tenure_start: datetime) -> list[Binding]:
    """The bindings made during the tenure that began at `tenure_start`."""
    return [binding for binding in bindings if not binding.bound_before(tenure_start)]


def number_checklist(
    e164: str, tenure_start: datetime, bindings: Iterable[Binding], cases: Iterable[Case]
) -> NumberChecklist:
    """One number's checklist from its registered bindings and its previous-owner cases
    (cases keep resolved bindings on the list after the registry dropped them)."""
    latest: dict[tuple[str, str], Case] = {}
    for case in sorted(cases, key=lambda c: c.id):
        if (
            case.requester is Requester.PREVIOUS_OWNER
            and case.tenure_start == tenure_start
            and case.account_ref is not None
        ):
            latest[(case.platform_id, case.account_ref)] = case
    registered = {(b.platform_id, b.account_ref): b for b in own_bindings(bindings, tenure_start)}
    keys = sorted(set(registered) | set(latest))
    items = [
        ChecklistItem(p, ref, registered.get((p, ref)), latest.get((p, ref))) for p, ref in keys
    ]
    return NumberChecklist(e164, tenure_start, items)
