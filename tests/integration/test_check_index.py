"""The numpy check index answers exactly as the store does, on both stores.

A differential property test: random lifecycle histories reported through
`services.reporting.report_events`, then random questions answered by `NumpyCheckIndex`
(single `check`, vectorised `check_many`, raw `facts`) and by the reference `StoreIndex`,
compared field by field; again after more events and `refresh()`, and from a fresh build.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from handover.adapters.check_index import NumpyCheckIndex
from handover.domain.check import seconds
from handover.domain.freeze_policy import FreezePolicy
from handover.domain.lifecycle import EventKind, LifecycleReport, Number
from handover.domain.rejections import Rejected
from handover.services.check import (
    CheckIndex,
    CheckResult,
    InvalidQuestion,
    StoreIndex,
    check,
    check_many,
)
from handover.services.ports import UnitOfWorkFactory
from handover.services.reporting import report_events

POLICY = FreezePolicy()
T0 = datetime(2023, 1, 1, tzinfo=UTC)
COVERAGE = {"cm": datetime(2023, 6, 1, tzinfo=UTC), "cu": datetime(2024, 1, 1, tzinfo=UTC)}
LATEST = datetime.now(UTC) - timedelta(days=1)
DAY = 86_400
GAPS = [0, 1, 59, 3_600, DAY, 29 * DAY, 31 * DAY, 91 * DAY, 200 * DAY]
_numbers = itertools.count()


def _fresh_number() -> str:
    return f"+86139{next(_numbers) % 10**8:08d}"


step = st.tuples(
    st.sampled_from(list(EventKind)),
    st.sampled_from(GAPS) | st.integers(0, 120 * DAY),
    st.sampled_from(["s1", "s2", "s3"]),
    # Microseconds: answers compare whole seconds, rounded down (never up).
    st.sampled_from([0, 999_999]) | st.integers(0, 999_999),
)
history = st.lists(step, min_size=1, max_size=9)


def _simulate(number: Number, steps: list, start: datetime, tag: str) -> tuple[list, list]:
    """The reports a carrier would send after `start` (reporting carrier, item), valid
    moves only, and their moments; `number` is moved along."""
    at = start
    sent: list[tuple[str, dict]] = []
    times: list[datetime] = []
    for n, (kind, gap, subscriber, micros) in enumerate(steps):
        at = at + timedelta(seconds=gap)
        moment = at.replace(microsecond=micros)
        if moment > LATEST:
            break
        if kind is EventKind.RESTORED and number.tenure is not None and subscriber != "s3":
            subscriber = number.tenure.subscriber
        carrier = number.carrier or "cm"
        to_carrier = "cu" if carrier == "cm" else "cm"
        report = LifecycleReport(
            kind,
            moment,
            carrier,
            subscriber if kind in (EventKind.ACTIVATED, EventKind.RESTORED) else None,
            to_carrier if kind is EventKind.PORTED else None,
        )
        try:
            number.apply(report, POLICY)
        except Rejected:
            continue
        item = {
            "event_id": f"{number.e164}-{tag}-{n}",
            "number": number.e164,
            "event": kind.value,
            "occurred_at": moment.isoformat(),
            "subscriber": report.subscriber,
            "to_carrier": report.to_carrier,
        }
        sent.append((carrier, item))
        times.append(moment)
    return sent, times


def _send(uow_factory: UnitOfWorkFactory, histories: list[list[tuple[str, dict]]]) -> None:
    """Each number's reports in order, in as few batches as the carrier changes allow."""
    runs = []
    for sent in histories:
        runs.append([list(group) for _, group in itertools.groupby(sent, key=lambda s: s[0])])
    for round_ in itertools.zip_longest(*runs):
        by_carrier: dict[str, list[dict]] = {}
        for run in round_:
            for carrier, item in run or ():
                by_carrier.setdefault(carrier, []).append(item)
        for carrier, items in by_carrier.items():
            result = report_events(uow_factory, carrier, items, policy=POLICY)
            assert result.accepted == len(items), result


def _outcome(index: CheckIndex, number: str, since: object, now: datetime) -> object:
    try:
        return check(index, number, since, now)  # type: ignore[arg-type]
    except InvalidQuestion as exc:
        return ("invalid", exc.code, str(exc))


def _same(result: CheckResult | InvalidQuestion) -> object:
    if isinstance(result, InvalidQuestion):
        return ("invalid", result.code, str(result))
    return result


def _since_forms(moment: datetime, form: int) -> object:
    """One way of asking: a datetime, a date, an ISO date, date-time (Z or offset), naive."""
    whole = moment.replace(microsecond=0)
    match form % 6:
        case 0:
            return moment
        case 1:
            return moment.date().isoformat()
        case 2:
            return whole.strftime("%Y-%m-%dT%H:%M:%SZ")
        case 3:
            return (moment + timedelta(hours=8)).replace(tzinfo=None).isoformat() + "+08:00"
        case 4:
            return whole.replace(tzinfo=None).isoformat()
        case _:
            return moment.date()


def _compare(
    store: StoreIndex,
    index: NumpyCheckIndex,
    numbers: list[str],
    moments: list[datetime],
    extra_since: list[int],
    nows: list[datetime],
) -> None:
    for number in numbers:
        assert index.facts(number) == store.facts(number), number
    sinces: list[object] = []
    for i, moment in enumerate(moments):
        for delta in (-1, 0, 1):
            sinces.append(_since_forms(moment + timedelta(seconds=delta), i + delta))
    for i, second in enumerate(extra_since):
        sinces.append(_since_forms(datetime.fromtimestamp(second, UTC), i))
    sinces += ["2025-02-30", "yesterday", "0001-01-01T00:00:00+01:00"[:19]]
    questions = [(n, s) for n in [*numbers, " +86 139 0000 0000", "+8612"] for s in sinces]
    for now in nows:
        expected = [_same(r) for r in check_many(store, questions, now)]  # type: ignore[arg-type]
        assert [_same(r) for r in index.check_many(questions, now)] == expected  # type: ignore[arg-type]
        for (number, since), want in zip(
            questions[:: max(1, len(questions) // 40)],
            expected[:: max(1, len(questions) // 40)],
            strict=False,
        ):
            assert _outcome(index, number, since, now) == want


@pytest.fixture
def indexes(
    engine: Engine, uow_factory: UnitOfWorkFactory, carriers: tuple[str, str]
) -> Iterator[tuple[StoreIndex, NumpyCheckIndex]]:
    with uow_factory() as uow:
        for carrier_id, start in COVERAGE.items():
            uow.carriers.set_coverage(carrier_id, start)
        uow.commit()
    index = NumpyCheckIndex(engine, merge_min=8)  # small, so merges happen too
    yield StoreIndex(uow_factory), index
    index.stop()


@settings(
    max_examples=int(os.environ.get("HANDOVER_CHECK_EXAMPLES", "12")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    first=st.lists(history, min_size=1, max_size=3),
    later=st.lists(history, min_size=1, max_size=3),
    start_days=st.lists(st.integers(0, 900), min_size=3, max_size=3),
    extra_since=st.lists(
        st.integers(seconds(T0) - 400 * DAY, seconds(LATEST) + 30 * DAY), max_size=4
    ),
    rebuild=st.booleans(),
)
@pytest.mark.slow
def test_index_answers_equal_the_store(
    indexes: tuple[StoreIndex, NumpyCheckIndex],
    uow_factory: UnitOfWorkFactory,
    engine: Engine,
    first: list,
    later: list,
    start_days: list[int],
    extra_since: list[int],
    rebuild: bool,
) -> None:
    store, index = indexes
    numbers = [_fresh_number() for _ in first]
    lives = [Number(e164, "CN") for e164 in numbers]
    simulated = [
        _simulate(life, steps, T0 + timedelta(days=start_days[i]), "first")
        for i, (life, steps) in enumerate(zip(lives, first, strict=True))
    ]
    _send(uow_factory, [sent for sent, _ in simulated])
    moments = [m for _, times in simulated for m in times]
    nows = [LATEST + timedelta(days=1), *(m + timedelta(days=30) for m in moments[-2:])]
    index.refresh()
    assert index.data_version == store.data_version
    _compare(store, index, numbers, moments, extra_since, nows)

    # More of the same numbers' lives (continuing from their last event), then refresh.
    more = []
    for life, steps, (_, times) in zip(lives, later, simulated, strict=False):
        sent, new_times = _simulate(life, steps, times[-1] if times else T0, "later")
        more.append(sent)
        moments += new_times
    _send(uow_factory, more)
    index.refresh()
    assert index.data_version == store.data_version
    _compare(store, index, numbers, moments, extra_since, nows)
    if rebuild:
        built = NumpyCheckIndex(engine)
        assert len(built) == len(index)
        _compare(store, built, numbers, moments, extra_since, nows[:1])


def _activate(uow_factory: UnitOfWorkFactory, e164: str, at: str, tag: str) -> None:
    item = {"event_id": tag, "number": e164, "event": "activated", "occurred_at": at}
    assert (
        report_events(uow_factory, "cm", [{**item, "subscriber": "s1"}], policy=POLICY).accepted
        == 1
    )


def test_fractions_of_a_second_are_dropped_never_rounded(
    indexes: tuple[StoreIndex, NumpyCheckIndex], uow_factory: UnitOfWorkFactory, engine: Engine
) -> None:
    store, index = indexes
    _activate(uow_factory, "+8613900000001", "2024-05-01T10:00:00.999999+00:00", "f1")
    index.refresh()
    for built in (index, NumpyCheckIndex(engine)):
        facts = built.facts("+8613900000001")
        assert facts == store.facts("+8613900000001")
        assert facts is not None and facts.tenure_start == seconds(
            datetime(2024, 5, 1, 10, tzinfo=UTC)
        )


def test_a_lower_sequence_committed_late_is_not_missed(
    indexes: tuple[StoreIndex, NumpyCheckIndex], uow_factory: UnitOfWorkFactory, engine: Engine
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite commits its writers one at a time, in sequence order")
    store, index = indexes
    _activate(uow_factory, "+8613900000002", "2024-05-01", "a")
    index.refresh()
    late = engine.connect()
    try:
        # A transaction takes a sequence number (and changes the number) but commits late...
        late.execute(
            text(
                "INSERT INTO number_events (carrier_id, event_id, e164, kind, occurred_at,"
                " recorded_at) VALUES ('cm', 'late', '+8613900000002', 'suspended',"
                " '2024-06-01T00:00:00Z', now())"
            )
        )
        late.execute(
            text(
                "UPDATE numbers SET state = 'suspended', version = version + 1"
                " WHERE e164 = '+8613900000002'"
            )
        )
        # ... after a higher one committed and was seen.
        _activate(uow_factory, "+8613900000003", "2024-05-01", "b")
        index.refresh()
        assert index.facts("+8613900000003") is not None
        assert index.facts("+8613900000002").state.value == "active"  # type: ignore[union-attr]
        late.commit()
    finally:
        late.close()
    index.refresh()
    assert index.facts("+8613900000002") == store.facts("+8613900000002")
    assert index.facts("+8613900000002").state.value == "suspended"  # type: ignore[union-attr]
    assert index.data_version == store.data_version


CHILD = """
import sys
from functools import partial
from handover.adapters.storage.engine import make_engine
from handover.adapters.storage.uow import SqlUnitOfWork
from handover.domain.freeze_policy import FreezePolicy
from handover.services.reporting import report_events
engine = make_engine(sys.argv[1])
item = {"event_id": "child-1", "number": "+8613900000004", "event": "activated",
        "occurred_at": "2024-05-01", "subscriber": "s1"}
result = report_events(
    partial(SqlUnitOfWork, engine, b"child"), "cm", [item], policy=FreezePolicy()
)
assert result.accepted == 1, result
"""


def test_events_another_process_accepts_are_seen_by_the_background_refresh(
    indexes: tuple[StoreIndex, NumpyCheckIndex], store_url: str
) -> None:
    """The index follows the store on its own (`start`), with no request asking it to: what
    another process commits is answered eventually. How soon is a latency, not a rule: a
    loaded machine delays the refresh thread, so no wall-clock bound is asserted here."""
    _, index = indexes
    index.start(0.05)
    assert index.facts("+8613900000004") is None
    subprocess.run([sys.executable, "-c", CHILD, store_url], check=True, timeout=60)
    deadline = time.monotonic() + 60
    while index.facts("+8613900000004") is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert index.facts("+8613900000004") is not None
