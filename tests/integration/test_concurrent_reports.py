"""Two writers racing on the same new numbers: exactly one activation wins per number."""

from __future__ import annotations

import threading

from handover.domain.freeze_policy import FreezePolicy
from handover.services import reporting
from handover.services.ports import UnitOfWorkFactory

POLICY = FreezePolicy()

NUMBERS = [f"+86138{n:08d}" for n in range(10_000_000, 10_000_300)]


def _batch(tag: str) -> list[dict[str, str | None]]:
    return [
        {
            "event_id": f"{tag}-{i}",
            "number": number,
            "event": "activated",
            "occurred_at": "2024-01-01",
            "subscriber": f"sub-{tag}-{i}",
        }
        for i, number in enumerate(NUMBERS)
    ]


def test_racing_batches_activate_each_number_once(
    uow_factory: UnitOfWorkFactory, carriers: tuple[str, str]
) -> None:
    results: dict[str, reporting.BatchResult] = {}
    barrier = threading.Barrier(2)

    def report(tag: str) -> None:
        barrier.wait()
        results[tag] = reporting.report_events(uow_factory, "cm", _batch(tag), policy=POLICY)

    threads = [threading.Thread(target=report, args=(tag,)) for tag in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    accepted = results["a"].accepted + results["b"].accepted
    rejected = results["a"].rejected.get("illegal_transition", 0) + results["b"].rejected.get(
        "illegal_transition", 0
    )
    assert (accepted, rejected) == (len(NUMBERS), len(NUMBERS))
    with uow_factory() as uow:
        for number in NUMBERS[:: len(NUMBERS) // 10]:
            history = uow.numbers.history(number)
            assert history is not None
            assert len(history.tenures) == 1 and len(history.events) == 1
            assert history.events[0].subscriber == history.tenures[0].subscriber
