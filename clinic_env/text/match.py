"""Match free text to catalogue items: alias phrases first, then a word-overlap fallback.

Every item gets a set of alias phrases derived from the catalogue itself (id, label, the label
without its parenthesis, the parts inside it, abbreviations such as ``ECG`` or ``HbA1c``, the
history items' ``synonyms``) plus the extra abbreviations in ``aliases.yaml`` for bundled ids.
A phrase that two items would share is dropped (it names neither). Text and phrases go through
the same normaliser (lower case, UK/US spellings folded, plurals trimmed), and the text is
scanned for the longest phrases, left to right, so "order troponin and an ECG" finds
``lab.troponin`` and ``ecg.12lead`` in that order. Pure data structures; no catalogue facts in code.
"""

from __future__ import annotations

import difflib
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import yaml

from clinic_env.schema.catalogue import Catalogue

__all__ = ["CatalogueMatcher", "Match", "normalise", "tokens"]

_WORD = re.compile(r"[a-z0-9]+")
# UK -> US foldings applied to each token, so "haemoptysis" and "hemoptysis" meet.
_FOLD = (("oea", "ea"), ("aem", "em"), ("oed", "ed"), ("oesoph", "esoph"), ("paed", "ped"),
         ("haem", "hem"), ("isation", "ization"), ("yse", "yze"))
_STOP = frozenset(
    ["a", "an", "and", "any", "are", "as", "at", "be", "been", "by", "can", "did", "do", "does", "for", "from", "had", "has", "have", "how", "i", "if", "in", "is", "it", "its", "me", "my", "of", "on", "or", "please", "so", "some", "that", "the", "their", "them", "then", "there", "this", "to", "was", "we", "were", "what", "when", "where", "which", "who", "will", "with", "would", "you", "your", "ever", "about", "also", "like", "get", "got"])
_ACRONYM = re.compile(r"\b([A-Za-z]*[A-Z][A-Za-z0-9]*[A-Z0-9][A-Za-z0-9]*)\b")
_MAX_WORDS = 8


def _fold(tok: str) -> str:
    for uk, us in _FOLD:
        if uk in tok:
            tok = tok.replace(uk, us)
    if len(tok) > 4 and tok.endswith("ies"):
        return tok[:-3] + "y"
    if len(tok) > 3 and tok.endswith("s") and not tok.endswith(("ss", "us", "is")):
        return tok[:-1]
    return tok


@lru_cache(maxsize=65536)
def _fold_cached(tok: str) -> str:
    return _fold(tok)


def tokens(text: str) -> list[str]:
    """Normalised word tokens of ``text`` (lower case, spellings folded, plurals trimmed)."""
    return [_fold_cached(t) for t in _WORD.findall(text.lower().replace("x-ray", "xray"))]


def normalise(text: str) -> str:
    """The normalised phrase of ``text`` (its tokens joined by single spaces)."""
    return " ".join(tokens(text))


@dataclass(frozen=True)
class Match:
    """An item found in a text: its kind (``history``, ``test``, ``diagnosis``), id, the token
    position of the phrase that named it (-1 for an ICD-10 code written out) and that phrase."""

    kind: str
    item: str
    start: int
    phrase: str
    strength: int = 2
    """2: a curated phrase (aliases.yaml, the catalogue's synonyms, the id); 1: one derived from the
    label or id words; 0: a phrase shared by several items, resolved to the most generic one."""


def _label_phrases(label: str) -> set[str]:
    out = {label}
    base = re.sub(r"\s*\(.*?\)", "", label).strip()
    if base:
        out.add(base)
    for inner in re.findall(r"\((.*?)\)", label):
        if inner.lower().startswith(("including", "e.g", "with", "for", "reviewed", "two", "rapid", "09")):
            continue
        for part in re.split(r",|/| and | or ", inner):
            if len(part.strip()) >= 2:
                out.add(part.strip())
    out.update(a for a in _ACRONYM.findall(label) if len(a) >= 2)
    # "Pulmonary embolism without acute cor pulmonale" is also named "pulmonary embolism".
    head = re.split(r",| without | with | due to | of unspecified", base or label)[0].strip()
    if len(head) >= 4:
        out.add(head)
    return out


def _id_phrases(item_id: str) -> set[str]:
    parts = item_id.split(".")[1:]
    return {" ".join(parts).replace("_", " "), parts[-1].replace("_", " ")}


@lru_cache(maxsize=1)
def _extra_aliases() -> dict[str, dict[str, list[str]]]:
    data = yaml.safe_load(resources.files("clinic_env.text").joinpath("aliases.yaml").read_text(encoding="utf-8"))
    return {k: dict(v or {}) for k, v in (data or {}).items() if k in ("history", "tests", "diagnoses")}


@dataclass
class _Index:
    phrases: dict[tuple[str, ...], str] = field(default_factory=dict)
    strength: dict[tuple[str, ...], int] = field(default_factory=dict)
    ambiguous: dict[tuple[str, ...], tuple[str, ...]] = field(default_factory=dict)
    docs: dict[str, Counter[str]] = field(default_factory=dict)
    idf: dict[str, float] = field(default_factory=dict)


def _build(entries: dict[str, tuple[set[str], set[str]]], extra_words: dict[str, str]) -> _Index:
    """``entries``: id -> (strong phrases, weak phrases); a weak phrase loses to a strong one and
    is dropped when two items share it; a strong one shared by two items is dropped too."""
    owner: dict[tuple[str, ...], str] = {}
    strength: dict[tuple[str, ...], int] = {}
    clash: set[tuple[str, ...]] = set()
    for item, (strong, weak) in entries.items():
        for level, phrases in ((2, strong), (1, weak)):
            for phrase in phrases:
                key = tuple(tokens(phrase))
                if not key or len(key) > _MAX_WORDS or all(t in _STOP for t in key):
                    continue
                if key in owner and owner[key] != item:
                    if strength[key] == level:
                        clash.add(key)
                    elif strength[key] < level:
                        owner[key], strength[key] = item, level
                        clash.discard(key)
                    continue
                owner[key], strength[key] = item, max(level, strength.get(key, 0))
    index = _Index({k: v for k, v in owner.items() if k not in clash}, {k: strength[k] for k in owner if k not in clash})
    # A weak phrase shared by several items ("pulmonary embolism" heads two labels) goes to the
    # most generic of them: the one with the shortest label; ties by id order.
    for key in clash:
        if strength[key] == 1:
            holders = [i for i, (strong, weak) in entries.items()
                       if any(tuple(tokens(p)) == key for p in weak)]
            holders.sort(key=lambda i: (max(len(tokens(p)) for p in entries[i][1]), i))
            if holders:
                index.ambiguous[key] = tuple(holders)
    for item, (strong, weak) in entries.items():
        words = [t for p in (*strong, *weak, extra_words.get(item, "")) for t in tokens(p) if t not in _STOP]
        index.docs[item] = Counter(words)
    df = Counter(t for doc in index.docs.values() for t in doc)
    n = max(len(index.docs), 1)
    index.idf = {t: math.log((n + 1) / (c + 0.5)) for t, c in df.items()}
    return index


class CatalogueMatcher:
    """Finds history items, tests and diagnoses named in free text (see the module docstring).

    Args:
        catalogue: The env's catalogue.
    """

    def __init__(self, catalogue: Catalogue) -> None:
        extra = _extra_aliases()
        hist: dict[str, tuple[set[str], set[str]]] = {}
        for hid, h in catalogue.history.items():
            strong = {*h.synonyms, *extra.get("history", {}).get(hid, []), hid}
            hist[hid] = (strong, {*_label_phrases(h.label), *_id_phrases(hid)})
        tests: dict[str, tuple[set[str], set[str]]] = {}
        for tid, t in catalogue.tests.items():
            strong = {*extra.get("tests", {}).get(tid, []), tid}
            tests[tid] = (strong, {*_label_phrases(t.label), *_id_phrases(tid)})
        dx: dict[str, tuple[set[str], set[str]]] = {}
        for code, d in catalogue.diagnoses.items():
            strong = {*extra.get("diagnoses", {}).get(code, []), code}
            dx[code] = (strong, _label_phrases(d.label))
        self.index = {
            "history": _build(hist, {k: h.question for k, h in catalogue.history.items()}),
            "test": _build(tests, {}),
            "diagnosis": _build(dx, {}),
        }
        self._content: dict[str, dict[tuple[str, ...], tuple[str, int]]] = {}
        self._codes = {c.upper(): c for c in catalogue.diagnosis_codes}
        self._ids = {"history": set(catalogue.history), "test": set(catalogue.tests),
                     "diagnosis": set(catalogue.diagnosis_codes)}

    def exact(self, kind: str, text: str) -> str | None:
        """``text`` if it is an id (or ICD-10 code) of ``kind``, else None."""
        t = text.strip()
        if kind == "diagnosis":
            return self._codes.get(t.upper())
        return t if t in self._ids[kind] else None

    def find(self, kind: str, text: str, allowed: Iterable[str] | None = None) -> list[Match]:
        """Every item of ``kind`` named in ``text``, in order of appearance, each once.

        Args:
            kind: ``history``, ``test`` or ``diagnosis``.
            text: Free text.
            allowed: When given, only these ids count (e.g. the legal ones).
        """
        keep = set(allowed) if allowed is not None else None
        found: list[Match] = []
        seen: set[str] = set()
        if kind == "diagnosis":
            for m in re.finditer(r"\b([A-Za-z]\d{2}(?:\.\d{1,2})?)\b", text):
                code = self._codes.get(m.group(1).upper())
                if code and code not in seen and (keep is None or code in keep):
                    seen.add(code)
                    found.append(Match(kind, code, -1, m.group(1), 2))
        index = self.index[kind]
        phrases, ambiguous = index.phrases, index.ambiguous
        toks = tokens(text)
        i = 0
        while i < len(toks):
            hit = None
            for n in range(min(_MAX_WORDS, len(toks) - i), 0, -1):
                key = tuple(toks[i : i + n])
                item = phrases.get(key)
                level = index.strength.get(key, 1)
                if item is None and key in ambiguous:
                    options = [c for c in ambiguous[key] if keep is None or c in keep]
                    item, level = (options[0] if options else None), 0
                if item is not None:
                    hit = (item, n, level)
                    break
            if hit is None:
                i += 1
                continue
            item, n, level = hit
            if item not in seen and (keep is None or item in keep):
                seen.add(item)
                found.append(Match(kind, item, i, " ".join(toks[i : i + n]), level))
            i += n
        return found

    def _content_index(self, kind: str) -> dict[tuple[str, ...], tuple[str, int]]:
        """Phrases keyed by their content words only (stop words dropped): "blood in your urine"
        meets "blood in urine". A content key two items share names neither."""
        hit = self._content.get(kind)
        if hit is not None:
            return hit
        index = self.index[kind]
        out: dict[tuple[str, ...], tuple[str, int]] = {}
        clash: set[tuple[str, ...]] = set()
        for key, item in index.phrases.items():
            content = tuple(t for t in key if t not in _STOP)
            if not content or (len(content) == 1 and content != key):
                continue  # "how long" is not named by "long" alone
            if content in out and out[content][0] != item:
                clash.add(content)
            elif content not in out or index.strength.get(key, 1) > out[content][1]:
                out[content] = (item, index.strength.get(key, 1))
        self._content[kind] = {k: v for k, v in out.items() if k not in clash}
        return self._content[kind]

    def find_content(self, kind: str, text: str, allowed: Iterable[str] | None = None) -> list[Match]:
        """As :meth:`find`, on content words only (stop words skipped in both text and phrases);
        each match's ``start`` is its token position in ``text`` and ``phrase`` the words it spans."""
        keep = set(allowed) if allowed is not None else None
        index = self._content_index(kind)
        toks = tokens(text)
        pos = [i for i, t in enumerate(toks) if t not in _STOP]
        words = [toks[i] for i in pos]
        found: list[Match] = []
        seen: set[str] = set()
        i = 0
        while i < len(words):
            for n in range(min(_MAX_WORDS, len(words) - i), 0, -1):
                entry = index.get(tuple(words[i : i + n]))
                if entry is not None:
                    item, level = entry
                    if item not in seen and (keep is None or item in keep):
                        seen.add(item)
                        a, b = pos[i], pos[i + n - 1] + 1
                        found.append(Match(kind, item, a, " ".join(toks[a:b]), level))
                    i += n
                    break
            else:
                i += 1
        return found

    def overlap(self, kind: str, text: str, allowed: Iterable[str] | None = None) -> dict[str, float]:
        """Each item's word overlap with ``text`` (the score of :meth:`best`), items sharing no word left out."""
        return self._overlap(kind, text, set(allowed) if allowed is not None else None)

    def _overlap(self, kind: str, text: str, keep: set[str] | None) -> dict[str, float]:
        """Each item's idf-weighted, cosine-like word overlap with ``text`` (items sharing no word left out)."""
        index = self.index[kind]
        words = Counter(t for t in tokens(text) if t not in _STOP and t in index.idf)
        if not words:
            return {}
        qn = math.sqrt(sum((index.idf[t] * c) ** 2 for t, c in words.items()))
        scores: dict[str, float] = {}
        for item, doc in index.docs.items():
            if keep is not None and item not in keep:
                continue
            shared = words.keys() & doc.keys()
            if not shared:
                continue
            dot = sum(index.idf[t] ** 2 for t in shared)
            dn = math.sqrt(sum(index.idf[t] ** 2 for t in doc))
            scores[item] = dot / (qn * dn + 1e-9)
        return scores

    def best(self, kind: str, text: str, allowed: Iterable[str] | None = None, min_score: float = 0.35) -> str | None:
        """The item whose words overlap ``text`` most (idf-weighted, cosine-like), if good enough.

        The fallback for paraphrased questions ("does anything make it worse?") that name no alias.
        """
        best, score, _ = self.best_scored(kind, text, allowed)
        return best if score >= min_score else None

    def best_scored(self, kind: str, text: str, allowed: Iterable[str] | None = None) -> tuple[str | None, float, float]:
        """The item of :meth:`best`, its overlap score in [0, 1] and the runner-up's score
        (``(None, 0.0, 0.0)`` when no word is shared)."""
        scores = self._overlap(kind, text, set(allowed) if allowed is not None else None)
        best, best_score, second = None, 0.0, 0.0
        for item, score in scores.items():
            if score > best_score:
                best, best_score, second = item, score, best_score
            elif score > second:
                second = score
        return best, best_score, second

    def ranked(self, kind: str, text: str, allowed: Iterable[str] | None = None, n: int = 5) -> list[tuple[str, float]]:
        """The ``n`` items of ``kind`` closest to ``text``, best first, as ``(id, score)`` in [0, 1].

        The score is the larger of the word overlap of :meth:`best` and 0.9 x the spelling
        similarity of the item's closest phrase (so "tropnin" still finds troponin): what to offer
        a person whose words named nothing. Items scoring under 0.2 are left out.
        """
        keep = set(allowed) if allowed is not None else None
        scores = self._overlap(kind, text, keep)
        query = normalise(text)
        if query:
            for key, item in self.index[kind].phrases.items():
                if keep is not None and item not in keep:
                    continue
                matcher = difflib.SequenceMatcher(None, query, " ".join(key))
                if matcher.real_quick_ratio() < 0.5 or matcher.quick_ratio() < 0.5:
                    continue
                scores[item] = max(scores.get(item, 0.0), 0.9 * matcher.ratio())
        top = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
        return [(item, round(score, 3)) for item, score in top[:n] if score >= 0.2]
