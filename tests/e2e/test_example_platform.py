"""The example platform (examples/platform_receiver) against the real transmitter.

Handover's API runs under uvicorn on loopback with a push worker; two copies of the example
platform join it, one receiving by push and one by poll, exactly as `./run demo` runs it.
A carrier recycles a number and both platforms must hold the verified SET. With `answer`
set, the example answers each case opened to it, as `./run demo` runs it for demo-pay.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ssf_servers import UvicornThread, WorkerLoop, free_port, wait_until

import granted
from handover.api.app import create_app
from handover.config import Settings
from handover.domain.freeze_policy import FreezePolicy
from handover.domain.ssf.events import CASE_OPENED, IDENTIFIER_RECYCLED, NUMBER_CANCELLED
from handover.services import access, bindings, cases, reporting
from handover.services.ports import UnitOfWorkFactory

# The examples live beside src/, outside the installed package.
sys.path.insert(0, str(Path(__file__).parents[2]))
from examples.platform_receiver.app import Platform
from examples.platform_receiver.app import Settings as PlatformSettings

POLICY = FreezePolicy()

NUMBER = "+8613800138123"
RECYCLE = [
    {"event_id": "a", "number": NUMBER, "event": "activated", "occurred_at": "2023-01-10",
     "subscriber": "first"},
    {"event_id": "c", "number": NUMBER, "event": "cancelled", "occurred_at": "2023-02-10"},
    {"event_id": "r", "number": NUMBER, "event": "released", "occurred_at": "2024-02-10"},
    {"event_id": "b", "number": NUMBER, "event": "activated", "occurred_at": "2025-02-10",
     "subscriber": "second"},
]  # fmt: skip


@pytest.fixture
def transmitter(store_url: str, tmp_path: Path) -> Iterator[tuple[Settings, UnitOfWorkFactory]]:
    port = free_port()
    settings = Settings(
        database_url=store_url,
        environment="test",
        secret_key="example-platform-test-secret-key-0123456789",
        public_url=f"http://127.0.0.1:{port}",
        spool_dir=str(tmp_path),
        poll_wait_seconds=1,
        check_refresh_seconds=0,
    )
    app = create_app(settings)
    server = UvicornThread(app, port).start()
    try:
        yield settings, app.state.uow_factory
    finally:
        server.stop()
        app.state.engine.dispose()


def join(uow_factory: UnitOfWorkFactory, platform_id: str) -> access.IssuedCredentials:
    _, credentials = access.register_platform(
        uow_factory, platform_id, platform_id.title(), "lending", "high"
    )
    return credentials


def example(
    settings: Settings,
    uow_factory: UnitOfWorkFactory,
    mode: str,
    tmp_path: Path,
    answer: str | None = None,
) -> Platform:
    """The example platform, joined as `{mode}-lender`, receiving by `mode` (not started)."""
    credentials = join(uow_factory, f"{mode}-lender")
    return Platform(
        PlatformSettings(
            issuer=settings.public_url,
            client_id=credentials.client_id,
            client_secret=credentials.client_secret,
            mode=mode,  # type: ignore[arg-type]
            db=tmp_path / f"{mode}.db",
            poll_interval=0.1,
            answer=answer,
        ),
        out=lambda line: None,
    )


def received(platform: Platform) -> list[dict[str, Any]]:
    """What the example serves at `GET /received` (push mode has an HTTP server)."""
    if platform.url:
        found: list[dict[str, Any]] = httpx.get(f"{platform.url}/received").json()
        return found
    return platform.events.all()


def test_the_example_platform_receives_by_push_and_by_poll(
    transmitter: tuple[Settings, UnitOfWorkFactory], tmp_path: Path
) -> None:
    settings, uow_factory = transmitter
    access.register_carrier(uow_factory, "cm", "CM", "CN")
    granted.grant(uow_factory, "cm")
    platforms = [example(settings, uow_factory, mode, tmp_path) for mode in ("push", "poll")]
    with WorkerLoop(settings):
        for platform in platforms:
            platform.start()
        try:
            reporting.report_events(uow_factory, "cm", RECYCLE, policy=POLICY)
            for platform in platforms:
                wait_until(
                    lambda p=platform: any(  # type: ignore[misc]
                        row["event_type"] == IDENTIFIER_RECYCLED for row in received(p)
                    ),
                    20,
                    f"the {platform.settings.mode} platform to hold the recycled SET",
                )
            for platform in platforms:
                types = [row["event_type"] for row in received(platform)]
                assert types.count(IDENTIFIER_RECYCLED) == 1
                assert types.count(NUMBER_CANCELLED) == 1
                numbers = {row["phone_number"] for row in received(platform)} - {None}
                assert numbers == {NUMBER}
        finally:
            for platform in platforms:
                platform.stop()
    with uow_factory() as uow:
        assert uow.streams.all() == [], "the example deletes its stream when it stops"


def test_the_example_platform_answers_the_cases_opened_to_it(
    transmitter: tuple[Settings, UnitOfWorkFactory], tmp_path: Path
) -> None:
    """The new owner renews; one platform answers `unbound` by push, the other (by poll)
    answers `migrated`, which an unbind case does not allow: Handover's refusal is kept with
    the event and not retried, and the case stays open."""
    settings, uow_factory = transmitter
    access.register_carrier(uow_factory, "cm", "CM", "CN")
    granted.grant(uow_factory, "cm")
    reporting.report_events(uow_factory, "cm", RECYCLE, policy=POLICY)
    answers = {"push": "unbound", "poll": "migrated"}
    platforms = {}
    for mode, outcome in answers.items():
        platforms[mode] = example(settings, uow_factory, mode, tmp_path, outcome)
        bindings.register_bindings(
            uow_factory,
            f"{mode}-lender",
            [{"number": NUMBER, "account_ref": "a1", "bound_since": "2023-01-20", "tier": "high"}],
        )

    def answered(platform: Platform) -> list[dict[str, Any]]:
        return [row for row in received(platform) if "answer" in row]

    with WorkerLoop(settings):
        for platform in platforms.values():
            platform.start()
        try:
            renewal = cases.request_renewal(
                uow_factory, NUMBER, ["push-lender", "poll-lender"], False
            )
            assert len(renewal.cases) == 2
            for platform in platforms.values():
                wait_until(
                    lambda p=platform: bool(answered(p)),  # type: ignore[misc]
                    20,
                    f"the {platform.settings.mode} platform to answer its case",
                )
            (pushed,) = answered(platforms["push"])
            (polled,) = answered(platforms["poll"])
        finally:
            for platform in platforms.values():
                platform.stop()
    opened = {c.case.platform_id: c.case for c in renewal.cases}
    assert pushed["event_type"] == CASE_OPENED
    assert pushed["answer"]["case_id"] == opened["push-lender"].id
    assert (pushed["answer"]["outcome"], pushed["answer"]["status"]) == ("unbound", 200)
    assert polled["answer"]["case_id"] == opened["poll-lender"].id
    assert (polled["answer"]["outcome"], polled["answer"]["status"]) == ("migrated", 422)
    assert "unbind case ends in one of" in polled["answer"]["detail"]

    progress = cases.renewal_progress(uow_factory, NUMBER, renewal.renewal.id)
    states = {c.case.platform_id: (c.case.state, c.case.outcome) for c in progress.cases}
    assert states == {"push-lender": ("answered", "unbound"), "poll-lender": ("open", None)}
    with uow_factory() as uow:
        left = {b.platform_id for b in uow.bindings.for_number(NUMBER)}
    assert left == {"poll-lender"}, "the unbound answer resolved the push platform's binding"
