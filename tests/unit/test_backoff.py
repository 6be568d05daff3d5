"""The worker's backoff after failures in a row (`services.worker.Backoff`)."""

from __future__ import annotations

import pytest

from handover.services.worker import Backoff


def test_no_wait_before_any_failure() -> None:
    assert Backoff().delay(0) == 0.0
    assert Backoff().delay(-3) == 0.0


def test_the_wait_doubles_from_half_a_second_up_to_thirty() -> None:
    waits = [Backoff().delay(n) for n in range(1, 10)]
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_a_long_outage_stays_at_the_cap() -> None:
    assert Backoff().delay(10_000) == 30.0
    assert Backoff(initial=1, cap=5, factor=3).delay(10**9) == 5.0


@pytest.mark.parametrize(("failures", "wait"), [(1, 0.1), (2, 0.3), (3, 0.9), (4, 1.0)])
def test_the_policy_is_configurable(failures: int, wait: float) -> None:
    assert Backoff(initial=0.1, cap=1.0, factor=3.0).delay(failures) == pytest.approx(wait)


def test_the_wait_never_shrinks_as_failures_go_on() -> None:
    backoff = Backoff()
    waits = [backoff.delay(n) for n in range(200)]
    assert waits == sorted(waits)
