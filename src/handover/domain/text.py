"""What text may hold when it enters: no control character a store or a reader trips on.

PostgreSQL refuses NUL in text and no UTF-8 encoder takes a lone surrogate; the other C0
controls and DEL have no place in an id, a name or a reason either. Free text may keep
tab, newline and carriage return; a single-line value (an id, a path segment, a query
value, a command-line argument) may not.
"""

from __future__ import annotations

import re

#: Refused in free text: C0 controls but tab, newline and carriage return; DEL; lone
#: surrogates.
_TEXT_REFUSED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
#: Refused in a single-line value: every C0 control, DEL, lone surrogates.
_LINE_REFUSED = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


def text_fault(value: str, *, line: bool = False) -> str | None:
    """Why `value` cannot enter (None when it can); `line` for a single-line value."""
    found = (_LINE_REFUSED if line else _TEXT_REFUSED).search(value)
    if found is not None:
        return f"contains the control character U+{ord(found.group()):04X}"
    return None


def printable(value: str) -> str:
    """`value` with every refused character replaced by U+FFFD, to quote it safely."""
    return _LINE_REFUSED.sub("\ufffd", value)
