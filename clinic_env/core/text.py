"""Text helpers: the transcript charset and sanitising strings into it."""

from __future__ import annotations

import re

__all__ = ["CHARSET", "sanitise"]

_EXTRA = "–—‘’“”…•×±≤≥→←↑↓µ°·€"
#: Characters a transcript may hold: printable ASCII, newline, Latin-1 letters and a few symbols.
CHARSET = frozenset(
    [chr(c) for c in range(0x20, 0x7F)] + ["\n"] + [chr(c) for c in range(0xA0, 0x250)] + list(_EXTRA)
)


_BAD_ASCII = re.compile(r"[^\x20-\x7e\n]")


def sanitise(text: str) -> str:
    """Replace characters outside :data:`CHARSET` with ``?`` (ASCII text passes through untouched)."""
    if text.isascii() and not _BAD_ASCII.search(text):
        return text
    return "".join(ch if ch in CHARSET else ("\n" if ch == "\r" else "?") for ch in text)
