"""`python -m handover.tlog`: the regulator's standalone verifier, and its independence."""

from __future__ import annotations

import ast
import base64
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from handover.tlog import Checkpoint, MemoryTree, ProofBundle, Signer, generate_key, sign_note
from handover.tlog.__main__ import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main

TLOG = Path(__file__).parents[2] / "src" / "handover" / "tlog"
ORIGIN = "audit.handover.example/log"
SKEY, VKEY = generate_key(ORIGIN)
TREE = MemoryTree()
for _i in range(21):
    TREE.append(b'{"seq":%d}' % _i)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def write_bundle(tmp_path: Path, index: int = 4, size: int = 21) -> Path:
    note = sign_note(Checkpoint(ORIGIN, size, TREE.root(size)).format(), Signer.from_key(SKEY))
    bundle = ProofBundle(index, tuple(TREE.inclusion_proof(index, size)), note, b'{"seq":4}')
    path = tmp_path / "receipt.tlog-proof"
    path.write_text(bundle.format(), encoding="utf-8")
    return path


def inclusion_args(index: int = 4, size: int = 21) -> list[str]:
    return [
        "verify-inclusion",
        f"--index={index}",
        f"--size={size}",
        f"--root={b64(TREE.root(size))}",
        f"--leaf-hash={b64(TREE.get_node(0, index))}",
        *map(b64, TREE.inclusion_proof(index, size)),
    ]


def test_verify_inclusion(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(inclusion_args()) == EXIT_OK
    assert capsys.readouterr().out.startswith("OK: leaf ")
    args = inclusion_args()
    args[1] = "--index=5"
    assert main(args) == EXIT_FAILED
    assert "FAILED: inclusion proof does not lead to the root hash" in capsys.readouterr().err


def test_verify_inclusion_hashes_a_leaf_file(tmp_path: Path) -> None:
    leaf = tmp_path / "entry.json"
    leaf.write_bytes(b'{"seq":4}')
    args = [a for a in inclusion_args() if not a.startswith("--leaf-hash")]
    assert main([*args, f"--leaf-file={leaf}"]) == EXIT_OK
    leaf.write_bytes(b'{"seq":5}')
    assert main([*args, f"--leaf-file={leaf}"]) == EXIT_FAILED


def test_verify_consistency(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "verify-consistency",
        "--size1=6",
        "--size2=21",
        f"--root1={b64(TREE.root(6))}",
        f"--root2={b64(TREE.root(21))}",
        *map(b64, TREE.consistency_proof(6, 21)),
    ]
    assert main(args) == EXIT_OK
    assert "extends the tree of size 6" in capsys.readouterr().out
    assert main([*args[:-1]]) == EXIT_FAILED
    assert "FAILED: consistency proof is too short" in capsys.readouterr().err


def test_verify_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_bundle(tmp_path)
    assert main(["verify-bundle", str(path), "--key", VKEY]) == EXIT_OK
    assert f"is entry 4 of {ORIGIN} at size 21" in capsys.readouterr().out
    other_key = generate_key(ORIGIN)[1]
    assert main(["verify-bundle", str(path), "--key", other_key]) == EXIT_FAILED
    assert "no signature from a known key" in capsys.readouterr().err
    wrong_leaf = b64(TREE.get_node(0, 5))
    assert main(["verify-bundle", str(path), "--key", VKEY, "--leaf-hash", wrong_leaf]) == 1


def test_open_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    note = tmp_path / "checkpoint"
    note.write_text(
        sign_note(Checkpoint(ORIGIN, 21, TREE.root(21)).format(), Signer.from_key(SKEY))
    )
    assert main(["open-note", str(note), "--key", VKEY]) == EXIT_OK
    out = capsys.readouterr()
    assert out.out == Checkpoint(ORIGIN, 21, TREE.root(21)).format()
    assert f"OK: signed by {ORIGIN}" in out.err
    assert main(["open-note", str(note), "--key", VKEY, "--checkpoint"]) == EXIT_OK
    assert "size 21\n" in capsys.readouterr().out
    note.write_text(note.read_text().replace("21", "22", 1))
    assert main(["open-note", str(note), "--key", VKEY]) == EXIT_FAILED
    assert "invalid signature" in capsys.readouterr().err


def test_generate_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate-key", "witness.example"]) == EXIT_OK
    signer, verifier = capsys.readouterr().out.splitlines()
    assert Signer.from_key(signer).verifier().key_string() == verifier


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["verify-inclusion", "--index=0", "--size=1", "--root=not-base64!"],
        ["verify-bundle", "receipt", "--key", VKEY, "--leaf-hash", "AA==", "--leaf-file", "x"],
        ["no-such-command"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == EXIT_USAGE
    assert "usage:" in capsys.readouterr().err


def test_missing_file_and_leaf_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["open-note", str(tmp_path / "absent"), "--key", VKEY]) == EXIT_USAGE
    assert "error: cannot read" in capsys.readouterr().err
    no_leaf = [a for a in inclusion_args() if not a.startswith("--leaf-hash")]
    assert main(no_leaf) == EXIT_USAGE


def test_malformed_key_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_bundle(tmp_path)
    assert main(["verify-bundle", str(path), "--key", "not-a-key"]) == EXIT_FAILED
    assert "FAILED: verifier key must look like name+hash+key" in capsys.readouterr().err


def test_runs_from_a_copy_of_the_package_alone(tmp_path: Path) -> None:
    """A regulator's copy: handover/tlog and an empty handover/__init__.py, nothing else."""
    package = tmp_path / "handover"
    shutil.copytree(TLOG, package / "tlog", ignore=shutil.ignore_patterns("__pycache__"))
    (package / "__init__.py").write_text("")
    bundle = write_bundle(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    command = [sys.executable, "-m", "handover.tlog", "verify-bundle", str(bundle), "--key", VKEY]
    run = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == EXIT_OK, run.stderr
    assert run.stdout.startswith("OK: leaf ")
    where = [sys.executable, "-c", "import handover.tlog as t; print(t.__file__)"]
    located = subprocess.run(where, env=env, cwd=tmp_path, capture_output=True, text=True)
    assert located.stdout.strip().startswith(str(tmp_path))


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: use absolute imports"
            names.add(node.module or "")
    return names


def test_tlog_imports_only_the_stdlib_cryptography_and_itself() -> None:
    files = sorted(TLOG.glob("*.py"))
    assert {f.name for f in files} >= {"__init__.py", "verify.py", "tree.py", "__main__.py"}
    for path in files:
        for name in _imports(path):
            top = name.split(".")[0]
            if top == "handover":
                assert name == "handover.tlog" or name.startswith("handover.tlog."), name
            else:
                allowed = top in sys.stdlib_module_names or top in {"__future__", "cryptography"}
                assert allowed, f"{path.name} imports {name}"


def test_the_verifier_does_not_even_need_the_tree() -> None:
    """verify.py is the part a witness copies: only the stdlib and cryptography."""
    tops = {name.split(".")[0] for name in _imports(TLOG / "verify.py")}
    assert tops <= set(sys.stdlib_module_names) | {"__future__", "cryptography"}
