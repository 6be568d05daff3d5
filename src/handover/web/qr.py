"""QR codes as inline SVG (segno: pure Python, no dependencies)."""

from __future__ import annotations

import segno
from markupsafe import Markup


def qr_svg(text: str, title: str = "") -> Markup:
    """An `<svg>` QR code of `text` at error correction L (the most data per module:
    a certificate's verify URL stays small enough to scan from paper)."""
    code = segno.make(text, error="l", micro=False)
    svg: str = code.svg_inline(scale=1, border=4, title=title or None, omitsize=True)
    return Markup(svg)


def qr_version(text: str) -> int:
    """The QR version (size) `qr_svg` uses for `text`: 1 is 21 modules a side, 40 is 177."""
    return int(segno.make(text, error="l", micro=False).version)
