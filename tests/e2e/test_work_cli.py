"""`handover work` against a store that does not answer: `--once` says so and exits 1 (the
loop itself waits for the store: test_outage.py)."""

from __future__ import annotations

import socket

from typer.testing import CliRunner

from handover.cli import app


def test_work_once_on_a_store_that_does_not_answer_exits_1_saying_so() -> None:
    with socket.socket() as probe:  # bound, never listening: connections are refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        env = {"HANDOVER_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/handover"}
        result = CliRunner().invoke(app, ["work", "--once"], env=env, prog_name="handover")
    assert result.exit_code == 1, result.output
    assert "the store is not answering" in result.output
