"""One convention for use cases (CONTRIBUTING.md), read from the source.

A public service function takes a `uow_factory` and owns its transaction; one that takes an
open `UnitOfWork` is a building block another service calls inside its own transaction.
Entry points (api/, cli.py, commands/, web/) call use cases: they open no unit of work and
call no building block.
"""

from __future__ import annotations

import ast
from pathlib import Path

import handover

SRC = Path(handover.__file__).parent
SERVICES = sorted((SRC / "services").rglob("*.py"))
ENTRY_POINTS = sorted(
    [
        *(SRC / "api").rglob("*.py"),
        SRC / "cli.py",
        *(SRC / "commands").rglob("*.py"),
        *(SRC / "web").rglob("*.py"),
    ]
)


def _module(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _takes_open_uow(function: ast.FunctionDef) -> bool:
    arguments = function.args
    return any(
        argument.annotation is not None and ast.unparse(argument.annotation) == "UnitOfWork"
        for argument in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
    )


def building_blocks() -> dict[tuple[str, str], Path]:
    """(module, name) of every public module-level service function taking an open uow."""
    found = {}
    for path in SERVICES:
        for node in ast.parse(path.read_text()).body:
            if not isinstance(node, ast.FunctionDef) or node.name.startswith("_"):
                continue
            if _takes_open_uow(node):
                found[(_module(path), node.name)] = path
    return found


def test_a_service_taking_an_open_unit_of_work_is_a_building_block_of_another() -> None:
    for (module, name), home in building_blocks().items():
        users = [
            path
            for path in SERVICES
            if path != home
            and any(
                isinstance(node, ast.ImportFrom)
                and node.module == module
                and any(alias.name == name for alias in node.names)
                for node in ast.walk(ast.parse(path.read_text()))
            )
        ]
        assert users, (
            f"{module}.{name} takes an open unit of work but no other service calls it: "
            "make it private, or a use case that takes a uow_factory"
        )


def _problems(path: Path, blocks: set[tuple[str, str]]) -> list[str]:
    tree = ast.parse(path.read_text())
    modules: dict[str, str] = {}  # local name -> services module it names
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("handover."):
            for alias in node.names:
                qualified = f"{node.module}.{alias.name}"
                if (node.module, alias.name) in blocks or alias.name == "UnitOfWork":
                    problems.append(f"imports {qualified}")
                elif qualified.startswith("handover.services."):
                    modules[alias.asname or alias.name] = qualified
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and (modules.get(node.value.id), node.attr) in blocks
        ):
            problems.append(f"line {node.lineno}: calls the building block {node.attr}")
        if isinstance(node, ast.Call) and not node.args and not node.keywords:
            called = node.func
            name = called.attr if isinstance(called, ast.Attribute) else getattr(called, "id", "")
            if name.endswith("uow_factory"):
                problems.append(f"line {node.lineno}: opens a unit of work")
        if (
            isinstance(node, ast.withitem)
            and ast.unparse(node.optional_vars or ast.Pass()) == "uow"
        ):
            problems.append(f"line {node.context_expr.lineno}: opens a unit of work")
    return sorted(set(problems))


def test_entry_points_call_use_cases_and_open_no_unit_of_work() -> None:
    blocks = set(building_blocks())
    assert blocks, "the scan finds the building blocks"
    found = {
        str(path.relative_to(SRC)): problems
        for path in ENTRY_POINTS
        if (problems := _problems(path, blocks))
    }
    assert found == {}
