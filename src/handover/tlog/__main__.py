"""Standalone verifier: `python -m handover.tlog COMMAND ...` (stdlib and `cryptography`).

Exit status: 0 verified, 1 did not verify (or malformed proof material), 2 bad usage or an
unreadable file. Verdicts go to stdout for verify-*, to stderr for commands that print data.
Hashes on the command line are standard base64; FILE may be `-` for stdin.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import sys
from collections.abc import Sequence

from handover.tlog.verify import (
    Checkpoint,
    TlogError,
    Verifier,
    b64encode,
    generate_key,
    leaf_hash,
    open_note,
    verify_bundle,
    verify_consistency,
    verify_inclusion,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input that is not a verification failure (exit status 2)."""


def _hash_arg(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise argparse.ArgumentTypeError(f"not base64: {text!r}") from exc


def _read_bytes(path: str) -> bytes:
    try:
        if path == "-":
            return sys.stdin.buffer.read()
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc


def _read_text(path: str) -> str:
    try:
        return _read_bytes(path).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not UTF-8") from exc


def _leaf(args: argparse.Namespace) -> bytes | None:
    """The leaf hash from --leaf-hash, or the hash of --leaf-file's bytes, or None."""
    if args.leaf_hash is not None:
        return bytes(args.leaf_hash)
    if args.leaf_file is not None:
        return leaf_hash(_read_bytes(args.leaf_file))
    return None


def _verifiers(keys: Sequence[str]) -> list[Verifier]:
    return [Verifier.from_key(k) for k in keys]


def cmd_verify_inclusion(args: argparse.Namespace) -> str:
    leaf = _leaf(args)
    if leaf is None:
        raise UsageError("give --leaf-hash or --leaf-file")
    verify_inclusion(leaf, args.index, args.size, args.proof, args.root)
    return f"OK: leaf {b64encode(leaf)} is entry {args.index} of the tree of size {args.size}"


def cmd_verify_consistency(args: argparse.Namespace) -> str:
    verify_consistency(args.size1, args.size2, args.proof, args.root1, args.root2)
    return f"OK: the tree of size {args.size2} extends the tree of size {args.size1}"


def cmd_verify_bundle(args: argparse.Namespace) -> str:
    leaf = _leaf(args)
    entry = verify_bundle(_read_text(args.bundle), args.key, leaf=leaf, origin=args.origin)
    cp = entry.checkpoint
    return (
        f"OK: leaf {b64encode(entry.leaf_hash)} is entry {entry.index} of {cp.origin} "
        f"at size {cp.size} (root {b64encode(cp.root_hash)}), signed by {', '.join(entry.signers)}"
    )


def cmd_open_note(args: argparse.Namespace) -> str:
    text, names = open_note(_read_text(args.note), _verifiers(args.key))
    if args.checkpoint:
        cp = Checkpoint.parse(text)
        text = f"origin {cp.origin}\nsize {cp.size}\nroot {b64encode(cp.root_hash)}\n"
    sys.stdout.write(text)
    print(f"OK: signed by {', '.join(names)}", file=sys.stderr)
    return ""


def cmd_generate_key(args: argparse.Namespace) -> str:
    signer, verifier = generate_key(args.name)
    sys.stdout.write(f"{signer}\n{verifier}\n")
    print("first line: signer key (keep it secret); second: verifier key", file=sys.stderr)
    return ""


def _add_leaf_options(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--leaf-hash", type=_hash_arg, help="the leaf hash, base64")
    group.add_argument("--leaf-file", metavar="FILE", help="the entry's bytes (hashed as a leaf)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m handover.tlog",
        description="Verify transparency-log proofs, checkpoints and receipts offline "
        "(RFC 9162, C2SP signed-note, tlog-checkpoint, tlog-proof).",
        epilog="Exit status: 0 verified, 1 not verified, 2 usage error.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("verify-inclusion", help="check a Merkle inclusion proof")
    p.add_argument("--index", type=int, required=True, help="zero-based leaf index")
    p.add_argument("--size", type=int, required=True, help="tree size")
    p.add_argument("--root", type=_hash_arg, required=True, help="root hash, base64")
    _add_leaf_options(p)
    p.add_argument("proof", nargs="*", type=_hash_arg, help="proof hashes, base64, leaf-up")
    p.set_defaults(run=cmd_verify_inclusion)

    p = sub.add_parser("verify-consistency", help="check a Merkle consistency proof")
    p.add_argument("--size1", type=int, required=True)
    p.add_argument("--size2", type=int, required=True)
    p.add_argument("--root1", type=_hash_arg, required=True, help="older root, base64")
    p.add_argument("--root2", type=_hash_arg, required=True, help="newer root, base64")
    p.add_argument("proof", nargs="*", type=_hash_arg, help="proof hashes, base64")
    p.set_defaults(run=cmd_verify_consistency)

    p = sub.add_parser("verify-bundle", help="check a c2sp.org/tlog-proof@v1 receipt")
    p.add_argument("bundle", metavar="FILE", help="the .tlog-proof file")
    p.add_argument("--key", required=True, help="the log's verifier key")
    p.add_argument("--origin", help="expected checkpoint origin (default: the key's name)")
    _add_leaf_options(p)
    p.set_defaults(run=cmd_verify_bundle)

    p = sub.add_parser("open-note", help="check a signed note and print its text")
    p.add_argument("note", metavar="FILE")
    p.add_argument("--key", action="append", required=True, help="a trusted verifier key")
    p.add_argument("--checkpoint", action="store_true", help="parse the text as a checkpoint")
    p.set_defaults(run=cmd_open_note)

    p = sub.add_parser("generate-key", help="print a new signer key and verifier key")
    p.add_argument("name", help="key name (for a log: its origin)")
    p.set_defaults(run=cmd_generate_key)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        message: str = args.run(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except TlogError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if message:
        print(message)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
