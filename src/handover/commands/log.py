"""`handover log ...`: checkpoints, proofs and a full verification of the stored log."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from handover import bootstrap
from handover.commands.context import settings, store
from handover.config import Settings
from handover.services import audit
from handover.services.ports import UnitOfWorkFactory
from handover.tlog.verify import TlogError, Verifier, b64decode, open_checkpoint, verify_bundle
from handover.tlog.verify import verify_consistency as check_consistency

log_app = typer.Typer(help="The tamper-evident audit log (RFC 9162).", no_args_is_help=True)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _context() -> tuple[Settings, UnitOfWorkFactory]:
    current = settings()
    return current, bootstrap.uow_factory(current, store(current))


def _verifier(key: str | None, settings: Settings) -> Verifier:
    if key is None:
        return bootstrap.checkpoint_signer(settings).verifier()
    try:
        return Verifier.from_key(key)
    except TlogError as exc:
        err.print(f"[bold red]error:[/] bad verifier key: {exc}", highlight=False)
        raise typer.Exit(2) from None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        err.print(f"[bold red]error:[/] {path}: {exc}", highlight=False)
        raise typer.Exit(2) from None


@log_app.command("checkpoint")
def checkpoint() -> None:
    """Sign a checkpoint of the log as it is now and print it."""
    settings, uow_factory = _context()
    signed = audit.sign_checkpoint(
        uow_factory, bootstrap.checkpoint_signer(settings), datetime.now(UTC)
    )
    out.print(signed.note, end="", highlight=False)


@log_app.command("key")
def key() -> None:
    """Print the verifier key of this log's checkpoints."""
    settings, _ = _context()
    out.print(bootstrap.checkpoint_signer(settings).verifier().key_string(), highlight=False)


@log_app.command("verify")
def verify() -> None:
    """Recompute the tree from every stored entry; check every stored hash and checkpoint.

    Exits 1 and names the first bad leaf, node or checkpoint when anything was changed."""
    settings, uow_factory = _context()
    report = audit.verify_store(uow_factory, [bootstrap.checkpoint_signer(settings).verifier()])
    if report.ok:
        out.print(
            f"OK: {report.leaves_checked} entries and {report.checkpoints_checked} "
            f"checkpoints verify (log size {report.size})"
        )
        return
    for problem in report.problems:
        err.print(f"FAILED: {problem}", highlight=False)
    raise typer.Exit(1)


@log_app.command("prove")
def prove(
    receipt: Annotated[Path, typer.Argument(help="A tlog-proof bundle (GET /log/receipts/N)")],
    key: Annotated[str | None, typer.Option(help="Verifier key; default: this log's")] = None,
    leaf_hash: Annotated[
        str | None,
        typer.Option(help="The leaf hash (base64), for a public receipt, which has no entry"),
    ] = None,
) -> None:
    """Check a receipt offline: its entry is in the log its signed checkpoint commits to."""
    settings = Settings()
    try:
        leaf = None if leaf_hash is None else b64decode(leaf_hash, "leaf hash")
        entry = verify_bundle(_read(receipt), _verifier(key, settings), leaf=leaf)
    except TlogError as exc:
        err.print(f"FAILED: {exc}", highlight=False)
        raise typer.Exit(1) from None
    out.print(
        f"OK: entry {entry.index} is in {entry.checkpoint.origin} at size {entry.checkpoint.size}",
        highlight=False,
    )
    if entry.leaf_data is not None:
        out.print(entry.leaf_data.decode("utf-8", "replace"), highlight=False)


@log_app.command("consistency")
def consistency(
    old: Annotated[Path, typer.Argument(help="An older signed checkpoint")],
    new: Annotated[Path, typer.Argument(help="A newer signed checkpoint")],
    key: Annotated[str | None, typer.Option(help="Verifier key; default: this log's")] = None,
) -> None:
    """Prove from the store that NEW extends OLD (history was only appended to)."""
    settings, uow_factory = _context()
    verifier = _verifier(key, settings)
    try:
        first, _ = open_checkpoint(_read(old), [verifier])
        second, _ = open_checkpoint(_read(new), [verifier])
        if first.size > second.size:
            first, second = second, first
        proof = audit.prove_consistency(uow_factory, first.size, second.size) if first.size else []
        if first.size:
            check_consistency(first.size, second.size, proof, first.root_hash, second.root_hash)
    except (TlogError, audit.OutOfRange) as exc:
        err.print(f"FAILED: {exc}", highlight=False)
        raise typer.Exit(1) from None
    out.print(f"OK: size {second.size} extends size {first.size} ({len(proof)} proof hashes)")
