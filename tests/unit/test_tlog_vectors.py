"""Public test vectors: transparency-dev Merkle proofs and the Go sumdb/note signed note."""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from handover.tlog import (
    FormatError,
    InvalidSignatureError,
    ProofError,
    Signer,
    UnverifiedNoteError,
    Verifier,
    open_note,
    sign_note,
    verify_consistency,
    verify_inclusion,
)

#: HANDOVER_TEST_VECTORS points elsewhere, e.g. from a `git worktree` checked out further away.
VECTORS = Path(
    os.environ.get("HANDOVER_TEST_VECTORS")
    or Path(__file__).parents[2] / ".." / "shared" / "testvectors"
)
MERKLE = VECTORS / "merkle" / "testdata"
INCLUSION = sorted((MERKLE / "inclusion").rglob("*.json"))
CONSISTENCY = sorted((MERKLE / "consistency").rglob("*.json"))


def _id(path: Path) -> str:
    return str(path.relative_to(MERKLE))


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _proof(vector: dict[str, Any]) -> list[bytes]:
    return [base64.b64decode(p) for p in vector["proof"] or []]


def test_the_vectors_are_there() -> None:
    """Guards against an empty parametrisation passing silently when shared/ is missing."""
    assert VECTORS.is_dir(), f"test vectors not found at {VECTORS.resolve()}"
    assert len(INCLUSION) >= 90
    assert len(CONSISTENCY) >= 90
    assert any(_load(p)["wantErr"] for p in INCLUSION + CONSISTENCY)
    assert not all(_load(p)["wantErr"] for p in INCLUSION + CONSISTENCY)


@pytest.mark.parametrize("path", INCLUSION, ids=_id)
def test_inclusion_vector(path: Path) -> None:
    v = _load(path)
    args = (
        base64.b64decode(v["leafHash"]),
        v["leafIdx"],
        v["treeSize"],
        _proof(v),
        base64.b64decode(v["root"]),
    )
    if v["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("path", CONSISTENCY, ids=_id)
def test_consistency_vector(path: Path) -> None:
    v = _load(path)
    args = (
        v["size1"],
        v["size2"],
        _proof(v),
        base64.b64decode(v["root1"]),
        base64.b64decode(v["root2"]),
    )
    if v["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


# --- signed note ----------------------------------------------------------------------------

_STRING_FIELD = re.compile(r'\s*"(\w+)":\s*("(?:[^"\\]|\\.)*")\s*,?\s*')


def _note_vector() -> dict[str, str]:
    """vector.json, read field by field when it is not valid JSON.

    The shared file's prose `key_format` field has unescaped quotes, so json.loads fails on
    it; every other field is one `"name": "string"` line and is read exactly.
    """
    raw = (VECTORS / "signed-note" / "vector.json").read_text()
    try:
        data: dict[str, str] = json.loads(raw)
    except json.JSONDecodeError:
        data = {}
        for line in raw.splitlines():
            if match := _STRING_FIELD.fullmatch(line):
                data[match[1]] = json.loads(match[2])
    return data


@pytest.fixture(scope="module")
def note() -> dict[str, str]:
    return _note_vector()


def test_signing_reproduces_the_exact_signed_note(note: dict[str, str]) -> None:
    signer = Signer.from_key(note["signer_key"])
    assert sign_note(note["text"], signer) == note["signed_note"]


def test_key_strings_round_trip(note: dict[str, str]) -> None:
    signer = Signer.from_key(note["signer_key"])
    assert signer.key_string() == note["signer_key"]
    assert signer.verifier().key_string() == note["verifier_key"]
    assert Verifier.from_key(note["verifier_key"]).key_string() == note["verifier_key"]
    assert f"{signer.key_id:08x}" == note["verifier_key"].split("+")[1]


def test_the_verifier_key_opens_the_note(note: dict[str, str]) -> None:
    verifier = Verifier.from_key(note["verifier_key"])
    assert open_note(note["signed_note"], [verifier]) == (note["text"], ("PeterNeumann",))


def test_the_second_key_alone_does_not_know_the_signer(note: dict[str, str]) -> None:
    with pytest.raises(UnverifiedNoteError):
        open_note(note["signed_note"], [Verifier.from_key(note["second_verifier_key"])])


def test_a_cosigned_note_verifies_both_signatures(note: dict[str, str]) -> None:
    signed = note["signed_note"] + note["second_signature_line"]
    keys = [Verifier.from_key(note[k]) for k in ("verifier_key", "second_verifier_key")]
    assert open_note(signed, keys) == (note["text"], ("PeterNeumann", "EnochRoot"))
    # A signature by an unknown key next to a known one is ignored.
    assert open_note(signed, keys[:1])[1] == ("PeterNeumann",)


def test_a_modified_text_fails(note: dict[str, str]) -> None:
    verifier = Verifier.from_key(note["verifier_key"])
    tampered = note["signed_note"].replace("cryptography", "Cryptography", 1)
    with pytest.raises(InvalidSignatureError):
        open_note(tampered, [verifier])


def test_a_modified_signature_fails(note: dict[str, str]) -> None:
    verifier = Verifier.from_key(note["verifier_key"])
    text, _, sig_line = note["signed_note"].rpartition("\n\n")
    name, encoded = sig_line.rstrip("\n").rsplit(" ", 1)
    blob = bytearray(base64.b64decode(encoded))
    blob[10] ^= 1
    tampered = f"{text}\n\n{name} {base64.b64encode(bytes(blob)).decode()}\n"
    with pytest.raises(InvalidSignatureError):
        open_note(tampered, [verifier])


def test_a_wrong_key_hash_in_the_key_string_is_rejected(note: dict[str, str]) -> None:
    name, _, key = note["verifier_key"].split("+", 2)
    with pytest.raises(FormatError):
        Verifier.from_key(f"{name}+00000000+{key}")
