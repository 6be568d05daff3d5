"""The operators' command line: `handover --help`."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Column, Table
from sqlalchemy import Engine
from typer.core import TyperGroup

from handover import bootstrap
from handover.commands import demo_story
from handover.commands.check import check_command, receipt_app
from handover.commands.context import err, fail, open_store, settings, store
from handover.commands.log import log_app
from handover.commands.ssf import platform_app, ssf_app
from handover.commands.tables import print_table
from handover.config import Settings
from handover.domain.ranges import RangeError
from handover.domain.rejections import Rejected
from handover.domain.text import printable, text_fault
from handover.services import access, ranges, reporting, worker
from handover.services.access import Principal
from handover.services.check import InvalidQuestion, parse_since
from handover.services.history import number_history
from handover.services.model import ROLE_SCOPES, Ingest, Role
from handover.services.ports import StoreUnavailable


class _Arguments(TyperGroup):
    """The root command: refuses a control character in any argument (ids, names and
    numbers reach the store, which refuses NUL), by the API's rule (`domain.text`), before
    any command parses them."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # Typer's own click Context
        for argument in args:
            fault = text_fault(argument, line=True)
            if fault is not None:
                raise fail(f"an argument {fault}: {printable(argument)!r}")
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_Arguments,
    help="Handover: a clearinghouse for numbers that change hands.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The store: migrations.", no_args_is_help=True)
carrier_app = typer.Typer(help="Carriers and their reporting credentials.", no_args_is_help=True)
client_app = typer.Typer(
    help="Machine clients (regulator, platform, operator).", no_args_is_help=True
)
ingests_app = typer.Typer(
    help="Files ingested so far: summaries and rejected rows.", no_args_is_help=True
)


app.add_typer(db_app, name="db")
app.add_typer(carrier_app, name="carrier")
app.add_typer(client_app, name="client")
app.add_typer(ingests_app, name="ingests")
app.add_typer(log_app, name="log")
app.add_typer(platform_app, name="platform")
app.add_typer(ssf_app, name="ssf")
app.add_typer(receipt_app, name="receipt")
app.command("check")(check_command)

out = Console(soft_wrap=True)
_OPERATOR = Principal("cli", Role.OPERATOR, ROLE_SCOPES[Role.OPERATOR])


def _print_table(table: Table) -> None:
    print_table(out, table)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration to HANDOVER_DATABASE_URL (default ./handover.db)."""
    store(settings())
    out.print("store is at the newest schema")


@carrier_app.command("add")
def carrier_add(
    carrier_id: Annotated[str, typer.Argument(help="Short id, e.g. cmcc")],
    name: Annotated[str, typer.Option(help="Display name")],
    country: Annotated[str, typer.Option(help="ISO 3166 alpha-2, e.g. CN")],
    coverage_start: Annotated[
        str | None,
        typer.Option(
            help="From when its reports are complete (ISO 8601); default: from registration"
        ),
    ] = None,
) -> None:
    """Register a carrier and print its client credentials (shown once)."""
    start = _coverage(coverage_start) if coverage_start is not None else None
    try:
        carrier, credentials = access.register_carrier(
            open_store(), carrier_id, name, country, coverage_start=start
        )
    except ValueError as exc:
        raise fail(str(exc)) from None
    out.print(f"carrier {carrier.id} ({carrier.name}, {carrier.country}) registered")
    if start is not None:
        out.print(f"its reports cover from {start.isoformat()}")
    out.print(f"client_id:     {credentials.client_id}")
    out.print(f"client_secret: {credentials.client_secret}  (shown once; store it now)")


def _coverage(value: str) -> datetime:
    try:
        start = parse_since(value)
    except InvalidQuestion as exc:
        raise fail(str(exc)) from None
    if start > datetime.now(UTC):
        raise fail("the coverage start is in the future")
    return start


@carrier_app.command("coverage")
def carrier_coverage(
    carrier_id: Annotated[str, typer.Argument(help="The carrier's id")],
    start: Annotated[
        str, typer.Argument(help="From when its reports are complete: ISO 8601 date or time")
    ],
) -> None:
    """Set from when a carrier's reports are complete; checks about earlier dates answer
    `no_data` (CAMARA: SERVICE_NOT_APPLICABLE)."""
    moment = _coverage(start)
    if access.set_coverage(open_store(), carrier_id, moment) is None:
        raise fail(f"carrier {carrier_id!r} is not registered (see `handover carrier list`)")
    out.print(f"carrier {carrier_id}: reports cover from {moment.isoformat()}", highlight=False)


@carrier_app.command("list")
def carrier_list() -> None:
    """List registered carriers."""
    carriers = access.list_carriers(open_store())
    table = Table("id", "name", "country", "registered")
    for carrier in carriers:
        table.add_row(carrier.id, carrier.name, carrier.country, carrier.created_at.isoformat())
    _print_table(table)


@carrier_app.command("grant")
def carrier_grant(
    carrier_id: Annotated[str, typer.Argument(help="The carrier's id")],
    prefixes: Annotated[
        list[str], typer.Argument(help="E.164 prefixes of its number blocks, e.g. +86138")
    ],
    note: Annotated[
        str | None, typer.Option(help="Why: the allocation decision, a licence reference")
    ] = None,
) -> None:
    """Grant a carrier number ranges: only it may activate numbers never reported before
    under these prefixes. All or none; a prefix may not overlap any granted range."""
    try:
        granted = ranges.grant_ranges(
            open_store(), carrier_id, prefixes, granted_by=_operator_name(), note=note
        )
    except RangeError as exc:
        raise fail(exc.detail) from None
    for number_range in granted:
        out.print(f"{number_range.prefix} granted to {carrier_id}", highlight=False)


@carrier_app.command("ranges")
def carrier_ranges(
    carrier_id: Annotated[str | None, typer.Argument(help="Only this carrier's ranges")] = None,
) -> None:
    """List the granted number ranges, by prefix."""
    table = Table("prefix", "carrier", "granted", "by", "note")
    for r in ranges.list_ranges(open_store(), carrier_id):
        table.add_row(r.prefix, r.carrier_id, r.granted_at.isoformat(), r.granted_by, r.note)
    _print_table(table)


@carrier_app.command("revoke")
def carrier_revoke(
    prefix: Annotated[str, typer.Argument(help="The granted prefix, exactly as granted")],
) -> None:
    """Revoke a number range: numbers never reported under it can no longer be activated.
    Numbers already reported keep their holder and lifecycle."""
    try:
        removed = ranges.revoke_range(open_store(), prefix)
    except RangeError as exc:
        raise fail(exc.detail) from None
    out.print(f"{removed.prefix} revoked from {removed.carrier_id}", highlight=False)


def _operator_name() -> str | None:
    """Who runs the command, as the operating system knows them (recorded with a grant)."""
    try:
        return os.getlogin()
    except OSError:
        return os.environ.get("USER") or None


@client_app.command("add")
def client_add(
    role: Annotated[Role, typer.Option(help="regulator or operator")],
    name: Annotated[str, typer.Option(help="Who this client is")],
) -> None:
    """Create client credentials for a non-carrier role (shown once)."""
    if role is Role.CARRIER:
        raise fail("carrier credentials come with `handover carrier add`")
    if role is Role.PLATFORM:
        raise fail("platform credentials come with `handover platform add`")
    credentials = access.register_client(open_store(), role, name)
    out.print(f"client_id:     {credentials.client_id}")
    out.print(f"client_secret: {credentials.client_secret}  (shown once; store it now)")


@app.command()
def ingest(
    file: Annotated[
        Path, typer.Argument(help="CSV: event_id,number,event,occurred_at,subscriber,to_carrier")
    ],
    carrier: Annotated[str, typer.Option(help="The reporting carrier's id")],
    region: Annotated[
        str | None,
        typer.Option(help="Region of national-format numbers; default: the carrier's country"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
) -> None:
    """Apply a carrier's lifecycle file; every row is accepted, a duplicate or rejected."""
    if not file.is_file():
        raise fail(f"{file}: no such file")
    uow_factory = open_store()
    current = settings()
    size = file.stat().st_size
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=as_json or not err.is_terminal,
    ) as bar:
        read = bar.add_task("reading", total=size)
        apply = bar.add_task("applying", total=None, visible=False)

        def progress(phase: str, done: int, total: int | None) -> None:
            if phase == "read":
                bar.update(read, completed=done)
            else:
                bar.update(apply, completed=done, total=total, visible=True)

        with file.open("rb") as lines:
            try:
                result = reporting.ingest_file(
                    uow_factory,
                    bootstrap.report_sorters(current),
                    carrier,
                    lines,
                    filename=file.name,
                    region=region,
                    total_bytes=size,
                    progress=progress,
                    policy=current.freeze_policy,
                )
            except reporting.UnknownCarrier:
                raise fail(
                    f"carrier {carrier!r} is not registered (see `handover carrier list`)"
                ) from None
            except reporting.FileRejected as exc:
                raise fail(f"{file}: {exc}") from None
    _print_ingest(result, as_json)


def _print_ingest(ingest: Ingest, as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(ingest.summary()))
        return
    out.print(
        f"ingest {ingest.id} ({ingest.filename or ingest.source}, {ingest.status}): "
        f"{ingest.rows} rows"
    )
    out.print(f"  accepted   {ingest.accepted}")
    out.print(f"  duplicates {ingest.duplicates}")
    out.print(f"  rejected   {sum(ingest.rejected.values())}")
    for reason, count in sorted(ingest.rejected.items()):
        out.print(f"    {reason:<28} {count}")
    if ingest.rejected:
        out.print(f"rejected rows: handover ingests show {ingest.id} --rejections")


@ingests_app.command("list")
def ingests_list(
    carrier: Annotated[str | None, typer.Option(help="Only this carrier's files")] = None,
    limit: int = 20,
) -> None:
    """The most recent ingests with their summaries."""
    ingests = reporting.recent_ingests(open_store(), carrier, limit)
    table = Table(
        Column("id", no_wrap=True, min_width=36),  # needed whole for `ingests show`
        "carrier",
        "file",
        "status",
        "received",
        "rows",
        "accepted",
        "duplicates",
        "rejected",
    )
    for i in ingests:
        table.add_row(
            i.id,
            i.carrier_id,
            i.filename or i.source,
            i.status,
            i.received_at.isoformat(timespec="seconds"),
            str(i.rows),
            str(i.accepted),
            str(i.duplicates),
            str(sum(i.rejected.values())),
        )
    _print_table(table)


@ingests_app.command("show")
def ingests_show(
    ingest_id: str,
    rejections: Annotated[bool, typer.Option(help="List the rejected rows")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One ingest's summary, and with --rejections every rejected row (line, reason)."""
    uow_factory = open_store()
    found = reporting.find_ingest(uow_factory, ingest_id)
    if found is None:
        raise fail(f"no ingest {ingest_id!r}")
    if not rejections:
        _print_ingest(found, as_json)
        return
    after = 0
    while True:
        page = reporting.rejected_rows(uow_factory, ingest_id, after, 10_000)
        for row in page:
            record = {
                "line": row.line,
                "event_id": row.event_id,
                "reason": row.reason,
                "detail": row.detail,
            }
            if as_json:
                sys.stdout.write(json.dumps(record) + "\n")
            else:
                out.print(f"line {row.line}: {row.reason} ({row.detail})", highlight=False)
        if len(page) < 10_000:
            break
        after = page[-1].line


@app.command()
def history(number: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """A number's state, tenures and events (operator view)."""
    try:
        found = number_history(open_store(), number, _OPERATOR)
    except Rejected as exc:
        raise fail(exc.detail) from None
    if found is None:
        raise fail(f"{number} is not known", code=1)
    if as_json:
        out.print_json(
            data={
                "number": found.e164,
                "state": found.state,
                "carrier": found.carrier_id,
                "tenures": [
                    {
                        "subscriber": t.subscriber,
                        "carrier": t.carrier,
                        "start": t.start.isoformat(),
                        "end": t.end.isoformat() if t.end else None,
                    }
                    for t in found.tenures
                ],
                "events": [
                    {
                        "event_id": e.event_id,
                        "event": e.kind,
                        "carrier": e.carrier_id,
                        "occurred_at": e.occurred_at.isoformat(),
                    }
                    for e in found.events
                ],
            }
        )
        return
    out.print(f"{found.e164}  {found.state}  held by {found.carrier_id}")
    for tenure in found.tenures:
        end = tenure.end.isoformat() if tenure.end else "now"
        out.print(
            f"  tenure {tenure.subscriber}@{tenure.carrier}: {tenure.start.isoformat()} .. {end}"
        )
    for event in found.events:
        out.print(f"  {event.occurred_at.isoformat()}  {event.kind:<10} {event.event_id}")


@app.command()
def work(
    once: Annotated[bool, typer.Option(help="Do one round and exit")] = False,
    idle: Annotated[float, typer.Option(help="Seconds to wait when nothing is due")] = 0.2,
) -> None:
    """Background work: push SETs to platforms' streams, remind previous owners of frozen
    numbers, escalate cases past their deadline, send queued messages to people (SMS,
    e-mail), and sign an audit-log checkpoint every HANDOVER_CHECKPOINT_INTERVAL_SECONDS.
    Run several for more delivery throughput. The store going away (a restart) does not
    stop it: it logs the outage, retries with a growing wait (up to 30 s) and carries on when
    the store is back; its heartbeat feeds GET /readyz. With --once, a failure exits 1."""
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    current = settings()
    try:
        runner = bootstrap.worker(current, _store_when_it_answers(current, once))
        runner.policy = replace(runner.policy, idle=idle)
        worker.work(runner, once=once, report=_print_round)
    except StoreUnavailable as exc:
        raise fail(exc.detail, code=1) from None


def _store_when_it_answers(current: Settings, once: bool) -> Engine:
    """The migrated store, waited for (`Backoff`) while it does not answer, unless `once`."""
    backoff = worker.Backoff()
    failures = 0
    while True:
        try:
            return store(current)
        except StoreUnavailable as exc:
            if once:
                raise
            failures += 1
            wait = backoff.delay(failures)
            worker.log.warning("store unavailable at start; retrying in %.1f s: %s", wait, exc)
            time.sleep(wait)


def _print_round(done: worker.WorkReport) -> None:
    if done.failed:
        err.print(f"failed (logged, retried): {', '.join(done.failed)}", highlight=False)
    if done.checkpoint is not None:
        err.print(f"checkpoint: size {done.checkpoint.size}", highlight=False)
    if done.reminded:
        err.print(f"freeze: {done.reminded} reminder(s) to previous owners", highlight=False)
    if done.escalated:
        err.print(f"cases: {done.escalated} escalated past their deadline", highlight=False)
    push, mail = done.push, done.messages
    if push.streams:
        err.print(
            f"push: {push.streams} stream(s), {push.delivered} delivered, "
            f"{push.failed} to retry, {push.dead} dead-lettered",
            highlight=False,
        )
    if mail.handled:
        err.print(
            f"messages: {mail.sent} sent, {mail.failed} to retry, {mail.given_up} given up",
            highlight=False,
        )


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
) -> None:
    """Serve the HTTP API (migrating the store first)."""
    import uvicorn

    store(settings())
    uvicorn.run("handover.api.app:create_app", factory=True, host=host, port=port, workers=workers)


@app.command()
def demo(
    port: int = 8000,
    directory: Annotated[Path, typer.Option(help="Where the demo store lives")] = Path("var"),
) -> None:
    """Serve the API on a fresh SQLite store seeded with a carrier, a regulator, five
    platforms and the renewal story (a recycled number, its previous and new owner)."""
    import uvicorn

    directory.mkdir(parents=True, exist_ok=True)
    database = directory / "demo.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    os.environ["HANDOVER_DATABASE_URL"] = f"sqlite:///{database.resolve()}"
    os.environ.setdefault("HANDOVER_PUBLIC_URL", f"http://127.0.0.1:{port}")
    story = demo_story.seed_story(open_store())
    base = f"http://127.0.0.1:{port}"
    receiver_port = port + 1
    out.print(
        demo_help(story, base, database, f"http://127.0.0.1:{receiver_port}"), highlight=False
    )
    answering = story.platforms[demo_story.ANSWERING]
    helpers = _DemoProcesses(base, directory, answering, receiver_port)
    server = uvicorn.Server(
        uvicorn.Config("handover.api.app:create_app", factory=True, host="127.0.0.1", port=port)
    )
    threading.Thread(target=helpers.start, daemon=True).start()
    try:
        server.run()
    finally:
        helpers.stop()


def demo_help(story: demo_story.Story, base: str, database: Path, receiver: str) -> str:
    """The demo's instructions (Rich markup): credentials, then curl steps to follow."""
    platforms = story.platforms
    return _DEMO_HELP.format(
        base=base,
        cid=story.carrier.client_id,
        secret=story.carrier.client_secret,
        rid=story.regulator.client_id,
        rsecret=story.regulator.client_secret,
        platforms="\n".join(
            f"  {pid:<11} {category:<11} {tier:<7}client_id {platforms[pid].client_id}"
            f"   client_secret {platforms[pid].client_secret}"
            for pid, (_, category, tier) in demo_story.PLATFORMS.items()
        ),
        pid=platforms["demo-pay"].client_id,
        psecret=platforms["demo-pay"].client_secret,
        bid=platforms["demo-bank"].client_id,
        bsecret=platforms["demo-bank"].client_secret,
        db=database,
        receiver=receiver,
        recycled=demo_story.RECYCLED,
        alice_now=demo_story.ALICE_NOW,
        overdue=demo_story.OVERDUE,
    )


class _DemoProcesses:
    """The demo's other processes, started once the API answers: `handover work` (push
    delivery, deadlines, checkpoints) and the example platform (examples/platform_receiver)
    as demo-pay, which opens a push stream, receives SETs for real over HTTP and answers
    every case opened to it with `unbound`."""

    def __init__(
        self, base: str, directory: Path, platform: access.IssuedCredentials, port: int
    ) -> None:
        self.base, self.directory, self.platform, self.port = base, directory, platform, port
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        import httpx

        for _ in range(100):
            try:
                httpx.get(f"{self.base}/healthz", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        python = sys.executable
        self.processes.append(
            subprocess.Popen([python, "-m", "handover.cli", "work", "--idle", "0.1"])
        )
        root = Path(__file__).resolve().parents[2]
        if not (root / "examples" / "platform_receiver").is_dir():
            err.print("examples/platform_receiver is not here; the demo runs without it")
            return
        receiver_db = self.directory / "receiver.db"
        receiver_db.unlink(missing_ok=True)
        command = [python, "-m", "examples.platform_receiver", "--issuer", self.base]
        command += ["--client-id", self.platform.client_id]
        command += ["--client-secret", self.platform.client_secret]
        command += ["--mode", "push", "--port", str(self.port), "--db", str(receiver_db)]
        command += ["--answer", "unbound"]
        self.processes.append(subprocess.Popen(command, cwd=root))

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


_DEMO_HELP = """
[bold]Handover demo[/] on {base}  (store: {db}; API docs: {base}/docs)

Carrier [bold]demo-mobile[/] (CN)   client_id {cid}   client_secret {secret}
Regulator                     client_id {rid}   client_secret {rsecret}
Platforms (the example platform on {receiver} runs as demo-pay and answers its cases):
{platforms}
(demo-mobile's reports cover numbers from 2020-01-01 on)

1. Get a token:
   TOKEN=$(curl -s -u {cid}:{secret} -d grant_type=client_credentials \\
           {base}/oauth/token | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
2. Report events:
   curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' {base}/v1/carrier/events \\
     -d '{{"events":[{{"event_id":"e1","number":"13812345678","event":"activated","occurred_at":"2024-01-01","subscriber":"sub-1"}}]}}'
3. Upload a CSV file:
   printf 'event_id,number,event,occurred_at,subscriber,to_carrier\\ne2,+8613812345678,cancelled,2025-01-01,,\\n' > events.csv
   curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: text/csv' --data-binary @events.csv {base}/v1/carrier/files
4. Read the number's history:
   curl -s -H "Authorization: Bearer $TOKEN" {base}/v1/numbers/+8613812345678
5. Every accepted event is in the audit log. Fetch the first one's receipt and verify it offline:
   curl -s {base}/log/receipts/0 > receipt.tlog-proof
   .venv/bin/python -m handover.tlog verify-bundle --key "$(curl -s {base}/log/key)" receipt.tlog-proof
6. As demo-pay: did +8613812345678 change hands since the account was bound (2024-06-01)?
   PTOKEN=$(curl -s -u {pid}:{psecret} -d grant_type=client_credentials \\
           {base}/oauth/token | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
   curl -s -H "Authorization: Bearer $PTOKEN" '{base}/v1/check?number=%2B8613812345678&since=2024-06-01&receipt=true'
7. Recycle the number: release it after the freeze and give it to a new subscriber. `handover work`
   pushes the signed events to the demo platform (examples/platform_receiver on {receiver}),
   which verifies them; see what it received:
   curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' {base}/v1/carrier/events \\
     -d '{{"events":[{{"event_id":"e3","number":"+8613812345678","event":"released","occurred_at":"2025-06-01"}},
                    {{"event_id":"e4","number":"+8613812345678","event":"activated","occurred_at":"2025-07-01","subscriber":"sub-2"}}]}}'
   curl -s {receiver}/received

[bold]Renewal story[/] (already in the store): alice held {recycled} from 2021 and cancelled it in
2023; after the freeze demo-mobile gave it to bob (2024-03-01), and Demo Pay, Demo Bank and
Demo Chat still list alice's accounts on it. alice holds {alice_now} now. carol renewed
{overdue} four days ago, and Demo Loans never answered. A helper to read JSON fields:
   j() {{ python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }}
8. Sign in as bob. The console SMS sender prints the code in this terminal
   ("INFO: SMS to {recycled}: ... 123456 ..."); asking again sends nothing while it lives:
   curl -s -H 'Content-Type: application/json' {base}/v1/subscriber/sign-in/code -d '{{"number":"{recycled}"}}'
   CODE=123456   # the code from this terminal
   BOB=$(curl -s -H 'Content-Type: application/json' {base}/v1/subscriber/sign-in \\
         -d '{{"number":"{recycled}","code":"'$CODE'"}}' | j '["session"]')
9. The platforms that still list the number from before bob's tenure, and the others taking part:
   curl -s -H "Authorization: Bearer $BOB" {base}/v1/subscriber/renewal
10. Renew: one case per platform, each with a deadline (24 h for payment, banking, lending; else 72 h):
   RENEWAL=$(curl -s -H "Authorization: Bearer $BOB" -H 'Content-Type: application/json' \\
         {base}/v1/subscriber/renewals -d '{{"platforms":["demo-bank","demo-chat","demo-pay"],"check_all_others":true}}' | j '["id"]')
11. Watch it: demo-pay gets its case-opened SET by push and answers `unbound` within a second or
   two (see the answer in {receiver}/received); the other four stay open:
   curl -s -H "Authorization: Bearer $BOB" {base}/v1/subscriber/renewals/$RENEWAL
   Answer one by hand, as Demo Bank, then watch again:
   BANK=$(curl -s -u {bid}:{bsecret} -d grant_type=client_credentials {base}/oauth/token | j '["access_token"]')
   CASE=$(curl -s -H "Authorization: Bearer $BANK" '{base}/v1/platform/cases?state=open' | j '["items"][0]["id"]')
   curl -s -H "Authorization: Bearer $BANK" -H 'Content-Type: application/json' \\
         {base}/v1/platform/cases/$CASE/outcome -d '{{"outcome":"unbound"}}'
12. A tenure certificate for the debt collectors still calling about alice: open its print_url in a browser
   curl -s -X POST -H "Authorization: Bearer $BOB" {base}/v1/subscriber/certificates | j '["print_url"]'
13. Sign in as alice with {alice_now} (as in step 8), then read her checklist: her accounts on the
   numbers she holds, and whether she may give them up (not while a high-value one is bound):
   curl -s -H 'Content-Type: application/json' {base}/v1/subscriber/sign-in/code -d '{{"number":"{alice_now}"}}'
   CODE=123456   # the code from this terminal
   ALICE=$(curl -s -H 'Content-Type: application/json' {base}/v1/subscriber/sign-in \\
         -d '{{"number":"{alice_now}","code":"'$CODE'"}}' | j '["session"]')
   curl -s -H "Authorization: Bearer $ALICE" {base}/v1/subscriber/checklist
   curl -s -H "Authorization: Bearer $ALICE" {base}/v1/subscriber/me   # the number she gave up too
14. As the regulator: the cases past their deadline (carol's at Demo Loans), with their age:
   RTOKEN=$(curl -s -u {rid}:{rsecret} -d grant_type=client_credentials {base}/oauth/token | j '["access_token"]')
   curl -s -H "Authorization: Bearer $RTOKEN" {base}/v1/regulator/cases/overdue
"""


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover - `python -m handover.cli`
    main()
