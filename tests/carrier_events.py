"""Carrier reports as tests write them (the API's and the services' item shape)."""

from __future__ import annotations


def activation(event_id: str, number: str) -> dict[str, str | None]:
    """`number` activated for subscriber `s1` on 2024-01-01."""
    return {
        "event_id": event_id,
        "number": number,
        "event": "activated",
        "occurred_at": "2024-01-01",
        "subscriber": "s1",
    }
