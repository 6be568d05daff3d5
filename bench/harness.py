"""What the benchmarks that drive real processes share: starting and stopping `handover`
commands and other servers on loopback, reading their CPU and memory from /proc, and a
minimal HTTP/1.1 response reader for raw asyncio keep-alive clients (like `wrk`: a request
line and headers out, a status, headers and a body in), so that on a small machine the
client's own cost does not hide the server's.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path

import httpx

HANDOVER = str(Path(sys.executable).parent / "handover")
HOST = "127.0.0.1"


# -- processes -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_http(
    url: str, process: subprocess.Popen[bytes], what: str, timeout: float = 120.0
) -> None:
    """Until `url` answers below 500; RuntimeError when `process` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.1)


def stop(process: subprocess.Popen[bytes], *, group: bool = False) -> None:
    """SIGTERM, then SIGKILL after 30 s. With `group` (a process started with
    `start_new_session`), whatever is left in its process group (uvicorn's worker
    processes) is killed too."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if group:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)


@contextmanager
def started(
    command: Sequence[str], env: dict[str, str], log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`command` in its own session (a Ctrl-C in the terminal reaches only the benchmark,
    which stops it), output to `log` or nowhere; stopped when the block ends, however it
    ends."""
    output = open(log, "wb") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    try:
        process = subprocess.Popen(
            command,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
            start_new_session=True,
        )
    finally:
        if log is not None:
            output.close()  # type: ignore[union-attr]
    try:
        yield process
    finally:
        stop(process, group=True)


def handover(
    arguments: Sequence[str], env: dict[str, str], log: Path | None = None
) -> AbstractContextManager[subprocess.Popen[bytes]]:
    """`handover ARGUMENTS...`, as `started` runs it."""
    return started([HANDOVER, *arguments], env, log)


# -- /proc ---------------------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (from /proc/PID/task/*/children); [] once it has gone."""
    found: list[int] = []
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            tasks = list(Path(f"/proc/{current}/task").iterdir())
        except (FileNotFoundError, ProcessLookupError):
            continue
        found.append(current)
        for task in tasks:
            try:
                pending.extend(int(child) for child in (task / "children").read_text().split())
            except (FileNotFoundError, ProcessLookupError, ValueError):
                continue
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its descendants (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for current in process_tree(pid):
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
    return total


def rss_bytes(pid: int) -> int:
    """Resident memory (VmRSS) of a process and its descendants, in bytes."""
    total = 0
    for current in process_tree(pid):
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    break
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return total


def postgres_cpu(database: str | None = None) -> float:
    """CPU seconds of every `postgres` process visible here (the server's backends), or
    of the backends connected to `database` only (named in their process titles; a
    backend that has exited by the second reading takes its seconds with it)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    marker = f" {database} ".encode() if database else None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
            if marker is not None and marker not in (entry / "cmdline").read_bytes():
                continue
        except OSError:
            continue
        name, _, rest = text.partition(" (")[2].partition(")")
        if name == "postgres":
            fields = rest.split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def machine_busy() -> tuple[float, float, float]:
    """(busy, steal, total) jiffies of the whole machine since boot (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle, steal = values[3] + values[4], values[7] if len(values) > 7 else 0
    return float(sum(values) - idle - steal), float(steal), float(sum(values))


# -- a raw HTTP/1.1 client -----------------------------------------------------------------


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes], bytes]:
    """One response from a keep-alive connection: (status, headers with lower-case names,
    body). Reads `Content-Length` bodies and chunked ones; `IncompleteReadError` or
    `ConnectionError` when the server closes the connection first."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionResetError("the server closed the connection")
    status = int(status_line.split(None, 2)[1])
    headers: dict[bytes, bytes] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if b"content-length" in headers:
        body = await reader.readexactly(int(headers[b"content-length"]))
    elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        parts = []
        while size := int((await reader.readline()).split(b";", 1)[0], 16):
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        while (await reader.readline()) not in (b"\r\n", b""):  # trailers
            pass
        body = b"".join(parts)
    else:
        body = b""
    return status, headers, body
