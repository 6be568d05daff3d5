"""Dependencies point inward (docs/architecture.md), checked on every import statement.

Every import counts: at the top of a module, inside a function, or under `TYPE_CHECKING`.
Each test lists every offending import as `path:line: module imports name`.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import handover

SOURCE = Path(handover.__file__).parent
SRC = SOURCE.parent

#: The only libraries beyond the standard library the pure layers may use.
DOMAIN_LIBRARIES = frozenset({"phonenumbers"})
SERVICE_LIBRARIES = frozenset({"phonenumbers"})
#: The Handover packages the use cases may use: the domain, themselves, and the
#: standalone Merkle-log library.
SERVICE_PACKAGES = ("handover.domain", "handover.services", "handover.tlog")
#: The entry points: they reach `handover.adapters` only through `handover.bootstrap`.
ENTRY_POINTS = ("api", "web", "cli.py", "commands")


def _modules(*parts: str) -> Iterator[Path]:
    for part in parts:
        path = SOURCE / part
        yield from sorted(path.rglob("*.py")) if path.is_dir() else [path]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, imported name) of every import in a module; `from m import n` names `m.n`."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    return _imports_in(path.read_text(), package, str(path))


def _imports_in(source: str, package: str, filename: str) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative: from the package, `level - 1` packages up
                parts = package.split(".")
                base = parts[: len(parts) - node.level + 1]
                module = ".".join([*base, *([module] if module else [])])
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}"


def _within(name: str, *packages: str) -> bool:
    return any(name == package or name.startswith(package + ".") for package in packages)


def _offenders(parts: tuple[str, ...], allowed: Callable[[str], bool]) -> list[str]:
    found = []
    for path in _modules(*parts):
        for line, name in _imports(path):
            if not allowed(name):
                where = path.relative_to(SRC.parent)
                found.append(f"{where}:{line}: {_module_name(path)} imports {name}")
    return found


def _standard(name: str) -> bool:
    return name.split(".")[0] in sys.stdlib_module_names


def _fail_on(offenders: list[str]) -> None:
    if offenders:
        pytest.fail("\n".join(offenders), pytrace=False)


def test_the_domain_imports_only_the_standard_library_its_pure_libraries_and_itself() -> None:
    def allowed(name: str) -> bool:
        if _within(name, "handover"):
            return _within(name, "handover.domain")
        return _standard(name) or name.split(".")[0] in DOMAIN_LIBRARIES

    offenders = _offenders(("domain",), allowed)
    _fail_on(offenders)


def test_services_import_only_the_domain_themselves_tlog_and_pure_libraries() -> None:
    """No adapters, API, web, CLI, commands, bootstrap or settings; no framework
    (fastapi, sqlalchemy, pydantic, httpx...)."""

    def allowed(name: str) -> bool:
        if _within(name, "handover"):
            return _within(name, *SERVICE_PACKAGES)
        return _standard(name) or name.split(".")[0] in SERVICE_LIBRARIES

    offenders = _offenders(("services",), allowed)
    _fail_on(offenders)


def test_entry_points_reach_the_adapters_only_through_bootstrap() -> None:
    offenders = _offenders(ENTRY_POINTS, lambda name: not _within(name, "handover.adapters"))
    _fail_on(offenders)


def test_tlog_and_the_receiver_import_no_other_handover_package() -> None:
    """Both are copied out on their own (their third-party imports are checked in
    test_tlog_cli.py and test_receiver_kit.py)."""
    offenders = []
    for package in ("tlog", "receiver"):
        inside = f"handover.{package}"
        offenders += _offenders(
            (package,), lambda name, own=inside: not _within(name, "handover") or _within(name, own)
        )
    _fail_on(offenders)


def test_the_checks_see_every_kind_of_import() -> None:
    """Imports in functions, under `TYPE_CHECKING` and relative ones are all found."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from handover.adapters.check_index import BatchResults\n"
        "def f():\n"
        "    import handover.adapters.receipts\n"
        "from ..adapters import tokens\n"
    )
    assert sorted(_imports_in(source, "handover.api", "example.py")) == [
        (1, "typing.TYPE_CHECKING"),
        (3, "handover.adapters.check_index.BatchResults"),
        (5, "handover.adapters.receipts"),
        (6, "handover.adapters.tokens"),
    ]
