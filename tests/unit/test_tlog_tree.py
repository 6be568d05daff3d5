"""Proof generation from stored subtree hashes: correct, RFC-identical and O(log n)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handover.tlog import (
    EMPTY_ROOT,
    MemoryTree,
    ProofError,
    appended_nodes,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)

MAX = 3000
LEAVES = [leaf_hash(b'{"entry":%d}' % i) for i in range(MAX)]
TREE = MemoryTree()
for _leaf in LEAVES:
    TREE.append_hash(_leaf)

sizes = st.integers(min_value=1, max_value=MAX)


# --- the RFC 9162 §2.1 definitions, recursively, as the reference ---------------------------


def _k(n: int) -> int:
    k = 1
    while k << 1 < n:
        k <<= 1
    return k


def mth(d: list[bytes]) -> bytes:
    if not d:
        return EMPTY_ROOT
    if len(d) == 1:
        return d[0]
    k = _k(len(d))
    return node_hash(mth(d[:k]), mth(d[k:]))


def path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [mth(d)]
    k = _k(len(d))
    if m <= k:
        return [*subproof(m, d[:k], b), mth(d[k:])]
    return [*subproof(m - k, d[k:], False), mth(d[:k])]


# --- helpers ---------------------------------------------------------------------------------


class Store:
    """TREE's nodes seen by a log of `size` entries: counts lookups and refuses any node
    that is not complete at that size (the big TREE holds more than a smaller log would)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.lookups = 0

    def __call__(self, level: int, index: int) -> bytes:
        assert (index + 1) << level <= self.size, f"node ({level}, {index}) beyond {self.size}"
        self.lookups += 1
        return TREE.get_node(level, index)


def bound(n: int) -> int:
    """2·ceil(log2 n) + 2 lookups."""
    return 2 * (n - 1).bit_length() + 2


def flip(proof: list[bytes], item: int, byte: int) -> list[bytes]:
    out = list(proof)
    target = bytearray(out[item])
    target[byte] ^= 0x01
    out[item] = bytes(target)
    return out


def flipped(value: bytes, byte: int) -> bytes:
    return flip([value], 0, byte)[0]


# --- properties ------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(size=sizes, data=st.data())
def test_inclusion_proofs_verify_match_the_rfc_and_are_o_log_n(
    size: int, data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, size - 1), label="index")
    store = Store(size)
    proof = inclusion_proof(index, size, store)
    assert store.lookups <= bound(size)
    assert proof == path(index, LEAVES[:size])
    root = root_hash(size, Store(size))
    assert root == mth(LEAVES[:size])
    verify_inclusion(LEAVES[index], index, size, proof, root)


@settings(max_examples=150, deadline=None)
@given(size=sizes, data=st.data())
def test_consistency_proofs_verify_match_the_rfc_and_are_o_log_n(
    size: int, data: st.DataObject
) -> None:
    size1 = data.draw(st.integers(1, size), label="size1")
    store = Store(size)
    proof = consistency_proof(size1, size, store)
    assert store.lookups <= bound(size)
    assert proof == subproof(size1, LEAVES[:size], True)
    verify_consistency(size1, size, proof, TREE.root(size1), TREE.root(size))


@settings(max_examples=150, deadline=None)
@given(size=sizes, data=st.data())
def test_any_flipped_byte_fails_inclusion(size: int, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, size - 1), label="index")
    proof, root, leaf = TREE.inclusion_proof(index, size), TREE.root(size), LEAVES[index]
    byte = data.draw(st.integers(0, 31), label="byte")
    with pytest.raises(ProofError):
        verify_inclusion(flipped(leaf, byte), index, size, proof, root)
    with pytest.raises(ProofError):
        verify_inclusion(leaf, index, size, proof, flipped(root, byte))
    if proof:
        item = data.draw(st.integers(0, len(proof) - 1), label="item")
        with pytest.raises(ProofError):
            verify_inclusion(leaf, index, size, flip(proof, item, byte), root)


@settings(max_examples=150, deadline=None)
@given(size=st.integers(2, MAX), data=st.data())
def test_any_flipped_byte_fails_consistency(size: int, data: st.DataObject) -> None:
    size1 = data.draw(st.integers(1, size - 1), label="size1")
    proof = TREE.consistency_proof(size1, size)
    root1, root2 = TREE.root(size1), TREE.root(size)
    item = data.draw(st.integers(0, len(proof) - 1), label="item")
    byte = data.draw(st.integers(0, 31), label="byte")
    for args in (
        (flip(proof, item, byte), root1, root2),
        (proof, flipped(root1, byte), root2),
        (proof, root1, flipped(root2, byte)),
    ):
        with pytest.raises(ProofError):
            verify_consistency(size1, size, *args)


@settings(max_examples=150, deadline=None)
@given(size=st.integers(2, MAX), data=st.data())
def test_a_wrong_index_or_size_fails_inclusion(size: int, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, size - 1), label="index")
    proof, root = TREE.inclusion_proof(index, size), TREE.root(size)
    other = data.draw(st.integers(0, size - 1).filter(lambda i: i != index), label="other")
    with pytest.raises(ProofError):
        verify_inclusion(LEAVES[index], other, size, proof, root)
    # Against the checkpoint of another size: fails unless that size's proof is this one.
    # (Size and root are only meaningful together: with this root, some other sizes share
    # the proof's shape and verify, which is why both come from one signed checkpoint.)
    wrong = data.draw(st.integers(index + 1, MAX), label="wrong")
    if wrong != size and TREE.inclusion_proof(index, wrong) != proof:
        with pytest.raises(ProofError):
            verify_inclusion(LEAVES[index], index, wrong, proof, TREE.root(wrong))


@settings(max_examples=150, deadline=None)
@given(size=st.integers(2, MAX), data=st.data())
def test_wrong_sizes_fail_consistency(size: int, data: st.DataObject) -> None:
    size1 = data.draw(st.integers(1, size - 1), label="size1")
    proof = TREE.consistency_proof(size1, size)
    wrong1 = data.draw(st.integers(1, size - 1).filter(lambda s: s != size1), label="wrong1")
    if TREE.consistency_proof(wrong1, size) != proof:
        with pytest.raises(ProofError):
            verify_consistency(wrong1, size, proof, TREE.root(wrong1), TREE.root(size))
    wrong2 = data.draw(st.integers(size1 + 1, MAX), label="wrong2")
    if wrong2 != size and TREE.consistency_proof(size1, wrong2) != proof:
        with pytest.raises(ProofError):
            verify_consistency(size1, wrong2, proof, TREE.root(size1), TREE.root(wrong2))


@settings(max_examples=100, deadline=None)
@given(size=st.integers(2, MAX), data=st.data())
def test_inserted_or_removed_components_fail(size: int, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, size - 1), label="index")
    proof, root = TREE.inclusion_proof(index, size), TREE.root(size)
    at = data.draw(st.integers(0, len(proof)), label="at")
    with pytest.raises(ProofError):
        verify_inclusion(LEAVES[index], index, size, [*proof[:at], LEAVES[0], *proof[at:]], root)
    if proof:
        with pytest.raises(ProofError):
            verify_inclusion(LEAVES[index], index, size, proof[:-1], root)


# --- exhaustive small trees and the store ----------------------------------------------------


def test_every_proof_of_every_small_tree() -> None:
    for size in range(1, 70):
        root = TREE.root(size)
        for index in range(size):
            proof = TREE.inclusion_proof(index, size)
            assert proof == path(index, LEAVES[:size])
            verify_inclusion(LEAVES[index], index, size, proof, root)
        for size1 in range(1, size + 1):
            proof = TREE.consistency_proof(size1, size)
            assert proof == subproof(size1, LEAVES[:size], True)
            verify_consistency(size1, size, proof, TREE.root(size1), root)


def test_the_store_holds_exactly_the_complete_aligned_subtrees() -> None:
    tree = MemoryTree()
    for i in range(100):
        tree.append(b'{"entry":%d}' % i)
    expected = {
        (level, index)
        for level in range(8)
        for index in range(100 >> level)
        if (index + 1) << level <= 100
    }
    assert set(tree.nodes) == expected
    for level, index in expected:
        start = index << level
        assert tree.nodes[(level, index)] == mth(LEAVES[start : start + (1 << level)])


def test_appended_nodes_climbs_while_the_new_node_is_a_right_child() -> None:
    store = Store(7)
    nodes = appended_nodes(7, LEAVES[7], store)
    assert [(level, index) for level, index, _ in nodes] == [(0, 7), (1, 3), (2, 1), (3, 0)]
    assert nodes[-1][2] == mth(LEAVES[:8])
    assert store.lookups == 3
    assert appended_nodes(8, LEAVES[8], Store(8)) == [(0, 8, LEAVES[8])]


def test_root_of_matches_the_rfc_and_the_store() -> None:
    assert root_of([]) == EMPTY_ROOT == root_hash(0, Store(0))
    for size in (1, 2, 3, 5, 8, 13, 100, 1000, MAX):
        assert root_of(LEAVES[:size]) == mth(LEAVES[:size]) == TREE.root(size)


@pytest.mark.parametrize(
    ("call", "args"),
    [
        (inclusion_proof, (0, 0)),
        (inclusion_proof, (5, 5)),
        (inclusion_proof, (-1, 5)),
        (consistency_proof, (0, 5)),
        (consistency_proof, (6, 5)),
        (root_hash, (-1,)),
    ],
)
def test_generation_rejects_impossible_requests(
    call: Callable[..., object], args: tuple[int, ...]
) -> None:
    with pytest.raises(ValueError):
        call(*args, Store(MAX))


def test_memory_tree_refuses_sizes_it_does_not_have() -> None:
    with pytest.raises(ValueError):
        TREE.root(MAX + 1)
    assert TREE.consistency_proof(MAX) == []
