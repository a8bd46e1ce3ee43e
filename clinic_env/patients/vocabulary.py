"""Lay vocabulary by health literacy: a patient of low or medium literacy says "blood in my wee"
where the case file says "haematuria".

The word list is data (``data/knowledge/lay_terms.yaml``). :func:`lay_text` rewrites a text for a
literacy level; :func:`jargon` lists the clinical words a text uses that a patient of that level
would not (a persona-consistency signal for LLM patients). Both are deterministic and cached:
they run on every answer of the structured patient.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

__all__ = ["LITERACY_LEVELS", "Vocabulary", "jargon", "lay_text", "load_vocabulary"]

LITERACY_LEVELS = ("low", "medium", "high")
_FILE = Path(__file__).resolve().parent.parent / "data" / "knowledge" / "lay_terms.yaml"


@dataclass(frozen=True)
class Vocabulary:
    """Clinical word forms and their lay replacements per literacy level.

    Attributes:
        replacements: ``{"low": {form: phrase}, "medium": {form: phrase}}`` (forms lower-case).
        patterns: One compiled alternation of the forms replaced at each level (longest first).
    """

    replacements: dict[str, dict[str, str]]
    patterns: dict[str, re.Pattern[str] | None]

    def rewrite(self, text: str, literacy: str) -> str:
        """``text`` in the words of a patient of ``literacy`` (``high`` keeps every word)."""
        pattern = self.patterns.get(literacy)
        if pattern is None:
            return text
        table = self.replacements[literacy]

        def swap(m: re.Match[str]) -> str:
            word = m.group(0)
            new = table[word.lower()]
            # Keep sentence case: "Haematuria..." -> "Blood in my wee..."; keep acronyms as written.
            if word[0].isupper() and not new[:2].isupper():
                new = new[0].upper() + new[1:]
            return new

        return pattern.sub(swap, text)

    def jargon(self, text: str, literacy: str) -> list[str]:
        """The clinical forms in ``text`` that a patient of ``literacy`` would put in lay words."""
        pattern = self.patterns.get(literacy)
        return [] if pattern is None else [m.group(0) for m in pattern.finditer(text)]


def _compile(forms: list[str]) -> re.Pattern[str] | None:
    if not forms:
        return None
    ordered = sorted(set(forms), key=len, reverse=True)
    alternation = "|".join(re.escape(f) for f in ordered)
    return re.compile(rf"(?<![\w-])(?:{alternation})(?![\w-])", re.IGNORECASE)


@lru_cache(maxsize=4)
def load_vocabulary(path: str | None = None) -> Vocabulary:
    """Read a lay-terms file (default: the shipped ``lay_terms.yaml``)."""
    data = yaml.safe_load(Path(path or _FILE).read_text(encoding="utf-8"))
    levels: dict[str, dict[str, str]] = {"low": {}, "medium": {}}
    for i, entry in enumerate(data.get("terms", [])):
        forms = entry.get("forms")
        if not forms or not isinstance(forms, list):
            raise ValueError(f"{path or _FILE}: terms[{i}].forms must be a non-empty list, got {forms!r}")
        medium, low = entry.get("medium"), entry.get("low") or entry.get("medium")
        for form in forms:
            key = str(form).lower()
            if medium:
                levels["medium"][key] = str(medium)
            if low:
                levels["low"][key] = str(low)
    patterns = {level: _compile(list(table)) for level, table in levels.items()}
    return Vocabulary(levels, patterns)


@lru_cache(maxsize=8192)
def lay_text(text: str, literacy: str) -> str:
    """``text`` rewritten in the lay words of a patient of ``literacy`` (cached)."""
    if literacy == "high" or not text:
        return text
    return load_vocabulary().rewrite(text, literacy)


def jargon(text: str, literacy: str) -> list[str]:
    """Clinical words in ``text`` that a patient of ``literacy`` would not use."""
    return load_vocabulary().jargon(text, literacy)
