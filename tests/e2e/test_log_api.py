"""The audit log over HTTP and from the command line, on both stores.

Checkpoints, proofs and receipts (the leaf hash only) are public; an entry's contents need
the token of a party to it or the regulator's scope. Every
proof the API serves is checked with the standalone verifier (`handover.tlog.verify`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from handover.cli import app as cli
from handover.tlog.verify import (
    Checkpoint,
    ProofBundle,
    TlogError,
    Verifier,
    b64decode,
    leaf_hash,
    open_checkpoint,
    sign_note,
    verify_bundle,
    verify_consistency,
    verify_inclusion,
)

Headers = Callable[..., dict[str, str]]
Client = Any
SECRET_KEY = "e2e-test-secret-key-that-is-long-enough-0123456789"  # as in conftest
NOTE = "text/plain; charset=utf-8"


def number(i: int) -> str:
    return f"+86138{10_000_000 + i:08d}"


def activation(i: int, tag: str = "e") -> dict[str, Any]:
    return {
        "event_id": f"{tag}{i}",
        "number": number(i),
        "event": "activated",
        "occurred_at": "2024-01-01",
        "subscriber": f"subscriber-{i}",
    }


def post(http: TestClient, headers: dict[str, str], *events: dict[str, Any]) -> Any:
    response = http.post("/v1/carrier/events", json={"events": list(events)}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["type"].endswith("/" + slug), body
    return body


def text_of(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == NOTE
    return response.text


@pytest.fixture
def key(http: TestClient) -> str:
    return text_of(http.get("/log/key")).strip()


def latest(http: TestClient, key: str) -> tuple[str, Checkpoint]:
    note = text_of(http.get("/log/checkpoint"))
    return note, open_checkpoint(note, [Verifier.from_key(key)])[0]


# -- public endpoints ----------------------------------------------------------------------


def test_key_and_checkpoint_need_no_token(http: TestClient, app: FastAPI, key: str) -> None:
    assert key == app.state.signer.verifier().key_string()
    assert key.startswith("127.0.0.1:8000/log+")  # the origin follows HANDOVER_PUBLIC_URL
    note, checkpoint = latest(http, key)
    assert (checkpoint.origin, checkpoint.size) == ("127.0.0.1:8000/log", 0)
    assert note.startswith("127.0.0.1:8000/log\n0\n")
    assert text_of(http.get("/log/checkpoint")) == note  # the same size: the same checkpoint


def test_every_log_index_has_a_receipt_that_verifies(
    http: TestClient, cm: Client, as_client: Headers, key: str
) -> None:
    headers = as_client(cm)
    batch = [activation(i) for i in range(4)]
    batch.append({**activation(9), "number": "+86123"})  # rejected
    body = post(http, headers, *batch)
    results = {r["event_id"]: r for r in body["results"]}
    assert [results[f"e{i}"]["log_index"] for i in range(4)] == [0, 1, 2, 3]
    assert results["e9"]["status"] == "rejected" and results["e9"]["log_index"] is None
    again = post(http, headers, *batch[:2], activation(4))
    assert [(r["status"], r["log_index"]) for r in again["results"]] == [
        ("duplicate", None),
        ("duplicate", None),
        ("accepted", 4),
    ]

    for event_id, index in [("e0", 0), ("e2", 2), ("e3", 3), ("e4", 4)]:
        public = text_of(http.get(f"/log/receipts/{index}"))
        assert ProofBundle.parse(public).extra is None  # the public gets no contents
        inclusion = http.get("/log/proof/inclusion", params={"index": index}).json()
        leaf = b64decode(inclusion["leaf_hash"], "leaf hash")
        assert verify_bundle(public, key, leaf=leaf).index == index
        with pytest.raises(TlogError):
            verify_bundle(public, key)  # no entry, no leaf: nothing to verify
        bundle = text_of(http.get(f"/log/receipts/{index}", headers=headers))
        entry = verify_bundle(bundle, key)
        assert entry.leaf_hash == leaf
        assert (entry.index, entry.checkpoint.size) == (index, 5)
        assert entry.leaf_data is not None
        logged = json.loads(entry.leaf_data)
        assert (logged["carrier"], logged["event_id"], logged["event"]) == (
            "cm",
            event_id,
            "activated",
        )
        assert number(index).encode() not in entry.leaf_data
    _, checkpoint = latest(http, key)
    assert checkpoint.size == 5  # the first receipt signed it; the others reused it


def test_an_entry_s_contents_go_to_its_carriers_and_the_regulator(
    http: TestClient, cm: Client, cu: Client, regulator: Client, as_client: Headers, key: str
) -> None:
    post(http, as_client(cm), activation(0))
    ported = {**activation(0, "p"), "event": "ported", "to_carrier": "cu"}
    ported["occurred_at"] = "2024-02-01T00:00:00Z"
    post(http, as_client(cm), ported)
    for index, reader, party in [
        (0, regulator, True),
        (0, cm, True),
        (0, cu, False),  # another carrier's report
        (1, cu, True),  # a port to cu names it
    ]:
        answer = http.get(f"/log/receipts/{index}", headers=as_client(reader))
        if party:
            assert verify_bundle(text_of(answer), key).leaf_data is not None
        else:
            assert_problem(answer, 403, "not-a-party")
    bad_token = http.get("/log/receipts/0", headers={"Authorization": "Bearer nonsense"})
    assert bad_token.status_code == 401


def test_inclusion_proofs_verify_against_the_checkpoint(
    http: TestClient, cm: Client, as_client: Headers, regulator: Client, key: str
) -> None:
    post(http, as_client(cm), *[activation(i) for i in range(7)])
    text_of(http.get("/log/receipts/6"))  # signs a checkpoint of size 7
    _, checkpoint = latest(http, key)
    assert checkpoint.size == 7
    listed = http.get("/log/entries", headers=as_client(regulator)).json()
    for index in range(7):
        default = http.get("/log/proof/inclusion", params={"index": index}).json()
        explicit = http.get("/log/proof/inclusion", params={"index": index, "tree_size": 7}).json()
        assert default == explicit
        assert (default["index"], default["tree_size"]) == (index, 7)
        leaf = b64decode(default["leaf_hash"], "leaf hash")
        assert leaf == leaf_hash(listed[index]["entry"].encode())
        proof = [b64decode(p, "proof") for p in default["proof"]]
        verify_inclusion(leaf, index, 7, proof, checkpoint.root_hash)

    smaller = http.get("/log/proof/inclusion", params={"index": 1, "tree_size": 3}).json()
    assert smaller["tree_size"] == 3 and len(smaller["proof"]) == 2


def test_consistency_proofs_verify_between_checkpoints(
    http: TestClient, cm: Client, as_client: Headers, key: str
) -> None:
    headers = as_client(cm)
    post(http, headers, *[activation(i) for i in range(3)])
    text_of(http.get("/log/receipts/2"))
    _, old = latest(http, key)
    post(http, headers, *[activation(i) for i in range(3, 10)])
    text_of(http.get("/log/receipts/9"))
    _, new = latest(http, key)
    assert (old.size, new.size) == (3, 10)

    body = http.get("/log/proof/consistency", params={"first": 3, "second": 10}).json()
    assert (body["first"], body["second"]) == (3, 10)
    proof = [b64decode(p, "proof") for p in body["proof"]]
    verify_consistency(3, 10, proof, old.root_hash, new.root_hash)
    with pytest.raises(TlogError):
        verify_consistency(3, 10, proof, new.root_hash, old.root_hash)
    same = http.get("/log/proof/consistency", params={"first": 10, "second": 10}).json()
    assert same["proof"] == []


@pytest.mark.parametrize(
    ("path", "params", "status", "slug"),
    [
        ("/log/proof/inclusion", {"index": 3, "tree_size": 3}, 422, "out-of-range"),
        ("/log/proof/inclusion", {"index": 0, "tree_size": 5}, 422, "out-of-range"),
        ("/log/proof/inclusion", {"index": 9}, 422, "out-of-range"),
        ("/log/proof/inclusion", {"index": -1, "tree_size": 3}, 422, "invalid-request"),
        ("/log/proof/inclusion", {"index": 0, "tree_size": 0}, 422, "invalid-request"),
        ("/log/proof/inclusion", {"index": "x"}, 422, "invalid-request"),
        ("/log/proof/consistency", {"first": 3, "second": 2}, 422, "out-of-range"),
        ("/log/proof/consistency", {"first": 2, "second": 5}, 422, "out-of-range"),
        ("/log/proof/consistency", {"first": 0, "second": 2}, 422, "invalid-request"),
        ("/log/proof/consistency", {"first": 1}, 422, "invalid-request"),
        ("/log/receipts/4", {}, 404, "not-found"),
        ("/log/receipts/-1", {}, 404, "not-found"),
        ("/log/receipts/99999999999", {}, 404, "not-found"),
    ],
)
def test_bad_ranges_are_problems(
    http: TestClient,
    cm: Client,
    as_client: Headers,
    path: str,
    params: dict[str, Any],
    status: int,
    slug: str,
) -> None:
    post(http, as_client(cm), *[activation(i) for i in range(4)])
    text_of(http.get("/log/receipts/3"))  # a checkpoint of size 4
    assert_problem(http.get(path, params=params), status, slug)


def test_an_inclusion_proof_needs_a_checkpoint_or_a_size(
    http: TestClient, cm: Client, as_client: Headers
) -> None:
    post(http, as_client(cm), activation(0))
    assert_problem(http.get("/log/proof/inclusion", params={"index": 0}), 409, "no-checkpoint")
    assert http.get("/log/proof/inclusion", params={"index": 0, "tree_size": 1}).status_code == 200


# -- entries are for the regulator ---------------------------------------------------------


def test_entries_need_the_regulator_scope(
    http: TestClient, cm: Client, regulator: Client, as_client: Headers
) -> None:
    post(http, as_client(cm), *[activation(i) for i in range(5)])
    body = assert_problem(http.get("/log/entries"), 401, "unauthenticated")
    assert "token" in body["title"]
    assert_problem(http.get("/log/entries", headers=as_client(cm)), 403, "insufficient-scope")
    narrowed = as_client(regulator, "numbers:read")
    assert_problem(http.get("/log/entries", headers=narrowed), 403, "insufficient-scope")

    headers = as_client(regulator)
    listed = http.get("/log/entries", headers=headers)
    assert listed.status_code == 200, listed.text
    entries = listed.json()
    assert [e["index"] for e in entries] == [0, 1, 2, 3, 4]
    for e in entries:
        assert b64decode(e["leaf_hash"], "leaf hash") == leaf_hash(e["entry"].encode())
        assert "+86138" not in e["entry"] and "subscriber-" not in e["entry"]
    page = http.get("/log/entries", params={"start": 3, "limit": 1}, headers=headers).json()
    assert page == entries[3:4]
    for start in (5, 2**63 - 1, 2**70):  # past the end, even beyond a 64-bit integer
        beyond = http.get("/log/entries", params={"start": start}, headers=headers)
        assert beyond.status_code == 200 and beyond.json() == [], beyond.text
    for params in ({"limit": 0}, {"limit": 10_001}, {"start": -1}):
        assert_problem(
            http.get("/log/entries", params=params, headers=headers), 422, "invalid-request"
        )


# -- the command line ----------------------------------------------------------------------

Run = Callable[..., Result]


@pytest.fixture
def run(store_url: str, tmp_path: Path) -> Run:
    """`handover ...` in-process, on the API's store; same secret, so the same log keys."""
    runner = CliRunner()
    env = {
        "HANDOVER_DATABASE_URL": store_url,
        "HANDOVER_SPOOL_DIR": str(tmp_path),
        "HANDOVER_ENVIRONMENT": "test",
        "HANDOVER_SECRET_KEY": SECRET_KEY,
    }

    def invoke(*args: str, code: int = 0) -> Result:
        result = runner.invoke(cli, list(args), env=env, prog_name="handover")
        assert result.exit_code == code, (result.output, result.exception)
        return result

    return invoke


def test_log_prove_checks_a_saved_receipt(
    http: TestClient, cm: Client, as_client: Headers, key: str, run: Run, tmp_path: Path
) -> None:
    body = post(http, as_client(cm), *[activation(i) for i in range(3)])
    index = body["results"][1]["log_index"]
    receipt = tmp_path / "receipt.tlog-proof"
    receipt.write_text(text_of(http.get(f"/log/receipts/{index}", headers=as_client(cm))))

    for extra in ([], ["--key", key]):
        result = run("log", "prove", str(receipt), *extra)
        assert f"OK: entry {index} is in 127.0.0.1:8000/log at size 3" in result.stdout
        assert '"event_id":"e1"' in result.stdout

    parsed = ProofBundle.parse(receipt.read_text())
    assert parsed.extra is not None
    forged = tmp_path / "forged.tlog-proof"
    forged.write_text(
        ProofBundle(
            parsed.index, parsed.proof, parsed.checkpoint, parsed.extra.replace(b"e1", b"e7")
        ).format()
    )
    result = run("log", "prove", str(forged), code=1)
    assert result.stderr.startswith("FAILED: inclusion proof does not lead to the root hash")
    moved = tmp_path / "moved.tlog-proof"
    moved.write_text(ProofBundle(2, parsed.proof, parsed.checkpoint, parsed.extra).format())
    assert run("log", "prove", str(moved), code=1).stderr.startswith("FAILED: ")
    result = run("log", "prove", str(receipt), "--key", "not-a-key", code=2)
    assert "bad verifier key" in result.stderr

    public = tmp_path / "public.tlog-proof"  # no entry: the leaf hash comes from elsewhere
    public.write_text(text_of(http.get(f"/log/receipts/{index}")))
    leaf = http.get("/log/proof/inclusion", params={"index": index}).json()["leaf_hash"]
    assert run("log", "prove", str(public), code=1).stderr.startswith("FAILED: no leaf")
    result = run("log", "prove", str(public), "--leaf-hash", leaf)
    assert result.stdout == f"OK: entry {index} is in 127.0.0.1:8000/log at size 3\n"


def test_log_consistency_checks_two_saved_checkpoints(
    http: TestClient, app: FastAPI, cm: Client, as_client: Headers, run: Run, tmp_path: Path
) -> None:
    headers = as_client(cm)
    post(http, headers, *[activation(i) for i in range(5)])
    old = tmp_path / "old.checkpoint"
    old.write_text(text_of(http.get("/log/receipts/4")).partition("\n\n")[2])
    post(http, headers, *[activation(i) for i in range(5, 12)])
    signed = run("work", "--once")  # the worker signs the next checkpoint
    assert "checkpoint: size 12" in signed.stderr
    new = tmp_path / "new.checkpoint"
    new.write_text(text_of(http.get("/log/checkpoint")))
    assert new.read_text().startswith("127.0.0.1:8000/log\n12\n")

    result = run("log", "consistency", str(old), str(new))
    assert "OK: size 12 extends size 5" in result.stdout
    assert "OK: size 12 extends size 5" in run("log", "consistency", str(new), str(old)).stdout

    # A checkpoint of another history, even one signed with the log's own key, is refused.
    signer = app.state.signer.signer
    fork = tmp_path / "fork.checkpoint"
    fork.write_text(sign_note(Checkpoint(signer.name, 12, bytes(32)).format(), signer))
    result = run("log", "consistency", str(old), str(fork), code=1)
    assert result.stderr.startswith("FAILED: consistency proof does not lead to the second root")
    # ... and so is one not signed by the log's key.
    unsigned = tmp_path / "unsigned.checkpoint"
    unsigned.write_text(new.read_text().replace("\n12\n", "\n11\n", 1))
    assert run("log", "consistency", str(old), str(unsigned), code=1).stderr.startswith("FAILED")
    # A size the store does not have yet cannot be proven.
    ahead = tmp_path / "ahead.checkpoint"
    ahead.write_text(sign_note(Checkpoint(signer.name, 40, bytes(32)).format(), signer))
    assert "log size" in run("log", "consistency", str(old), str(ahead), code=1).stderr
