"""Concepts of a text, for telling when a reply repeats a case fact in other words.

A leaky patient paraphrases ("my father" for "my dad", "a pack daily" for "twenty a day"). The
guard compares *concepts*: content words lightly stemmed (plurals, -ing, -ed, -ly), numbers said
in words turned to digits, and words of one lay-synonym group (``data/leak/paraphrase.yaml``)
mapped to the group's first word.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import yaml

from clinic_env.patients.encodings import tables
from clinic_env.patients.normalise import STOPWORDS, fold

__all__ = ["concepts", "synonym_groups"]

_FILE = Path(__file__).resolve().parent.parent / "data" / "leak" / "paraphrase.yaml"
_GENERIC = frozenset("""yes not just about like also been have feel felt get got any thing things really
    quite well then now some much more most since still even back over""".split())


@lru_cache(maxsize=1)
def synonym_groups() -> dict[str, str]:
    """Word -> its group's head word (the first group a word appears in wins)."""
    data = yaml.safe_load(_FILE.read_text(encoding="utf-8")) or {}
    out: dict[str, str] = {}
    for group in data.get("groups", []):
        words = [_stem(fold(str(w))) for w in group]
        for w in words:
            out.setdefault(w, words[0])
    return out


def _stem(word: str) -> str:
    for suffix in ("ingly", "edly", "ing", "ed", "ly", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix) and not word.endswith(("ss", "us", "is")):
            return word[: -len(suffix)]
    return word


@lru_cache(maxsize=8192)
def concepts(text: str) -> frozenset[str]:
    """The concepts of ``text`` (see the module docstring)."""
    numbers = tables()["numbers"]
    groups = synonym_groups()
    out: set[str] = set(re.findall(r"\d+", text))
    for word in re.findall(r"[a-z]+", fold(text)):
        if word in numbers and numbers[word].strip("_").isdigit() and word not in ("oh", "point", "dot"):
            out.add(numbers[word].replace("_", "0"))
            continue
        if word in STOPWORDS or word in _GENERIC or len(word) < 3:
            continue
        stem = _stem(word)
        out.add(groups.get(stem, groups.get(word, stem)))
    return frozenset(out)
