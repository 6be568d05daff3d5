"""Every example in README.md and docs/*.md, run for real (the convention: doc_examples.py).

Each document is one session on a fresh store (SQLite and PostgreSQL): an app built as
`handover serve` builds it, `handover` commands in-process on the same store, `curl` lines
sent to the app in-process with real client credentials and tokens, Python run as it is
written. Set-up the examples assume (a registered carrier, a recycled number) is made by
the `given=` steps below, through the same CLI and HTTP API a person would use.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from doc_examples import (
    KINDS,
    Block,
    Document,
    ExampleFailed,
    Run,
    Shell,
    jq,
    match_json,
    match_text,
    parse_shape,
    read_document,
)
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

import granted
from handover.api.app import create_app
from handover.cli import app as cli
from handover.cli import demo_help
from handover.commands.demo_story import seed_story
from handover.config import Settings
from handover.services.ports import UnitOfWorkFactory

ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = "doc-test-secret-key-that-is-long-enough-0123456789"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
DOCUMENTS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
#: Generated from `--help` and checked by test_cli.py::test_docs_cli_md_is_up_to_date.
GENERATED = {ROOT / "docs" / "cli.md"}
#: The blocks not run (diagrams), by document and how the block begins.
ILLUSTRATIVE = {
    ("architecture.md", "api/ (FastAPI)   cli.py, commands/ (Typer)"),
    ("cases.md", "open ──answer──▶ answered"),
}


def documents() -> list[Document]:
    return [read_document(path) for path in DOCUMENTS if path not in GENERATED]


# -- the session -----------------------------------------------------------------------------


@dataclass
class DocSession:
    """One document's run: its store, app, HTTP client, shell and working directory."""

    settings: Settings
    app: FastAPI
    http: TestClient
    directory: Path
    monkeypatch: pytest.MonkeyPatch
    shell: Shell = field(init=False)
    last_response: httpx.Response | None = None
    #: Credentials made by the given steps, by name (carrier id, platform id, "regulator").
    clients: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: Placeholders a given step filled for the next block (`N`: a tree size, ...).
    values: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        python = self.python
        self.shell = Shell(
            {
                "curl": self.curl,
                "handover": self.handover,
                "python": python,
                "python3": python,
                ".venv/bin/python": python,
                "jq": jq,
                "cat": lambda args, stdin: Run((self.directory / args[0]).read_text()),
            },
            cwd=self.directory,
        )

    @property
    def env(self) -> dict[str, str]:
        """What `handover` and `python` see: this session's store and keys."""
        return {
            "HANDOVER_DATABASE_URL": self.settings.database_url,
            "HANDOVER_SECRET_KEY": self.settings.secret_key,
            "HANDOVER_ENVIRONMENT": "test",
            "HANDOVER_PUBLIC_URL": self.settings.public_url,
            "HANDOVER_SPOOL_DIR": self.settings.spool_dir or "",
        }

    # -- the programs the docs run --------------------------------------------------------

    def handover(self, args: list[str], stdin: str = "") -> Run:
        """`handover` in-process. `serve` runs up to uvicorn (which is not started: the app
        it would serve is this session's); `work` does one round (`--once`: the loop itself
        outlives any failure, so nothing inside a round can end it).
        Whatever URL a command fetches (a JWKS) is this session's Handover."""
        with self.monkeypatch.context() as patch:
            patch.setattr("httpx.get", lambda url, **_: self.http.get(urlsplit(url).path))
            served: list[Any] = []
            if args[:1] == ["serve"]:
                patch.setattr("uvicorn.run", lambda *a, **k: served.append(a))
            if args[:1] == ["work"] and "--once" not in args:
                args = [*args, "--once"]
            result = CliRunner().invoke(cli, args, env=self.env, prog_name="handover", input=stdin)
        if args[:1] == ["serve"]:
            assert served == [("handover.api.app:create_app",)], result.output
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        code = result.exit_code
        return Run(ANSI.sub("", result.stdout), ANSI.sub("", result.stderr), code)

    def python(self, args: list[str], stdin: str = "", cwd: Path | None = None) -> Run:
        done = subprocess.run(
            [sys.executable, *args],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=cwd or self.directory,
            env={**self.env, "PATH": "/usr/bin:/bin"},
            timeout=120,
        )
        return Run(done.stdout, done.stderr, done.returncode)

    def curl(self, args: list[str], stdin: str = "") -> Run:
        """curl's options the docs use, against the app in-process (any host)."""
        method, url, headers, data = None, None, {}, []
        auth = None
        words = iter(args)
        for word in words:
            if word in ("-u", "--user"):
                user, _, password = next(words).partition(":")
                auth = (user, password)
            elif word in ("-d", "--data", "--data-binary"):
                value = next(words)
                binary = word == "--data-binary"
                if value.startswith("@"):
                    value = (self.directory / value[1:]).read_text()
                data.append(value if binary else value.replace("\n", ""))
            elif word in ("-H", "--header"):
                name, _, value = next(words).partition(":")
                headers[name.strip()] = value.strip()
            elif word in ("-X", "--request"):
                method = next(words)
            elif word.startswith("-") and set(word[1:]) <= set("sSNL"):
                continue
            elif word.startswith("http"):
                url = word
            else:
                raise ExampleFailed(f"curl option {word!r} is not one the doc tests know")
        assert url is not None, "curl without a URL"
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        body = "&".join(data) if data else None
        if body is not None:
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        response = self.http.request(
            method or ("POST" if body is not None else "GET"),
            path,
            content=body.encode() if body is not None else None,
            headers=headers,
            auth=auth,
        )
        self.last_response = response
        return Run(response.text, status=0 if response.is_success else 22)

    # -- helpers for the given steps -------------------------------------------------------

    def cli_ok(self, *args: str) -> str:
        run = self.handover(list(args))
        assert run.status == 0, run.output
        return run.stdout

    def credentials(self, name: str, output: str) -> tuple[str, str]:
        client_id = re.search(r"client_id:\s+(\S+)", output)
        secret = re.search(r"client_secret:\s+(\S+)", output)
        assert client_id and secret, output
        self.clients[name] = (client_id.group(1), secret.group(1))
        return self.clients[name]

    def token(self, name: str) -> str:
        client_id, secret = self.clients[name]
        answer = self.http.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
        )
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["access_token"]
        return token

    def call(self, method: str, path: str, who: str | None = None, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token(who)}"} if who else {}
        answer = self.http.request(method, path, headers=headers, **kwargs)
        assert answer.is_success, answer.text
        return answer.json() if answer.content else None


@pytest.fixture
def session_for(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[Document], DocSession]]:
    """A session for one document: its app on this test's store, in a fresh directory."""
    cleanup = ExitStack()

    def make(document: Document) -> DocSession:
        directory = tmp_path / "work"
        directory.mkdir()
        (tmp_path / "spool").mkdir()
        monkeypatch.chdir(directory)
        # The console SMS sender's code, as the docs show it (it is random otherwise).
        monkeypatch.setattr("handover.domain.sign_in.new_code", lambda: "123456")
        settings = Settings(
            database_url=store_url,
            environment="test",
            secret_key=SECRET_KEY,
            spool_dir=str(tmp_path / "spool"),
            public_url=document.session.get("public_url", "http://127.0.0.1:8000"),
            check_refresh_seconds=0,
            poll_wait_seconds=0.5,
        )
        app = create_app(settings)
        cleanup.callback(app.state.engine.dispose)
        http = cleanup.enter_context(TestClient(app, base_url=settings.public_url))
        return DocSession(settings, app, http, directory, monkeypatch)

    with cleanup:
        yield make


# -- running a document ----------------------------------------------------------------------


def run_document(document: Document, session: DocSession) -> int:
    """Run every block in order; how many were run."""
    ran = 0
    for block in document.blocks:
        if block.kind in (None, "illustrative"):
            continue
        try:
            for name in block.names("given"):
                GIVEN[name](session)
            RUNNERS[block.kind](block, session)
        except (ExampleFailed, AssertionError) as failed:
            raise ExampleFailed(f"{block.where()} ({block.kind}): {failed}") from None
        ran += 1
    return ran


def run_shell(block: Block, session: DocSession) -> None:
    session.shell.placeholders = {
        **{name: functools.partial(fill, session) for name, fill in PLACEHOLDERS.items()},
        **session.values,
    }
    session.shell.run_block(block.text)


def run_http(block: Block, session: DocSession) -> None:
    """`METHOD /path [JSON] [(scope)] [-> STATUS] [JSON or key shorthand]`, one a line (a
    line starting with white space continues the one before)."""
    lines: list[str] = []
    for line in block.text.splitlines():
        if line[:1].isspace() and lines:
            lines[-1] += " " + line.strip()
        elif line.strip():
            lines.append(line.strip())
    for line in lines:
        request, _, answer = line.partition("->")
        method, path, *rest = request.split(None, 2)
        text = rest[0].strip() if rest else ""
        who = None
        scope = re.search(r"\(([\w:.]+)\)\s*$", text)
        if scope:
            who = SCOPE_HOLDER[scope.group(1)]
            text = text[: scope.start()].strip()
        headers = {"Authorization": f"Bearer {session.token(who)}"} if who else {}
        body = json.loads(text) if text else None
        response = session.http.request(method, path, json=body, headers=headers)
        session.last_response = response
        answer = answer.strip()
        status = re.match(r"(\d{3})\s*", answer)
        if status:
            assert response.status_code == int(status.group(1)), (line, response.text)
            answer = answer[status.end() :]
        else:
            assert response.is_success, (line, response.status_code, response.text)
        if answer:
            match_json(parse_shape(answer), response.json())


def run_response(block: Block, session: DocSession) -> None:
    actual = SOURCES[block.options["from"]](session) if "from" in block.options else None
    if actual is None:
        assert session.last_response is not None, "a response block with no request before it"
        actual = session.last_response.json()
    match_json(json.loads(block.text), actual, frozenset(block.names("ignore")))


def run_output(block: Block, session: DocSession) -> None:
    if "from" in block.options:
        actual = SOURCES[block.options["from"]](session)
    else:
        assert session.shell.last is not None, "an output block with no command before it"
        actual = session.shell.last.output
    match_text(block.text, actual)


def run_request(block: Block, session: DocSession) -> None:
    SINKS[block.options["to"]](session, json.loads(block.text))


def run_python(block: Block, session: DocSession) -> None:
    if "file" in block.options:
        (session.directory / block.options["file"]).write_text(block.text)
        return
    PYTHON[block.options["with"]](session, block.text)


def run_options(block: Block, session: DocSession) -> None:
    """Commands that serve forever or run for minutes: each script they name exists and
    accepts every `--option` the line names, in the command or in its comment (from the
    script's `--help`). A comment line goes with the command before it."""
    helped = None
    for line in block.text.splitlines():
        command_text, _, comment = line.partition("#")
        words = shlex.split(command_text.replace("[", " ").replace("]", " "))
        if words:
            script = RUN_SCRIPT_COMMANDS[words[1]] if words[0] == "./run" else words[:2]
            if script is None:  # ./run demo, ./run test: set-up, then a known command
                helped = None
                continue
            assert script[0].endswith("python"), line
            helped = session.python([script[1], "--help"], cwd=ROOT)
            assert helped.status == 0, (line, helped.output)
        for option in re.findall(r"(?<![\w-])--[a-z][\w-]*", command_text + " " + comment):
            assert helped is not None, f"{line}: {option} of what?"
            assert re.search(rf"(^|[\s,\[]){re.escape(option)}(?![\w-])", helped.stdout), (
                f"{line}: the script has no option {option}"
            )


RUNNERS: dict[str, Callable[[Block, DocSession], None]] = {
    "shell": run_shell,
    "http": run_http,
    "response": run_response,
    "output": run_output,
    "request": run_request,
    "python": run_python,
    "options": run_options,
}


def _run_script_commands() -> dict[str, list[str] | None]:
    """`./run X` as the script dispatches it: demo and test set up first (not checked
    here: they serve forever or run the whole suite), bench runs bench/ingest.py."""
    text = (ROOT / "run").read_text()
    commands: dict[str, list[str] | None] = {}
    for name, body in re.findall(r"^  (\w+)\)\n(.*?);;", text, re.M | re.S):
        script = re.search(r"exec \.venv/bin/python (\S+)", body)
        commands[name] = [".venv/bin/python", script.group(1)] if script else None
    return commands


RUN_SCRIPT_COMMANDS = _run_script_commands()

# -- given steps, placeholders, sources and sinks (filled in below) ----------------------------

GIVEN: dict[str, Callable[[DocSession], None]] = {}
SOURCES: dict[str, Callable[[DocSession], Any]] = {}
SINKS: dict[str, Callable[[DocSession, Any], None]] = {}
PYTHON: dict[str, Callable[[DocSession, str], None]] = {}
PLACEHOLDERS: dict[str, Callable[[DocSession, list[str]], str | list[str]]] = {}
#: Who holds the scope a `http` line names in parentheses.
SCOPE_HOLDER = {"carrier:report": "cmcc"}


# -- the tests -------------------------------------------------------------------------------


def test_every_example_is_marked_and_illustrative_ones_are_few() -> None:
    """Every fenced block has a known marker whose steps exist; the blocks not run are the
    listed diagrams and no others."""
    unmarked, illustrative = [], []
    for document in documents():
        for block in document.blocks:
            if block.kind not in KINDS:
                unmarked.append(f"{block.where()} ({block.kind})")
            if block.kind == "illustrative":
                illustrative.append((block.path.name, block.text))
            for name in block.names("given"):
                assert name in GIVEN, f"{block.where()}: no given step {name!r}"
            for key, steps in (("from", SOURCES), ("to", SINKS), ("with", PYTHON)):
                name = block.options.get(key)
                assert name is None or name in steps, f"{block.where()}: no {key}={name}"
    assert unmarked == [], "blocks without a known <!-- doc-test: KIND --> marker"
    assert len(illustrative) == len(ILLUSTRATIVE), illustrative
    for name, start in ILLUSTRATIVE:
        assert any(n == name and text.startswith(start) for n, text in illustrative), start


@pytest.mark.parametrize("path", [p for p in DOCUMENTS if p not in GENERATED], ids=lambda p: p.name)
def test_the_examples_of(path: Path, session_for: Callable[[Document], DocSession]) -> None:
    document = read_document(path)
    session = session_for(document)
    run_document(document, session)


#: Examples that no longer work, as a doc would show them (marker, then block): each fails.
BROKEN = {
    "an option the command lost": ("shell", "```sh\nhandover carrier list --all\n```"),
    "a route that is gone": ("shell", "```sh\ncurl -s http://127.0.0.1:8000/v1/gone\n```"),
    "a response with another shape": (
        "shell",
        "```sh\ncurl -s http://127.0.0.1:8000/healthz\n```\n\n"
        "<!-- doc-test: response ignore=version -->\n"
        '```json\n{"status": "up", "version": "1"}\n```',
    ),
    "an expected comment that differs": (
        "shell",
        '```sh\ncurl -s http://127.0.0.1:8000/healthz\n# {"status": "ok"}\n```',
    ),
    "a status that changed": ("http", "```\nGET /v1/subscriber/me -> 200\n```"),
    "printed text that changed": ("shell", "```sh\n$ handover log verify\nOK: it verifies\n```"),
    "a script option that is gone": ("options", "```sh\n.venv/bin/python bench/log.py --fast\n```"),
    "a variable nobody set": ("shell", '```sh\ncurl -s -u "$ID:$SECRET" http://x/\n```'),
    "a program the tests cannot run": ("shell", "```sh\nwget http://x/\n```"),
    "a python snippet that raises": ("shell", "```sh\npython -c 'import handover.nothing'\n```"),
}


@pytest.mark.parametrize("kind, example", BROKEN.values(), ids=BROKEN.keys())
def test_an_example_that_no_longer_works_fails(
    kind: str, example: str, tmp_path: Path, session_for: Callable[[Document], DocSession]
) -> None:
    path = tmp_path / "broken.md"
    path.write_text(f"# A doc\n\n<!-- doc-test: {kind} -->\n{example}\n")
    document = read_document(path)
    with pytest.raises(ExampleFailed):
        run_document(document, session_for(document))


# -- steps shared by several documents ---------------------------------------------------------


def report(session: DocSession, carrier: str, *events: tuple[str, ...]) -> Any:
    """Carrier reports over the API: (event_id, number, event, occurred_at[, subscriber
    or to_carrier]); every one must be accepted."""
    items = []
    for event_id, number, kind, occurred_at, *more in events:
        item = {"event_id": event_id, "number": number, "event": kind, "occurred_at": occurred_at}
        if more:
            item["to_carrier" if kind == "ported" else "subscriber"] = more[0]
        items.append(item)
    answer = session.call("POST", "/v1/carrier/events", carrier, json={"events": items})
    assert answer["accepted"] == len(items), answer
    return answer


def recycle(session: DocSession, number: str, *dates: str) -> None:
    """cmcc activates `number` for `first`, cancels and releases it, then activates it for
    `second`, on the four dates."""
    events = ("activated", "cancelled", "released", "activated")
    holders = ("first", None, None, "second")
    report(
        session,
        "cmcc",
        *[
            (f"{number}-{n}", number, kind, date, *([holder] if holder else []))
            for n, (kind, date, holder) in enumerate(zip(events, dates, holders, strict=True))
        ],
    )


def add_carrier(session: DocSession, carrier: str, name: str, country: str = "CN") -> None:
    if carrier not in session.clients:
        output = session.cli_ok("carrier", "add", carrier, "--name", name, "--country", country)
        session.credentials(carrier, output)
        session.cli_ok("carrier", "coverage", carrier, "2020-01-01")
        if carrier in granted.TEST_RANGES:
            session.cli_ok("carrier", "grant", carrier, *granted.TEST_RANGES[carrier])


def add_platform(session: DocSession, platform: str, name: str, category: str, tier: str) -> None:
    if platform not in session.clients:
        options = f"--id {platform} --category {category} --tier {tier}".split()
        session.credentials(platform, session.cli_ok("platform", "add", *options, "--name", name))


def add_regulator(session: DocSession) -> None:
    if "regulator" not in session.clients:
        output = session.cli_ok("client", "add", "--role", "regulator", "--name", "Regulator")
        session.credentials("regulator", output)


def text_of(session: DocSession, path: str) -> str:
    answer = session.http.get(path)
    assert answer.status_code == 200, answer.text
    return answer.text


def sign_in(session: DocSession, number: str) -> dict[str, str]:
    """A person's session, as people.md shows (the console SMS code is 123456 here)."""
    session.call("POST", "/v1/subscriber/sign-in/code", json={"number": number})
    signed = session.call(
        "POST", "/v1/subscriber/sign-in", json={"number": number, "code": "123456"}
    )
    session.http.cookies.clear()
    return {"Authorization": f"Bearer {signed['session']}"}


# -- README.md -------------------------------------------------------------------------------

NUMBER = "+8613812345678"
CSV_HEADER = "event_id,number,event,occurred_at,subscriber,to_carrier\n"


def events_csv(session: DocSession) -> None:
    """events.csv: a number's life at cmcc, one national-format row, one bad row."""
    (session.directory / "events.csv").write_text(
        CSV_HEADER
        + f"e1,{NUMBER},activated,2023-03-01,cust-0042,\n"
        + "e2,13812345678,suspended,2024-02-01,,\n"
        + f"e3,{NUMBER},teleported,2024-03-01,,\n"
    )


def poll_stream(session: DocSession) -> None:
    """A platform, `receiver`, with a poll stream for recycled and cancelled numbers."""
    add_platform(session, "receiver", "Receiver", "other", "low")
    body = {
        "delivery": {"method": "urn:ietf:rfc:8936"},
        "events_requested": [
            "https://schemas.openid.net/secevent/risc/event-type/identifier-recycled",
            "urn:handover:secevent:number-cancelled",
        ],
    }
    session.call("POST", "/ssf/streams", "receiver", json=body)


def dead_letter(session: DocSession) -> None:
    """A SET the `receiver` platform refused when it polled (setErrs): a dead letter."""
    add_carrier(session, "cu", "China Unicom")
    report(session, "cu", ("u1", "+8613012345678", "activated", "2024-01-01", "cust-7"))
    report(session, "cu", ("u2", "+8613012345678", "cancelled", "2024-06-01"))
    stream = first_stream(session, [])
    polled = session.call(
        "POST", f"/ssf/poll/{stream}", "receiver", json={"maxEvents": 10, "returnImmediately": True}
    )
    errors = {
        jti: {"err": "invalid_request", "description": "a test refusal"} for jti in polled["sets"]
    }
    assert errors, polled
    session.call(
        "POST",
        f"/ssf/poll/{stream}",
        "receiver",
        json={"maxEvents": 0, "returnImmediately": True, "setErrs": errors},
    )
    listed = session.cli_ok("ssf", "dead-letters", "--stream", stream)
    seq = re.search(rf"{stream}\s*│\s*(\d+)\s*│", listed)
    assert seq, listed
    session.values.update(ID=stream, N=seq.group(1))


def latest_ingest(session: DocSession, words: list[str]) -> str:
    found = re.search(r"^[│|]?\s*([0-9a-f-]{36})", session.cli_ok("ingests", "list"), re.M)
    assert found, "no ingest yet"
    return found.group(1)


def first_stream(session: DocSession, words: list[str]) -> str:
    streams = session.call("GET", "/ssf/streams", "receiver")
    return str(streams[0]["stream_id"])


GIVEN.update(events_csv=events_csv, poll_stream=poll_stream, dead_letter=dead_letter)
PLACEHOLDERS.update(INGEST_ID=latest_ingest, STREAM=first_stream)


# -- docs/carrier-reporting.md ---------------------------------------------------------------


def carrier_credentials(session: DocSession) -> None:
    """A carrier, cmcc, whose credentials are in $CLIENT_ID and $CLIENT_SECRET."""
    add_carrier(session, "cmcc", "China Mobile")
    client_id, secret = session.clients["cmcc"]
    session.shell.variables.update(CLIENT_ID=client_id, CLIENT_SECRET=secret)


GIVEN.update(carrier_credentials=carrier_credentials)


# -- docs/audit-log.md -----------------------------------------------------------------------


def activation(session: DocSession) -> None:
    """cmcc's first report: +8613812345678 activated for cust-0042, 2024-01-15 09:30 UTC."""
    add_carrier(session, "cmcc", "China Mobile")
    report(session, "cmcc", ("e1", NUMBER, "activated", "2024-01-15T09:30:00Z", "cust-0042"))


def second_entry(session: DocSession) -> None:
    report(session, "cmcc", ("e2", NUMBER, "suspended", "2024-03-01"))


def first_log_entry(session: DocSession) -> Any:
    add_regulator(session)
    [first] = session.call("GET", "/log/entries?start=0&limit=1", "regulator")
    entry = json.loads(first["entry"])
    assert first["entry"] == json.dumps(entry, sort_keys=True, separators=(",", ":")), "canonical"
    return entry


def two_checkpoints(session: DocSession) -> None:
    """checkpoint.txt at size 3 (one more report), entry.json (entry 0), and the numbers
    the commands name: I, N, ROOT, M, R1, R2 and PROOF..."""
    old = text_of(session, "/log/checkpoint").splitlines()
    report(session, "cmcc", ("e3", NUMBER, "resumed", "2024-04-01"))
    session.cli_ok("log", "checkpoint")
    new = text_of(session, "/log/checkpoint")
    (session.directory / "checkpoint.txt").write_text(new)
    add_regulator(session)
    [first] = session.call("GET", "/log/entries?start=0&limit=1", "regulator")
    (session.directory / "entry.json").write_text(first["entry"])
    inclusion = session.call("GET", "/log/proof/inclusion?index=0&tree_size=3")
    consistency = session.call("GET", "/log/proof/consistency?first=2&second=3")
    proofs = {"verify-inclusion": inclusion["proof"], "verify-consistency": consistency["proof"]}
    session.values.update(
        I="0",
        M=old[1],
        N="3",
        ROOT=new.splitlines()[2],
        R1=old[2],
        R2=new.splitlines()[2],
        **{"PROOF...": lambda words: proofs[words[3]]},
    )


def verify_after_editing_leaf_6(session: DocSession) -> str:
    """`handover log verify` once entry 6 was edited in the store behind Handover's back."""
    report(
        session,
        "cmcc",
        *[(f"f{i}", f"+861390013900{i}", "activated", "2024-05-01", "x") for i in range(5)],
    )
    with session.app.state.engine.begin() as connection:
        connection.execute(
            text("UPDATE log_leaves SET data = :data WHERE idx = 6"), {"data": b'{"edited":true}'}
        )
    run = session.handover(["log", "verify"])
    assert run.status == 1, run.output
    return run.output


GIVEN.update(activation=activation, second_entry=second_entry, two_checkpoints=two_checkpoints)
SOURCES.update(
    first_log_entry=first_log_entry,
    checkpoint=lambda session: text_of(session, "/log/checkpoint"),
    receipt_0=lambda session: text_of(session, "/log/receipts/0"),
    verify_after_editing_leaf_6=verify_after_editing_leaf_6,
)


# -- docs/bindings.md ------------------------------------------------------------------------


def activation_notice(session: DocSession) -> Any:
    """+8613800138000, recycled in 2022; Quick Loans still lists an account from 2020."""
    number = "+8613800138000"
    add_carrier(session, "cmcc", "China Mobile")
    recycle(session, number, "2019-01-10", "2022-02-10", "2022-06-10", "2022-07-01")
    add_platform(session, "lender", "Quick Loans", "lending", "high")
    bound = {
        "number": number,
        "account_ref": "acct-7f3a",
        "bound_since": "2020-05-01",
        "tier": "high",
    }
    session.call("PUT", "/v1/platform/bindings", "lender", json={"bindings": [bound]})
    return session.call("GET", f"/v1/carrier/numbers/{number}/activation-notice", "cmcc")


SOURCES.update(activation_notice=activation_notice)


# -- docs/cases.md ---------------------------------------------------------------------------

RECYCLED = "+8613912345678"
CASE_OPENED = "urn:handover:secevent:case-opened"


def recycled_number(session: DocSession) -> None:
    """+8613912345678: held from 2021, cancelled 2024-02-25, released 2024-06-01, someone
    else's since 2024-09-21 (cmcc's reports cover from 2020)."""
    add_carrier(session, "cmcc", "China Mobile")
    recycle(session, RECYCLED, "2021-03-01", "2024-02-25", "2024-06-01", "2024-09-21")


def sets_of(session: DocSession, platform: str) -> list[dict[str, Any]]:
    """The claims of every SET waiting on the platform's first stream (by poll)."""
    [stream] = session.call("GET", "/ssf/streams", platform)
    polled = session.call(
        "POST",
        f"/ssf/poll/{stream['stream_id']}",
        platform,
        json={"maxEvents": 100, "returnImmediately": True},
    )
    return [
        json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        for token in polled["sets"].values()
    ]


def case_opened_event(session: DocSession) -> Any:
    """The new holder renews; Demo Bank, which lists the previous holder's account from 2021,
    gets its case."""
    recycled_number(session)
    add_platform(session, "bank", "Demo Bank", "banking", "high")
    session.call(
        "POST",
        "/ssf/streams",
        "bank",
        json={"delivery": {"method": "urn:ietf:rfc:8936"}, "events_requested": [CASE_OPENED]},
    )
    bound = {
        "number": RECYCLED,
        "account_ref": "bank-first",
        "bound_since": "2021-04-10",
        "tier": "high",
    }
    session.call("PUT", "/v1/platform/bindings", "bank", json={"bindings": [bound]})
    holder = sign_in(session, RECYCLED)
    answer = session.http.post(
        "/v1/subscriber/renewals", headers=holder, json={"platforms": ["bank"]}
    )
    assert answer.status_code == 201, answer.text
    [event] = [claims for claims in sets_of(session, "bank") if CASE_OPENED in claims["events"]]
    assert event["sub_id"] == {"format": "phone_number", "phone_number": RECYCLED}
    return event["events"][CASE_OPENED]


SOURCES.update(case_opened_event=case_opened_event)


# -- docs/certificates.md --------------------------------------------------------------------


def certificate_files(session: DocSession) -> None:
    """jwks.json; the new holder's certificate (certificate.txt); the same claims expired a
    year ago, signed by the same key (expired.txt); a platform's check receipt
    (receipt.txt); the certificate with its payload edited (forged.txt)."""
    recycled_number(session)
    holder = sign_in(session, RECYCLED)
    issued = session.http.post("/v1/subscriber/certificates", headers=holder)
    assert issued.status_code in (200, 201), issued.text
    token, claims = issued.json()["token"], issued.json()["claims"]
    year = 365 * 24 * 3600
    expired = session.app.state.receipt_signer.sign(
        {
            **claims,
            "iat": claims["iat"] - 2 * year,
            "nbf": claims["nbf"] - 2 * year,
            "exp": claims["exp"] - year,
        },
        typ="handover-tenure+jwt",
    )
    add_platform(session, "pay", "Demo Pay", "payment", "high")
    checked = session.call(
        "GET", f"/v1/check?number=%2B{RECYCLED[1:]}&since=2024-01-01&receipt=true", "pay"
    )
    header, _, signature = token.split(".")
    edited = {**claims, "held_since": "2020-01-01T00:00:00Z"}
    forged_payload = base64.urlsafe_b64encode(json.dumps(edited).encode()).rstrip(b"=")
    files = {
        "jwks.json": text_of(session, "/.well-known/jwks.json"),
        "certificate.txt": token,
        "expired.txt": expired,
        "receipt.txt": checked["receipt"],
        "forged.txt": f"{header}.{forged_payload.decode()}.{signature}",
    }
    for name, content in files.items():
        (session.directory / name).write_text(content + "\n")


GIVEN.update(certificate_files=certificate_files)


# -- docs/check.md ---------------------------------------------------------------------------


def platform_credentials(session: DocSession) -> None:
    """A platform, Demo Pay, whose credentials are in $CLIENT_ID and $CLIENT_SECRET."""
    add_platform(session, "pay", "Demo Pay", "payment", "high")
    client_id, secret = session.clients["pay"]
    session.shell.variables.update(CLIENT_ID=client_id, CLIENT_SECRET=secret)


def check_files(session: DocSession) -> None:
    """questions.ndjson, users.csv (phone, signed_up), numbers.csv (number) and receipt.jws
    (a receipt from a check)."""
    questions = [
        {"number": RECYCLED, "since": "2023-12-22"},
        {"number": NUMBER, "since": "2024-01-01T08:00:00+08:00"},
    ]
    (session.directory / "questions.ndjson").write_text(
        "".join(json.dumps(question) + "\n" for question in questions)
    )
    (session.directory / "users.csv").write_text(
        f"user,phone,signed_up\nu1,{RECYCLED},2023-12-22\nu2,{RECYCLED},2025-01-01\n"
    )
    (session.directory / "numbers.csv").write_text(f"number\n{RECYCLED}\n{NUMBER}\n+86123\n")
    checked = session.call(
        "GET", f"/v1/check?number=%2B{RECYCLED[1:]}&since=2023-12-22&receipt=true", "pay"
    )
    (session.directory / "receipt.jws").write_text(checked["receipt"] + "\n")


GIVEN.update(
    recycled_number=recycled_number,
    platform_credentials=platform_credentials,
    check_files=check_files,
)


# -- docs/freeze.md --------------------------------------------------------------------------


def release_advice(session: DocSession) -> Any:
    """+8613800138000 cancelled on 2025-06-01 while Lender still lists a high-value account
    bound during that tenure."""
    number = "+8613800138000"
    add_carrier(session, "cmcc", "China Mobile")
    add_platform(session, "lender", "Lender", "lending", "high")
    bound = {"number": number, "account_ref": "acct-1", "bound_since": "2024-06-01", "tier": "high"}
    session.call("PUT", "/v1/platform/bindings", "lender", json={"bindings": [bound]})
    report(
        session,
        "cmcc",
        ("a-1", number, "activated", "2024-01-01", "cust-1"),
        ("c-1", number, "cancelled", "2025-06-01"),
    )
    return session.call("GET", f"/v1/carrier/numbers/{number}/release-advice", "cmcc")


def release_override(session: DocSession, event: dict[str, Any]) -> None:
    """The carrier releases before the advised date, saying why: accepted, and logged."""
    answer = session.call("POST", "/v1/carrier/events", "cmcc", json={"events": [event]})
    assert answer["accepted"] == 1, answer
    add_regulator(session)
    index = answer["results"][0]["log_index"]
    [logged] = session.call("GET", f"/log/entries?start={index}&limit=1", "regulator")
    assert json.loads(logged["entry"])["override"] == {"reason": event["override_reason"]}


SOURCES.update(release_advice=release_advice)
SINKS.update(release_override=release_override)


# -- docs/people.md --------------------------------------------------------------------------


def person(session: DocSession) -> None:
    """cmcc's subscriber S1 holds +8613800138000 and +8613700137000; S0 (the same person,
    under an older ref) held +8613600136000 until 2022."""
    add_carrier(session, "cmcc", "China Mobile")
    report(
        session,
        "cmcc",
        ("p-1", "+8613800138000", "activated", "2024-01-01", "S1"),
        ("p-2", "+8613700137000", "activated", "2023-01-01", "S1"),
        ("p-3", "+8613600136000", "activated", "2020-01-01", "S0"),
        ("p-4", "+8613600136000", "cancelled", "2022-01-01"),
        ("p-5", "+8613600136000", "released", "2022-05-01"),
    )


def signed_in_with_another_number(session: DocSession) -> None:
    """S1 signs in again with their other number (a number gets one code a minute); the
    session cookie is kept, as a browser would."""
    session.call("POST", "/v1/subscriber/sign-in/code", json={"number": "+8613700137000"})
    session.call(
        "POST", "/v1/subscriber/sign-in", json={"number": "+8613700137000", "code": "123456"}
    )


GIVEN.update(person=person, signed_in_with_another_number=signed_in_with_another_number)


# -- docs/ssf.md -----------------------------------------------------------------------------

IDENTIFIER_RECYCLED = "https://schemas.openid.net/secevent/risc/event-type/identifier-recycled"


def poll_receiver(session: DocSession, code: str) -> None:
    """Run the doc's receiver as a platform: its HTTP client reaches this session's app
    (at https://handover.example), its `print` is recorded. Once it has a stream, a number
    is recycled; the receiver must print that SET, then `stop` ends its run."""
    add_platform(session, "poller", "Poller", "social", "medium")
    client_id, secret = session.clients["poller"]
    printed: list[str] = []
    failures: list[BaseException] = []
    namespace: dict[str, Any] = {
        "__name__": "doc_example",
        "CLIENT_ID": client_id,
        "CLIENT_SECRET": secret,
        "print": lambda *words: printed.append(" ".join(map(str, words))),
    }

    def run() -> None:
        try:
            exec(compile(code, "ssf.md", "exec"), namespace)
        except BaseException as error:  # reported below, in the test's thread
            failures.append(error)

    with session.monkeypatch.context() as patch:
        patch.setattr(
            httpx,
            "Client",
            lambda **_: TestClient(session.app, base_url=session.settings.public_url),
        )
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        _wait_for(lambda: "stop" in namespace or failures, "the receiver to start polling")
        assert not failures, failures
        add_carrier(session, "cmcc", "China Mobile")
        number = "+8613512345678"
        recycle(session, number, "2021-01-01", "2023-01-01", "2023-06-01", "2024-01-01")
        _wait_for(
            lambda: f"{IDENTIFIER_RECYCLED} {number}" in printed or failures,
            "the receiver to print the recycled number's SET",
        )
        namespace["stop"].set()
        thread.join(timeout=30)
    assert not failures, failures
    assert not thread.is_alive(), "the receiver did not stop"
    assert printed == [f"{IDENTIFIER_RECYCLED} {number}"], printed


def _wait_for(condition: Callable[[], Any], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.05)


PYTHON.update(poll_receiver=poll_receiver)


# -- examples/platform_receiver/README.md ----------------------------------------------------


def test_the_example_platform_points_at_the_demo_steps_that_do_what_it_says(
    uow_factory: UnitOfWorkFactory,
) -> None:
    """Its README sends the reader to numbered steps of what `handover demo` prints."""
    readme = " ".join((ROOT / "examples/platform_receiver/README.md").read_text().split())
    printed = demo_help(
        seed_story(uow_factory), "http://127.0.0.1:8000", Path("var/demo.db"), RECEIVER
    )
    steps = dict(re.findall(r"^(\d+)\. (.*?)(?=^\d+\. |\Z)", printed, re.M | re.S))
    found = re.search(
        r"step (\d+) \(the CSV upload\) cancels the number that step (\d+) activated, .*?"
        r"step (\d+) recycles it",
        readme,
    )
    assert found, "the README names the steps that cancel, activate and recycle"
    cancels, activates, recycles = (steps[number] for number in found.groups())
    assert "text/csv" in cancels and ",cancelled," in cancels
    assert '"event":"activated"' in activates
    assert '"event":"released"' in recycles and '"event":"activated"' in recycles
    assert f"on the next port: {urlsplit(RECEIVER).port}" in readme
    assert f"example platform on {RECEIVER} runs as demo-pay" in printed


RECEIVER = "http://127.0.0.1:8001"


# -- what the docs name ----------------------------------------------------------------------

PROSE = sorted(
    [
        ROOT / "README.md",
        ROOT / "CONTRIBUTING.md",
        ROOT / "CHANGELOG.md",
        *(ROOT / "docs").glob("*.md"),
        *(ROOT / "examples").rglob("*.md"),
    ]
)
#: What only people inside the project could follow: the reference design's file, the
#: shared folder beside the repository, internal issue numbers, delivery "waves".
INTERNAL = re.compile(
    r"(?-i:\bDESIGN\.md\b)|\.\./shared\b|/work/shared\b|\bissues? #?\d+|\bwaves?\b", re.I
)


def test_the_docs_code_and_tests_stand_alone() -> None:
    here = Path(__file__).resolve()  # names the patterns, so it is the one exception
    files = [
        *PROSE,
        *(ROOT / "src").rglob("*.py"),
        *(ROOT / "tests").rglob("*.py"),
        *(ROOT / "examples").rglob("*.py"),
        *(ROOT / "bench").rglob("*.py"),
    ]
    files = [path for path in files if path.resolve() != here]
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if INTERNAL.search(line)
    ]
    assert found == []


def test_the_files_and_links_the_docs_name_exist() -> None:
    """Relative links, and paths in backticks (`services/check.py`, `bench/log.py`, a bare
    `verify.py` anywhere in the package): a renamed module must not leave a doc behind."""
    package = ROOT / "src" / "handover"
    known = {path.name for path in package.rglob("*")}
    missing = []
    for doc in PROSE:
        text = doc.read_text()
        for link in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if not link.startswith(("http://", "https://")) and not (doc.parent / link).exists():
                missing.append(f"{doc.name}: link {link}")
        for path in re.findall(r"`([\w./-]+\.(?:py|md|toml|txt)|[\w./-]+/)`", text):
            places = [ROOT, ROOT / "src", package, doc.parent]
            if (
                not any((place / path).exists() for place in places)
                and path.strip("/") not in known
            ):
                missing.append(f"{doc.name}: {path}")
    assert missing == []
