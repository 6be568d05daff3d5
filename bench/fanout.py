"""The SSF fan-out benchmark: recycled numbers become SETs for every platform stream.

    .venv/bin/python bench/fanout.py [--numbers 10000] [--streams 200] [--store postgresql]
                                     [--workers 2] [--pollers 4] [--api-workers 2] [--quick]

On a fresh store (`--store postgresql`, a temporary database, or `sqlite`, a temporary file)
carrier `cm` reports `--numbers` numbers activated, cancelled and released a year apart;
`--streams` platforms then each create one push stream (RFC 8935, to a loopback receiver)
and one poll stream (RFC 8936) for identifier-recycled, and the carrier reports every
number activated again: `--numbers` x `--streams` SETs per delivery method. Rows:

- signing-only ceiling: `JoseSetSigner.sign` ES256 of realistic claims in one process, and
  in `--workers` processes at once (measured, next to one process x that many);
- push: `bootstrap.push_worker(settings).run_once()` in a loop (what `handover work` does)
  in `--workers` processes, each with its own engine, to receivers served by uvicorn in a
  separate process (one raw ASGI app for every stream path, answering 202 and counting
  SETs by path and `jti`); deliveries/s and the time until the last receiver has every
  SET, measured from releasing the already started workers;
- latency: with the workers idling as `handover work` does (`--idle`), `--latency-batches`
  reports of `--latency-size` recycled numbers each; the time from calling
  `report_events` to the first receiver holding each SET, and to the last receiver;
- poll: the same SETs from the poll streams through the real HTTP API (`handover serve`,
  i.e. uvicorn with `handover.api.app:create_app`, `--api-workers` processes), polled by
  `--pollers` concurrent clients with `maxEvents` 1000 and acknowledgements; SETs/s.

Every receiver's and poller's `jti`s are checked against the expected set: lost, extra and
duplicate SETs are reported. Ratios are against the signing-only ceiling of the same run.
"""

from __future__ import annotations

import argparse
import base64
import json
import multiprocessing as mp
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import harness  # noqa: E402 (after the path above)

try:
    import orjson

    def _dumps(value: Any) -> bytes:
        return orjson.dumps(value)

    _loads = orjson.loads
except ImportError:  # pragma: no cover - orjson is a dependency of the API

    def _dumps(value: Any) -> bytes:
        return json.dumps(value).encode()

    _loads = json.loads

CARRIER = "cm"
TARGET_PUSH = 2_000
TARGET_POLL = 20_000
RECYCLED = "https://schemas.openid.net/secevent/risc/event-type/identifier-recycled"

err = Console(stderr=True)


# -- the receiver: one ASGI app for every push stream's path ---------------------------------


class Receiver:
    """A fast RFC 8935 receiver for the benchmark: 202 to every POST, SETs counted by
    path and `jti` (read from the unverified payload). `/_...` paths are its controls."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.seen: dict[str, set[str]] = defaultdict(set)
        self.dupes: dict[str, int] = defaultdict(int)
        self.unique = 0
        self.duplicates = 0
        self.bad = 0
        self.expect = 0
        self.complete: dict[str, float] = {}
        self.log: list[tuple[float, str, str]] | None = None

    def record(self, path: str, body: bytes) -> bool:
        try:
            payload = body.split(b".")[1]
            claims = _loads(base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)))
            jti = claims["jti"]
        except (IndexError, ValueError, KeyError, TypeError):
            self.bad += 1
            return False
        seen = self.seen[path]
        if jti in seen:
            self.dupes[path] += 1
            self.duplicates += 1
            return True
        seen.add(jti)
        self.unique += 1
        now = time.time()
        if self.log is not None:
            self.log.append((now, path, jti))
        if self.expect and len(seen) == self.expect:
            self.complete[path] = now
        return True

    def control(self, path: str, query: str) -> Any:
        if path == "/_stats":
            done = list(self.complete.values())
            return {
                "unique": self.unique,
                "duplicates": self.duplicates,
                "bad": self.bad,
                "complete": len(done),
                "first_complete": min(done, default=None),
                "last_complete": max(done, default=None),
            }
        if path == "/_dump":
            return {
                p: {"jtis": list(s), "dupes": self.dupes.get(p, 0)} for p, s in self.seen.items()
            }
        if path == "/_reset":
            self.reset()
            return {}
        if path == "/_expect":  # each path's count that makes it complete
            self.expect = int(query.partition("=")[2])
            self.complete = {p: time.time() for p, s in self.seen.items() if len(s) >= self.expect}
            return {}
        if path == "/_record":  # log (arrival, path, jti) of new SETs from now on
            self.log = []
            return {}
        if path == "/_arrivals":
            return self.log or []
        return None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        path = scope["path"]
        if path.startswith("/_"):
            answer = self.control(path, scope.get("query_string", b"").decode())
            status, body = (404, b"") if answer is None else (200, _dumps(answer))
        else:
            ok = scope["method"] == "POST" and self.record(path, b"".join(chunks))
            status, body = (202, b"") if ok else (400, b'{"err":"invalid_request"}')
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


receiver_app = Receiver()


# -- processes -----------------------------------------------------------------------------


@contextmanager
def receivers(count: int) -> Iterator[list[tuple[str, int]]]:
    """`count` uvicorn processes serving `receiver_app`; yields (base URL, pid) of each."""
    started: list[tuple[subprocess.Popen[bytes], str]] = []
    try:
        for _ in range(count):
            port = harness.free_port()
            process = subprocess.Popen(
                [
                    sys.executable, "-m", "uvicorn", "--app-dir", str(BENCH),
                    "fanout:receiver_app", "--host", "127.0.0.1", "--port", str(port),
                    "--log-level", "warning", "--no-access-log", "--backlog", "4096",
                    "--timeout-keep-alive", "120", "--lifespan", "on",
                ],
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
            base = f"http://127.0.0.1:{port}"
            started.append((process, base))
            harness.wait_http(f"{base}/_stats", process, "the receiver")
        yield [(base, process.pid) for process, base in started]
    finally:
        for process, _ in started:
            harness.stop(process)


@contextmanager
def api_server(env: dict[str, str], port: int, workers: int) -> Iterator[tuple[str, int]]:
    """`handover serve` (uvicorn, `create_app` factory) on the store; yields (base, pid)."""
    serve = ["serve", "--port", str(port), "--workers", str(workers)]
    with harness.handover(serve, env) as process:
        base = f"http://127.0.0.1:{port}"
        harness.wait_http(f"{base}/.well-known/ssf-configuration", process, "handover serve")
        yield base, process.pid


# -- signing ceiling -----------------------------------------------------------------------


def _sample_claims(count: int, issuer: str) -> list[Any]:
    from handover.domain.ssf.events import Signal, phone_subject, set_claims

    now = datetime.now(UTC)
    claims = []
    for i in range(count):
        signal = Signal(
            RECYCLED,
            phone_subject(f"+86138{i:08d}"),
            {"event_timestamp": 1_717_200_000 + i},
            now,
            txn=f"{i:016x}",
            seq=1_000_000 + i,
        )
        claims.append(set_claims(signal, "0" * 24, issuer, f"{issuer}/platforms/p{i}", now))
    return claims


def _signing_process(
    env: dict[str, str], seconds: float, ready: Any, start: Any, results: Any
) -> None:
    os.environ.update(env)
    from handover import bootstrap
    from handover.config import Settings
    from handover.domain.ssf.streams import SigningAlgorithm

    settings = Settings()
    signer = bootstrap.set_signer(settings)
    claims = _sample_claims(1_000, settings.public_url)
    for item in claims[:200]:
        signer.sign(item, SigningAlgorithm.ES256)
    ready.put(os.getpid())
    start.wait()
    count, began = 0, time.perf_counter()
    stop = began + seconds
    while time.perf_counter() < stop:
        for item in claims[:100]:
            signer.sign(item, SigningAlgorithm.ES256)
        count += 100
    results.put(count / (time.perf_counter() - began))


def signing_ceiling(env: dict[str, str], processes: int, seconds: float) -> float:
    """SETs/s signed by `processes` processes at once (each its own signer, all started
    together once every one is ready), summed."""
    context = mp.get_context("spawn")
    ready, start, results = context.Queue(), context.Event(), context.Queue()
    children = [
        context.Process(target=_signing_process, args=(env, seconds, ready, start, results))
        for _ in range(processes)
    ]
    for child in children:
        child.start()
    try:
        for _ in children:
            ready.get(timeout=120)
        start.set()
        rates = [results.get(timeout=60 + seconds) for _ in children]
    finally:
        for child in children:
            child.join(timeout=10)
            if child.is_alive():
                child.terminate()
    return sum(rates)


# -- push workers --------------------------------------------------------------------------


class _Clock:
    """Per-call CPU time (`thread_time`) and wall time of a wrapped method, thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls = 0
        self.cpu = 0.0
        self.wall = 0.0

    def add(self, cpu: float, wall: float) -> None:
        with self.lock:
            self.calls += 1
            self.cpu += cpu
            self.wall += wall


class _TimedSigner:
    def __init__(self, inner: Any, clock: _Clock) -> None:
        self.inner, self.clock = inner, clock

    def sign(self, claims: Any, algorithm: Any) -> str:
        cpu, wall = time.thread_time(), time.perf_counter()
        token: str = self.inner.sign(claims, algorithm)
        self.clock.add(time.thread_time() - cpu, time.perf_counter() - wall)
        return token


class _TimedSender:
    def __init__(self, inner: Any, clock: _Clock) -> None:
        self.inner, self.clock = inner, clock

    def push(self, url: str, authorization: str | None, token: str) -> Any:
        cpu, wall = time.thread_time(), time.perf_counter()
        result = self.inner.push(url, authorization, token)
        self.clock.add(time.thread_time() - cpu, time.perf_counter() - wall)
        return result


def _push_process(env: dict[str, str], idle: float, start: Any, stop: Any, results: Any) -> None:
    """What `handover work` does for push, in a loop until `stop`; totals to `results`."""
    os.environ.update(env)
    from handover import bootstrap
    from handover.config import Settings

    worker = bootstrap.push_worker(Settings())
    signing, sending = _Clock(), _Clock()
    worker.signer = _TimedSigner(worker.signer, signing)
    worker.sender = _TimedSender(worker.sender, sending)
    start.wait()
    cpu = time.process_time()
    totals = {"rounds": 0, "streams": 0, "delivered": 0, "failed": 0, "dead": 0}
    while not stop.is_set():
        report = worker.run_once()
        totals["rounds"] += 1
        totals["streams"] += report.streams
        totals["delivered"] += report.delivered
        totals["failed"] += report.failed
        totals["dead"] += report.dead
        if not report.streams:
            time.sleep(idle)
    totals_f: dict[str, float] = {k: float(v) for k, v in totals.items()}
    totals_f |= {
        "cpu": time.process_time() - cpu,
        "sign_calls": signing.calls,
        "sign_cpu": signing.cpu,
        "sign_wall": signing.wall,
        "push_calls": sending.calls,
        "push_cpu": sending.cpu,
        "push_wall": sending.wall,
    }
    results.put(totals_f)


@dataclass
class PushWorkers:
    """`count` started worker processes, waiting for `release()`."""

    env: dict[str, str]
    count: int
    idle: float
    context: Any = field(default_factory=lambda: mp.get_context("spawn"))

    def __post_init__(self) -> None:
        self.start, self.stop_event = self.context.Event(), self.context.Event()
        self.results = self.context.Queue()
        self.children = [
            self.context.Process(
                target=_push_process,
                args=(self.env, self.idle, self.start, self.stop_event, self.results),
            )
            for _ in range(self.count)
        ]
        for child in self.children:
            child.start()

    def release(self) -> float:
        self.cpu_before = sum(harness.cpu_seconds(c.pid) for c in self.children if c.pid)
        self.start.set()
        return time.time()

    def stop(self) -> dict[str, float]:
        self.stop_event.set()
        totals: dict[str, float] = defaultdict(float)
        for _ in self.children:
            for key, value in self.results.get(timeout=120).items():
                totals[key] += value
        for child in self.children:
            child.join(timeout=30)
        return dict(totals)


# -- setup ---------------------------------------------------------------------------------


def number(i: int) -> str:
    return f"+86138{i:08d}"


def _report(uow_factory: Any, items: list[dict[str, str]]) -> None:
    from handover.domain.freeze_policy import FreezePolicy
    from handover.services.reporting import MAX_BATCH, report_events

    policy = FreezePolicy()
    for begin in range(0, len(items), MAX_BATCH):
        result = report_events(
            uow_factory, CARRIER, items[begin : begin + MAX_BATCH], policy=policy
        )
        if result.rejected:
            raise RuntimeError(f"reports rejected: {result.rejected}")


def report_history(uow_factory: Any, first: int, count: int) -> None:
    """Each number activated, cancelled and released a year apart (past the CN freeze)."""
    items = []
    for i in range(first, first + count):
        items += [
            {"event_id": f"a-{i}", "number": number(i), "event": "activated",
             "occurred_at": "2021-06-01", "subscriber": f"S-{i}-1"},
            {"event_id": f"c-{i}", "number": number(i), "event": "cancelled",
             "occurred_at": "2022-06-01"},
            {"event_id": f"r-{i}", "number": number(i), "event": "released",
             "occurred_at": "2023-06-01"},
        ]  # fmt: skip
    _report(uow_factory, items)


def report_recycled(uow_factory: Any, first: int, count: int) -> None:
    """The numbers activated again for new subscribers: one identifier-recycled signal each."""
    items = [
        {"event_id": f"b-{i}", "number": number(i), "event": "activated",
         "occurred_at": "2024-06-01", "subscriber": f"S-{i}-2"}
        for i in range(first, first + count)
    ]  # fmt: skip
    _report(uow_factory, items)


@dataclass(frozen=True, slots=True)
class StreamInfo:
    platform_id: str
    stream_id: str
    method: str
    path: str = ""  # the receiver path of a push stream
    receiver: int = 0  # which receiver process serves it
    client_id: str = ""
    client_secret: str = ""


def create_streams(
    uow_factory: Any, transmitter: Any, count: int, receiver_bases: list[str]
) -> list[StreamInfo]:
    """`count` platforms, each with one push stream and one poll stream for recycled numbers."""
    from handover.services import access
    from handover.services.ssf.transmitter import create_stream

    created = []
    for i in range(count):
        _, credentials = access.register_platform(
            uow_factory, f"p{i}", f"platform {i}", "other", "low"
        )
        which = i % len(receiver_bases)
        path = f"/p{i}"
        push = create_stream(
            uow_factory,
            transmitter,
            f"p{i}",
            {
                "delivery": {
                    "method": "urn:ietf:rfc:8935",
                    "endpoint_url": f"{receiver_bases[which]}{path}",
                    "authorization_header": "Bearer bench",
                },
                "events_requested": [RECYCLED],
            },
        )
        poll = create_stream(
            uow_factory,
            transmitter,
            f"p{i}",
            {"delivery": {"method": "urn:ietf:rfc:8936"}, "events_requested": [RECYCLED]},
        )
        creds = (credentials.client_id, credentials.client_secret)
        created.append(StreamInfo(f"p{i}", push.stream_id, "push", path, which, *creds))
        created.append(StreamInfo(f"p{i}", poll.stream_id, "poll", "", 0, *creds))
    return created


def recycled_seqs(uow_factory: Any, after: int = 0) -> list[int]:
    from sqlalchemy import select

    from handover.adapters.storage import tables as t

    with uow_factory() as uow:
        c = t.signals.c
        rows = uow.connection.execute(
            select(c.seq).where(c.event_type == RECYCLED, c.seq > after).order_by(c.seq)
        )
        return [int(row[0]) for row in rows]


# -- measurements --------------------------------------------------------------------------


def _stats(bases: list[str]) -> dict[str, Any]:
    total: dict[str, Any] = {"unique": 0, "duplicates": 0, "bad": 0, "complete": 0}
    firsts, lasts = [], []
    for base in bases:
        stats = httpx.get(f"{base}/_stats", timeout=60).json()
        for key in ("unique", "duplicates", "bad", "complete"):
            total[key] += stats[key]
        if stats["first_complete"] is not None:
            firsts.append(stats["first_complete"])
            lasts.append(stats["last_complete"])
    total["first_complete"] = min(firsts, default=None)
    total["last_complete"] = max(lasts, default=None)
    return total


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=err,
    )


def wait_for(
    bases: list[str], target: int, label: str, stall: float, poll_every: float = 0.2
) -> dict[str, Any]:
    """Poll the receivers until they hold `target` distinct SETs (or nothing moves for
    `stall` seconds); their last stats."""
    began = time.monotonic()
    last_change, last_unique = began, -1
    with _progress() as progress:
        task = progress.add_task(label, total=target, rate="")
        while True:
            stats = _stats(bases)
            now = time.monotonic()
            rate = stats["unique"] / max(now - began, 1e-9)
            progress.update(task, completed=stats["unique"], rate=f"{rate:,.0f}/s")
            if stats["unique"] >= target:
                return stats
            if stats["unique"] != last_unique:
                last_change, last_unique = now, stats["unique"]
            elif now - last_change > stall:
                err.print(f"[red]no progress for {stall:.0f} s: stopping[/red]")
                return stats
            time.sleep(poll_every)


@dataclass
class Integrity:
    expected: int = 0
    received: int = 0
    lost: int = 0
    extra: int = 0
    duplicates: int = 0

    def describe(self) -> str:
        return (
            f"{self.received:,} of {self.expected:,} distinct; lost {self.lost:,}, "
            f"extra {self.extra:,}, duplicates {self.duplicates:,}"
        )


def check_jtis(
    streams: list[StreamInfo], seqs: list[int], got: dict[str, set[str]], dupes: dict[str, int]
) -> Integrity:
    """Compare each stream's received jtis (keyed by stream id) with every expected SET."""
    from handover.domain.ssf.events import set_id

    result = Integrity()
    for stream in streams:
        expected = {set_id(stream.stream_id, seq) for seq in seqs}
        have = got.get(stream.stream_id, set())
        result.expected += len(expected)
        result.received += len(have & expected)
        result.lost += len(expected - have)
        result.extra += len(have - expected)
        result.duplicates += dupes.get(stream.stream_id, 0)
    return result


def push_integrity(bases: list[str], streams: list[StreamInfo], seqs: list[int]) -> Integrity:
    by_path = {(s.receiver, s.path): s.stream_id for s in streams}
    got: dict[str, set[str]] = {}
    dupes: dict[str, int] = {}
    for index, base in enumerate(bases):
        dump = _loads(httpx.get(f"{base}/_dump", timeout=600).content)
        for path, entry in dump.items():
            stream_id = by_path.get((index, path), f"unknown:{index}:{path}")
            got[stream_id] = set(entry["jtis"])
            dupes[stream_id] = entry["dupes"]
    integrity = check_jtis(streams, seqs, got, dupes)
    known = {s.stream_id for s in streams}
    integrity.extra += sum(len(v) for k, v in got.items() if k not in known)
    return integrity


def latency_batches(
    uow_factory: Any,
    bases: list[str],
    first: int,
    batches: int,
    size: int,
    per_set: int,
    stall: float,
) -> tuple[list[float], list[float], int]:
    """Report `batches` small batches one after another; per SET the seconds from the
    report to the first receiver holding it, and per batch to the last receiver."""
    firsts: list[float] = []
    lasts: list[float] = []
    unique = _stats(bases)["unique"]
    for batch in range(batches):
        for base in bases:
            httpx.post(f"{base}/_record", timeout=10)
        began = time.time()
        report_recycled(uow_factory, first + batch * size, size)
        unique += size * per_set
        deadline = time.monotonic() + stall
        while _stats(bases)["unique"] < unique and time.monotonic() < deadline:
            time.sleep(0.005)
        arrivals: list[tuple[float, str, str]] = []
        for base in bases:
            arrivals += [tuple(a) for a in httpx.get(f"{base}/_arrivals", timeout=60).json()]
        earliest: dict[str, float] = {}
        for at, _path, jti in arrivals:
            seq = jti.split("-", 1)[0]
            earliest[seq] = min(at, earliest.get(seq, at))
        firsts += [at - began for at in earliest.values()]
        if arrivals:
            lasts.append(max(at for at, _, _ in arrivals) - began)
    return firsts, lasts, unique


@dataclass
class PollFigures:
    sets: int = 0
    requests: int = 0
    seconds: float = 0.0
    got: dict[str, set[str]] = field(default_factory=dict)
    dupes: dict[str, int] = field(default_factory=dict)


def poll_all(
    base: str, streams: list[StreamInfo], pollers: int, max_events: int, expected: int
) -> PollFigures:
    """Drain every poll stream with `pollers` concurrent clients (threads), acknowledging
    each batch in the next request, until a poll returns nothing."""
    tokens: dict[str, str] = {}
    with httpx.Client(timeout=60) as client:
        for stream in streams:
            if stream.platform_id in tokens:
                continue
            response = client.post(
                f"{base}/oauth/token",
                data={"grant_type": "client_credentials", "scope": "ssf.read"},
                auth=(stream.client_id, stream.client_secret),
            )
            response.raise_for_status()
            tokens[stream.platform_id] = response.json()["access_token"]
    work: queue.Queue[StreamInfo] = queue.Queue()
    for stream in streams:
        work.put(stream)
    figures = PollFigures(got={s.stream_id: set() for s in streams})
    lock = threading.Lock()
    failures: list[BaseException] = []

    def poller() -> None:
        try:
            with httpx.Client(timeout=300) as client:
                while True:
                    try:
                        stream = work.get_nowait()
                    except queue.Empty:
                        return
                    headers = {
                        "authorization": f"Bearer {tokens[stream.platform_id]}",
                        "content-type": "application/json",
                    }
                    seen = figures.got[stream.stream_id]
                    acks: list[str] = []
                    while True:
                        body = {"maxEvents": max_events, "returnImmediately": True, "ack": acks}
                        response = client.post(
                            f"{base}/ssf/poll/{stream.stream_id}",
                            content=_dumps(body),
                            headers=headers,
                        )
                        response.raise_for_status()
                        answer = _loads(response.content)
                        acks = list(answer["sets"])
                        repeats = sum(1 for jti in acks if jti in seen)
                        seen.update(acks)
                        with lock:
                            figures.requests += 1
                            figures.sets += len(acks)
                            if repeats:
                                figures.dupes[stream.stream_id] = (
                                    figures.dupes.get(stream.stream_id, 0) + repeats
                                )
                        if not acks and not answer["moreAvailable"]:
                            break
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=poller, daemon=True) for _ in range(pollers)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    with _progress() as progress:
        task = progress.add_task("poll", total=expected, rate="")
        while any(thread.is_alive() for thread in threads):
            elapsed = time.perf_counter() - began
            progress.update(
                task, completed=figures.sets, rate=f"{figures.sets / max(elapsed, 1e-9):,.0f}/s"
            )
            time.sleep(0.2)
        progress.update(task, completed=figures.sets)
    figures.seconds = time.perf_counter() - began
    if failures:
        raise failures[0]
    return figures


# -- the run -------------------------------------------------------------------------------


@dataclass
class Result:
    rows: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    push: Integrity = field(default_factory=Integrity)
    poll: Integrity = field(default_factory=Integrity)
    figures: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return self.push.lost + self.poll.lost


def _env(url: str, public_url: str, args: argparse.Namespace) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANDOVER_")}
    return env | {
        "HANDOVER_ENVIRONMENT": "development",
        "HANDOVER_DATABASE_URL": url,
        "HANDOVER_PUBLIC_URL": public_url,
        "HANDOVER_SSF_ALLOW_HTTP": "true",
        "HANDOVER_DELIVERY_WORKERS": str(args.threads),
        "HANDOVER_CHECK_REFRESH_SECONDS": "0",
        "HANDOVER_TOKEN_TTL_SECONDS": "3600",
        "HANDOVER_POLL_WAIT_SECONDS": "0",
    }


def run(args: argparse.Namespace) -> Result:
    import stores
    from handover import bootstrap
    from handover.config import Settings

    result = Result()
    cores = os.cpu_count() or 1
    ceiling_procs = args.workers
    api_port = harness.free_port()
    public_url = f"http://127.0.0.1:{api_port}"
    total_numbers = args.numbers + args.latency_batches * args.latency_size
    per_method = args.numbers * args.streams

    def prepare(url: str) -> None:
        stores.register_carriers(url)

    with stores.temporary_store(args.store, prepare=prepare) as url:
        env = _env(url, public_url, args)
        settings = Settings(
            database_url=url, public_url=public_url, ssf_allow_http=True, _env_file=None
        )
        engine = bootstrap.make_engine(url)
        uow_factory = bootstrap.uow_factory(settings, engine)
        transmitter = bootstrap.transmitter(settings)

        # (a) the signing-only ceiling, before anything else runs
        err.print("signing-only ceiling ...")
        sign_1 = signing_ceiling(env, 1, args.sign_seconds)
        sign_k = (
            signing_ceiling(env, ceiling_procs, args.sign_seconds) if ceiling_procs > 1 else sign_1
        )
        result.figures |= {"sign_1": sign_1, "sign_k": sign_k}

        with receivers(args.receivers) as served:
            bases = [base for base, _ in served]
            began = time.perf_counter()
            report_history(uow_factory, 0, total_numbers)
            err.print(
                f"reported the history of {total_numbers:,} numbers "
                f"in {time.perf_counter() - began:.1f} s"
            )
            streams = create_streams(uow_factory, transmitter, args.streams, bases)
            push_streams = [s for s in streams if s.method == "push"]
            poll_streams = [s for s in streams if s.method == "poll"]
            began = time.perf_counter()
            report_recycled(uow_factory, 0, args.numbers)
            seqs = recycled_seqs(uow_factory)
            assert len(seqs) == args.numbers, (len(seqs), args.numbers)
            err.print(
                f"reported {args.numbers:,} recycled numbers in "
                f"{time.perf_counter() - began:.1f} s: {per_method:,} SETs per method "
                f"({args.streams} push + {args.streams} poll streams)"
            )
            for base in bases:
                httpx.post(f"{base}/_expect?n={args.numbers}", timeout=10)

            # (b) push
            workers = PushWorkers(env, args.workers, args.idle)
            time.sleep(1.0 + 0.5 * args.workers)  # spawned, imported, engines made
            receiver_cpu = sum(harness.cpu_seconds(pid) for _, pid in served)
            pg_cpu = harness.postgres_cpu() if args.store == "postgresql" else 0.0
            busy0, steal0, all0 = harness.machine_busy()
            started = workers.release()
            try:
                stats = wait_for(bases, per_method, f"push ({args.workers} proc)", args.stall)
                ended = time.time()
                busy1, steal1, all1 = harness.machine_busy()
                receiver_cpu = sum(harness.cpu_seconds(pid) for _, pid in served) - receiver_cpu
                pg_cpu = (harness.postgres_cpu() - pg_cpu) if args.store == "postgresql" else 0.0
                worker_cpu = sum(harness.cpu_seconds(c.pid) for c in workers.children if c.pid)
                worker_cpu -= workers.cpu_before
                last = stats["last_complete"] or ended
                push_seconds = max(last, started) - started
                first_done = (stats["first_complete"] or ended) - started
                push_rate = stats["unique"] / max(push_seconds, 1e-9)
                firsts: list[float] = []
                lasts: list[float] = []
                if args.latency_batches and args.latency_size:
                    err.print(
                        f"latency: {args.latency_batches} batches of {args.latency_size} "
                        f"numbers, workers idling {args.idle} s between empty rounds ..."
                    )
                    firsts, lasts, _ = latency_batches(
                        uow_factory,
                        bases,
                        args.numbers,
                        args.latency_batches,
                        args.latency_size,
                        args.streams,
                        args.stall,
                    )
            finally:
                totals = workers.stop()
            all_seqs = recycled_seqs(uow_factory)
            result.push = push_integrity(bases, push_streams, all_seqs)
        machine = (busy1 - busy0) / max(all1 - all0, 1) * cores
        steal = (steal1 - steal0) / max(all1 - all0, 1) * cores
        result.figures |= {
            "push_steal_cores": steal,
            "push_rate": push_rate,
            "push_seconds": push_seconds,
            "push_first_complete": first_done,
            "push_worker_cpu": worker_cpu,
            "push_receiver_cpu": receiver_cpu,
            "push_postgres_cpu": pg_cpu,
            "push_machine_cores_busy": machine,
            **{f"push_{key}": value for key, value in totals.items()},
        }
        calls = max(totals.get("push_calls", 0.0), 1.0)
        result.notes.append(
            f"push, per SET in the workers: sign {totals.get('sign_cpu', 0) / calls * 1e6:.0f} us "
            f"CPU ({totals.get('sign_wall', 0) / calls * 1e6:.0f} us wall), HTTP POST "
            f"{totals.get('push_cpu', 0) / calls * 1e6:.0f} us CPU "
            f"({totals.get('push_wall', 0) / calls * 1e6:.0f} us wall), worker process total "
            f"{worker_cpu / calls * 1e6:.0f} us CPU; receiver {receiver_cpu / calls * 1e6:.0f} "
            f"us CPU; PostgreSQL {pg_cpu / calls * 1e6:.0f} us CPU; machine busy "
            f"{machine:.2f} of {cores} cores (stolen by the host {steal:.2f}); "
            f"{totals.get('rounds', 0):.0f} rounds, "
            f"{totals.get('streams', 0):.0f} stream turns, {totals.get('failed', 0):.0f} failed, "
            f"{totals.get('dead', 0):.0f} dead-lettered"
        )

        # (c) poll
        api_env = env | {"HANDOVER_DATABASE_URL": url}
        with api_server(api_env, api_port, args.api_workers) as (base, api_pid):
            api_cpu = harness.cpu_seconds(api_pid)
            pg_cpu = harness.postgres_cpu() if args.store == "postgresql" else 0.0
            busy0, steal0, all0 = harness.machine_busy()
            expected_poll = len(all_seqs) * len(poll_streams)
            polled = poll_all(base, poll_streams, args.pollers, args.max_events, expected_poll)
            busy1, steal1, all1 = harness.machine_busy()
            api_cpu = harness.cpu_seconds(api_pid) - api_cpu
            pg_cpu = (harness.postgres_cpu() - pg_cpu) if args.store == "postgresql" else 0.0
        result.poll = check_jtis(poll_streams, all_seqs, polled.got, polled.dupes)
        poll_rate = polled.sets / max(polled.seconds, 1e-9)
        machine = (busy1 - busy0) / max(all1 - all0, 1) * cores
        steal = (steal1 - steal0) / max(all1 - all0, 1) * cores
        result.figures |= {
            "poll_steal_cores": steal,
            "poll_rate": poll_rate,
            "poll_seconds": polled.seconds,
            "poll_requests": polled.requests,
            "poll_api_cpu": api_cpu,
            "poll_postgres_cpu": pg_cpu,
            "poll_machine_cores_busy": machine,
        }
        per = max(polled.sets, 1)
        result.notes.append(
            f"poll, per SET: API {api_cpu / per * 1e6:.0f} us CPU, PostgreSQL "
            f"{pg_cpu / per * 1e6:.0f} us CPU; {polled.requests:,} requests, machine busy "
            f"{machine:.2f} of {cores} cores (stolen by the host {steal:.2f})"
        )
        engine.dispose()

    # the table
    k = ceiling_procs

    def ratios(value: float) -> tuple[str, str]:
        return f"{value / sign_1:.3f}x", f"{value / sign_k:.3f}x"

    def target(value: float, goal: int) -> str:
        return f">= {goal:,}/s: {'met' if value >= goal else 'not met'}"

    rows = result.rows
    rows.append(
        (
            "signing-only ceiling: JoseSetSigner.sign ES256, 1 process",
            f"{sign_1:,.0f} SETs/s",
            "1.000x",
            f"{sign_1 / sign_k:.3f}x",
            "",
        )
    )
    if k > 1:
        rows.append((f"signing-only ceiling: {k} processes at once (1 process x {k} = "
                     f"{sign_1 * k:,.0f}/s)", f"{sign_k:,.0f} SETs/s",
                     f"{sign_k / sign_1:.3f}x", "1.000x", ""))  # fmt: skip
    rows.append((f"push: {args.workers} worker process(es) x {args.threads} threads, "
                 f"{args.streams} streams x {args.numbers:,} SETs",
                 f"{push_rate:,.0f} deliveries/s", *ratios(push_rate),
                 target(push_rate, TARGET_PUSH)))  # fmt: skip
    rows.append(("push: time until the last receiver has every SET",
                 f"{push_seconds:,.1f} s for {per_method:,} SETs (first receiver "
                 f"complete at {first_done:,.1f} s)", "", "", ""))  # fmt: skip
    if firsts:
        rows.append((f"push latency, report -> first receiver has the SET "
                     f"({args.latency_batches} batches of {args.latency_size})",
                     f"p50 {statistics.median(firsts) * 1000:,.0f} ms, max "
                     f"{max(firsts) * 1000:,.0f} ms", "", "", ""))  # fmt: skip
        rows.append(("push latency, report -> last receiver has the batch",
                     f"p50 {statistics.median(lasts) * 1000:,.0f} ms, max "
                     f"{max(lasts) * 1000:,.0f} ms", "", "", ""))  # fmt: skip
    rows.append((f"poll: {args.pollers} pollers, maxEvents {args.max_events} + acks, "
                 f"{args.api_workers} API worker(s)",
                 f"{poll_rate:,.0f} SETs/s", *ratios(poll_rate),
                 target(poll_rate, TARGET_POLL)))  # fmt: skip
    rows.append(("push: received vs expected", result.push.describe(), "", "", ""))
    rows.append(("poll: received vs expected", result.poll.describe(), "", "", ""))
    return result


def render(args: argparse.Namespace, result: Result) -> Table:
    k = args.workers
    table = Table(
        title=f"SSF fan-out: {args.numbers:,} recycled numbers x {args.streams} streams "
        f"({args.store}, {os.cpu_count()} cores)"
    )
    table.add_column("measure")
    table.add_column("figure", justify="right")
    table.add_column("vs signing, 1 proc", justify="right")
    table.add_column(f"vs signing, {k} proc", justify="right")
    table.add_column("target")
    for row in result.rows:
        table.add_row(*row)
    return table


def markdown(args: argparse.Namespace, result: Result) -> str:
    header = f"| measure | figure | vs signing, 1 proc | vs signing, {args.workers} proc | target |"
    lines = [header, "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in result.rows]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--numbers", type=int, default=10_000, help="recycled numbers")
    parser.add_argument("--streams", type=int, default=200, help="platforms (push + poll each)")
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="postgresql")
    parser.add_argument("--workers", type=int, default=2, help="push worker processes")
    parser.add_argument("--threads", type=int, default=16, help="HANDOVER_DELIVERY_WORKERS")
    parser.add_argument("--receivers", type=int, default=1, help="receiver processes")
    parser.add_argument("--idle", type=float, default=0.2, help="as `handover work --idle`")
    parser.add_argument("--pollers", type=int, default=4, help="concurrent poll clients")
    parser.add_argument("--api-workers", type=int, default=2, help="`handover serve --workers`")
    parser.add_argument("--max-events", type=int, default=1_000)
    parser.add_argument("--latency-batches", type=int, default=5)
    parser.add_argument("--latency-size", type=int, default=10, help="numbers per batch")
    parser.add_argument("--sign-seconds", type=float, default=3.0)
    parser.add_argument("--stall", type=float, default=120.0, help="give up after no progress")
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes on SQLite (the smoke test's run)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.numbers, args.streams, args.store = 30, 3, "sqlite"
        args.workers, args.api_workers, args.pollers = 1, 1, 2
        args.latency_batches, args.latency_size = 2, 2
        args.sign_seconds, args.stall = 0.3, 20.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    for note in result.notes:
        err.print(note, highlight=False)
    Console(width=max(Console().width, 150)).print(render(args, result))
    if args.markdown:
        print(markdown(args, result))
    return 1 if result.lost or result.push.extra or result.poll.extra else 0


if __name__ == "__main__":
    sys.exit(main())
