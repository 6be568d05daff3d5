"""`handover check` (one number, or a CSV file of questions) and `handover receipt verify`."""

from __future__ import annotations

import csv
import json
import sys
from collections import Counter, deque
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from sqlalchemy import Engine

from handover import bootstrap
from handover.commands.context import fail, settings, store
from handover.config import Settings
from handover.services.check import CheckResult, InvalidQuestion, check
from handover.services.receipts import InvalidReceipt, answer_record

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
receipt_app = typer.Typer(help="Signed check receipts.", no_args_is_help=True)

#: Columns `handover check FILE` appends to each input row.
RESULT_COLUMNS = (
    "e164",
    "since_utc",
    "recycled",
    "disconnected",
    "rnd",
    "verdict",
    "reasons",
    "state",
    "last_disconnected",
    "reassigned_at",
    "data_version",
    "error",
)


def _context() -> tuple[Settings, Engine]:
    current = settings()
    return current, store(current)


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # e.g. a receipt too long to be a file name
        return False


def _flag(value: bool | None) -> str:
    return "" if value is None else str(value).lower()


def _row(result: CheckResult | InvalidQuestion) -> list[str]:
    if isinstance(result, InvalidQuestion):
        return [""] * (len(RESULT_COLUMNS) - 1) + [f"{result.code}: {result}"]
    record = answer_record(result)
    return [
        record["number"],
        record["since"],
        _flag(record["recycled"]),
        _flag(record["disconnected"]),
        record["rnd"],
        record["verdict"],
        ";".join(record["reasons"]),
        record["state"] or "",
        record["last_disconnected"] or "",
        record["reassigned_at"] or "",
        str(record["data_version"]),
        "",
    ]


def check_command(
    target: Annotated[
        str,
        typer.Argument(help="A CSV file of questions, or one number in E.164", show_default=False),
    ],
    since: Annotated[
        str | None,
        typer.Option(
            help="The date asked about (ISO 8601; UTC): for one number, or every row of a file"
        ),
    ] = None,
    since_column: Annotated[
        str | None, typer.Option(help="FILE: the column holding each row's date")
    ] = None,
    number_column: Annotated[str, typer.Option(help="FILE: the column holding the number")] = (
        "number"
    ),
    out_path: Annotated[
        Path | None,
        typer.Option("--out", help="FILE: where the results CSV goes ('-': standard output)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="NUMBER: print the answer as JSON")] = (
        False
    ),
) -> None:
    """Did a number change hands since a date? One NUMBER with --since, or a CSV FILE with
    a number column and --since-column (or one --since for every row) streamed to --out."""
    path = Path(target)
    if _is_file(path):
        _check_file(path, since, since_column, number_column, out_path)
        return
    if path.suffix.lower() in (".csv", ".txt") or "/" in target:
        raise fail(f"{target}: no such file")
    if since is None:
        raise fail("--since DATE is needed to check one number")
    if since_column is not None or out_path is not None:
        raise fail("--since-column and --out are for a FILE of questions")
    _check_one(target, since, as_json)


def _check_one(number: str, since: str, as_json: bool) -> None:
    settings, engine = _context()
    try:
        index = bootstrap.check_index(settings, engine)
        now = datetime.now(UTC)
        try:
            result = check(index, number, since, now)
        except InvalidQuestion as exc:
            raise fail(f"{exc.code}: {exc}") from None
    finally:
        engine.dispose()
    record = answer_record(result)
    record["checked_at"] = now.replace(microsecond=0).isoformat().replace("+00:00", "Z")
    if as_json:
        sys.stdout.write(json.dumps(record, indent=2) + "\n")
        return
    a = result.answer

    def yes_no(value: bool | None) -> str:
        return "no data" if value is None else ("yes" if value else "no")

    out.print(
        f"{record['number']} since {record['since']} (data version {record['data_version']})",
        highlight=False,
    )
    out.print(f"  recycled      {yes_no(a.recycled)}", highlight=False)
    out.print(f"  disconnected  {yes_no(a.disconnected)}  (RND: {a.rnd.value})", highlight=False)
    reasons = ", ".join(r.value for r in a.reasons)
    out.print(f"  verdict       {a.verdict.value}" + (f"  ({reasons})" if reasons else ""))
    out.print(f"  state         {record['state'] or 'never reported'}", highlight=False)
    if record["last_disconnected"]:
        out.print(f"  disconnected  at {record['last_disconnected']}", highlight=False)
    if record["reassigned_at"]:
        out.print(f"  reassigned    at {record['reassigned_at']}", highlight=False)


def _lines(raw: IO[bytes], bar: Progress, task: TaskID) -> Iterator[str]:
    """The file's lines as text, advancing the progress bar by bytes read."""
    done = 0
    first = True
    for line in raw:
        done += len(line)
        bar.update(task, completed=done)
        yield line.decode("utf-8-sig" if first else "utf-8")
        first = False


def _check_file(
    path: Path,
    since: str | None,
    since_column: str | None,
    number_column: str,
    out_path: Path | None,
) -> None:
    if out_path is None:
        raise fail("--out results.csv is needed for a file ('-' for standard output)")
    if (since is None) == (since_column is None):
        raise fail("give either --since-column COLUMN or one --since DATE for every row")
    if out_path != Path("-") and out_path.resolve() == path.resolve():
        raise fail("--out must not be the input file")
    settings, engine = _context()
    counts: Counter[str] = Counter()
    try:
        index = bootstrap.check_index(settings, engine)
        with (
            path.open("rb") as raw,
            Progress(
                TextColumn("checking"),
                BarColumn(),
                DownloadColumn(),
                TextColumn("{task.fields[rows]:,} rows"),
                TimeElapsedColumn(),
                console=err,
                disable=not err.is_terminal,
            ) as bar,
        ):
            task = bar.add_task("checking", total=path.stat().st_size, rows=0)
            reader = csv.reader(_lines(raw, bar, task))
            try:
                header = next(reader)
            except StopIteration:
                raise fail(f"{path}: the file is empty") from None
            columns = {name.strip(): i for i, name in enumerate(header)}
            for name in (number_column, since_column):
                if name is not None and name not in columns:
                    raise fail(
                        f"{path}: no column {name!r} (columns: {', '.join(columns) or 'none'})"
                    )
            n = columns[number_column]
            s = columns[since_column] if since_column is not None else None
            pending: deque[list[str]] = deque()

            def questions() -> Iterator[tuple[str, str]]:
                for row in reader:
                    if not any(cell.strip() for cell in row):
                        continue
                    pending.append(row)
                    number = row[n] if n < len(row) else ""
                    if s is None:
                        yield number, since or ""
                    else:
                        yield number, row[s] if s < len(row) else ""

            target = sys.stdout if out_path == Path("-") else out_path.open("w", newline="")
            try:
                writer = csv.writer(target)
                writer.writerow([*header, *RESULT_COLUMNS])
                now = datetime.now(UTC)
                for result in bootstrap.check_many(index, questions(), now):
                    row = pending.popleft()
                    writer.writerow([*row, *_row(result)])
                    counts[_outcome(result)] += 1
                    if counts.total() % 1000 == 0:
                        bar.update(task, rows=counts.total())
                bar.update(task, rows=counts.total())
            finally:
                if target is not sys.stdout:
                    target.close()
    except UnicodeDecodeError as exc:
        raise fail(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise fail(f"{path}: not a readable CSV file ({exc})") from None
    finally:
        engine.dispose()
    summary = ", ".join(f"{count:,} {name}" for name, count in sorted(counts.items()))
    destination = "standard output" if out_path == Path("-") else str(out_path)
    err.print(
        f"checked {counts.total():,} rows ({summary or 'none'}) -> {destination}", highlight=False
    )


def _outcome(result: CheckResult | InvalidQuestion) -> str:
    if isinstance(result, InvalidQuestion):
        return "errors"
    if result.answer.recycled is None:
        return "no data"
    return "recycled" if result.answer.recycled else "not recycled"


# -- receipts ----------------------------------------------------------------------------


def _read_receipt(value: str) -> str:
    path = Path(value)
    text = value
    if _is_file(path):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise fail(f"{path}: {exc}") from None
    elif value.count(".") != 2:
        raise fail(f"{value}: neither a file nor a compact JWS")
    text = text.strip()
    if text.startswith("{"):  # a saved answer from GET /v1/check?receipt=true
        try:
            found = json.loads(text).get("receipt")
        except (ValueError, AttributeError):
            found = None
        if not isinstance(found, str):
            raise fail(f"{value}: JSON without a `receipt`")
        text = found
    return text


def _read_jwks(source: str | None) -> dict[str, Any]:
    if source is None:
        return bootstrap.receipt_signer(settings()).jwks()
    try:
        if source.startswith(("http://", "https://")):
            import httpx

            response = httpx.get(source, timeout=10, follow_redirects=True)
            response.raise_for_status()
            document = response.json()
        else:
            document = json.loads(Path(source).read_text(encoding="utf-8"))
    except Exception as exc:
        raise fail(f"cannot read the key set {source}: {exc}") from None
    if isinstance(document, dict) and "kty" in document:
        document = {"keys": [document]}  # a single JWK
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise fail(f"{source}: not a JWK Set")
    return document


@receipt_app.command("verify")
def receipt_verify(
    receipt: Annotated[
        str,
        typer.Argument(
            help="A receipt (compact JWS), or a file holding one or a saved JSON answer",
            show_default=False,
        ),
    ],
    jwks: Annotated[
        str | None,
        typer.Option(
            help="The key set: a URL (e.g. https://HOST/.well-known/jwks.json) or a file; "
            "default: this deployment's receipt key"
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
) -> None:
    """Check a receipt's signature; print what it proves. Exits 1 when it does not verify."""
    token = _read_receipt(receipt)
    key_set = _read_jwks(jwks)
    try:
        claims = bootstrap.verify_receipt(token, key_set)
    except InvalidReceipt as exc:
        if as_json:
            sys.stdout.write(json.dumps({"valid": False, "error": str(exc)}) + "\n")
        else:
            err.print(f"FAILED: {exc}", highlight=False)
        raise typer.Exit(1) from None
    kid = bootstrap.receipt_key_id(token)
    if as_json:
        sys.stdout.write(json.dumps({"valid": True, "kid": kid, "claims": claims}, indent=2) + "\n")
        return
    issued = datetime.fromtimestamp(claims.get("iat", 0), UTC).isoformat()
    out.print(f"OK: signed by {claims.get('iss')} (key {kid}) at {issued}", highlight=False)
    out.print(json.dumps(claims, indent=2), highlight=False)
