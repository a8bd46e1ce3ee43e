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

__all__ = ["WEAK", "concepts", "synonym_groups"]

_FILE = Path(__file__).resolve().parent.parent / "data" / "leak" / "paraphrase.yaml"
_GENERIC = frozenset({
    "yes", "not", "just", "about", "like", "also", "been", "have", "feel", "felt", "get", "got", "any",
    "thing", "things", "really", "quite", "well", "then", "now", "some", "much", "more", "most", "since",
    "still", "even", "over", "look", "looking", "through", "way", "lot", "everything", "anything",
    "something", "little", "always", "sometimes", "every", "each", "other", "same", "didn", "don", "doesn",
    "think", "thought", "after", "went", "go", "going", "come", "came", "time", "times", "bit", "know",
    "nothing", "nobody", "out", "all", "hard", "comes", "goes", "never", "take", "haven", "getting", "gett",
    "when", "life", "say", "said", "tell", "told", "sure", "maybe", "probably", "exactly", "honest", "doctor", "but",
})


#: Concepts that most answers about an illness share (time words, "worse", "pain"): a paraphrase
#: must share at least two others with a fact to count as telling it.
WEAK = frozenset({
    "day", "week", "month", "year", "hour", "ago", "start", "worse", "better", "pain", "today", "yesterday",
    "morning", "night", "evening", "right", "left", "sudden", "gradual", "twice", "three", "last", "half",
    *(str(n) for n in range(11)),
})


@lru_cache(maxsize=1)
def _load() -> tuple[dict[str, str], tuple[tuple[re.Pattern[str], str], ...]]:
    data = yaml.safe_load(_FILE.read_text(encoding="utf-8")) or {}
    words: dict[str, str] = {}
    phrases: list[tuple[re.Pattern[str], str]] = []
    for group in data.get("groups", []):
        head = _stem(fold(str(group[0])))
        for entry in group:
            form = fold(str(entry))
            if " " in form or "-" in form:
                phrases.append((re.compile(rf"\b{re.escape(form)}\b"), f" {head} "))
            else:
                words.setdefault(_stem(form), head)
    return words, tuple(phrases)


def synonym_groups() -> dict[str, str]:
    """Word -> its group's head word (the first group a word appears in wins)."""
    return _load()[0]


#: Words ending like an inflection that are not one ("evening" is not "even" + "ing").
_KEEP = frozenset({"evening", "morning", "nothing", "something", "anything", "everything", "ring", "thing",
                   "spring", "string", "ceiling", "wedding", "building", "bed", "red", "shed", "ankles", "eyes"})


def _stem(word: str) -> str:
    if word in _KEEP:
        return word[:-1] if word.endswith("s") else word
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
    folded = fold(text)
    for pattern, head in _load()[1]:
        folded = pattern.sub(head, folded)
    # "fifty-two" / "fifty two" -> 52 (tens and a unit said as two words).
    folded = re.sub(r"\b(twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)[\s-]+(one|two|three|four|five|six|seven|eight|nine)\b",
                    lambda m: f" {numbers[m.group(1)].replace('_', '')}{numbers[m.group(2)]} ", folded)
    out.update(re.findall(r"\d+", folded))
    for word in re.findall(r"[a-z]+", folded):
        if word in numbers and numbers[word].strip("_").isdigit() and word not in ("oh", "point", "dot"):
            out.add(numbers[word].replace("_", "0"))
            continue
        stem = _stem(word)
        group = groups.get(stem) or groups.get(word)
        if group is not None:
            out.add(group)
        elif word not in STOPWORDS and word not in _GENERIC and len(word) >= 3:
            out.add(stem)
    return frozenset(out)
