"""Transparency log core: RFC 9162 Merkle proofs, C2SP checkpoints, signed notes, bundles.

Pure and standalone (stdlib and `cryptography` only, no other Handover import), so the
verifier can be run by a regulator or witness on its own: `python -m handover.tlog --help`.
"""

from __future__ import annotations

from handover.tlog.tree import (
    MemoryTree,
    appended_nodes,
    consistency_proof,
    inclusion_proof,
    range_hash,
    root_hash,
)
from handover.tlog.verify import (
    EMPTY_ROOT,
    HASH_SIZE,
    Checkpoint,
    FormatError,
    InvalidSignatureError,
    NoteError,
    ProofBundle,
    ProofError,
    Signer,
    TlogError,
    UnverifiedNoteError,
    VerifiedEntry,
    Verifier,
    generate_key,
    key_hash,
    leaf_hash,
    node_hash,
    open_checkpoint,
    open_note,
    root_of,
    sign_note,
    verify_bundle,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Checkpoint",
    "FormatError",
    "InvalidSignatureError",
    "MemoryTree",
    "NoteError",
    "ProofBundle",
    "ProofError",
    "Signer",
    "TlogError",
    "UnverifiedNoteError",
    "VerifiedEntry",
    "Verifier",
    "appended_nodes",
    "consistency_proof",
    "generate_key",
    "inclusion_proof",
    "key_hash",
    "leaf_hash",
    "node_hash",
    "open_checkpoint",
    "open_note",
    "range_hash",
    "root_hash",
    "root_of",
    "sign_note",
    "verify_bundle",
    "verify_consistency",
    "verify_inclusion",
]
