"""The operators' command line, run in-process on both stores (HANDOVER_DATABASE_URL)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner, Result

import granted
from handover.cli import app

NUMBER = "+8613812345678"
HEADER = "event_id,number,event,occurred_at,subscriber,to_carrier\n"
CSV = (
    HEADER
    + f"e1,{NUMBER},activated,2020-01-01,s1,\n"
    + f"e2,{NUMBER},cancelled,2021-01-01,,\n"
    + f"e3,{NUMBER},released,2021-05-01,,\n"
    + "e4,13812345678,activated,2021-06-01,s2,\n"
    + "e5,+86123,activated,2021-06-01,s3,\n"
    + "e6,+8613912345678,teleported,2021-06-01,s3,\n"
)
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
Run = Callable[..., Result]


def plain(text: str) -> str:
    """Output without colour codes and with whitespace collapsed (Rich wraps at its width)."""
    return " ".join(ANSI.sub("", text).split())


@pytest.fixture
def run(store_url: str, tmp_path: Path) -> Run:
    runner = CliRunner()
    env = {"HANDOVER_DATABASE_URL": store_url, "HANDOVER_SPOOL_DIR": str(tmp_path)}

    def invoke(*args: str, code: int | None = 0) -> Result:
        result = runner.invoke(app, list(args), env=env, prog_name="handover")
        if code is not None:
            assert result.exit_code == code, (result.output, result.exception)
        return result

    return invoke


@pytest.fixture
def cmcc(run: Run) -> Result:
    added = run("carrier", "add", "cmcc", "--name", "China Mobile", "--country", "cn")
    run("carrier", "grant", "cmcc", *granted.TEST_RANGES["cmcc"])
    return added


@pytest.fixture
def events_csv(tmp_path: Path) -> Path:
    path = tmp_path / "events.csv"
    path.write_text(CSV)
    return path


def summary(result: Result) -> dict[str, object]:
    parsed: dict[str, object] = json.loads(ANSI.sub("", result.stdout))
    return parsed


# -- carriers and clients ----------------------------------------------------------------


def test_carrier_add_prints_the_credentials_once(run: Run, cmcc: Result) -> None:
    out = plain(cmcc.stdout)
    assert "carrier cmcc (China Mobile, CN) registered" in out
    client_id = re.search(r"client_id: (\S+)", out)
    secret = re.search(r"client_secret: (\S+)", out)
    assert client_id and client_id.group(1).startswith("carrier-")
    assert secret and len(secret.group(1)) >= 40
    listed = plain(run("carrier", "list").stdout)
    assert "cmcc" in listed and "China Mobile" in listed
    assert secret.group(1) not in listed


def test_a_duplicate_carrier_is_refused(run: Run, cmcc: Result) -> None:
    again = run("carrier", "add", "cmcc", "--name", "Again", "--country", "CN", code=2)
    assert "carrier 'cmcc' already exists" in plain(again.stderr)
    assert "client_secret" not in again.stdout


@pytest.mark.parametrize(
    ("carrier_id", "country", "message"),
    [
        ("cmcc", "China", "country"),
        ("cmcc", "C1", "country"),
        ("CMCC!", "CN", "carrier id"),
        ("_cmcc", "CN", "carrier id"),
        ("c" * 65, "CN", "carrier id"),
    ],
)
def test_a_bad_carrier_is_refused(run: Run, carrier_id: str, country: str, message: str) -> None:
    result = run("carrier", "add", carrier_id, "--name", "X", "--country", country, code=2)
    assert plain(result.stderr).startswith(f"error: {message}")
    assert "cmcc" not in plain(run("carrier", "list").stdout)


def test_carrier_ranges_are_granted_listed_and_revoked(run: Run, cmcc: Result) -> None:
    run("carrier", "add", "cu", "--name", "China Unicom", "--country", "CN")
    granted_now = plain(run("carrier", "grant", "cu", "+86 130", "+86131", "--note", "MIIT").stdout)
    assert "+86130 granted to cu" in granted_now and "+86131 granted to cu" in granted_now
    overlap = run("carrier", "grant", "cu", "+8613812", "+86132", code=2)
    assert "+8613812 overlaps +86138, granted to cmcc" in plain(overlap.stderr)
    assert "+86132" not in plain(run("carrier", "ranges", "cu").stdout), "all or none"
    assert "not an E.164 prefix" in plain(run("carrier", "grant", "cu", "86", code=2).stderr)
    unknown = run("carrier", "grant", "nobody", "+4420", code=2)
    assert "carrier 'nobody' is not registered" in plain(unknown.stderr)
    everyone = plain(run("carrier", "ranges").stdout)
    assert "+86130" in everyone and "+86138" in everyone and "MIIT" in everyone
    only_cu = plain(run("carrier", "ranges", "cu").stdout)
    assert "+86131" in only_cu and "+86138" not in only_cu
    assert "+86131 revoked from cu" in plain(run("carrier", "revoke", "+86131").stdout)
    again = run("carrier", "revoke", "+86131", code=2)
    assert "no range is granted at +86131" in plain(again.stderr)
    assert "+86131" not in plain(run("carrier", "ranges").stdout)


def test_an_ingest_outside_the_carriers_ranges_is_refused_row_by_row(
    run: Run, tmp_path: Path
) -> None:
    run("carrier", "add", "cu", "--name", "China Unicom", "--country", "CN")
    run("carrier", "grant", "cu", "+86130")
    path = tmp_path / "cu.csv"
    path.write_text(
        HEADER
        + "u1,+8613012345678,activated,2024-01-01,s1,\n"
        + "u2,+8613812345678,activated,2024-01-01,s2,\n"
        + "u3,+16502530000,activated,2024-01-01,s3,\n"
    )
    result = run("ingest", str(path), "--carrier", "cu", "--json")
    assert summary(result) == {"accepted": 1, "duplicates": 0, "rejected": {"outside_range": 2}}


def test_client_add_for_the_regulator(run: Run) -> None:
    result = run("client", "add", "--role", "regulator", "--name", "MIIT")
    assert re.search(r"client_id: regulator-\S+", plain(result.stdout))


@pytest.mark.one_store
def test_carrier_clients_come_only_with_carrier_add(run: Run) -> None:
    result = run("client", "add", "--role", "carrier", "--name", "X", code=2)
    assert "handover carrier add" in plain(result.stderr)


@pytest.mark.one_store
def test_an_unknown_role_is_a_usage_error(run: Run) -> None:
    result = run("client", "add", "--role", "king", "--name", "X", code=2)
    assert "king" in plain(result.output)


# -- ingest ------------------------------------------------------------------------------


def test_ingest_json_prints_exactly_the_summary(run: Run, cmcc: Result, events_csv: Path) -> None:
    result = run("ingest", str(events_csv), "--carrier", "cmcc", "--json")
    assert summary(result) == {
        "accepted": 4,
        "duplicates": 0,
        "rejected": {"invalid_number": 1, "unknown_event": 1},
    }
    assert result.stderr == ""
    again = run("ingest", str(events_csv), "--carrier", "cmcc", "--json")
    assert summary(again) == {
        "accepted": 0,
        "duplicates": 4,
        "rejected": {"invalid_number": 1, "unknown_event": 1},
    }


def test_ingest_prints_a_readable_summary(run: Run, cmcc: Result, events_csv: Path) -> None:
    out = plain(run("ingest", str(events_csv), "--carrier", "cmcc").stdout)
    assert "(events.csv, completed): 6 rows" in out
    assert "accepted 4" in out
    assert "rejected 2" in out
    assert "invalid_number 1" in out
    assert "handover ingests show" in out and "--rejections" in out


def test_ingest_reads_national_numbers_in_the_given_region(
    run: Run, cmcc: Result, tmp_path: Path
) -> None:
    run("carrier", "grant", "cmcc", "+1650")  # a US block held by a CN carrier
    path = tmp_path / "us.csv"
    path.write_text(HEADER + "u1,(650) 253-0000,activated,2024-01-01,s1,\n")
    assert (
        summary(run("ingest", str(path), "--carrier", "cmcc", "--region", "US", "--json"))[
            "accepted"
        ]
        == 1
    )
    assert "+16502530000" in plain(run("history", "+16502530000").stdout)


def test_ingest_of_a_missing_file(run: Run, cmcc: Result, tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    result = run("ingest", str(missing), "--carrier", "cmcc", code=2)
    assert f"{missing}: no such file" in plain(result.stderr)


def test_ingest_for_an_unknown_carrier(run: Run, events_csv: Path) -> None:
    result = run("ingest", str(events_csv), "--carrier", "nobody", code=2)
    assert "carrier 'nobody' is not registered" in plain(result.stderr)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "the file is empty"), (b"id,phone\n1,2\n", "the header lacks")],
    ids=["empty", "no-header"],
)
def test_ingest_of_an_unreadable_file(
    run: Run, cmcc: Result, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    result = run("ingest", str(path), "--carrier", "cmcc", code=2)
    assert f"error: {path}: {message}" in plain(result.stderr)
    assert "bad.csv" not in plain(run("ingests", "list").stdout)


def test_a_refused_file_leaves_no_spool_file(run: Run, cmcc: Result, tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    run("ingest", str(path), "--carrier", "cmcc", code=2)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("handover-")] == []


@pytest.mark.one_store
def test_ingest_needs_a_carrier(run: Run, events_csv: Path) -> None:
    result = run("ingest", str(events_csv), code=2)
    assert "--carrier" in plain(result.output)


# -- ingests -----------------------------------------------------------------------------


def _ingest_id(run: Run, path: Path) -> str:
    out = plain(run("ingest", str(path), "--carrier", "cmcc").stdout)
    found = re.search(r"ingest ([0-9a-f-]{36})", out)
    assert found, out
    return found.group(1)


def test_ingests_list_and_show(run: Run, cmcc: Result, events_csv: Path) -> None:
    ingest_id = _ingest_id(run, events_csv)
    listed = plain(run("ingests", "list", "--carrier", "cmcc").stdout)
    assert ingest_id in listed
    assert ingest_id not in plain(run("ingests", "list", "--carrier", "other").stdout)
    shown = run("ingests", "show", ingest_id, "--json")
    assert summary(shown)["accepted"] == 4
    assert "accepted 4" in plain(run("ingests", "show", ingest_id).stdout)


def test_ingests_show_rejections_lists_line_and_reason(
    run: Run, cmcc: Result, events_csv: Path
) -> None:
    ingest_id = _ingest_id(run, events_csv)
    lines = ANSI.sub("", run("ingests", "show", ingest_id, "--rejections").stdout).splitlines()
    assert [line.split(" (")[0] for line in lines] == [
        "line 6: invalid_number",
        "line 7: unknown_event",
    ]
    assert "'+86123'" in lines[0]
    as_json = run("ingests", "show", ingest_id, "--rejections", "--json").stdout.splitlines()
    records = [json.loads(line) for line in as_json]
    assert [(r["line"], r["event_id"], r["reason"]) for r in records] == [
        (6, "e5", "invalid_number"),
        (7, "e6", "unknown_event"),
    ]


def test_ingests_show_of_an_unknown_ingest(run: Run) -> None:
    result = run("ingests", "show", "no-such-ingest", code=2)
    assert "no ingest 'no-such-ingest'" in plain(result.stderr)


# -- history -----------------------------------------------------------------------------


def test_history_prints_the_tenures(run: Run, cmcc: Result, events_csv: Path) -> None:
    run("ingest", str(events_csv), "--carrier", "cmcc")
    assert "no region" in plain(run("history", "13812345678", code=2).stderr)  # needs +86
    lines = ANSI.sub("", run("history", NUMBER).stdout).splitlines()
    assert lines[0].split() == [NUMBER, "active", "held", "by", "cmcc"]
    assert [line.split()[1] for line in lines if "tenure" in line] == [
        "s1@cmcc:",
        "s2@cmcc:",
    ]
    assert "2020-01-01T00:00:00+00:00 .. 2021-01-01T00:00:00+00:00" in lines[1]
    assert lines[2].endswith(".. now")
    assert [line.split()[-1] for line in lines[3:]] == ["e1", "e2", "e3", "e4"]


def test_history_json(run: Run, cmcc: Result, events_csv: Path) -> None:
    run("ingest", str(events_csv), "--carrier", "cmcc")
    found = json.loads(ANSI.sub("", run("history", NUMBER, "--json").stdout))
    assert (found["number"], found["state"], found["carrier"]) == (NUMBER, "active", "cmcc")
    assert [t["subscriber"] for t in found["tenures"]] == ["s1", "s2"]
    assert [e["event"] for e in found["events"]] == [
        "activated",
        "cancelled",
        "released",
        "activated",
    ]


def test_history_of_an_unknown_or_invalid_number(run: Run) -> None:
    assert f"{NUMBER} is not known" in plain(run("history", NUMBER, code=1).stderr)
    assert "'+86123'" in plain(run("history", "+86123", code=2).stderr)


# -- the store and configuration ---------------------------------------------------------


def test_db_upgrade_is_repeatable(run: Run) -> None:
    assert "newest schema" in run("db", "upgrade").stdout
    assert "newest schema" in run("db", "upgrade").stdout


def test_a_fresh_sqlite_store_is_created_and_migrated(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    result = CliRunner().invoke(
        app,
        ["carrier", "add", "cm", "--name", "CM", "--country", "CN"],
        env={"HANDOVER_DATABASE_URL": url},
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "fresh.db").exists()


@pytest.mark.one_store
def test_production_without_a_secret_is_refused(store_url: str) -> None:
    result = CliRunner().invoke(
        app,
        ["carrier", "list"],
        env={
            "HANDOVER_DATABASE_URL": store_url,
            "HANDOVER_ENVIRONMENT": "production",
            "HANDOVER_SECRET_KEY": None,  # type: ignore[dict-item]
        },
    )
    assert result.exit_code == 2
    assert "HANDOVER_SECRET_KEY" in plain(result.stderr)


# -- help --------------------------------------------------------------------------------


def _commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path (Typer vendors click: groups are told by their `commands`)."""
    found = [path]
    for name, sub in getattr(command, "commands", {}).items():
        found += _commands(sub, (*path, name))
    return found


COMMANDS = _commands(typer.main.get_command(app))


def test_every_command_is_covered() -> None:
    assert {" ".join(c) for c in COMMANDS} >= {
        "",
        "db upgrade",
        "carrier add",
        "carrier list",
        "carrier grant",
        "carrier ranges",
        "carrier revoke",
        "client add",
        "ingest",
        "ingests list",
        "ingests show",
        "history",
        "serve",
        "demo",
    }


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "handover")
def test_help(command: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], prog_name="handover")
    assert result.exit_code == 0, result.output
    assert plain(result.stdout).startswith(f"Usage: {' '.join(('handover', *command))}")


def test_no_arguments_shows_the_help() -> None:
    result = CliRunner().invoke(app, [], prog_name="handover")
    assert "Usage: handover" in plain(result.output)


# -- docs/cli.md -------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def test_docs_cli_md_is_up_to_date() -> None:
    """docs/cli.md holds every command's --help; regenerate it when the CLI changes."""
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "PY_COLORS")}
    generated = subprocess.run(
        [sys.executable, str(ROOT / "tests/e2e/cli_docs.py"), "--stdout"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    current = (ROOT / "docs/cli.md").read_text()
    assert current == generated, (
        "docs/cli.md is out of date with `handover --help`; regenerate it with "
        "`.venv/bin/python tests/e2e/cli_docs.py` and review the diff"
    )
