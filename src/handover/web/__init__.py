"""Server-rendered pages: Jinja2 templates, the page language, and the words in en/zh-CN.

The language is `?lang=en|zh-CN`, else the first supported one in Accept-Language, else
English. Templates get `lang`, `t` (the words in that language) and `say(lang, key)` for
pages that print both languages.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from handover.domain.message_texts import LANGUAGES
from handover.web.catalog import DEFAULT_LANGUAGE, Words, say

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def _supported(tag: str) -> str | None:
    tag = tag.strip().lower()
    for language in LANGUAGES:
        if tag == language.lower() or tag.split("-")[0] == language.split("-")[0].lower():
            return language
    return None


def language(request: Request) -> str:
    """The page's language: `?lang`, then Accept-Language (by q-value), then English."""
    asked = _supported(request.query_params.get("lang", ""))
    if asked:
        return asked
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(request.headers.get("accept-language", "").split(",")):
        tag, _, params = item.partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((-quality, position, tag))
    for quality, _, tag in sorted(ranked):
        found = _supported(tag)
        if found and quality < 0:
            return found
    return DEFAULT_LANGUAGE


def render(
    request: Request, name: str, context: Mapping[str, Any], status_code: int = 200
) -> HTMLResponse:
    """Render `name` in the request's language."""
    lang = language(request)
    other = next(code for code in LANGUAGES if code != lang)
    switch = urlencode({**request.query_params, "lang": other})
    page = {"lang": lang, "t": Words(lang), "say": say, "other_lang_query": switch, **context}
    return templates.TemplateResponse(request, name, page, status_code=status_code)
