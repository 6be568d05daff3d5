"""`handover check` (one number, a CSV file), `handover receipt verify` and carrier coverage,
in-process on both stores."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

import granted
from handover.api.app import create_app
from handover.cli import app
from handover.commands.check import RESULT_COLUMNS
from handover.config import Settings

KEPT = "+8613812345678"
RECYCLED = "+8613912345678"
UNKNOWN = "+8613612345678"
EVENTS = (
    "event_id,number,event,occurred_at,subscriber,to_carrier\n"
    f"k1,{KEPT},activated,2023-10-09,a,\n"
    f"r1,{RECYCLED},activated,2023-10-09,a,\n"
    f"r2,{RECYCLED},cancelled,2024-02-25,,\n"
    f"r3,{RECYCLED},released,2024-06-01,,\n"
    f"r4,{RECYCLED},activated,2024-09-21,b,\n"
)
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
Run = Callable[..., Result]


def plain(text: str) -> str:
    return " ".join(ANSI.sub("", text).split())


@pytest.fixture
def env(store_url: str, tmp_path: Path) -> dict[str, str]:
    return {"HANDOVER_DATABASE_URL": store_url, "HANDOVER_SPOOL_DIR": str(tmp_path)}


@pytest.fixture
def run(env: dict[str, str]) -> Run:
    runner = CliRunner()

    def invoke(*args: str, code: int | None = 0) -> Result:
        result = runner.invoke(app, list(args), env=env, prog_name="handover")
        if code is not None:
            assert result.exit_code == code, (result.output, result.exception)
        return result

    return invoke


@pytest.fixture
def histories(run: Run, tmp_path: Path) -> None:
    run("carrier", "add", "cm", "--name", "China Mobile", "--country", "CN")
    run("carrier", "coverage", "cm", "2020-01-01")
    run("carrier", "grant", "cm", *granted.TEST_RANGES["cm"])
    events = tmp_path / "events.csv"
    events.write_text(EVENTS)
    run("ingest", str(events), "--carrier", "cm")


# -- one number ----------------------------------------------------------------------------


@pytest.mark.usefixtures("histories")
def test_check_one_number(run: Run) -> None:
    text = plain(run("check", RECYCLED, "--since", "2023-12-22").stdout)
    assert f"{RECYCLED} since 2023-12-22T00:00:00Z" in text
    assert "recycled yes" in text
    assert "verdict deny" in text
    assert "RND: yes" in text
    kept = plain(run("check", KEPT, "--since", "2023-12-22").stdout)
    assert "recycled no" in kept and "verdict allow" in kept


@pytest.mark.usefixtures("histories")
def test_check_one_number_as_json(run: Run) -> None:
    answer = json.loads(run("check", RECYCLED, "--since", "2023-12-22", "--json").stdout)
    assert answer["recycled"] is True
    assert answer["rnd"] == "yes"
    assert answer["reasons"] == ["recycled_since_date", "disconnected_since_date"]
    assert answer["last_disconnected"] == "2024-02-25T00:00:00Z"
    assert answer["data_version"] == 5
    unknown = json.loads(run("check", UNKNOWN, "--since", "2024-01-01", "--json").stdout)
    assert unknown["rnd"] == "no_data" and unknown["state"] is None


@pytest.mark.usefixtures("histories")
def test_a_date_before_coverage_has_no_data(run: Run) -> None:
    answer = json.loads(run("check", KEPT, "--since", "2019-06-01", "--json").stdout)
    assert answer["reasons"] == ["date_before_coverage"]
    run("carrier", "coverage", "cm", "2019-01-01")
    answer = json.loads(run("check", KEPT, "--since", "2019-06-01", "--json").stdout)
    assert answer["rnd"] == "no"  # not yet activated then: recycled, not disconnected
    assert answer["recycled"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["+86", "--since", "2024-01-01"], "invalid_number"),
        ([KEPT, "--since", "yesterday"], "invalid_date"),
        ([KEPT, "--since", "2999-01-01"], "future_date"),
        ([KEPT], "--since DATE is needed"),
        ([KEPT, "--since", "2024-01-01", "--out", "x.csv"], "are for a FILE"),
        (["missing.csv", "--since-column", "d", "--out", "x.csv"], "no such file"),
    ],
)
def test_check_bad_input(run: Run, args: list[str], message: str) -> None:
    result = run("check", *args, code=2)
    assert message in plain(result.stderr)


# -- a file ------------------------------------------------------------------------------


def _read(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


@pytest.mark.usefixtures("histories")
def test_check_a_file(run: Run, tmp_path: Path) -> None:
    questions = tmp_path / "questions.csv"
    questions.write_text(
        "\ufeffuser,phone,signed\n"  # a BOM, as spreadsheets write it
        f"u1,{KEPT},2023-12-22\n"
        f"u2,{RECYCLED},2023-12-22\n"
        "u3,not a number,2023-12-22\n"
        f"u4,{UNKNOWN},2024-01-01\n"
        f"u5,{KEPT},2999-01-01\n"
        "\n"
        f'"u6, quoted",{RECYCLED},2024-10-01T08:00:00+08:00\n'
    )
    results = tmp_path / "results.csv"
    result = run(
        "check",
        str(questions),
        "--number-column",
        "phone",
        "--since-column",
        "signed",
        "--out",
        str(results),
    )
    assert "checked 6 rows" in plain(result.stderr)
    rows = _read(results)
    assert list(rows[0]) == ["user", "phone", "signed", *RESULT_COLUMNS]
    assert [r["user"] for r in rows] == ["u1", "u2", "u3", "u4", "u5", "u6, quoted"]
    assert (rows[0]["recycled"], rows[0]["rnd"], rows[0]["verdict"]) == ("false", "no", "allow")
    assert (rows[1]["recycled"], rows[1]["rnd"], rows[1]["verdict"]) == ("true", "yes", "deny")
    assert rows[1]["reasons"] == "recycled_since_date;disconnected_since_date"
    assert rows[2]["error"].startswith("invalid_number")
    assert rows[3]["rnd"] == "no_data" and rows[3]["recycled"] == ""
    assert rows[4]["error"].startswith("future_date")
    assert rows[5]["since_utc"] == "2024-10-01T00:00:00Z" and rows[5]["recycled"] == "false"
    assert rows[0]["data_version"] == "5"


@pytest.mark.usefixtures("histories")
def test_check_a_file_with_one_date_to_standard_output(run: Run, tmp_path: Path) -> None:
    questions = tmp_path / "numbers.csv"
    questions.write_text(f"number\n{KEPT}\n{RECYCLED}\n")
    result = run("check", str(questions), "--since", "2023-12-22", "--out", "-")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["recycled"] for r in rows] == ["false", "true"]


@pytest.mark.usefixtures("histories")
def test_check_a_large_file(run: Run, tmp_path: Path) -> None:
    questions = tmp_path / "many.csv"
    with questions.open("w") as f:
        f.write("number,since\n")
        for i in range(25_000):
            f.write(f"{RECYCLED if i % 2 else KEPT},2023-12-22\n")
    results = tmp_path / "many-results.csv"
    run("check", str(questions), "--since-column", "since", "--out", str(results))
    counts = {"true": 0, "false": 0}
    with results.open() as f:
        for row in csv.DictReader(f):
            counts[row["recycled"]] += 1
    assert counts == {"true": 12_500, "false": 12_500}


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("number,since\n", ["--since-column", "date"], "no column 'date'"),
        ("phone,since\n", ["--since-column", "since"], "no column 'number'"),
        ("", ["--since-column", "since"], "the file is empty"),
        ("number,since\n", [], "either --since-column"),
        ("number,since\n", ["--since-column", "since", "--since", "2024-01-01"], "either"),
    ],
)
def test_check_a_bad_file(
    run: Run, tmp_path: Path, content: str, args: list[str], message: str
) -> None:
    questions = tmp_path / "q.csv"
    questions.write_text(content)
    result = run("check", str(questions), *args, "--out", str(tmp_path / "r.csv"), code=2)
    assert message in plain(result.stderr)


def test_check_a_file_needs_out_and_utf8(run: Run, tmp_path: Path) -> None:
    questions = tmp_path / "q.csv"
    questions.write_text(f"number,since\n{KEPT},2024-01-01\n")
    assert "--out" in plain(run("check", str(questions), "--since-column", "since", code=2).stderr)
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"number,since,name\n+8613812345678,2024-01-01,Jos\xe9\n")
    result = run(
        "check", str(latin), "--since-column", "since", "--out", str(tmp_path / "r.csv"), code=2
    )
    assert "not UTF-8" in plain(result.stderr)


# -- carrier coverage ----------------------------------------------------------------------


def test_carrier_add_with_coverage_and_coverage_errors(run: Run) -> None:
    added = run(
        "carrier", "add", "cu", "--name", "CU", "--country", "CN", "--coverage-start", "2021-03-01"
    )
    assert "cover from 2021-03-01T00:00:00+00:00" in plain(added.stdout)
    assert "not registered" in plain(run("carrier", "coverage", "zz", "2020-01-01", code=2).stderr)
    assert "ISO 8601" in plain(run("carrier", "coverage", "cu", "March", code=2).stderr)
    assert "future" in plain(run("carrier", "coverage", "cu", "2999-01-01", code=2).stderr)


# -- receipts ----------------------------------------------------------------------------


@pytest.fixture
def receipt(histories: None, env: dict[str, str], store_url: str) -> tuple[str, dict]:
    """A receipt from the API (same settings as the CLI: the development receipt key)."""
    from handover.services import access

    settings = Settings(database_url=store_url)
    api = create_app(settings.model_copy(update={"check_refresh_seconds": 0}))
    try:
        _, credentials = access.register_platform(
            api.state.uow_factory, "p", "platform", "other", "low"
        )
        with TestClient(api) as http:
            token = http.post(
                "/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(credentials.client_id, credentials.client_secret),
            ).json()["access_token"]
            answer = http.get(
                "/v1/check",
                params={"number": RECYCLED, "since": "2023-12-22", "receipt": "true"},
                headers={"Authorization": f"Bearer {token}"},
            ).json()
            jwks = http.get("/.well-known/jwks.json").json()
    finally:
        api.state.engine.dispose()
    return answer["receipt"], {"answer": answer, "jwks": jwks}


def test_receipt_verify_a_token_a_file_and_a_saved_answer(
    run: Run, tmp_path: Path, receipt: tuple[str, dict]
) -> None:
    token, saved = receipt
    result = run("receipt", "verify", token)
    assert plain(result.stdout).startswith("OK: signed by http://127.0.0.1:8000")
    assert RECYCLED in result.stdout
    jws_file = tmp_path / "receipt.jws"
    jws_file.write_text(token + "\n")
    answer_file = tmp_path / "answer.json"
    answer_file.write_text(json.dumps(saved["answer"]))
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(saved["jwks"]))
    for source in (str(jws_file), str(answer_file)):
        verified = json.loads(
            run("receipt", "verify", source, "--jwks", str(jwks_file), "--json").stdout
        )
        assert verified["valid"] is True
        assert verified["claims"]["recycled"] is True
        assert verified["claims"]["number"] == RECYCLED
        assert verified["kid"] == saved["jwks"]["keys"][0]["kid"]


def test_receipt_verify_refuses_a_tampered_receipt(
    run: Run, tmp_path: Path, receipt: tuple[str, dict]
) -> None:
    token, _ = receipt
    header, payload, signature = token.split(".")
    tampered = f"{header}.{payload}.{'A' * len(signature)}"
    result = run("receipt", "verify", tampered, code=1)
    assert "FAILED" in plain(result.stderr)
    other_key = tmp_path / "other.json"
    other_key.write_text(json.dumps({"keys": []}))
    assert "no key" in plain(
        run("receipt", "verify", token, "--jwks", str(other_key), code=1).stderr
    )
    assert "neither a file nor" in plain(run("receipt", "verify", "nonsense", code=2).stderr)
    not_jwks = tmp_path / "bad.json"
    not_jwks.write_text("[]")
    assert "not a JWK Set" in plain(
        run("receipt", "verify", token, "--jwks", str(not_jwks), code=2).stderr
    )
