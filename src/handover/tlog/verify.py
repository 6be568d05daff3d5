"""Offline verification for a transparency log: RFC 9162 Merkle proofs, C2SP checkpoints,
signed notes and tlog-proof bundles.

This module is deliberately standalone: it depends only on the Python standard library and
`cryptography`, so a regulator or witness can copy it and check Handover's audit log
without running (or trusting) any other part of Handover.

References: RFC 9162 §2.1 (hashing, inclusion and consistency proofs),
https://c2sp.org/tlog-checkpoint, https://c2sp.org/signed-note, https://c2sp.org/tlog-proof.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}) per RFC 9162 §2.1.1: the root of the empty tree."""


class TlogError(ValueError):
    """Base class: the input does not verify or is not in the expected format."""


class ProofError(TlogError):
    """A Merkle inclusion or consistency proof does not verify."""


class FormatError(TlogError):
    """A checkpoint, note, key or bundle is malformed."""


class NoteError(TlogError):
    """A signed note does not verify."""


class UnverifiedNoteError(NoteError):
    """No signature on the note is by a known key."""


class InvalidSignatureError(NoteError):
    """A signature by a known key is wrong (or repeated)."""


# --- RFC 9162 §2.1: hashing ---------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 ‖ data): the hash of one log entry."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 ‖ left ‖ right): the hash of an interior node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) (RFC 9162 §2.1.1) over already-hashed leaves, in O(n) time, O(log n) space.

    Perfect subtrees are merged as soon as two of equal height meet; the ones left at the
    end (decreasing heights, one per bit of n) are folded from the right, which is exactly
    the RFC's split at the largest power of two smaller than n.
    """
    if not leaf_hashes:
        return EMPTY_ROOT
    stack: list[tuple[int, bytes]] = []
    for item in leaf_hashes:
        level, digest = 0, item
        while stack and stack[-1][0] == level:
            digest = node_hash(stack.pop()[1], digest)
            level += 1
        stack.append((level, digest))
    digest = stack.pop()[1]
    while stack:
        digest = node_hash(stack.pop()[1], digest)
    return digest


# --- RFC 9162 §2.1.3.2 and §2.1.4.2: proof verification -----------------------------------


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} is {len(value)} bytes, expected {HASH_SIZE}")


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that `leaf` (a leaf hash) is entry `index` of the tree of `size` with `root`.

    Raises ProofError if not. The proof must have exactly the RFC's length: the walk fails
    when it runs out of tree (sn reaches 0) early or leaves some unconsumed.
    """
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    _check_hash(leaf, "leaf hash")
    _check_hash(root, "root hash")
    fn, sn, r = index, size - 1, leaf
    for i, p in enumerate(proof):
        _check_hash(p, f"proof hash {i}")
        if sn == 0:
            raise ProofError(f"inclusion proof is too long ({len(proof)} hashes)")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError(f"inclusion proof is too short ({len(proof)} hashes)")
    if r != root:
        raise ProofError("inclusion proof does not lead to the root hash")


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree of `size2` with `root2` extends the tree of `size1` with `root1`.

    Raises ProofError if not. Equal sizes need an empty proof and equal roots. RFC 9162
    defines proofs only for 0 < size1 < size2; a proof from the empty tree proves nothing
    and is rejected (callers that start from size 0 need no proof at all).
    """
    if not 0 <= size1 <= size2:
        raise ProofError(f"sizes must satisfy 0 <= size1 <= size2, got {size1} and {size2}")
    if size1 == size2:
        _verify_same_size(size1, proof, root1, root2)
        return
    if size1 == 0:
        raise ProofError("a consistency proof from the empty tree proves nothing")
    if not proof:
        raise ProofError("consistency proof is empty")
    _check_hash(root1, "first root hash")
    _check_hash(root2, "second root hash")
    for i, p in enumerate(proof):
        _check_hash(p, f"proof hash {i}")
    fr, sr = _consistency_roots(size1, size2, proof, root1)
    if fr != root1:
        raise ProofError("consistency proof does not lead to the first root hash")
    if sr != root2:
        raise ProofError("consistency proof does not lead to the second root hash")


def _verify_same_size(size: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    if proof:
        raise ProofError("trees of equal size need an empty consistency proof")
    if root1 != root2:
        raise ProofError("trees of equal size have different root hashes")
    if size == 0 and root1 != EMPTY_ROOT:
        raise ProofError("the empty tree has a different root hash")


def _consistency_roots(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes
) -> tuple[bytes, bytes]:
    """RFC 9162 §2.1.4.2 steps 2-7: recompute (first root, second root) from the proof."""
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # size1 is a power of two: its root is a node of the tree
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"consistency proof is too long ({len(proof)} hashes)")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError(f"consistency proof is too short ({len(proof)} hashes)")
    return fr, sr


# --- base64 helpers -------------------------------------------------------------------------


def b64encode(data: bytes) -> str:
    """Standard base64 with padding (RFC 4648 §4), as every C2SP format uses."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str, what: str) -> bytes:
    """Strict standard base64: rejects other alphabets, whitespace and non-canonical forms."""
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise FormatError(f"{what} is not valid base64") from exc
    if b64encode(data) != text:
        raise FormatError(f"{what} is not canonical base64")
    return data


_DECIMAL = re.compile(r"0|[1-9][0-9]*")


def _parse_decimal(text: str, what: str) -> int:
    """An ASCII decimal with no sign, spaces or leading zeroes (C2SP's rule for numbers)."""
    if not _DECIMAL.fullmatch(text):
        raise FormatError(f"{what} is not a decimal number without leading zeroes: {text!r}")
    return int(text)


# --- C2SP tlog-checkpoint -------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: the note text that the log signs (c2sp.org/tlog-checkpoint)."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = field(default=())

    def format(self) -> str:
        """The checkpoint body: origin, size and base64 root lines, then any extensions."""
        _check_line(self.origin, "origin")
        for ext in self.extensions:
            _check_line(ext, "extension line")
        if self.size < 0:
            raise FormatError("tree size must not be negative")
        if len(self.root_hash) != HASH_SIZE:
            raise FormatError(f"root hash must be {HASH_SIZE} bytes")
        lines = [self.origin, str(self.size), b64encode(self.root_hash), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse a checkpoint body (the text of a signed note, without signatures)."""
        if not text.endswith("\n"):
            raise FormatError("checkpoint must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise FormatError("checkpoint needs origin, size and root hash lines")
        origin, size, root, *extensions = lines
        _check_line(origin, "origin")
        for ext in extensions:
            _check_line(ext, "extension line")
        root_hash = b64decode(root, "root hash")
        if len(root_hash) != HASH_SIZE:
            raise FormatError(f"root hash must be {HASH_SIZE} bytes")
        return cls(origin, _parse_decimal(size, "tree size"), root_hash, tuple(extensions))


def _check_line(line: str, what: str) -> None:
    if not line or "\n" in line:
        raise FormatError(f"{what} must be one non-empty line")


# --- C2SP signed-note (Ed25519) -------------------------------------------------------------

_ALG_ED25519 = 0x01
_SIG_PREFIX = "\u2014 "  # em dash and space
_SIGNER_PREFIX = "PRIVATE+KEY+"
_MAX_SIGNATURES = 100


def _is_valid_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(ch.isspace() for ch in name)


def key_hash(name: str, public_key: bytes) -> int:
    """The 32-bit key ID: first 4 bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([_ALG_ED25519]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _split_key(text: str, what: str) -> tuple[str, int, bytes]:
    """Split `name+hex8+base64(0x01 ‖ key)` and check the name and hash syntax."""
    parts = text.split("+", 2)  # the base64 key may itself contain "+"
    if len(parts) != 3:
        raise FormatError(f"{what} must look like name+hash+key")
    name, hash_hex, key_b64 = parts
    if not _is_valid_name(name):
        raise FormatError(f"{what} has an invalid name {name!r}")
    if not re.fullmatch(r"[0-9a-f]{8}", hash_hex):
        raise FormatError(f"{what} hash must be 8 lowercase hex digits")
    key = b64decode(key_b64, f"{what} key")
    if len(key) != 33 or key[0] != _ALG_ED25519:
        raise FormatError(f"{what} is not an Ed25519 key")
    return name, int(hash_hex, 16), key[1:]


@dataclass(frozen=True)
class Verifier:
    """A named Ed25519 public key that checks note signatures."""

    name: str
    public_key: Ed25519PublicKey

    @property
    def key_id(self) -> int:
        return key_hash(self.name, _raw_public(self.public_key))

    @classmethod
    def from_key(cls, vkey: str) -> Verifier:
        """Parse a verifier key string `name+hex8+base64(0x01 ‖ public key)`."""
        name, claimed, raw = _split_key(vkey, "verifier key")
        if key_hash(name, raw) != claimed:
            raise FormatError("verifier key hash does not match its name and key")
        return cls(name, Ed25519PublicKey.from_public_bytes(raw))

    def key_string(self) -> str:
        raw = _raw_public(self.public_key)
        return f"{self.name}+{self.key_id:08x}+{b64encode(bytes([_ALG_ED25519]) + raw)}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            self.public_key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class Signer:
    """A named Ed25519 private key that signs notes."""

    name: str
    private_key: Ed25519PrivateKey

    def __post_init__(self) -> None:
        if not _is_valid_name(self.name):
            raise FormatError(f"invalid key name {self.name!r}")

    @property
    def key_id(self) -> int:
        return self.verifier().key_id

    @classmethod
    def from_key(cls, skey: str) -> Signer:
        """Parse a signer key string `PRIVATE+KEY+name+hex8+base64(0x01 ‖ seed)`."""
        if not skey.startswith(_SIGNER_PREFIX):
            raise FormatError("signer key must start with PRIVATE+KEY+")
        name, claimed, seed = _split_key(skey[len(_SIGNER_PREFIX) :], "signer key")
        private = Ed25519PrivateKey.from_private_bytes(seed)
        if key_hash(name, _raw_public(private.public_key())) != claimed:
            raise FormatError("signer key hash does not match its name and key")
        return cls(name, private)

    def verifier(self) -> Verifier:
        return Verifier(self.name, self.private_key.public_key())

    def key_string(self) -> str:
        seed = self.private_key.private_bytes_raw()
        encoded = b64encode(bytes([_ALG_ED25519]) + seed)
        return f"{_SIGNER_PREFIX}{self.name}+{self.key_id:08x}+{encoded}"

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)


def generate_key(name: str) -> tuple[str, str]:
    """A new Ed25519 key pair as (signer key string, verifier key string)."""
    signer = Signer(name, Ed25519PrivateKey.generate())
    return signer.key_string(), signer.verifier().key_string()


def _check_note_chars(text: str) -> None:
    """Notes are UTF-8 with no ASCII control characters except newline."""
    if any(ch < " " and ch != "\n" for ch in text):
        raise FormatError("note contains a control character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise FormatError("note is not valid UTF-8") from exc


def sign_note(text: str, *signers: Signer) -> str:
    """The signed note: `text`, a blank line, then one signature line per signer.

    Each signature covers the text including its final newline.
    """
    if not signers:
        raise FormatError("sign_note needs at least one signer")
    if not text.endswith("\n"):
        raise FormatError("note text must end with a newline")
    _check_note_chars(text)
    message = text.encode()
    lines = [
        f"{_SIG_PREFIX}{s.name} {b64encode(s.key_id.to_bytes(4, 'big') + s.sign(message))}\n"
        for s in signers
    ]
    return text + "\n" + "".join(lines)


def _split_note(signed: str) -> tuple[str, list[str]]:
    _check_note_chars(signed)
    split = signed.rfind("\n\n")
    if split < 0:
        raise FormatError("signed note has no blank line before its signatures")
    text, block = signed[: split + 1], signed[split + 2 :]
    if not block.endswith("\n"):
        raise FormatError("signed note has no signatures or does not end with a newline")
    return text, block[:-1].split("\n")


def _parse_signature(line: str) -> tuple[str, int, bytes]:
    if not line.startswith(_SIG_PREFIX):
        raise FormatError(f"not a signature line: {line!r}")
    name, _, encoded = line[len(_SIG_PREFIX) :].partition(" ")
    if not _is_valid_name(name) or not encoded:
        raise FormatError(f"malformed signature line: {line!r}")
    blob = b64decode(encoded, "signature")
    if len(blob) < 5:
        raise FormatError(f"signature is too short: {line!r}")
    return name, int.from_bytes(blob[:4], "big"), blob[4:]


def open_note(signed: str, verifiers: Iterable[Verifier]) -> tuple[str, tuple[str, ...]]:
    """Verify a signed note; return (text, names of the known keys that signed it).

    Signatures by unknown keys are ignored (a witness may add its own), but at least one
    known key must have signed (else UnverifiedNoteError), and every signature by a known
    key must be valid and appear once (else InvalidSignatureError).
    """
    text, lines = _split_note(signed)
    if len(lines) > _MAX_SIGNATURES:
        raise FormatError(f"more than {_MAX_SIGNATURES} signatures")
    known = {(v.name, v.key_id): v for v in verifiers}
    message = text.encode()
    verified: list[str] = []
    seen: set[tuple[str, int]] = set()
    for line in lines:
        name, kid, sig = _parse_signature(line)
        verifier = known.get((name, kid))
        if verifier is None:
            continue
        if (name, kid) in seen:
            raise InvalidSignatureError(f"repeated signature from {name}")
        seen.add((name, kid))
        if not verifier.verify(message, sig):
            raise InvalidSignatureError(f"invalid signature from {name}")
        verified.append(name)
    if not verified:
        raise UnverifiedNoteError("note has no signature from a known key")
    return text, tuple(verified)


def open_checkpoint(
    signed: str, verifiers: Iterable[Verifier]
) -> tuple[Checkpoint, tuple[str, ...]]:
    """Verify a signed checkpoint note; return the checkpoint and the verified key names."""
    text, names = open_note(signed, verifiers)
    return Checkpoint.parse(text), names


# --- C2SP tlog-proof bundles ----------------------------------------------------------------

PROOF_HEADER = "c2sp.org/tlog-proof@v1"


@dataclass(frozen=True)
class ProofBundle:
    """An offline-verifiable receipt (c2sp.org/tlog-proof@v1).

    `extra` is opaque and unauthenticated by the format; Handover puts the leaf data (the
    entry's canonical JSON) there, and verify_bundle authenticates it by checking that it
    is the entry the inclusion proof leads to.
    """

    index: int
    proof: tuple[bytes, ...]
    checkpoint: str
    """The signed checkpoint note, verbatim."""
    extra: bytes | None = None

    def format(self) -> str:
        lines = [PROOF_HEADER]
        if self.extra is not None:
            lines.append(f"extra {b64encode(self.extra)}")
        lines.append(f"index {self.index}")
        lines.extend(b64encode(p) for p in self.proof)
        return "".join(line + "\n" for line in lines) + "\n" + self.checkpoint

    @classmethod
    def parse(cls, text: str) -> ProofBundle:
        head, sep, checkpoint = text.partition("\n\n")
        if not sep:
            raise FormatError("proof bundle has no blank line before its checkpoint")
        lines = head.split("\n")
        if lines[0] != PROOF_HEADER:
            raise FormatError(f"proof bundle must start with {PROOF_HEADER}")
        rest = lines[1:]
        extra = None
        if rest and rest[0].startswith("extra "):
            extra = b64decode(rest.pop(0)[len("extra ") :], "extra data")
        if not rest or not rest[0].startswith("index "):
            raise FormatError("proof bundle has no index line")
        index = _parse_decimal(rest.pop(0)[len("index ") :], "index")
        proof = tuple(b64decode(line, "proof hash") for line in rest)
        return cls(index, proof, checkpoint, extra)


@dataclass(frozen=True)
class VerifiedEntry:
    """What a verified bundle proves: this leaf is entry `index` of the signed checkpoint."""

    checkpoint: Checkpoint
    index: int
    leaf_hash: bytes
    leaf_data: bytes | None
    signers: tuple[str, ...]


def verify_bundle(
    bundle: str | ProofBundle,
    verifier_key: str | Verifier,
    *,
    leaf_data: bytes | None = None,
    leaf: bytes | None = None,
    origin: str | None = None,
) -> VerifiedEntry:
    """Verify a proof bundle against the log's verifier key.

    The entry is `leaf_data`, or the leaf hash `leaf`, or else the bundle's extra data.
    The checkpoint must be signed by the log key and its origin must be `origin` (default:
    the key's name, as C2SP recommends), so a checkpoint of another log signed with the same
    key is not accepted. Raises a TlogError subclass on any failure.
    """
    parsed = ProofBundle.parse(bundle) if isinstance(bundle, str) else bundle
    log = Verifier.from_key(verifier_key) if isinstance(verifier_key, str) else verifier_key
    checkpoint, signers = open_checkpoint(parsed.checkpoint, [log])
    expected = log.name if origin is None else origin
    if checkpoint.origin != expected:
        raise FormatError(f"checkpoint origin is {checkpoint.origin!r}, expected {expected!r}")
    if leaf is not None and leaf_data is not None:
        raise TypeError("pass leaf_data or leaf, not both")
    data: bytes | None = None
    if leaf is None:
        data = leaf_data if leaf_data is not None else parsed.extra
        if data is None:
            raise FormatError("no leaf: pass the leaf data or hash, or use a bundle with extra")
        leaf = leaf_hash(data)
    verify_inclusion(leaf, parsed.index, checkpoint.size, parsed.proof, checkpoint.root_hash)
    return VerifiedEntry(checkpoint, parsed.index, leaf, data, signers)
