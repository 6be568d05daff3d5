"""`handover platform ...` and `handover ssf ...`, in-process on both stores."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from handover import bootstrap
from handover.cli import app
from handover.config import Settings
from handover.domain.ssf.events import STREAM_UPDATED
from handover.services.model import DeadLetter
from handover.services.ports import UnitOfWorkFactory
from handover.services.ssf import transmitter

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
BOX = re.compile("[\u2500-\u257f]")  # Rich's table borders


def plain(text: str) -> str:
    """Output without colours or table borders, whitespace collapsed."""
    return " ".join(BOX.sub(" ", ANSI.sub("", text)).split())


@pytest.fixture
def run(store_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    runner = CliRunner()
    env = {"HANDOVER_DATABASE_URL": store_url, "HANDOVER_SPOOL_DIR": str(tmp_path)}

    def invoke(*args: str, code: int = 0) -> Result:
        result = runner.invoke(app, list(args), env=env, prog_name="handover")
        assert result.exit_code == code, (result.output, result.exception)
        return result

    return invoke


@pytest.fixture
def stream_id(run, uow_factory: UnitOfWorkFactory, tmp_path: Path) -> str:  # type: ignore[no-untyped-def]
    run("platform", "add", "--id", "lender", "--name", "Quick Loans", "--category",
        "lending", "--tier", "high")  # fmt: skip
    tx = bootstrap.transmitter(Settings(environment="test", spool_dir=str(tmp_path)))
    body = {
        "delivery": {
            "method": "urn:ietf:rfc:8935",
            "endpoint_url": "https://lender.example/ssf",
            "authorization_header": "Bearer secret",
        },
        "events_requested": [],
    }
    return transmitter.create_stream(uow_factory, tx, "lender", body).stream_id


def test_platform_add_shows_the_secret_once_and_lists_the_platform(run) -> None:  # type: ignore[no-untyped-def]
    added = plain(
        run(
            "platform",
            "add",
            "--id",
            "alipay",
            "--name",
            "Alipay",
            "--category",
            "payment",
            "--tier",
            "high",
        ).output
    )
    assert "client_id: platform-" in added and "shown once" in added
    assert "ssf.manage" in added and "ssf.read" in added
    listed = plain(run("platform", "list").output)
    assert "alipay Alipay payment high" in listed


def test_platform_add_refuses_bad_input_and_a_second_registration(run) -> None:  # type: ignore[no-untyped-def]
    args = ["platform", "add", "--id", "alipay", "--name", "Alipay", "--tier", "high"]
    run(*args, "--category", "payment")
    assert "already exists" in plain(run(*args, "--category", "payment", code=2).output)
    assert run(*args, "--category", "casino", code=2).exit_code == 2
    bad_id = ["platform", "add", "--id", "Not Valid", "--name", "X", "--tier", "low"]
    assert "platform id" in plain(run(*bad_id, "--category", "other", code=2).output)


@pytest.mark.one_store
def test_client_add_sends_platforms_to_platform_add(run) -> None:  # type: ignore[no-untyped-def]
    result = run("client", "add", "--role", "platform", "--name", "x", code=2)
    assert "handover platform add" in plain(result.output)


def test_streams_lists_position_and_status_changes_tell_the_receiver(
    run,
    stream_id: str,
    uow_factory: UnitOfWorkFactory,  # type: ignore[no-untyped-def]
) -> None:
    (row,) = json.loads(run("ssf", "streams", "--json").stdout)
    assert row["stream_id"] == stream_id and row["method"] == "push"
    assert (row["status"], row["behind"], row["attempts"]) == ("enabled", 0, 0)
    paused = run("ssf", "status", stream_id, "paused", "--reason", "maintenance", "--wait", "0")
    assert "did not have the stream-updated event in time" in plain(paused.stderr)
    (row,) = json.loads(run("ssf", "streams", "--platform", "lender", "--json").stdout)
    assert row["status"] == "paused" and row["behind"] == 1  # the stream-updated event
    with uow_factory() as uow:
        (signal,) = uow.signals.get([uow.signals.last_seq()])
    assert signal.event_type == STREAM_UPDATED and signal.stream_id == stream_id
    assert signal.payload == {"status": "paused", "reason": "maintenance"}
    assert "no stream" in plain(run("ssf", "status", "nope", "enabled", code=2).output)


def test_dead_letters_are_listed_and_replayed(
    run,
    stream_id: str,
    uow_factory: UnitOfWorkFactory,  # type: ignore[no-untyped-def]
) -> None:
    with uow_factory() as uow:
        uow.streams.add_dead_letter(
            DeadLetter(stream_id, 7, "7-abc", 12, "HTTP 503: down", datetime.now(UTC))
        )
        uow.commit()
    (letter,) = json.loads(run("ssf", "dead-letters", "--json").stdout)
    assert (letter["seq"], letter["attempts"], letter["replay"]) == (7, 12, "")
    assert "1 dead letter(s) queued" in plain(run("ssf", "replay", stream_id).output)
    (letter,) = json.loads(run("ssf", "dead-letters", "--stream", stream_id, "--json").stdout)
    assert letter["replay"] == "requested"
    assert "no stream" in plain(run("ssf", "replay", "nope", code=2).output)
    assert "no undelivered" in plain(run("ssf", "replay", stream_id, "--seq", "8", code=2).output)


def test_generate_keys_makes_a_key_set_the_transmitter_accepts(
    run,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    keys = run("ssf", "generate-keys").stdout
    document = json.loads(keys)
    assert [key["kty"] for key in document["keys"]] == ["EC", "RSA"]
    assert all("d" in key for key in document["keys"])
    (tmp_path / "keys.json").write_text(keys)
    signer = bootstrap.set_signer(
        Settings(environment="test", ssf_signing_keys=f"@{tmp_path / 'keys.json'}")
    )
    assert sorted(signer.algorithms()) == ["ES256", "RS256"]
    assert all("d" not in key for key in signer.jwks()["keys"])


def test_keys_shows_which_key_signs(run) -> None:  # type: ignore[no-untyped-def]
    shown = plain(run("ssf", "keys").output)
    assert "ES256 signs" in shown and "RS256 signs" in shown
    assert "outstanding SETs across all streams: 0" in shown
