"""Proof generation from stored subtree hashes (RFC 9162 §2.1), without storage of its own.

The store keeps the hash of every complete aligned subtree: node (level, index) covers the
leaves [index·2^level, (index+1)·2^level) and exists once all of them are in the log. Nodes
never change after they are written, so an append-only table of them is enough.

Every range the RFC algorithms hash (MTH(D[a:b])) starts at a multiple of the smallest
power of two ≥ b - a, so it splits into at most log2(n) complete stored nodes of
decreasing size: a perfect range costs one lookup, and an incomplete right edge a few
more. Only one such incomplete range occurs per proof (the rest of the walk is inside a
perfect subtree), so a proof costs O(log n) lookups and never reads the whole tree.
"""

from __future__ import annotations

from collections.abc import Callable

from handover.tlog.verify import EMPTY_ROOT, leaf_hash, node_hash

GetNode = Callable[[int, int], bytes]
"""get_node(level, index) -> the stored hash of that complete subtree."""

Node = tuple[int, int, bytes]
"""(level, index, hash) of one stored subtree."""


def appended_nodes(size_before: int, leaf: bytes, get_node: GetNode) -> list[Node]:
    """The complete nodes that appear when leaf hash `leaf` becomes entry `size_before`.

    The leaf itself (level 0), then each parent completed by it: while the new node is a
    right child (odd index), it and its stored left sibling form the next level's node.
    """
    if size_before < 0:
        raise ValueError("size_before must not be negative")
    level, index, digest = 0, size_before, leaf
    nodes = [(level, index, digest)]
    while index & 1:
        digest = node_hash(get_node(level, index - 1), digest)
        level, index = level + 1, index >> 1
        nodes.append((level, index, digest))
    return nodes


def range_hash(start: int, end: int, get_node: GetNode) -> bytes:
    """MTH(D[start:end]) from stored nodes, for a range in the RFC's split structure.

    The range is covered by complete nodes of decreasing size (one per bit of its length);
    their hashes are folded from the right, as the RFC's recursive split does.
    """
    if not 0 <= start < end:
        raise ValueError(f"empty or negative range [{start}, {end})")
    hashes: list[bytes] = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start & ((1 << level) - 1):
            raise ValueError(f"range [{start}, {end}) is not aligned to the tree")
        hashes.append(get_node(level, start >> level))
        start += 1 << level
    digest = hashes.pop()
    while hashes:
        digest = node_hash(hashes.pop(), digest)
    return digest


def root_hash(size: int, get_node: GetNode) -> bytes:
    """MTH of the first `size` entries: popcount(size) lookups."""
    if size < 0:
        raise ValueError("size must not be negative")
    return EMPTY_ROOT if size == 0 else range_hash(0, size, get_node)


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_proof(index: int, size: int, get_node: GetNode) -> list[bytes]:
    """PATH(index, D[size]) (RFC 9162 §2.1.3.1), leaf's sibling first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    siblings: list[bytes] = []  # collected root-down, returned leaf-up
    start, n, m = 0, size, index
    while n > 1:
        k = _split(n)
        if m < k:
            siblings.append(range_hash(start + k, start + n, get_node))
            n = k
        else:
            siblings.append(range_hash(start, start + k, get_node))
            start, n, m = start + k, n - k, m - k
    siblings.reverse()
    return siblings


def consistency_proof(size1: int, size2: int, get_node: GetNode) -> list[bytes]:
    """PROOF(size1, D[size2]) (RFC 9162 §2.1.4.1); empty when the sizes are equal.

    SUBPROOF(m, D[n], b) walked iteratively: each step records the subtree the walk does
    not enter; the final subtree (whose root the verifier already has when b is still
    true) comes first in the proof, then the recorded ones from the bottom up.
    """
    if not 0 < size1 <= size2:
        raise ValueError(f"need 0 < size1 <= size2, got {size1} and {size2}")
    siblings: list[bytes] = []
    start, n, m, whole = 0, size2, size1, True
    while m != n:
        k = _split(n)
        if m <= k:
            siblings.append(range_hash(start + k, start + n, get_node))
            n = k
        else:
            siblings.append(range_hash(start, start + k, get_node))
            start, n, m, whole = start + k, n - k, m - k, False
    siblings.reverse()
    if size1 == size2 or whole:
        return siblings
    return [range_hash(start, start + n, get_node), *siblings]


class MemoryTree:
    """An in-memory log over a dict of nodes, for tests and small tools."""

    def __init__(self) -> None:
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.size = 0

    def get_node(self, level: int, index: int) -> bytes:
        return self.nodes[(level, index)]

    def append(self, data: bytes) -> int:
        """Append one entry (hashed as a leaf); return its index."""
        return self.append_hash(leaf_hash(data))

    def append_hash(self, leaf: bytes) -> int:
        for level, index, digest in appended_nodes(self.size, leaf, self.get_node):
            self.nodes[(level, index)] = digest
        self.size += 1
        return self.size - 1

    def root(self, size: int | None = None) -> bytes:
        return root_hash(self.size if size is None else self._check(size), self.get_node)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        size = self.size if size is None else self._check(size)
        return inclusion_proof(index, size, self.get_node)

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        size2 = self.size if size2 is None else self._check(size2)
        return consistency_proof(size1, size2, self.get_node)

    def _check(self, size: int) -> int:
        if not 0 <= size <= self.size:
            raise ValueError(f"size {size} is beyond the log's {self.size} entries")
        return size
