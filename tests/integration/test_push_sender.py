"""`HttpSetSender` against a real HTTP receiver on loopback: answers, faults, the network rule."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial

import pytest

from handover.adapters.ssf.push import HttpSetSender

#: The receivers here are on loopback, which production pushes may not reach.
LOOPBACK_ALLOWED = partial(HttpSetSender, allow_private=True)


@dataclass
class Script:
    """What the receiver answers next: (status, body) pairs, then 202."""

    answers: list[tuple[int, bytes]] = field(default_factory=list)
    #: When set, the receiver answers only once this is set (after the push gave up).
    hold: threading.Event | None = None
    close: bool = False
    seen: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    connections: set[int] = field(default_factory=set)


@pytest.fixture
def receiver() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            script.seen.append((self.path, dict(self.headers), body))
            script.connections.add(self.client_address[1])
            if script.hold is not None:
                script.hold.wait(30)
            status, payload = script.answers.pop(0) if script.answers else (202, b"")
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Content-Type", "application/json")
            if script.close:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)
            if script.close:
                self.close_connection = True

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", script
    server.shutdown()
    server.server_close()


def err(code: str) -> bytes:
    return json.dumps({"err": code, "description": "why"}).encode()


def test_a_202_is_delivered_with_the_rfc_8935_headers(receiver: tuple[str, Script]) -> None:
    url, script = receiver
    sender = LOOPBACK_ALLOWED(timeout=2)
    result = sender.push(f"{url}/events?tenant=7", "Bearer s3cret", "a.b.c")
    assert (result.delivered, result.status) == (True, 202)
    path, headers, body = script.seen[0]
    assert (path, body) == ("/events?tenant=7", b"a.b.c")
    assert headers["Content-Type"] == "application/secevent+jwt"
    assert headers["Accept"] == "application/json"
    assert headers["Authorization"] == "Bearer s3cret"


def test_connections_are_kept_alive_between_pushes(receiver: tuple[str, Script]) -> None:
    url, script = receiver
    sender = LOOPBACK_ALLOWED(timeout=2)
    for _ in range(5):
        assert sender.push(f"{url}/e", None, "t").delivered
    assert len(script.connections) == 1
    assert "Authorization" not in script.seen[0][1]


def test_a_receiver_that_closes_each_connection_still_gets_every_push(
    receiver: tuple[str, Script],
) -> None:
    url, script = receiver
    script.close = True
    sender = LOOPBACK_ALLOWED(timeout=2)
    assert all(sender.push(f"{url}/e", None, f"t{i}").delivered for i in range(4))
    assert [body for _, _, body in script.seen] == [b"t0", b"t1", b"t2", b"t3"]


@pytest.mark.parametrize(
    ("answer", "permanent"),
    [
        ((400, err("invalid_request")), True),
        ((400, err("invalid_key")), False),
        ((400, err("invalid_audience")), False),
        ((400, b"not json"), False),
        ((413, b""), True),
        ((401, b""), False),
        ((500, b""), False),
        ((503, b""), False),
    ],
)
def test_failures_say_whether_a_resend_can_help(
    receiver: tuple[str, Script], answer: tuple[int, bytes], permanent: bool
) -> None:
    url, script = receiver
    script.answers.append(answer)
    result = LOOPBACK_ALLOWED(timeout=2).push(f"{url}/e", None, "t")
    assert (result.delivered, result.status, result.permanent) == (False, answer[0], permanent)
    if answer[1].startswith(b"{"):
        assert json.loads(answer[1])["err"] in result.error


def test_a_receiver_that_does_not_answer_in_time_is_a_timeout(
    receiver: tuple[str, Script],
) -> None:
    url, script = receiver
    script.hold = threading.Event()  # no answer until the push has given up
    result = LOOPBACK_ALLOWED(timeout=0.1).push(f"{url}/e", None, "t")
    script.hold.set()
    assert not result.delivered and not result.permanent
    assert "in time" in result.error


def test_a_receiver_that_is_down_is_a_retryable_error() -> None:
    result = LOOPBACK_ALLOWED(timeout=1).push("http://127.0.0.1:9/e", None, "t")
    assert (result.delivered, result.permanent, result.status) == (False, False, None)
    assert "Connection" in result.error or "refused" in result.error


@pytest.mark.parametrize("url", ["ftp://example.org/e", "http:///nohost", "http://h:99999/e"])
def test_an_unusable_url_is_refused_for_good(url: str) -> None:
    result = LOOPBACK_ALLOWED(timeout=2).push(url, None, "t")
    assert (result.delivered, result.permanent) == (False, True)


def test_a_large_answer_is_not_read_whole(receiver: tuple[str, Script]) -> None:
    url, script = receiver
    script.answers.append((500, b"x" * 1_000_000))
    sender = LOOPBACK_ALLOWED(timeout=2)
    assert sender.push(f"{url}/e", None, "t").status == 500
    assert sender.push(f"{url}/e", None, "t").delivered  # on a fresh connection
    assert len(script.connections) == 2


def test_without_private_networks_a_name_resolving_inward_is_refused(
    receiver: tuple[str, Script],
) -> None:
    url, script = receiver
    port = url.rsplit(":", 1)[1]
    for target in (f"http://localhost:{port}/e", f"{url}/e"):
        result = HttpSetSender(timeout=1, allow_private=False).push(target, None, "t")
        assert not result.delivered and "private network" in result.error
    assert script.seen == []  # nothing left the process


def test_a_receiver_trickling_its_answer_is_cut_off_at_the_deadline() -> None:
    """Each byte comes within the socket timeout; the whole answer never does."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def trickle() -> None:
        connection, _ = listener.accept()
        connection.recv(65536)
        connection.sendall(b"HTTP/1.1 202 Accepted\r\nContent-Length: 1000\r\n\r\n")
        while not stop.is_set():
            try:
                connection.sendall(b"x")
            except OSError:
                break
            time.sleep(0.1)
        connection.close()

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    began = time.monotonic()
    result = LOOPBACK_ALLOWED(timeout=0.5).push(f"http://127.0.0.1:{port}/e", None, "t")
    took = time.monotonic() - began
    stop.set()
    listener.close()
    assert (result.delivered, result.error) == (False, "the receiver did not answer in time")
    assert took < 50, f"held for {took:.1f} s"  # the whole answer would take 100 s
