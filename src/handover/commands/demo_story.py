"""The demo's renewal story, seeded through the services on a fresh store.

Alice held RECYCLED from 2021, cancelled it in 2023; after the freeze the carrier gave it to
Bob in 2024, while three platforms still listed Alice's old accounts on it. Bob renews;
the example platform (`demo-pay`) answers at once, the others leave their cases open. Alice
still holds ALICE_NOW, with accounts of her own on it (her checklist). Carol renewed
OVERDUE four days ago and `demo-loans` never answered: the regulator's overdue list.

Everything goes through the same services as the API (carrier reports, platform binding
registrations, renewals, answers), with past dates, so the store holds exactly what the
API would have built. `handover demo` calls `seed_story` before it serves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from handover.config import Settings
from handover.domain.cases import CaseState
from handover.services import access, bindings, cases, ranges, reporting
from handover.services.access import IssuedCredentials
from handover.services.model import Role
from handover.services.ports import UnitOfWorkFactory

CARRIER = "demo-mobile"
#: The number blocks the demo's carrier is granted (`handover carrier grant`).
CARRIER_RANGES = ("+86136", "+86137", "+86139")
#: Held by alice 2021-03-01 .. 2023-01-15 (cancelled), released 2023-05-01, bob's since 2024-03-01.
RECYCLED = "+8613912345678"
#: Alice's number now (the same subscriber ref at the same carrier).
ALICE_NOW = "+8613712345678"
#: Held by dan until 2022, carol's since 2023; carol renewed it four days before the demo.
OVERDUE = "+8613612345678"

#: id -> (name, category, tier): the platforms taking part.
PLATFORMS: dict[str, tuple[str, str, str]] = {
    "demo-pay": ("Demo Pay", "payment", "high"),
    "demo-bank": ("Demo Bank", "banking", "high"),
    "demo-loans": ("Demo Loans", "lending", "high"),
    "demo-chat": ("Demo Chat", "social", "medium"),
    "demo-shop": ("Demo Shop", "e_commerce", "low"),
}
#: The platform the example receiver (examples/platform_receiver) runs as; it answers cases.
ANSWERING = "demo-pay"

_EVENTS = [
    ("alice-1", RECYCLED, "activated", "2021-03-01", "alice"),
    ("alice-2", RECYCLED, "cancelled", "2023-01-15", None),
    ("alice-3", RECYCLED, "released", "2023-05-01", None),
    ("bob-1", RECYCLED, "activated", "2024-03-01", "bob"),
    ("alice-now-1", ALICE_NOW, "activated", "2022-12-01", "alice"),
    ("dan-1", OVERDUE, "activated", "2020-05-01", "dan"),
    ("dan-2", OVERDUE, "cancelled", "2022-06-01", None),
    ("dan-3", OVERDUE, "released", "2022-10-01", None),
    ("carol-1", OVERDUE, "activated", "2023-02-01", "carol"),
]
#: platform -> (number, account ref, bound since, tier). Registered after the releases, as
#: platforms that joined late would: registered earlier, alice's and dan's high-value
#: accounts would have held their numbers' release (docs/freeze.md).
_BINDINGS: dict[str, list[tuple[str, str, str, str]]] = {
    "demo-pay": [(RECYCLED, "pay-alice", "2021-04-10", "high")],
    "demo-bank": [
        (RECYCLED, "bank-alice", "2021-06-01", "high"),
        (ALICE_NOW, "bank-alice-now", "2023-01-10", "high"),
    ],
    "demo-chat": [
        (RECYCLED, "chat-alice", "2022-02-14", "medium"),
        (OVERDUE, "chat-dan", "2021-01-01", "medium"),
    ],
    "demo-loans": [(OVERDUE, "loans-dan", "2020-09-01", "high")],
    "demo-shop": [(ALICE_NOW, "shop-alice-now", "2023-03-05", "low")],
}


@dataclass(frozen=True)
class Story:
    carrier: IssuedCredentials
    regulator: IssuedCredentials
    #: platform id -> its client credentials.
    platforms: dict[str, IssuedCredentials]
    #: Carol's renewal of OVERDUE (demo-chat answered, demo-loans overdue).
    overdue_renewal: str


def seed_story(open_store: UnitOfWorkFactory, now: datetime | None = None) -> Story:
    """Register the demo's carrier, regulator and platforms and build the story."""
    now = now or datetime.now(UTC)
    _, carrier = access.register_carrier(
        open_store, CARRIER, "Demo Mobile", "CN", coverage_start=datetime(2020, 1, 1, tzinfo=UTC)
    )
    ranges.grant_ranges(open_store, CARRIER, CARRIER_RANGES, note="the demo", now=now)
    regulator = access.register_client(open_store, Role.REGULATOR, "Demo regulator")
    platforms = {
        platform_id: access.register_platform(open_store, platform_id, name, category, tier)[1]
        for platform_id, (name, category, tier) in PLATFORMS.items()
    }
    items = [
        {"event_id": event_id, "number": number, "event": kind, "occurred_at": day}
        | ({"subscriber": subscriber} if subscriber else {})
        for event_id, number, kind, day, subscriber in _EVENTS
    ]
    result = reporting.report_events(
        open_store, CARRIER, items, now=now, policy=Settings().freeze_policy
    )
    if result.accepted != len(items):
        raise RuntimeError(f"the demo story's reports were not all accepted: {result.outcomes}")
    for platform_id, rows in _BINDINGS.items():
        bindings.register_bindings(
            open_store,
            platform_id,
            [
                {"number": number, "account_ref": ref, "bound_since": since, "tier": tier}
                for number, ref, since, tier in rows
            ],
            now,
        )
    asked = now - timedelta(days=4)
    renewal = cases.request_renewal(
        open_store, OVERDUE, ["demo-loans", "demo-chat"], False, now=asked
    )
    answered = asked + timedelta(hours=20)
    for item in renewal.cases:
        if item.case.platform_id == "demo-chat" and item.case.state is CaseState.OPEN:
            cases.answer_case(open_store, "demo-chat", item.case.id, "unbound", None, now=answered)
    return Story(carrier, regulator, platforms, renewal.renewal.id)
