"""Checkpoints, signed notes and tlog-proof bundles built and verified end to end."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handover.tlog import (
    Checkpoint,
    FormatError,
    InvalidSignatureError,
    MemoryTree,
    ProofBundle,
    ProofError,
    Signer,
    TlogError,
    UnverifiedNoteError,
    Verifier,
    generate_key,
    leaf_hash,
    open_checkpoint,
    open_note,
    sign_note,
    verify_bundle,
)

ORIGIN = "audit.handover.example/log"
SKEY, VKEY = generate_key(ORIGIN)
SIGNER = Signer.from_key(SKEY)
ENTRIES = [
    json.dumps({"seq": i, "kind": "test"}, separators=(",", ":"), sort_keys=True).encode()
    for i in range(300)
]
TREE = MemoryTree()
for _entry in ENTRIES:
    TREE.append(_entry)


def signed_checkpoint(size: int, signer: Signer = SIGNER, origin: str = ORIGIN) -> str:
    return sign_note(Checkpoint(origin, size, TREE.root(size)).format(), signer)


def bundle_for(index: int, size: int, *, extra: bool = True) -> ProofBundle:
    return ProofBundle(
        index=index,
        proof=tuple(TREE.inclusion_proof(index, size)),
        checkpoint=signed_checkpoint(size),
        extra=ENTRIES[index] if extra else None,
    )


# --- checkpoints -----------------------------------------------------------------------------


def test_checkpoint_format_and_parse_round_trip() -> None:
    cp = Checkpoint(ORIGIN, 300, TREE.root(300), ("ext one", "ext two"))
    text = cp.format()
    root_b64 = base64.b64encode(TREE.root(300)).decode()
    assert text == f"{ORIGIN}\n300\n{root_b64}\next one\next two\n"
    assert Checkpoint.parse(text) == cp
    assert Checkpoint.parse(Checkpoint("o", 0, TREE.root(0)).format()).extensions == ()


@pytest.mark.parametrize(
    "text",
    [
        "origin\n5\n{root}",  # no final newline
        "origin\n5\n",  # no root line
        "origin\n05\n{root}\n",  # leading zero
        "origin\n+5\n{root}\n",
        "origin\n-5\n{root}\n",
        "origin\n 5\n{root}\n",
        "\n5\n{root}\n",  # empty origin
        "origin\n5\n{root}\n\n",  # empty extension line
        "origin\n5\nAAAA\n",  # root of the wrong length
        "origin\n5\n{root_urlsafe}\n",
        "origin\n5\n{root_nopad}\n",
    ],
)
def test_checkpoint_parse_rejects_malformed_text(text: str) -> None:
    root = base64.b64encode(b"\xfb" * 32).decode()
    text = text.format(
        root=root,
        root_urlsafe=base64.urlsafe_b64encode(b"\xfb" * 32).decode(),
        root_nopad=root[:-1],
    )
    with pytest.raises(FormatError):
        Checkpoint.parse(text)


def test_open_checkpoint_checks_the_signature() -> None:
    cp, names = open_checkpoint(signed_checkpoint(17), [Verifier.from_key(VKEY)])
    assert (cp.origin, cp.size, cp.root_hash, names) == (ORIGIN, 17, TREE.root(17), (ORIGIN,))


# --- signed notes ----------------------------------------------------------------------------


def test_generated_keys_sign_and_verify() -> None:
    signer, verifier = Signer.from_key(SKEY), Verifier.from_key(VKEY)
    assert signer.key_string() == SKEY
    assert signer.verifier().key_string() == VKEY == verifier.key_string()
    assert SKEY.startswith(f"PRIVATE+KEY+{ORIGIN}+")
    assert open_note(sign_note("hello\n", signer), [verifier]) == ("hello\n", (ORIGIN,))


def test_several_signers_and_a_repeated_signature() -> None:
    witness = Signer.from_key(generate_key("witness.example")[0])
    signed = sign_note("text\n\nwith a blank line\n", SIGNER, witness)
    keys = [SIGNER.verifier(), witness.verifier()]
    assert open_note(signed, keys)[1] == (ORIGIN, "witness.example")
    repeated = signed + signed.splitlines(keepends=True)[-1]
    with pytest.raises(InvalidSignatureError):
        open_note(repeated, keys)


def test_a_key_with_the_same_name_but_another_secret_is_unknown() -> None:
    impostor = Signer.from_key(generate_key(ORIGIN)[0])
    with pytest.raises(UnverifiedNoteError):
        open_note(sign_note("hello\n", impostor), [Verifier.from_key(VKEY)])


@pytest.mark.parametrize(
    "signed",
    [
        "hello\n",  # no signature block
        "hello\n\n",  # empty signature block
        "hello\n\n— name\n",  # no signature
        "hello\n\n- name AAAAAAAA\n",  # hyphen, not em dash
        "hello\n\n— name AAAAAAAA",  # no final newline
        "hello\n\n— name AAAA\n",  # too short
        "hel\tlo\n\n— name AAAAAAAA\n",  # control character
    ],
)
def test_malformed_notes_are_rejected(signed: str) -> None:
    with pytest.raises(FormatError):
        open_note(signed, [Verifier.from_key(VKEY)])


@pytest.mark.parametrize("text", ["no final newline", "tab\there\n", ""])
def test_sign_note_rejects_bad_text(text: str) -> None:
    with pytest.raises(FormatError):
        sign_note(text, SIGNER)


@pytest.mark.parametrize("name", ["", "a b", "a+b", "tab\tname"])
def test_key_names_are_checked(name: str) -> None:
    with pytest.raises(FormatError):
        generate_key(name)


# --- proof bundles ---------------------------------------------------------------------------


def test_bundle_text_follows_c2sp_tlog_proof() -> None:
    bundle = bundle_for(5, 13)
    text = bundle.format()
    lines = text.split("\n")
    assert lines[0] == "c2sp.org/tlog-proof@v1"
    assert lines[1] == "extra " + base64.b64encode(ENTRIES[5]).decode()
    assert lines[2] == "index 5"
    proof_lines = lines[3 : 3 + len(bundle.proof)]
    assert [base64.b64decode(p) for p in proof_lines] == list(bundle.proof)
    assert lines[3 + len(bundle.proof)] == ""
    assert text.endswith("\n\n" + bundle.checkpoint.split("\n\n", 1)[1])
    assert ProofBundle.parse(text) == bundle
    bare = bundle_for(5, 13, extra=False)
    assert ProofBundle.parse(bare.format()) == bare
    assert bare.format().split("\n")[1] == "index 5"


def test_bundle_verifies_with_extra_data_leaf_data_or_leaf_hash() -> None:
    text = bundle_for(7, 300).format()
    entry = verify_bundle(text, VKEY)
    assert (entry.index, entry.leaf_data, entry.signers) == (7, ENTRIES[7], (ORIGIN,))
    assert entry.checkpoint.size == 300
    bare = bundle_for(7, 300, extra=False).format()
    assert verify_bundle(bare, VKEY, leaf_data=ENTRIES[7]).leaf_hash == leaf_hash(ENTRIES[7])
    assert verify_bundle(bare, VKEY, leaf=leaf_hash(ENTRIES[7])).leaf_data is None
    with pytest.raises(FormatError):
        verify_bundle(bare, VKEY)


def test_bundle_for_another_entry_fails() -> None:
    with pytest.raises(ProofError):
        verify_bundle(bundle_for(7, 300).format(), VKEY, leaf_data=ENTRIES[8])


def test_bundle_needs_the_log_key_and_origin() -> None:
    text = bundle_for(3, 10).format()
    with pytest.raises(UnverifiedNoteError):
        verify_bundle(text, generate_key(ORIGIN)[1])
    with pytest.raises(FormatError):
        verify_bundle(text, VKEY, origin="another.example/log")
    assert verify_bundle(text, Verifier.from_key(VKEY), origin=ORIGIN).index == 3
    foreign = ProofBundle(3, tuple(TREE.inclusion_proof(3, 10)), signed_checkpoint(10, origin="x"))
    with pytest.raises(FormatError):
        verify_bundle(foreign, VKEY, leaf_data=ENTRIES[3])


@settings(max_examples=150, deadline=None)
@given(size=st.integers(1, len(ENTRIES)), data=st.data())
def test_any_changed_character_of_a_bundle_fails(size: int, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, size - 1), label="index")
    text = bundle_for(index, size).format()
    verify_bundle(text, VKEY)
    at = data.draw(st.integers(0, len(text) - 1), label="at")
    bit = data.draw(st.sampled_from([1, 2, 4, 8, 16, 32]), label="bit")
    changed = text[:at] + chr(ord(text[at]) ^ bit) + text[at + 1 :]
    with pytest.raises(TlogError):
        verify_bundle(changed, VKEY)
