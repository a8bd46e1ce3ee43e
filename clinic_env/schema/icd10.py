"""ICD-10 code helpers: syntax, categories, blocks and pattern matching (pure functions)."""

from __future__ import annotations

import re

__all__ = [
    "BLOCK_RE",
    "CODE_RE",
    "category",
    "in_block",
    "matches",
    "normalise_code",
]

CODE_RE = re.compile(r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$")
BLOCK_RE = re.compile(r"^[A-Z][0-9]{2}-[A-Z][0-9]{2}$")


def normalise_code(code: str) -> str:
    """Upper-case a code, drop spaces and insert the dot after the category (``i210`` -> ``I21.0``)."""
    text = code.strip().upper().replace(" ", "")
    if len(text) > 3 and "." not in text:
        text = f"{text[:3]}.{text[3:]}"
    return text


def category(code: str) -> str:
    """The 3-character category of a code (``I21.0`` -> ``I21``)."""
    return code[:3]


def _key(cat: str) -> tuple[str, int]:
    # Categories such as C7A exist in ICD-10-CM only; treat a trailing letter as 99 so that the
    # comparison stays total.
    digits = cat[1:3]
    return cat[0], int(digits) if digits.isdigit() else int(digits[0]) * 10 + 9


def in_block(code: str, block: str) -> bool:
    """Whether ``code``'s category lies inside an ICD-10 block such as ``I20-I25``."""
    start, end = block.split("-")
    return _key(start) <= _key(category(code)) <= _key(end)


def matches(code: str, pattern: str) -> bool:
    """Match a code against a pattern: ``I21``/``I21.*`` (whole category) or an exact code."""
    if pattern.endswith(".*"):
        return category(code) == pattern[:-2]
    if len(pattern) == 3:
        return category(code) == pattern
    return code == pattern
