"""The words of every message to a person, in English and Simplified Chinese.

A template is a pair of format strings filled from the message's `params`; the sender
renders just before sending, so the outbox keeps data, not prose.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TEXTS: dict[str, dict[str, str]] = {}


def render(template: str, language: str, params: Mapping[str, Any]) -> str:
    """The message text; English when the language has no translation."""
    texts = TEXTS.get(template)
    if texts is None:
        raise KeyError(f"no message template {template!r}")
    return (texts.get(language) or texts["en"]).format(**params)
