"""Negation and assertion of findings in free text (NegEx / ConText family, rules as data).

The rules live in ``clinic_env/data/negation/context_rules.yaml`` (pre- and post-negation
triggers, pseudo-triggers, termination terms, scope, experiencer terms; see the citations there:
Chapman et al. 2001, Harkema et al. 2009). The algorithm:

1. Lower-case the sentence, rewrite fused negations (``non-smoker`` -> ``no smoker``) and split it
   into word tokens; a trigger matches whole words only, so the ``no`` in ``nonspecific`` never does.
2. Mark pseudo-triggers first (``free mediastinal air``, ``gram negative``, ``cannot rule out``):
   their words trigger nothing.
3. A pre-negation trigger negates the words after it until a termination term, a clause break or
   the window ends; a post-negation trigger negates the words before it likewise.

:func:`negated_words` gives the negated token positions; :func:`is_negated` answers for one target
phrase; :func:`assertion` returns ``"negated"``, ``"family"`` or ``"affirmed"``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml

__all__ = ["Assertion", "ContextRules", "assertion", "is_negated", "load_rules", "negated_words", "tokenise"]

_RULES = Path(__file__).resolve().parent.parent / "data" / "negation" / "context_rules.yaml"
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[;.:?!]")
#: Marks the end of a fused negation's one-word scope ("no smoker" from "non-smoker").
_ONE = "xonex"
Assertion = Literal["affirmed", "negated", "family"]


@dataclass(frozen=True)
class ContextRules:
    """The rule set, each phrase as a tuple of tokens."""

    pre: tuple[tuple[str, ...], ...]
    post: tuple[tuple[str, ...], ...]
    pseudo: tuple[tuple[str, ...], ...]
    termination: tuple[tuple[str, ...], ...]
    family: tuple[tuple[str, ...], ...]
    fused: tuple[tuple[str, str], ...]
    pre_window: int
    post_window: int
    breaks: frozenset[str]


def tokenise(text: str) -> list[str]:
    """Lower-case word tokens and clause-break punctuation (``-`` and ``/`` split words)."""
    return _TOKEN.findall(text.lower().replace("\u2019", "'"))


def _phrases(values: object, field: str) -> tuple[tuple[str, ...], ...]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError(f"{_RULES}: {field} must be a list of phrases")
    # Longest first, so "no history of" wins over "no".
    return tuple(sorted({tuple(tokenise(v)) for v in values if tokenise(v)}, key=len, reverse=True))


@lru_cache(maxsize=1)
def load_rules() -> ContextRules:
    """The bundled rule set (``context_rules.yaml``)."""
    data = yaml.safe_load(_RULES.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{_RULES}: expected a mapping")
    scope = data.get("scope") or {}
    fused = data.get("fused_negation") or {}
    return ContextRules(
        pre=_phrases(data.get("pre_negation"), "pre_negation"),
        post=_phrases(data.get("post_negation"), "post_negation"),
        pseudo=_phrases(data.get("pseudo_negation"), "pseudo_negation"),
        termination=_phrases(data.get("termination"), "termination"),
        family=_phrases(data.get("experiencer_family"), "experiencer_family"),
        fused=tuple(sorted(((str(k).lower(), str(v).lower()) for k, v in fused.items()), key=lambda kv: -len(kv[0]))),
        pre_window=int(scope.get("pre_window_words", 12)),
        post_window=int(scope.get("post_window_words", 6)),
        breaks=frozenset(scope.get("clause_breaks") or [";", "."]),
    )


def _prepare(text: str, rules: ContextRules) -> list[str]:
    low = text.lower()
    for fused, plain in rules.fused:
        # The fused word's negation covers that word only ("non-smoker, drinks alcohol socially").
        low = re.sub(rf"(?<![a-z]){re.escape(fused)}(?![a-z])", plain.replace(" ", f" {_ONE} ", 1), low)
    return tokenise(low)


def _match_at(tokens: list[str], i: int, phrases: tuple[tuple[str, ...], ...]) -> int:
    """Length of the longest phrase starting at ``i`` (0 if none)."""
    for phrase in phrases:
        if tuple(tokens[i : i + len(phrase)]) == phrase:
            return len(phrase)
    return 0


def negated_words(text: str, rules: ContextRules | None = None) -> tuple[list[str], set[int]]:
    """The sentence's tokens and the positions of the negated ones."""
    rules = rules or load_rules()
    tokens = _prepare(text, rules)
    kind = [""] * len(tokens)  # "pseudo", "pre", "post", "term" or "" for each token
    i = 0
    while i < len(tokens):
        for label, phrases in (("pseudo", rules.pseudo), ("pre", rules.pre), ("post", rules.post),
                               ("term", rules.termination)):
            n = _match_at(tokens, i, phrases)
            if n:
                kind[i : i + n] = [label] * n
                kind[i] = f"{label}!"  # the start of the phrase
                i += n
                break
        else:
            i += 1
    negated: set[int] = set()
    for i, k in enumerate(kind):
        if k == "pre!":
            j = i + 1
            while j < len(tokens) and kind[j] == "pre":
                j += 1
            end = j
            if j + 1 < len(tokens) and tokens[j] == _ONE:  # a fused negation: the next word only
                negated.add(j + 1)
                continue
            while end < len(tokens) and end - j < rules.pre_window and tokens[end] not in rules.breaks \
                    and not kind[end].startswith("term") and not kind[end].startswith("post"):
                if kind[end] == "" or kind[end].startswith("pseudo"):
                    negated.add(end)
                end += 1
            if end == j:  # nothing follows ("fever: absent"): the trigger looks backwards
                k = "post!"
        if k == "post!":
            j = i - 1
            while j >= 0 and i - j <= rules.post_window and tokens[j] not in rules.breaks \
                    and not kind[j].startswith("term") and not kind[j].startswith("pre"):
                if kind[j] == "" or kind[j].startswith("pseudo"):
                    negated.add(j)
                j -= 1
    return tokens, negated


def _find(tokens: list[str], phrase: list[str]) -> int | None:
    n = len(phrase)
    for i in range(len(tokens) - n + 1):
        if all(t == p or (len(p) >= 4 and t.startswith(p)) for t, p in zip(tokens[i : i + n], phrase, strict=True)):
            return i
    return None


def _is_trigger(tokens: list[str], i: int) -> bool:
    rules = load_rules()
    return any(tuple(tokens[j : j + len(p)]) == p and j <= i < j + len(p)
               for p in (*rules.pre, *rules.post) for j in range(max(0, i - len(p) + 1), i + 1))


def is_negated(sentence: str, target: str) -> bool:
    """Whether ``target`` (a word or phrase in ``sentence``) is negated there.

    A target not found verbatim is looked up by its first word's stem; a target not found at all is
    judged by whether the sentence negates anything before its last clause break.
    """
    tokens, negated = negated_words(sentence)
    phrase = _prepare(target, load_rules())  # "non-smoker" as a target reads as the sentence does
    if not phrase:
        return False
    at = _find(tokens, phrase)
    if at is None:
        stem = phrase[0][: max(4, len(phrase[0]) - 3)]
        at = next((i for i, t in enumerate(tokens) if t.startswith(stem) or stem in t), None)
    if at is None:  # the catalogue's word is not the source's ("smoking" for "non-smoker"): the sentence's majority
        words = [i for i, t in enumerate(tokens) if t.isalnum() and t != _ONE and not _is_trigger(tokens, i)]
        return bool(words) and 2 * sum(i in negated for i in words) > len(words)
    return any(at + k in negated for k in range(len(phrase)))


def assertion(sentence: str, target: str) -> Assertion:
    """``"negated"``, ``"family"`` (the experiencer is a relative) or ``"affirmed"``."""
    if is_negated(sentence, target):
        return "negated"
    tokens = _prepare(sentence, load_rules())
    if any(_match_at(tokens, i, load_rules().family) for i in range(len(tokens))):
        return "family"
    return "affirmed"
