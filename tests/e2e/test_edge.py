"""Input at the edge (docs/security.md): a NUL in any string a route takes, a body nested
past any parser's depth, and clients that send their headers a byte at a time.

The NUL sweep reads the routes from the OpenAPI document, so a new route or parameter is
swept the day it is added; a JSON-bodied route without a sample body below fails
`test_every_json_route_has_a_sample_body`.
"""

from __future__ import annotations

import copy
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import test_cases_api
import test_cli
from ssf_servers import handover_serve
from test_cases_api import NUMBER, World

from conftest import SECRET_KEY
from handover.api.edge import (
    MAX_BODY_TEXT,
    MAX_JSON_DEPTH,
    MAX_PATH_SEGMENT,
    MAX_QUERY_VALUE,
    load_json,
)

NUL = "a\x00b"
JSON = {"Content-Type": "application/json"}
SINCE = "2024-01-01"

#: A well-formed body for every route that takes JSON (or a form): the sweep puts a NUL in
#: each of its strings in turn.
SAMPLE_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/oauth/token"): {
        "grant_type": "client_credentials",
        "scope": "check",
        "client_id": "client",
        "client_secret": "secret",
    },
    ("POST", "/v1/carrier/events"): {
        "events": [
            {
                "event_id": "e-nul",
                "number": "+8613500135000",
                "event": "released",
                "occurred_at": "2024-01-02",
                "subscriber": "s-nul",
                "to_carrier": "cu",
                "override_reason": "a reason",
            }
        ],
        "region": "CN",
    },
    ("POST", "/v1/check"): {"items": [{"number": NUMBER, "since": SINCE}]},
    ("POST", "/v1/receipts/verify"): {"receipt": "a.b.c"},
    ("POST", "/number-recycling/v0.2/check"): {"phoneNumber": NUMBER, "specifiedDate": SINCE},
    ("POST", "/ssf/streams"): {
        "delivery": {"method": "urn:ietf:rfc:8936"},
        "events_requested": ["https://schemas.openid.net/secevent/caep/event-type/x"],
        "description": "a stream",
    },
    ("PATCH", "/ssf/streams"): {"stream_id": "s1", "description": "a stream"},
    ("PUT", "/ssf/streams"): {
        "stream_id": "s1",
        "delivery": {"method": "urn:ietf:rfc:8936"},
        "description": "a stream",
    },
    ("POST", "/ssf/status"): {"stream_id": "s1", "status": "paused", "reason": "why"},
    ("POST", "/ssf/subjects:add"): {
        "stream_id": "s1",
        "subject": {"format": "phone_number", "phone_number": NUMBER},
    },
    ("POST", "/ssf/subjects:remove"): {
        "stream_id": "s1",
        "subject": {"format": "phone_number", "phone_number": NUMBER},
    },
    ("POST", "/ssf/verify"): {"stream_id": "s1", "state": "a state"},
    ("POST", "/ssf/poll/{stream_id}"): {
        "ack": ["jti-1"],
        "setErrs": {"jti-2": {"err": "invalid_key", "description": "why"}},
    },
    ("PUT", "/v1/platform/bindings"): {
        "bindings": [
            {"number": NUMBER, "account_ref": "acct", "bound_since": SINCE, "tier": "high"}
        ]
    },
    ("DELETE", "/v1/platform/bindings"): {"bindings": [{"number": NUMBER, "account_ref": "acct"}]},
    ("POST", "/v1/subscriber/sign-in/code"): {"number": NUMBER},
    ("POST", "/v1/subscriber/sign-in"): {"number": NUMBER, "code": "12345678"},
    ("PUT", "/v1/subscriber/contact"): {
        "channel": "email",
        "address": "li.na@example.com",
        "language": "zh-CN",
    },
    ("PUT", "/v1/carrier/subscriber-links"): {"subscriber": "s1", "same_as": ["s1-alt"]},
    ("POST", "/v1/certificates/verify"): {"token": "a.b.c"},
    ("POST", "/v1/subscriber/renewals"): {"platforms": ["bank"]},
    ("POST", "/v1/subscriber/cases/{case_id}/complaints"): {"category": "other", "text": "t"},
    ("POST", "/v1/subscriber/checklist/cases"): {
        "number": NUMBER,
        "platform": "bank",
        "account_ref": "b-old",
        "kind": "unbind",
    },
    ("POST", "/v1/platform/cases/{case_id}/outcome"): {"outcome": "rejected", "reason": "why"},
}
PATH_SAMPLES = {
    "number": NUMBER,
    "index": "0",
    "ingest_id": "ingest-1",
    "stream_id": "s1",
    "renewal_id": "r1",
    "case_id": "c1",
}
QUERY_SAMPLES = {("GET", "/v1/check"): {"number": NUMBER, "since": SINCE}}

#: The carrier, platforms, regulator and people of the renewal tests (test_cases_api).
world = test_cases_api.world
#: The command line on the test store (test_cli).
run = test_cli.run


def _operations(world: World) -> Iterator[tuple[str, str, dict[str, Any]]]:
    document = world.app.openapi()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            yield method.upper(), path, operation


def _caller(world: World, method: str, path: str, operation: dict[str, Any]) -> dict[str, str]:
    """Headers of a caller the route lets through: the route's own kind of principal."""
    schemes = {name for entry in operation.get("security", []) for name in entry}
    if "SubscriberSession" in schemes:
        return world.sign_in(NUMBER)
    if path.startswith("/v1/regulator") or path == "/log/entries":
        return world.regulator
    if path.startswith(("/v1/carrier", "/v1/numbers")):
        return world.carrier
    if schemes or path.startswith("/number-recycling"):
        return world.platform["bank"]
    return {}


def _string_leaves(value: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, str):
        yield at
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _string_leaves(item, (*at, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _string_leaves(item, (*at, i))


def _with(body: dict[str, Any], at: tuple[Any, ...], text: str) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    holder: Any = changed
    for step in at[:-1]:
        holder = holder[step]
    holder[at[-1]] = text
    return changed


def _refused(response: httpx.Response, method: str, path: str, at: tuple[Any, ...]) -> str:
    """Assert the answer to a NUL: never a 5xx; problem details, or the route's own
    spec-fixed error body, or (per item) that item rejected. Returns how it was answered."""
    where = f"{method} {path} {at}"
    assert response.status_code < 500, f"{where}: {response.status_code} {response.text}"
    media = response.headers.get("content-type", "").split(";")[0]
    if path == "/v1/carrier/events" and at[0] == "events":
        assert response.status_code == 200, f"{where}: {response.text}"
        (result,) = response.json()["results"]
        assert result["status"] == "rejected", f"{where}: {result}"
        return "event rejected"
    if path == "/v1/check" and at[0] == "items":
        assert response.status_code == 200, f"{where}: {response.text}"
        (result,) = response.json()["results"]
        assert "error" in result, f"{where}: {result}"
        return "item error"
    if path.startswith("/number-recycling"):
        assert response.status_code == 400 and response.json()["code"] == "INVALID_ARGUMENT"
        return "CAMARA error"
    if path == "/oauth/token":
        assert response.status_code in (400, 401) and "error" in response.json(), where
        return "OAuth error"
    assert 400 <= response.status_code < 500, f"{where}: {response.status_code}"
    assert media == "application/problem+json", f"{where}: {media} {response.text}"
    return f"{response.status_code} problem"


def test_every_json_route_has_a_sample_body(world: World) -> None:
    taking = {
        (method, path)
        for method, path, operation in _operations(world)
        if operation.get("requestBody", {}).get("content", {}).keys()
        & {"application/json", "application/x-www-form-urlencoded"}
    }
    assert taking == set(SAMPLE_BODIES)


def test_a_nul_in_any_string_of_any_route_is_refused(world: World) -> None:
    http = world.http
    swept: dict[str, int] = {}
    for method, path, operation in _operations(world):
        headers = _caller(world, method, path, operation)
        fill = {name: PATH_SAMPLES[name] for name in PATH_SAMPLES if "{" + name + "}" in path}
        base_query = QUERY_SAMPLES.get((method, path), {})
        for parameter in operation.get("parameters", []):
            where, name = parameter["in"], parameter["name"]
            if where == "path":
                url = path.format(**(fill | {name: quote(NUL, safe="")}))
                response = http.request(method, url, params=base_query, headers=headers)
            elif where == "query":
                url = path.format(**fill)
                params = base_query | {name: NUL}
                response = http.request(method, url, params=params, headers=headers)
            else:
                continue
            answer = _refused(response, method, path, (where, name))
            swept[answer] = swept.get(answer, 0) + 1
        body = SAMPLE_BODIES.get((method, path))
        if body is None:
            continue
        form = path == "/oauth/token"
        url = path.format(**fill)
        for at in _string_leaves(body):
            changed = _with(body, at, NUL)
            if form:
                response = http.request(method, url, data=changed, headers=headers)
            else:
                response = http.request(method, url, json=changed, headers=headers)
            answer = _refused(response, method, path, at)
            swept[answer] = swept.get(answer, 0) + 1
    assert sum(swept.values()) >= 100, swept
    print(f"NUL sweep: {sum(swept.values())} parameters, answered {swept}")


def test_a_nul_in_one_event_rejects_that_event_only(world: World) -> None:
    events = [
        {
            "event_id": f"ok-{i}",
            "number": f"+861350013500{i}",
            "event": "activated",
            "occurred_at": "2024-01-02",
            "subscriber": f"s-{i}",
        }
        for i in range(3)
    ]
    events[1]["subscriber"] = "s\x00-1"
    answer = world.http.post("/v1/carrier/events", json={"events": events}, headers=world.carrier)
    assert answer.status_code == 200, answer.text
    assert [r["status"] for r in answer.json()["results"]] == ["accepted", "rejected", "accepted"]
    assert answer.json()["results"][1]["reason"] == "malformed_row"


def test_control_characters_but_whitespace_are_refused_in_body_text(world: World) -> None:
    headers = world.sign_in(NUMBER)
    renewal = world.http.post(
        "/v1/subscriber/renewals", json={"platforms": ["bank"]}, headers=headers
    )
    assert renewal.status_code == 201, renewal.text
    case_id = renewal.json()["cases"][0]["id"]
    url = f"/v1/subscriber/cases/{case_id}/complaints"
    for text in ("bell\x07", "escape\x1b[2J", "del\x7f", "lone \ud800 surrogate"):
        body = json.dumps({"category": "other", "text": text})  # \ud800 as an escape
        refused = world.http.post(url, content=body, headers=headers | JSON)
        assert refused.status_code == 422, (text, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
    kept = world.http.post(
        url, json={"category": "other", "text": "line one\r\n\tline two"}, headers=headers
    )
    assert kept.status_code < 400, kept.text


# -- deep bodies -------------------------------------------------------------------------

DEPTH = 100_000


@pytest.mark.parametrize(
    "deep",
    ["[" * DEPTH + "]" * DEPTH, '{"a":' * DEPTH + "1" + "}" * DEPTH],
    ids=["array", "object"],
)
def test_load_json_refuses_a_body_past_the_depth_limit(deep: str) -> None:
    with pytest.raises(ValueError, match="nested deeper"):
        load_json(deep.encode())
    with pytest.raises(ValueError, match="nested deeper"):
        load_json(deep.replace("1", "NaN").encode())  # past orjson to json: still refused
    assert load_json(("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH).encode()) is not None


def test_a_deep_body_gets_a_4xx_on_every_json_route(world: World) -> None:
    deep = ("[" * DEPTH + "]" * DEPTH).encode()
    http = world.http
    for method, path, operation in _operations(world):
        content = operation.get("requestBody", {}).get("content", {})
        if "application/json" not in content:
            continue
        fill = {name: PATH_SAMPLES[name] for name in PATH_SAMPLES if "{" + name + "}" in path}
        headers = _caller(world, method, path, operation) | {"Content-Type": "application/json"}
        started = time.monotonic()
        response = http.request(method, path.format(**fill), content=deep, headers=headers)
        took = time.monotonic() - started
        assert response.status_code in (400, 422), f"{method} {path}: {response.status_code}"
        assert took < 5, f"{method} {path} took {took:.1f} s"
        if not path.startswith("/number-recycling"):
            assert response.headers["content-type"] == "application/problem+json", path
    ndjson = "\n".join(["[" * DEPTH + "]" * DEPTH, json.dumps({"number": NUMBER, "since": SINCE})])
    answer = http.post(
        "/v1/check",
        content=ndjson.encode(),
        headers=world.platform["bank"] | {"Content-Type": "application/x-ndjson"},
    )
    assert answer.status_code == 200, answer.text
    first = json.loads(answer.text.splitlines()[0])
    assert first["error"]["code"] == "invalid_item"


# -- slow clients --------------------------------------------------------------------------


@pytest.mark.slow
def test_clients_sending_headers_a_byte_at_a_time_block_no_one(tmp_path: Path) -> None:
    """A slowloris: several connections each dribbling a request's headers, one byte at a
    time and never finishing them, while other clients are answered as usual."""
    database = f"sqlite:///{tmp_path / 'served.db'}"
    with handover_serve(database, SECRET_KEY, tmp_path / "serve.log") as base:
        port = int(base.rsplit(":", 1)[1])
        request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"z" * 4096
        slow = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(8)]
        sent = [0] * len(slow)

        def dribble() -> None:
            """One more byte from every slow client (paced by the test, not a clock)."""
            for i, sock in enumerate(slow):
                sock.send(request[sent[i] : sent[i] + 1])
                sent[i] += 1

        try:
            for _ in range(16):  # every slow client has begun its headers before the others ask
                dribble()
            with httpx.Client(base_url=base, timeout=10) as client:
                for _ in range(20):
                    dribble()
                    assert client.get("/healthz").status_code == 200
                    assert client.get("/log/checkpoint").status_code < 500
            assert min(sent) < len(request), "a slow client finished: the test proved nothing"
        finally:
            for sock in slow:
                sock.close()


# -- the command line ----------------------------------------------------------------------

#: Commands whose ids, names and numbers reach the store, each with a NUL in one of them.
CLI_NUL = [
    ("carrier", "add", NUL, "--name", "A carrier", "--country", "CN"),
    ("carrier", "add", "c2", "--name", NUL, "--country", "CN"),
    ("carrier", "coverage", NUL, "2024-01-01"),
    ("client", "add", "--role", "regulator", "--name", NUL),
    ("ingests", "show", NUL),
    ("ingests", "list", "--carrier", NUL),
    ("history", NUL),
    ("platform", "add", "--id", NUL, "--name", "P", "--category", "lending", "--tier", "high"),
    ("ssf", "replay", NUL),
    ("check", NUL, "--since", SINCE),
]


@pytest.mark.parametrize("command", CLI_NUL, ids=lambda c: " ".join(c[:2]).replace("\x00", "0"))
def test_a_nul_in_a_command_line_argument_is_refused(run: Any, command: tuple[str, ...]) -> None:
    result = run(*command, code=2)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "control character U+0000" in " ".join(result.output.split()), result.output


@pytest.mark.one_store
def test_overlong_text_is_refused_at_the_edge(world: World) -> None:
    http, platform = world.http, world.platform["bank"]
    long_query = http.get(
        "/v1/check", params={"number": "1" * (MAX_QUERY_VALUE + 1), "since": SINCE}
    )
    assert long_query.status_code == 422, long_query.text
    assert "longer than" in long_query.json()["detail"]
    long_segment = http.get(f"/v1/platform/cases/{'c' * (MAX_PATH_SEGMENT + 1)}", headers=platform)
    assert long_segment.status_code == 422, long_segment.text
    reason = {"outcome": "rejected", "reason": "r" * (MAX_BODY_TEXT + 1)}
    long_body = http.post("/v1/platform/cases/c1/outcome", json=reason, headers=platform)
    assert long_body.status_code == 422, long_body.text
    assert long_body.headers["content-type"] == "application/problem+json"
    long_ssf = http.post(
        "/ssf/verify", json={"stream_id": "s" * (MAX_BODY_TEXT + 1)}, headers=platform
    )
    assert long_ssf.status_code == 400, long_ssf.text
