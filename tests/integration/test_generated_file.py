"""The benchmark's generated files give exactly the summary the generator predicts.

`bench/generate.py` plants every kind of fault at known counts in realistic histories; the
ingest must accept every genuine row and classify every planted one, on both stores.
"""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import phonenumbers

from handover.adapters.staging import SqliteReportSorter
from handover.domain.freeze_policy import FreezePolicy
from handover.services import reporting
from handover.services.ports import UnitOfWorkFactory

POLICY = FreezePolicy()

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
GENERATOR = Path(__file__).resolve().parents[2] / "bench" / "generate.py"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_generate", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


generate = _load_generator()


def _ingest(uow_factory: UnitOfWorkFactory, path: Path) -> dict[str, object]:
    with path.open("rb") as lines:
        ingest = reporting.ingest_file(
            uow_factory, SqliteReportSorter, "cm", lines, region="CN", now=NOW, policy=POLICY
        )
    return ingest.summary()


def test_a_generated_file_gives_the_predicted_summary(
    uow_factory: UnitOfWorkFactory, carriers: tuple[str, str], tmp_path: Path
) -> None:
    made = generate.generate(tmp_path / "events.csv", 2_500, seed=7, error_rate=0.05)
    rejected = made.expected["rejected"]
    assert made.rows == 2_500
    assert sum(rejected.values()) > 100 and made.expected["duplicates"] > 10
    assert len(rejected) >= 12  # most kinds of fault are planted

    assert _ingest(uow_factory, made.prior_path) == made.prior_expected
    assert _ingest(uow_factory, made.path) == made.expected
    # Sent again: every accepted row is now a duplicate, every rejected row is judged again.
    again = _ingest(uow_factory, made.path)
    assert again["accepted"] == 0
    assert again["duplicates"] == made.expected["accepted"] + made.expected["duplicates"]


def test_the_generator_is_deterministic(tmp_path: Path) -> None:
    first = generate.generate(tmp_path / "a.csv", 2_000, seed=3)
    second = generate.generate(tmp_path / "b.csv", 2_000, seed=3)
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.prior_path.read_bytes() == second.prior_path.read_bytes()
    assert first.expected == second.expected


def test_every_generated_prefix_makes_valid_numbers() -> None:
    for prefix in (*generate.PREFIXES, generate.SPARE_PREFIX):
        for suffix in ("00000000", "12345678", "99999999"):
            parsed = phonenumbers.parse(f"+86{prefix}{suffix}")
            assert phonenumbers.is_valid_number(parsed), prefix
