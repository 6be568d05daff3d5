"""Request bodies past their route's limit get 413 problem details, declared or streamed."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from handover.api.limits import BATCH_BYTES, BodyLimits
from handover.config import Settings

MIB = 1024 * 1024


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    """`total` bytes of nested JSON arrays, sent without a Content-Length (chunked)."""
    sent = 0
    while sent < total:
        chunk = b"[" * min(size, total - sent)
        sent += len(chunk)
        yield chunk


def _is_413(response: object) -> None:
    assert response.status_code == 413, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    problem = response.json()  # type: ignore[attr-defined]
    assert problem["type"].endswith("/body-too-large")
    assert problem["status"] == 413


def test_a_declared_body_past_the_default_limit_is_refused_unread(http: TestClient) -> None:
    response = http.post(
        "/v1/receipts/verify",
        content=b"[" * (MIB + 1),
        headers={"content-type": "application/json"},
    )
    _is_413(response)
    assert "1,048,576 bytes" in response.json()["detail"]


def test_a_streamed_body_is_cut_off_where_it_passes_the_limit(http: TestClient) -> None:
    response = http.post(
        "/v1/certificates/verify",
        content=_chunks(3 * MIB),
        headers={"content-type": "application/json"},
    )
    _is_413(response)


def test_a_body_within_the_limit_reaches_the_route(http: TestClient) -> None:
    response = http.post("/v1/receipts/verify", json={"receipt": "x" * 1000})
    assert response.status_code != 413


def test_a_batch_route_takes_more_than_the_default(
    http: TestClient, cm: object, as_client: Callable[..., dict[str, str]]
) -> None:
    """10,000 carrier events are about 1.5 MB: past the default, within the batch limit."""
    event = {
        "event_id": "e",
        "number": "+8613800138000",
        "event": "activated",
        "occurred_at": "2024-01-01T00:00:00Z",
        "subscriber": "s" * 100,
    }
    events = [{**event, "event_id": f"e{i}"} for i in range(10_000)]
    response = http.post("/v1/carrier/events", json={"events": events}, headers=as_client(cm))
    assert response.status_code == 200, response.text[:500]


def test_the_default_limit_is_a_setting(settings: Settings) -> None:
    from handover.api.app import create_app

    app = create_app(settings.model_copy(update={"max_body_bytes": 100}))
    try:
        with TestClient(app) as client:
            _is_413(client.post("/v1/receipts/verify", content=b"{" + b" " * 200 + b"}"))
            assert client.post("/v1/receipts/verify", content=b"{}").status_code != 413
    finally:
        app.state.engine.dispose()


@pytest.mark.parametrize(
    ("method", "path", "limit"),
    [
        ("POST", "/v1/check", 64 * MIB),
        ("POST", "/v1/carrier/events", BATCH_BYTES),
        ("POST", "/ssf/poll/abc", 4 * MIB),
        ("GET", "/ssf/poll/abc", 7),
        ("POST", "/v1/receipts/verify", 7),
        ("POST", "/v1/check/more", 7),
    ],
)
def test_limits_are_found_per_route(method: str, path: str, limit: int) -> None:
    limits = BodyLimits(
        7,
        {
            ("POST", "/v1/check"): 64 * MIB,
            ("POST", "/v1/carrier/events"): BATCH_BYTES,
            ("POST", "/ssf/poll/"): 4 * MIB,
        },
    )
    assert limits.of(method, path) == limit
