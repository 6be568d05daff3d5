"""Load: mixed traffic at a Handover server on loopback for a fixed time; one table.

    .venv/bin/python bench/load.py [--store sqlite|postgresql] [--rate 1000] [--seconds 600]
                                   [--server-workers 1] [--numbers 100000] [--cases 3000]
                                   [--baseline-seconds 10] [--json out.json]
                                   [--mix check=0.9,outcome=0.04,events=0.05,public=0.01]
                                   [--profile serve.prof]

On a fresh store (a temporary PostgreSQL database, dropped at the end, or a temporary SQLite
file) it seeds, through Handover's own services and CLI: carriers `cm` and `cu` (covered
from 2021-01-01), a platform, `--numbers` numbers with `generate.py`'s lives (activations,
suspensions, cancellations, restores, releases after the freeze, recycling, ports) written
to a CSV file and applied with `handover ingest`, and `--cases` open renewal cases for the
platform (recycled numbers the platform had bound to their previous owner; each new owner
asks the platform with `services.cases.request_renewal`). Then it starts `handover serve
--workers N` and `handover work` as subprocesses and drives them, on 127.0.0.1 only, with
an OPEN-LOOP schedule: request k is due at start + k / rate whatever happened before it,
and its latency runs from that due time to the last byte of the answer, so a stalled
server (or a stalled generator) shows in the percentiles instead of slowing the offered
load down (no coordinated omission). Requests go over a pool of keep-alive HTTP/1.1
connections of a raw asyncio client (`harness.read_response`), which grows when every
connection is busy (up to `--max-connections`); a request still waiting when the schedule
and a grace period are over counts as an error (`unsent`).

The mix (`MIX`): ~90% `GET /v1/check` (the platform's token; every reported number once
in a shuffled cycle plus 1% never reported, random `since` dates: `check.questions`), ~4%
`POST /v1/platform/cases/{id}/outcome` (fresh cases first, `outcome`; once they run out,
the same answer to an answered case again, `outcome_replay`, which must say
`Idempotent-Replay: true`), ~5% `POST /v1/carrier/events` (the carrier's token; two
activations of numbers never reported plus a suspension of an active one and a resumption
of a suspended one, each number's next event sent only after its last was accepted; every
event must be accepted), ~1% public reads (`PUBLIC_PATHS`; add page views to `PAGE_PATHS`
once pages exist). Tokens come from `POST /oauth/token` (client credentials, HTTP Basic)
and are renewed at half their life (`--token-ttl`, the server's
HANDOVER_TOKEN_TTL_SECONDS; default 60 s, its minimum, so even a short run renews them);
they are timed as `token`, outside the schedule.

The baseline, measured first in the same run on the same connections: `GET /healthz` at
the same rate for `--baseline-seconds`. Every kind's p50 and p99 is printed as a ratio over
the baseline's. While the load runs, every `--sample-seconds` it samples the resident
memory (VmRSS, /proc/PID/status) of every server process (`handover serve` and its
workers, `handover work`) and the load average, and prints a progress line to stderr. At
the end: CPU seconds of the generator itself (it shares the cores), of the server
processes and of PostgreSQL, and the targets (`TARGETS`) met or not. `--json PATH` writes
everything, with the timeline, for machines. The exit status is 1 when any request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform as platform_module
import pstats
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from sqlalchemy import text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))

import check
import generate
import harness
import stores
from handover import bootstrap
from handover.adapters.storage.engine import make_engine
from handover.config import Settings
from handover.services import access, bindings, cases
from handover.services.access import IssuedCredentials

HOST = harness.HOST
PLATFORM = "load-platform"
CARRIER = generate.CARRIER
#: Shares of the scheduled requests by kind.
MIX = {"check": 0.90, "outcome": 0.04, "events": 0.05, "public": 0.01}
#: Public reads; page views join them here once the pages exist (e.g. a number's page).
PUBLIC_PATHS: tuple[str, ...] = ("/log/checkpoint", "/.well-known/jwks.json")
PAGE_PATHS: tuple[str, ...] = ()
#: Outcomes a platform may give a renewal's `unbind` case (docs/cases.md).
OUTCOMES = ("unbound", "no_account")
ACTIVATIONS_PER_BATCH = 2
#: A keep-alive connection idle this long (seconds) is replaced before it is used again:
#: uvicorn closes idle connections after 5 s, and a request written into a closing
#: connection would fail for the client's sake, not the server's.
STALE = 4.0
#: What the load must reach on the 2-core development machine.
TARGETS = {"rate": 1_000, "seconds": 600, "p99_ms": 100.0, "rss_growth": 0.10}
#: Kinds in table order; `outcome_replay` and `token` are not drawn from MIX directly.
KINDS = ("check", "outcome", "outcome_replay", "events", "public", "token")


# -- seeding -------------------------------------------------------------------------------


@dataclass(slots=True)
class Seeded:
    numbers: int
    rows: int
    cases: list[str]
    questions: tuple[list[str], list[str]]
    carrier: IssuedCredentials
    platform: IssuedCredentials
    #: The first generator index not reported: numbers for fresh activations start here.
    next_index: int
    seconds: dict[str, float] = field(default_factory=dict)


def _stamp(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_histories(
    path: Path, count: int, seed: int
) -> tuple[int, list[tuple[str, int]], list[str]]:
    """`count` numbers' genuine lives as a carrier file: (rows, recycled numbers in service
    with their previous owner's activation time, every number)."""
    gen = generate._Generator(seed, 0.0, 0.0)
    rng = random.Random(seed)
    rows, renewable, numbers = 0, [], []
    with path.open("w", encoding="utf-8", newline="\n") as out:
        out.write(generate.HEADER + "\n")
        for index in range(count):
            number = gen.number(index)
            numbers.append(number)
            events = gen.history(rng.randrange(generate.START, generate.END - generate.DAY))
            for event in events:
                out.write(
                    gen.row(
                        gen.event_id(),
                        number,
                        event.kind,
                        _stamp(event.at),
                        event.subscriber,
                        event.to_carrier,
                    )
                    + "\n"
                )
            rows += len(events)
            activations = [event.at for event in events if event.kind == "activated"]
            last = events[-1]
            if len(activations) > 1 and last.holder == CARRIER and last.state == "active":
                renewable.append((number, activations[-2]))
    return rows, renewable, numbers


def seed(url: str, workdir: Path, args: argparse.Namespace, env: dict[str, str]) -> Seeded:
    """Carriers, the platform, the numbers' histories and the open cases, as the services
    and the CLI make them."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    carriers = stores.register_carriers(url, check.COVERAGE)
    settings = Settings(database_url=url)
    engine = make_engine(url)
    try:
        open_store = bootstrap.uow_factory(settings, engine)
        _, platform = access.register_platform(
            open_store, PLATFORM, "Load test platform", "social", "medium"
        )
        path = workdir / "histories.csv"
        rows, renewable, numbers = write_histories(path, args.numbers, args.seed)
        timings["write histories"] = time.perf_counter() - started
        started = time.perf_counter()
        ingested = subprocess.run(
            [harness.HANDOVER, "ingest", str(path), "--carrier", CARRIER, "--json"],
            env=env,
            capture_output=True,
        )
        if ingested.returncode != 0:
            raise RuntimeError(f"handover ingest failed: {ingested.stderr[-2000:]!r}")
        summary = json.loads(ingested.stdout)
        if summary["accepted"] != rows or summary["rejected"]:
            raise RuntimeError(f"the histories were not all accepted: {summary}")
        timings["handover ingest"] = time.perf_counter() - started
        path.unlink()

        started = time.perf_counter()
        rng = random.Random(args.seed + 3)
        chosen = rng.sample(renewable, min(args.cases, len(renewable)))
        items = [
            {
                "number": number,
                "account_ref": f"acct-{k}",
                "bound_since": _stamp(previous + 60),
                "tier": "medium",
            }
            for k, (number, previous) in enumerate(chosen)
        ]
        for start in range(0, len(items), 10_000):
            bindings.register_bindings(open_store, PLATFORM, items[start : start + 10_000])
        case_ids: list[str] = []
        for number, _ in chosen:
            progress = cases.request_renewal(open_store, number, [PLATFORM], False)
            case_ids.extend(item.case.id for item in progress.cases)
        timings["bindings and renewals"] = time.perf_counter() - started
    finally:
        engine.dispose()
    if len(case_ids) < args.cases:
        print(
            f"only {len(case_ids):,} numbers can be renewed: {len(case_ids):,} open cases",
            file=sys.stderr,
        )
    questions = check.questions([{"e164": n} for n in numbers], args.seed, datetime.now(UTC))
    return Seeded(
        len(numbers),
        rows,
        case_ids,
        questions,
        carriers[CARRIER],
        platform,
        args.numbers,
        timings,
    )


# -- the traffic ---------------------------------------------------------------------------

Verify = Callable[[int, dict[bytes, bytes], bytes], str | None]


class Traffic:
    """Builds each request when a connection is about to send it (with the token of that
    moment) and checks its answer, following the state the answers leave behind: which
    cases are answered, which numbers are active or suspended."""

    def __init__(self, seeded: Seeded, port: int, seed: int, mix: dict[str, float]) -> None:
        self.host = f"Host: {HOST}:{port}\r\n"
        self.mix = mix
        self.rng = random.Random(seed + 5)
        self.numbers, self.since = seeded.questions
        self.check_at = 0
        self.fresh_cases = list(reversed(seeded.cases))
        self.answered: list[tuple[str, str]] = []
        self.generator = generate._Generator(seed + 7, 0.0, 0.0)
        self.next_index = seeded.next_index
        self.active: deque[str] = deque()
        self.suspended: deque[str] = deque()
        self.event_seq = 0
        self.public_at = 0
        self.public_paths = PUBLIC_PATHS + PAGE_PATHS
        self.tokens: dict[str, str] = {}
        self.rejected_events: Counter[str] = Counter()

    def pick(self) -> str:
        roll, total = self.rng.random(), 0.0
        for kind, share in self.mix.items():
            total += share
            if roll < total:
                return kind
        return "check"

    def build(self, kind: str) -> tuple[str, bytes, Verify]:
        if kind == "check":
            return self._check()
        if kind == "outcome":
            return self._outcome()
        if kind == "events":
            return self._events()
        if kind == "public":
            path = self.public_paths[self.public_at % len(self.public_paths)]
            self.public_at += 1
            return "public", self._get(path), _status_200
        if kind == "healthz":
            return "healthz", self._get("/healthz"), _status_200
        raise ValueError(kind)

    def _get(self, path: str, token: str | None = None) -> bytes:
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        return f"GET {path} HTTP/1.1\r\n{self.host}{auth}\r\n".encode()

    def _post(self, path: str, token: str, body: bytes) -> bytes:
        head = (
            f"POST {path} HTTP/1.1\r\n{self.host}Authorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    def _check(self) -> tuple[str, bytes, Verify]:
        at = self.check_at % len(self.numbers)
        self.check_at += 1
        number, since = self.numbers[at], self.since[at]
        path = f"/v1/check?number=%2B{number[1:]}&since={since}"
        return "check", self._get(path, self.tokens["platform"]), _check_answer

    def _outcome(self) -> tuple[str, bytes, Verify]:
        if self.fresh_cases:
            case_id, outcome = self.fresh_cases.pop(), self.rng.choice(OUTCOMES)
            label = "outcome"
        elif self.answered:
            case_id, outcome = self.rng.choice(self.answered)
            label = "outcome_replay"
        else:  # every case is in flight (or there are none): a check instead
            return self._check()
        body = orjson.dumps({"outcome": outcome})
        request = self._post(f"/v1/platform/cases/{case_id}/outcome", self.tokens["platform"], body)

        def verify(status: int, headers: dict[bytes, bytes], _: bytes) -> str | None:
            if status != 200:
                return str(status)
            replay = headers.get(b"idempotent-replay") == b"true"
            if label == "outcome":
                self.answered.append((case_id, outcome))
                return "replay-of-a-fresh-case" if replay else None
            return None if replay else "replay-not-idempotent"

        return label, request, verify

    def _events(self) -> tuple[str, bytes, Verify]:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        events, after = [], []
        for _ in range(ACTIVATIONS_PER_BATCH):
            number = self.generator.number(self.next_index)
            self.next_index += 1
            events.append(self._event(number, "activated", now, f"load-{self.next_index}"))
            after.append((number, self.active))
        if self.active:
            events.append(self._event(self.active.popleft(), "suspended", now))
            after.append((events[-1]["number"], self.suspended))
        if self.suspended:
            events.append(self._event(self.suspended.popleft(), "resumed", now))
            after.append((events[-1]["number"], self.active))
        body = orjson.dumps({"events": events})
        request = self._post("/v1/carrier/events", self.tokens["carrier"], body)

        def verify(status: int, _: dict[bytes, bytes], body: bytes) -> str | None:
            if status != 200:
                return str(status)  # the numbers are left out from here on
            error = None
            for result in orjson.loads(body)["results"]:
                number, pool = after[result["index"]]
                if result["status"] == "accepted":
                    pool.append(number)
                else:
                    reason = f"event {result['status']}: {result.get('reason')}"
                    self.rejected_events[reason] += 1
                    error = error or reason
            return error

        return "events", request, verify

    def _event(
        self, number: str, kind: str, at: str, subscriber: str | None = None
    ) -> dict[str, str]:
        self.event_seq += 1
        event = {"event_id": f"load-{self.event_seq}", "number": number, "event": kind}
        event["occurred_at"] = at
        if subscriber:
            event["subscriber"] = subscriber
        return event

    def token_request(self, credentials: IssuedCredentials) -> bytes:
        basic = base64.b64encode(
            f"{credentials.client_id}:{credentials.client_secret}".encode()
        ).decode()
        body = b"grant_type=client_credentials"
        head = (
            f"POST /oauth/token HTTP/1.1\r\n{self.host}Authorization: Basic {basic}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body


def _status_200(status: int, _: dict[bytes, bytes], __: bytes) -> str | None:
    return None if status == 200 else str(status)


def _check_answer(status: int, _: dict[bytes, bytes], body: bytes) -> str | None:
    if status != 200:
        return str(status)
    return None if b'"verdict"' in body else "200 without a verdict"


# -- the client ----------------------------------------------------------------------------


class Recorder:
    """Latencies (seconds) and errors by kind for one phase, and a window for progress."""

    def __init__(self) -> None:
        self.latency: dict[str, array[float]] = defaultdict(lambda: array("d"))
        self.errors: dict[str, Counter[str]] = defaultdict(Counter)
        self.completed = 0
        self.window: array[float] = array("d")
        self.window_errors = 0
        self.first_due = 0.0
        self.last_done = 0.0

    def record(self, label: str, latency: float, error: str | None, done: float) -> None:
        self.latency[label].append(latency)
        self.window.append(latency)
        if error is not None:
            self.errors[label][error] += 1
            self.window_errors += 1
        self.completed += 1
        self.last_done = max(self.last_done, done)

    def take_window(self) -> tuple[int, float, int]:
        """(requests, p99 ms, errors) since the last call."""
        window, errors = self.window, self.window_errors
        self.window, self.window_errors = array("d"), 0
        p99 = float(np.percentile(np.frombuffer(window), 99)) * 1000 if window else 0.0
        return len(window), p99, errors


Job = tuple[float, str]  # (due, kind)


class Client:
    """Scheduled requests over keep-alive connections to 127.0.0.1:port: a connection takes
    the next due request when it is free; a new connection opens when none is."""

    def __init__(self, port: int, traffic: Traffic, max_connections: int, timeout: float) -> None:
        self.port = port
        self.traffic = traffic
        self.max_connections = max_connections
        self.timeout = timeout
        self.queue: asyncio.Queue[Job | None] = asyncio.Queue()
        self.idle = 0
        self.inflight = 0
        self.connections: list[asyncio.Task[None]] = []
        self.recorder = Recorder()

    def submit(self, job: Job) -> None:
        self.inflight += 1
        self.queue.put_nowait(job)
        if self.queue.qsize() > self.idle and len(self.connections) < self.max_connections:
            self.connections.append(asyncio.create_task(self._connection()))

    async def _connection(self) -> None:
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        used = 0.0
        try:
            while True:
                self.idle += 1
                try:
                    job = await self.queue.get()
                finally:
                    self.idle -= 1
                if job is None:
                    return
                due, kind = job
                label, request, verify = self.traffic.build(kind)
                error: str | None = None
                if writer is not None and (
                    reader is None or reader.at_eof() or time.monotonic() - used > STALE
                ):
                    writer.close()  # the server closes idle connections (uvicorn: 5 s)
                    writer = None
                try:
                    async with asyncio.timeout(self.timeout):
                        if writer is None:
                            reader, writer = await asyncio.open_connection(HOST, self.port)
                        assert reader is not None
                        writer.write(request)
                        status, headers, body = await harness.read_response(reader)
                except TimeoutError:
                    error = "timeout"
                except (OSError, asyncio.IncompleteReadError):
                    error = "connection"
                else:
                    error = verify(status, headers, body)
                    if headers.get(b"connection", b"").lower() == b"close":
                        writer.close()
                        writer = None
                if error in ("timeout", "connection") and writer is not None:
                    writer.close()
                    writer = None
                done = used = time.monotonic()
                self.recorder.record(label, done - due, error, done)
                self.inflight -= 1
        finally:
            if writer is not None:
                writer.close()

    async def run(
        self, rate: float, seconds: float, pick: Callable[[], str], lag: array[float]
    ) -> None:
        """Submit rate x seconds requests at their due times, then wait for the answers
        (at most the request timeout and a second); what is left counts as `unsent`."""
        total, interval = round(rate * seconds), 1.0 / rate
        start = time.monotonic() + 0.05
        self.recorder.first_due = start
        sent = 0
        while sent < total:
            now = time.monotonic()
            due = start + sent * interval
            if due > now:
                await asyncio.sleep(due - now)
                now = time.monotonic()
            while sent < total and (due := start + sent * interval) <= now:
                lag.append(now - due)
                self.submit((due, pick()))
                sent += 1
        deadline = time.monotonic() + self.timeout + 1.0
        while self.inflight and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        now = time.monotonic()
        while not self.queue.empty():
            job = self.queue.get_nowait()
            if job is not None:
                self.recorder.record(job[1], now - job[0], "unsent", now)
                self.inflight -= 1

    async def close(self) -> None:
        for _ in self.connections:
            self.queue.put_nowait(None)
        await asyncio.wait(self.connections, timeout=self.timeout + 1.0)
        for task in self.connections:
            task.cancel()


class Tokens:
    """Client-credentials tokens, renewed at half their life (a token sent in time is still
    refused when the server reads the request after it expired), each on a connection of
    its own; each request is timed as `token`, a failed one retried a second later."""

    def __init__(self, client: Client, credentials: dict[str, IssuedCredentials]) -> None:
        self.client = client
        self.credentials = credentials
        self.renew_at: dict[str, float] = {}
        self.renewals = 0

    async def fetch(self, name: str) -> None:
        request = self.client.traffic.token_request(self.credentials[name])
        started = time.monotonic()
        writer = None
        try:
            async with asyncio.timeout(self.client.timeout):
                reader, writer = await asyncio.open_connection(HOST, self.client.port)
                writer.write(request)
                status, _, body = await harness.read_response(reader)
        except (TimeoutError, OSError, asyncio.IncompleteReadError) as error:
            done = time.monotonic()
            failure = "timeout" if isinstance(error, TimeoutError) else "connection"
            self.client.recorder.record("token", done - started, failure, done)
            raise RuntimeError(f"POST /oauth/token: {failure}") from error
        finally:
            if writer is not None:
                writer.close()
        done = time.monotonic()
        if status != 200:
            self.client.recorder.record("token", done - started, str(status), done)
            raise RuntimeError(f"POST /oauth/token: {status} {body[:300]!r}")
        answer = orjson.loads(body)
        self.client.recorder.record("token", done - started, None, done)
        self.client.traffic.tokens[name] = answer["access_token"]
        self.renew_at[name] = started + answer["expires_in"] / 2

    async def keep_fresh(self) -> None:
        while True:
            name = min(self.renew_at, key=self.renew_at.__getitem__)
            await asyncio.sleep(max(0.0, self.renew_at[name] - time.monotonic()))
            try:
                await self.fetch(name)
            except RuntimeError:
                self.renew_at[name] = time.monotonic() + 1.0
            else:
                self.renewals += 1


# -- one run -------------------------------------------------------------------------------


@dataclass(slots=True)
class Processes:
    serve: int
    work: int
    #: The PostgreSQL database (its backends' CPU and sessions are counted), None on SQLite.
    database: str | None
    #: Where to read `pg_stat_database` from.
    pg_url: str


def _rss(processes: Processes) -> tuple[int, int]:
    return harness.rss_bytes(processes.serve), harness.rss_bytes(processes.work)


def _pg_sessions(pg_url: str, database: str) -> float:
    """Sessions (connections) PostgreSQL has opened to `database` so far."""
    engine = make_engine(pg_url)
    try:
        with engine.connect() as connection:
            query = text("SELECT sessions FROM pg_stat_database WHERE datname = :name")
            return float(connection.execute(query, {"name": database}).scalar_one())
    finally:
        engine.dispose()


def _cpu(processes: Processes) -> dict[str, float]:
    busy, steal, total = harness.machine_busy()
    database, pg_url = processes.database, processes.pg_url
    return {
        "generator": time.process_time(),
        "serve": harness.cpu_seconds(processes.serve),
        "work": harness.cpu_seconds(processes.work),
        "postgres": harness.postgres_cpu(database) if database else 0.0,
        "postgres_sessions": _pg_sessions(pg_url, database) if database else 0.0,
        "machine_busy": busy,
        "machine_steal": steal,
        "machine_total": total,
        "wall": time.monotonic(),
    }


async def drive(
    args: argparse.Namespace, seeded: Seeded, port: int, processes: Processes
) -> dict[str, Any]:
    traffic = Traffic(seeded, port, args.seed, args.mix)
    client = Client(port, traffic, args.max_connections, args.timeout)
    tokens = Tokens(client, {"platform": seeded.platform, "carrier": seeded.carrier})
    timeline: list[dict[str, Any]] = []
    phase: dict[str, Any] = {"name": "start", "began": time.monotonic()}
    phase["sampled"] = phase["began"]
    lag: array[float] = array("d")

    def sample() -> None:
        serve, work = _rss(processes)
        count, p99, errors = client.recorder.take_window()
        now = time.monotonic()
        rate = count / max(1e-3, now - phase["sampled"])
        phase["sampled"] = now
        point = {
            "t": round(time.monotonic() - phase["began"], 1),
            "phase": phase["name"],
            "serve_rss": serve,
            "work_rss": work,
            "requests": count,
            "p99_ms": round(p99, 2),
            "errors": errors,
            "connections": len(client.connections),
            "loadavg": os.getloadavg()[0],
        }
        timeline.append(point)
        print(
            f"{point['phase']:>8} t={point['t']:6.1f}s  {rate:7.0f} req/s"
            f"  p99 {p99:7.1f} ms  errors {errors}  rss serve {serve / 2**20:6.1f} MiB"
            f" work {work / 2**20:6.1f} MiB  conns {len(client.connections)}"
            f"  load {point['loadavg']:.2f}",
            file=sys.stderr,
        )

    async def sampler() -> None:
        while True:
            await asyncio.sleep(args.sample_seconds)
            sample()

    sample()
    rss_start = timeline[0]
    for name in ("platform", "carrier"):
        await tokens.fetch(name)
    renewer = asyncio.create_task(tokens.keep_fresh())
    sampling = asyncio.create_task(sampler())
    try:
        # The floor: /healthz at the same rate, on the same connections.
        phase.update(name="baseline", began=time.monotonic())
        client.recorder.take_window()
        await client.run(args.rate, args.baseline_seconds, lambda: "healthz", array("d"))
        baseline = client.recorder
        # The mixed load.
        client.recorder = Recorder()
        phase.update(name="mixed", began=time.monotonic())
        loadavg_before = os.getloadavg()
        cpu_before = _cpu(processes)
        await client.run(args.rate, args.seconds, traffic.pick, lag)
        cpu_after = _cpu(processes)
        sample()
    finally:
        renewer.cancel()
        sampling.cancel()
        await client.close()
    mixed = client.recorder
    return {
        "baseline": baseline,
        "mixed": mixed,
        "lag": lag,
        "timeline": timeline,
        "rss_start": rss_start,
        "cpu": {k: cpu_after[k] - cpu_before[k] for k in cpu_before},
        "loadavg_before": loadavg_before,
        "loadavg_after": os.getloadavg(),
        "token_renewals": tokens.renewals,
        "connections": len(client.connections),
        "rejected_events": dict(traffic.rejected_events),
        "fresh_cases_left": len(traffic.fresh_cases),
        "cases_answered": len(traffic.answered),
        "activated": traffic.next_index - seeded.next_index,
    }


# -- figures -------------------------------------------------------------------------------


def _stats(values: array[float]) -> dict[str, float]:
    if not values:
        return {"requests": 0}
    data = np.frombuffer(values) * 1000
    p50, p95, p99 = np.percentile(data, [50, 95, 99])
    return {
        "requests": len(values),
        "p50_ms": round(float(p50), 3),
        "p95_ms": round(float(p95), 3),
        "p99_ms": round(float(p99), 3),
        "max_ms": round(float(data.max()), 3),
    }


def figures(args: argparse.Namespace, seeded: Seeded, run: dict[str, Any]) -> dict[str, Any]:
    baseline: Recorder = run["baseline"]
    mixed: Recorder = run["mixed"]
    floor: dict[str, Any] = _stats(baseline.latency["healthz"])
    floor["errors"] = dict(baseline.errors["healthz"])
    kinds: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        if kind not in mixed.latency:
            continue
        stats: dict[str, Any] = _stats(mixed.latency[kind])
        stats["errors"] = dict(mixed.errors.get(kind, {}))
        if stats["requests"] and floor["requests"]:
            stats["p50_x_floor"] = round(stats["p50_ms"] / floor["p50_ms"], 2)
            stats["p99_x_floor"] = round(stats["p99_ms"] / floor["p99_ms"], 2)
        kinds[kind] = stats
    scheduled = [k for k in mixed.latency if k != "token"]
    everything = array("d")
    for kind in scheduled:
        everything.extend(mixed.latency[kind])
    overall: dict[str, Any] = _stats(everything)
    errors: Counter[str] = Counter()
    for kind in scheduled:
        errors.update(mixed.errors.get(kind, {}))
    overall["errors"] = dict(errors)
    overall["p50_x_floor"] = round(overall["p50_ms"] / floor["p50_ms"], 2)
    overall["p99_x_floor"] = round(overall["p99_ms"] / floor["p99_ms"], 2)
    ok = overall["requests"] - sum(errors.values())
    every_error = errors + Counter(mixed.errors.get("token", {}))
    every_error.update(baseline.errors.get("healthz", {}))
    elapsed = mixed.last_done - mixed.first_due
    cpu = run["cpu"]
    wall = cpu["wall"]
    machine = cpu["machine_total"] or 1.0
    cores = os.cpu_count() or 1
    points = [p for p in run["timeline"] if p["phase"] == "mixed"]
    rss_total = [p["serve_rss"] + p["work_rss"] for p in points]
    tenth = max(1, len(rss_total) // 10)
    rss_early = statistics.median(rss_total[:tenth]) if rss_total else 0
    rss_late = statistics.median(rss_total[-tenth:]) if rss_total else 0
    growth = (rss_late - rss_early) / rss_early if rss_early else 0.0
    lag = _stats(run["lag"])
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": cores,
            "python": platform_module.python_version(),
            "loadavg_before": run["loadavg_before"],
            "loadavg_after": run["loadavg_after"],
            "loadavg_max_during": max((p["loadavg"] for p in points), default=0.0),
        },
        "config": {
            "store": args.store,
            "rate": args.rate,
            "seconds": args.seconds,
            "baseline_seconds": args.baseline_seconds,
            "server_workers": args.server_workers,
            "numbers": seeded.numbers,
            "history_rows": seeded.rows,
            "cases": len(seeded.cases),
            "token_ttl": args.token_ttl,
            "mix": args.mix,
        },
        "seeding_seconds": {k: round(v, 1) for k, v in seeded.seconds.items()},
        "baseline": floor,
        "kinds": kinds,
        "overall": overall,
        "errors": dict(every_error),
        "throughput": {
            "offered_per_s": args.rate,
            "achieved_per_s": round(ok / elapsed, 1) if elapsed > 0 else 0.0,
            "seconds": round(elapsed, 1),
        },
        "rss": {
            "serve_start": run["rss_start"]["serve_rss"],
            "work_start": run["rss_start"]["work_rss"],
            "serve_end": points[-1]["serve_rss"] if points else 0,
            "work_end": points[-1]["work_rss"] if points else 0,
            "peak_total": max(rss_total, default=0),
            "early_total": rss_early,
            "late_total": rss_late,
            "growth": round(growth, 4),
        },
        "cpu": {
            "generator_seconds": round(cpu["generator"], 2),
            "generator_cores": round(cpu["generator"] / wall, 3),
            "generator_us_per_request": round(cpu["generator"] / overall["requests"] * 1e6),
            "serve_seconds": round(cpu["serve"], 2),
            "serve_us_per_request": round(cpu["serve"] / overall["requests"] * 1e6),
            "work_seconds": round(cpu["work"], 2),
            "postgres_seconds": round(cpu["postgres"], 2),
            "postgres_us_per_request": round(cpu["postgres"] / overall["requests"] * 1e6),
            "postgres_sessions_opened": int(cpu["postgres_sessions"]),
            "machine_busy_cores": round(cpu["machine_busy"] / machine * cores, 2),
            "machine_steal_cores": round(cpu["machine_steal"] / machine * cores, 3),
        },
        "generator_lag_ms": {k: v for k, v in lag.items() if k != "requests"},
        "connections": run["connections"],
        "token_renewals": run["token_renewals"],
        "cases": {
            "answered": run["cases_answered"],
            "fresh_left": run["fresh_cases_left"],
        },
        "numbers_activated": run["activated"],
        "rejected_events": run["rejected_events"],
        "timeline": run["timeline"],
    }
    result["targets"] = targets(result)
    return result


def targets(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    seconds = result["config"]["seconds"]
    short = seconds < TARGETS["seconds"]
    note = f" (a {seconds:g} s run; the target is {TARGETS['seconds']} s)" if short else ""
    achieved = result["throughput"]["achieved_per_s"]
    errors = sum(result["errors"].values())
    growth = result["rss"]["growth"]
    return {
        "throughput": {
            "target": f">= {TARGETS['rate']:,} mixed requests/s for {TARGETS['seconds']} s",
            "measured": f"{achieved:,.0f}/s{note}",
            "met": achieved >= TARGETS["rate"] * 0.99 and not short,
        },
        "p99": {
            "target": f"p99 < {TARGETS['p99_ms']:g} ms",
            "measured": f"{result['overall']['p99_ms']:.1f} ms",
            "met": result["overall"]["p99_ms"] < TARGETS["p99_ms"],
        },
        "errors": {"target": "0 errors", "measured": str(errors), "met": errors == 0},
        "memory": {
            "target": f"flat RSS (last tenth <= first tenth + {TARGETS['rss_growth']:.0%})",
            "measured": f"{growth:+.1%}",
            "met": growth <= TARGETS["rss_growth"],
        },
    }


def _ms(stats: dict[str, Any], key: str) -> str:
    return f"{stats[key]:.1f}" if key in stats else "-"


def render(result: dict[str, Any]) -> str:
    floor = result["baseline"]
    header = (
        "kind", "requests", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors", "p50 x", "p99 x"
    )  # fmt: skip
    rows = [
        (
            "healthz (baseline)",
            f"{floor['requests']:,}",
            _ms(floor, "p50_ms"),
            _ms(floor, "p95_ms"),
            _ms(floor, "p99_ms"),
            _ms(floor, "max_ms"),
            str(sum(floor["errors"].values())),
            "1.00",
            "1.00",
        )
    ]
    for kind, stats in [*result["kinds"].items(), ("all scheduled", result["overall"])]:
        rows.append(
            (
                kind,
                f"{stats['requests']:,}",
                _ms(stats, "p50_ms"),
                _ms(stats, "p95_ms"),
                _ms(stats, "p99_ms"),
                _ms(stats, "max_ms"),
                str(sum(stats["errors"].values())),
                f"{stats['p50_x_floor']:.2f}" if "p50_x_floor" in stats else "-",
                f"{stats['p99_x_floor']:.2f}" if "p99_x_floor" in stats else "-",
            )
        )
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        return "| " + " | ".join(cells) + " |"

    config, machine, cpu, rss = result["config"], result["machine"], result["cpu"], result["rss"]
    errors, lag, mib = result["errors"], result["generator_lag_ms"], 2**20
    lines = [
        f"{config['store']}, {config['server_workers']} server worker(s) + handover work, "
        f"{config['numbers']:,} numbers ({config['history_rows']:,} history rows), "
        f"{config['cases']:,} open cases; {machine['cpus']} cores, Python {machine['python']}",
        f"offered {config['rate']:,g}/s for {config['seconds']:g} s after "
        f"{config['baseline_seconds']:g} s of /healthz at that rate; achieved "
        f"{result['throughput']['achieved_per_s']:,.1f}/s; p50 x, p99 x: over the baseline's",
        "",
        line(header),
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
        *(line(row) for row in rows),
        "",
        "errors by status (baseline, load and tokens): "
        + (", ".join(f"{k}: {v}" for k, v in sorted(errors.items())) or "none"),
        f"RSS serve {rss['serve_start'] / mib:.0f} -> {rss['serve_end'] / mib:.0f} MiB, "
        f"work {rss['work_start'] / mib:.0f} -> {rss['work_end'] / mib:.0f} MiB; "
        f"serve+work first tenth {rss['early_total'] / mib:.0f} MiB, last tenth "
        f"{rss['late_total'] / mib:.0f} MiB ({rss['growth']:+.1%}), peak "
        f"{rss['peak_total'] / mib:.0f} MiB",
        f"CPU: generator {cpu['generator_cores']:.2f} cores "
        f"({cpu['generator_us_per_request']} µs/req), serve {cpu['serve_seconds']:.0f} s "
        f"({cpu['serve_us_per_request']} µs/req), work {cpu['work_seconds']:.0f} s"
        + (
            f", postgres (this database) {cpu['postgres_seconds']:.0f} s, "
            f"{cpu['postgres_sessions_opened']:,} sessions opened"
            if config["store"] == "postgresql"
            else ""
        )
        + f"; machine busy {cpu['machine_busy_cores']:.2f} of {machine['cpus']} cores "
        f"(steal {cpu['machine_steal_cores']:.2f})",
        f"generator lag (dispatch after due): p99 {lag.get('p99_ms', 0):.1f} ms, "
        f"max {lag.get('max_ms', 0):.1f} ms; {result['connections']} connections; "
        f"{result['token_renewals']} token renewals; {result['cases']['answered']:,} cases "
        f"answered; {result['numbers_activated']:,} numbers activated",
        "load average (1 min): before {:.2f}, max during {:.2f}, after {:.2f}".format(
            machine["loadavg_before"][0],
            machine["loadavg_max_during"],
            machine["loadavg_after"][0],
        ),
        "",
        *(
            f"target {t['target']}: {t['measured']} -> {'met' if t['met'] else 'NOT met'}"
            for t in result["targets"].values()
        ),
    ]
    return "\n".join(lines)


# -- the command ---------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="postgresql")
    parser.add_argument("--rate", type=float, default=1000.0, help="scheduled requests/s")
    parser.add_argument("--seconds", type=float, default=600.0, help="of mixed load")
    parser.add_argument("--baseline-seconds", type=float, default=10.0)
    parser.add_argument("--server-workers", type=int, default=1, help="uvicorn processes")
    parser.add_argument("--numbers", type=int, default=100_000)
    parser.add_argument("--cases", type=int, default=3_000, help="open renewal cases")
    parser.add_argument("--token-ttl", type=int, default=60, help="seconds (60-3600)")
    parser.add_argument("--max-connections", type=int, default=256)
    parser.add_argument("--timeout", type=float, default=10.0, help="per request, seconds")
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--mix",
        type=_mix,
        default=MIX,
        help="kind=share,... of check, outcome, events, public (default: %(default)s)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="run the server under cProfile (bench/profiled.py) and write its stats here",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--pg-url", default=stores.PG_URL)
    args = parser.parse_args(argv)
    if args.profile is not None and args.server_workers != 1:
        parser.error("--profile needs --server-workers 1")
    if args.rate <= 0 or args.seconds <= 0 or args.baseline_seconds <= 0:
        parser.error("--rate, --seconds and --baseline-seconds must be positive")
    if args.rate * (args.seconds + args.baseline_seconds) > 10_000_000:
        parser.error("at most 10,000,000 requests in one run")
    return args


def _mix(text: str) -> dict[str, float]:
    shares: dict[str, float] = {}
    for part in text.split(","):
        kind, _, share = part.partition("=")
        if kind.strip() not in MIX:
            raise argparse.ArgumentTypeError(f"{kind!r}: one of {', '.join(MIX)}")
        shares[kind.strip()] = float(share)
    total = sum(shares.values())
    if total <= 0 or min(shares.values()) < 0:
        raise argparse.ArgumentTypeError("shares must be positive")
    return {kind: share / total for kind, share in shares.items()}


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so the servers and the store are cleaned up."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(args: argparse.Namespace) -> dict[str, Any]:
    with (
        _terminate_as_interrupt(),
        tempfile.TemporaryDirectory(prefix="handover-bench-load-") as directory,
        stores.temporary_store(args.store, pg_url=args.pg_url, workdir=Path(directory)) as url,
    ):
        workdir = Path(directory)
        port = harness.free_port()
        base = f"http://{HOST}:{port}"
        env = {
            **os.environ,
            "HANDOVER_DATABASE_URL": url,
            "HANDOVER_PUBLIC_URL": base,
            "HANDOVER_TOKEN_TTL_SECONDS": str(args.token_ttl),
        }
        shown = make_url(url).render_as_string(hide_password=True)
        print(f"store {shown}; the server will be at {base}", file=sys.stderr)
        seeded = seed(url, workdir, args, env)
        print(
            f"seeded {seeded.numbers:,} numbers ({seeded.rows:,} rows), "
            f"{len(seeded.cases):,} open cases: "
            + ", ".join(f"{k} {v:.1f} s" for k, v in seeded.seconds.items()),
            file=sys.stderr,
        )
        serve_args = ["serve", "--host", HOST, "--port", str(port)]
        serve_args += ["--workers", str(args.server_workers)]
        serve_command = [harness.HANDOVER, *serve_args]
        if args.profile is not None:
            profiled = Path(__file__).resolve().parent / "profiled.py"
            serve_command = [sys.executable, str(profiled), str(args.profile), *serve_args]
        logs = workdir / "serve.log", workdir / "work.log"
        try:
            with (
                harness.started(serve_command, env, logs[0]) as serve,
                harness.handover(["work"], env, logs[1]) as work,
            ):
                harness.wait_http(f"{base}/healthz", serve, "handover serve")
                if work.poll() is not None:
                    raise RuntimeError("handover work did not start")
                database = make_url(url).database if args.store == "postgresql" else None
                processes = Processes(serve.pid, work.pid, database, args.pg_url)
                measured = asyncio.run(drive(args, seeded, port, processes))
        except Exception:
            for log in logs:
                if log.exists():
                    tail = log.read_text(errors="replace")[-3000:]
                    print(f"--- the end of {log.name}:\n{tail}", file=sys.stderr)
            raise
        return figures(args, seeded, measured)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = run(args)
    except KeyboardInterrupt:
        print("interrupted; the servers and the store are gone", file=sys.stderr)
        return 130
    result["command"] = " ".join(["bench/load.py", *(sys.argv[1:] if argv is None else argv)])
    print(render(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.profile is not None:
        print(f"\nthe server's profile ({args.profile}), by own time:", file=sys.stderr)
        pstats.Stats(str(args.profile), stream=sys.stderr).sort_stats("tottime").print_stats(25)
    return 1 if sum(result["errors"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
