"""`handover platform ...` and `handover ssf ...`: tenants, streams and dead letters."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from handover import bootstrap
from handover.commands.context import fail, open_store, settings
from handover.commands.tables import print_table
from handover.domain.platforms import Category, Tier
from handover.domain.ssf.streams import StreamError, StreamStatus
from handover.services import access
from handover.services.model import ROLE_SCOPES, Role
from handover.services.ssf import delivery, transmitter

platform_app = typer.Typer(help="Platforms (tenants) and their credentials.", no_args_is_help=True)
ssf_app = typer.Typer(
    help="Shared Signals: streams, delivery state, dead letters, keys.", no_args_is_help=True
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


@platform_app.command("add")
def platform_add(
    platform_id: Annotated[str, typer.Option("--id", help="Short id, e.g. alipay")],
    name: Annotated[str, typer.Option(help="Display name")],
    category: Annotated[Category, typer.Option(help="What kind of service it is")],
    tier: Annotated[Tier, typer.Option(help="Value of its accounts: high, medium, low")],
) -> None:
    """Register a platform and create its client credentials (the secret is shown once)."""
    try:
        platform, credentials = access.register_platform(
            open_store(), platform_id, name, category.value, tier.value
        )
    except ValueError as exc:
        raise fail(str(exc)) from None
    out.print(f"platform:      {platform.id} ({platform.category}, {platform.tier})")
    out.print(f"client_id:     {credentials.client_id}")
    out.print(f"client_secret: {credentials.client_secret}  (shown once; store it now)")
    out.print(f"scopes:        {' '.join(sorted(ROLE_SCOPES[Role.PLATFORM]))}")


@platform_app.command("list")
def platform_list() -> None:
    """Every registered platform."""
    platforms = access.list_platforms(open_store())
    table = Table("id", "name", "category", "tier", "registered")
    for platform in platforms:
        table.add_row(
            platform.id,
            platform.name,
            platform.category,
            platform.tier,
            platform.created_at.isoformat(timespec="seconds"),
        )
    print_table(out, table)


@ssf_app.command("streams")
def ssf_streams(
    platform: Annotated[str | None, typer.Option(help="Only this platform's streams")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Streams with their delivery position and retry state."""
    records = [_stream_record(state) for state in delivery.delivery_states(open_store(), platform)]
    if as_json:
        out.print_json(json.dumps(records))
        return
    table = Table(*records[0].keys()) if records else Table("stream_id")
    for record in records:
        table.add_row(*("" if value is None else str(value) for value in record.values()))
    print_table(out, table)


def _stream_record(state: delivery.DeliveryState) -> dict[str, Any]:
    position = state.position
    return {
        "stream_id": state.stream.stream_id,
        "platform": state.stream.platform_id,
        "method": state.stream.delivery.method.name.lower(),
        "status": state.stream.status.value,
        "behind": state.behind,
        "attempts": position.attempts if position else 0,
        "next_attempt_at": (
            position.next_attempt_at.isoformat() if position and position.next_attempt_at else None
        ),
        "last_error": position.last_error if position else None,
    }


@ssf_app.command("status")
def ssf_status(
    stream_id: str,
    status: Annotated[StreamStatus, typer.Argument(help="enabled, paused or disabled")],
    reason: Annotated[str | None, typer.Option(help="Told to the receiver")] = None,
    wait: Annotated[
        float, typer.Option(help="Seconds to wait for the receiver")
    ] = transmitter.OPERATOR_WAIT_SECONDS,
) -> None:
    """Change a stream's status as Handover's operator. The receiver is told with a
    stream-updated event; a pause or disable waits up to --wait seconds for it to arrive
    (`handover work` delivers it; a poll receiver must poll) before the stream stops."""
    try:
        change = transmitter.operator_set_status(
            open_store(), stream_id, status.value, reason, wait=wait
        )
    except StreamError as exc:
        raise fail(exc.detail) from None
    out.print(f"{change.stream.stream_id}: {change.stream.status}")
    if not change.told:
        err.print(
            "the receiver did not have the stream-updated event in time; it will get it "
            "if the stream is enabled again (GET /ssf/status tells it meanwhile)",
            highlight=False,
        )


@ssf_app.command("dead-letters")
def ssf_dead_letters(
    stream_id: Annotated[str | None, typer.Option("--stream", help="Only this stream")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """SETs given up on after the retry limit or refused by the receiver."""
    letters = delivery.dead_letters(open_store(), stream_id)
    records = [
        {
            "stream_id": letter.stream_id,
            "seq": letter.seq,
            "jti": letter.jti,
            "attempts": letter.attempts,
            "error": letter.error,
            "dead_at": letter.dead_at.isoformat(timespec="seconds"),
            "replay": (
                "delivered"
                if letter.delivered_at
                else "requested"
                if letter.replay_requested_at
                else ""
            ),
        }
        for letter in letters
    ]
    if as_json:
        out.print_json(json.dumps(records))
        return
    table = Table("stream_id", "seq", "jti", "attempts", "error", "dead_at", "replay")
    for record in records:
        table.add_row(*(str(value) for value in record.values()))
    print_table(out, table)


@ssf_app.command("replay")
def ssf_replay(
    stream_id: str,
    seq: Annotated[int | None, typer.Option(help="Only this dead letter (default: all)")] = None,
) -> None:
    """Deliver a stream's dead letters again (the next `handover work` round sends them)."""
    try:
        count = delivery.replay_dead_letters(open_store(), stream_id, seq, datetime.now(UTC))
    except StreamError as exc:
        raise fail(exc.detail) from None
    if count == 0:
        raise fail("no undelivered dead letters matched")
    out.print(f"{count} dead letter(s) queued for replay on {stream_id}")


@ssf_app.command("generate-keys")
def ssf_generate_keys() -> None:
    """Print a new private JWK Set (ES256 + RS256) for HANDOVER_SSF_SIGNING_KEYS."""
    out.print_json(json.dumps(bootstrap.generate_set_keys()))


@ssf_app.command("keys")
def ssf_keys() -> None:
    """The SET signing keys: which sign, which are only published, and whether a retired
    key may be dropped yet (once no stream has SETs outstanding from before the rotation)."""
    signer = bootstrap.set_signer(settings())
    published = signer.jwks()["keys"]
    current = {key.kid for key in signer.current.values()}
    outstanding = sum(state.behind or 0 for state in delivery.delivery_states(open_store()))
    table = Table("kid", "alg", "role")
    for key in published:
        role = "signs" if key["kid"] in current else "published only (retired)"
        table.add_row(key["kid"], key["alg"], role)
    print_table(out, table)
    out.print(
        f"outstanding SETs across all streams: {outstanding} "
        "(a retired key can go once this has reached 0 after the rotation)"
    )
