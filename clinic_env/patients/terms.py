"""Terms and how to find them in free text: words, phrases, abbreviations, ICD-10 codes.

:class:`Term` is one thing to look for (``"appendicitis"``, ``"clot in the lung"``, ``"DVT"``,
``"阑尾炎"``). :func:`find_terms` reports which of a list of terms occur in a text, searching every
normalised view (:mod:`clinic_env.patients.normalise`), with fuzzy matching of long words so that
spelling variants and translations that differ by a few letters (``apendicitis``, ``appendicite``,
``Appendizitis``) are caught. :func:`diagnosis_terms` derives the terms that name a diagnosis from
its catalogue label and the synonym list shipped in ``data/knowledge/synonyms.yaml``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache
from pathlib import Path

import yaml

from clinic_env.patients.encodings import rotations
from clinic_env.patients.normalise import (
    STOPWORDS,
    TextViews,
    collapse_doubles,
    fold,
    tokens,
    views,
    word_set,
)

__all__ = [
    "FOREIGN_FUNCTION_WORDS",
    "GENERIC_WORDS",
    "Term",
    "TermIndex",
    "code_mentions",
    "diagnosis_synonyms",
    "diagnosis_terms",
    "find_terms",
    "giveaway_terms",
    "load_synonyms",
    "make_term",
]

_KNOWLEDGE = Path(__file__).resolve().parent.parent / "data" / "knowledge"
_LEAK = Path(__file__).resolve().parent.parent / "data" / "leak"

#: Words of diagnosis labels that do not name the diagnosis on their own (a patient may say them).
GENERIC_WORDS = word_set(
    """acute chronic subacute unspecified specified other type disease disorder disorders syndrome infection
    infectious primary secondary episode severe mild moderate current mention site part left right anterior
    posterior lateral medial wall inferior superior lower upper extremity extremities limb vessel vessels deep
    superficial multiple single state due organism organisms including nonspecific specific idiopathic classical
    complete incomplete simple complicated uncomplicated recurrent fever pain chest heart lung lungs blood
    failure bleeding haemorrhage hemorrhage abdominal stomach bowel intestine intestinal kidney kidneys
    renal liver hepatic cardiac pulmonary respiratory tract urinary gland nerve bone marrow skin eye ear nose
    throat head neck back joint muscle vein veins artery arteries system central elsewhere classified
    induced caused diagnosis origin unknown newly onset related reaction reactions inflammation inflammatory episodic
    lesion mass growth benign malignant neoplasm entire general generalized generalised localized localised
    condition problem problems adult child childhood infant neonatal pregnancy pregnant puerperium childbirth
    small large minor major early late high low loss deficiency excessive frequent regular irregular
    trait attack attacks cold flu virus viral bacterial common usual typical after before during following
    within between adverse angle block closure cancer chemotherapy category coding subdivided complication
    derivative diffuse female male giant grave identified injury manifestation mental behavioural psychotic
    negative positive spontaneous status still symptom symptoms seasonal shock crisis transient urine tension
    headache anxiety panic character use state"""
)

#: Articles, prepositions and contractions of Spanish, French, German, Portuguese and Italian
#: that are not English words: dropped from a name of two or more other words, so that
#: "ataque al corazón" also finds "ataque de corazón" (words may still stand three apart).
FOREIGN_FUNCTION_WORDS = word_set(
    """de del la el los las le les du des au aux al un une una uno der das dem einer einem eine ein
    im zum zur vom di da dei della dello delle degli nel nella sul sulla dos ao em nas com con
    por para pour dans sur mit und et ou"""
)

_CJK_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]+")
_CODE = re.compile(r"(?<![a-z0-9])([a-z])\s*[-.]?\s*(\d)\s*-?\s*(\d)(?:\s*[.,·-]\s*(\d{1,2})|(\d))?(?![0-9])")


@dataclass(frozen=True)
class Term:
    """A word or phrase to find.

    Attributes:
        text: The term as written.
        words: Its stemmed content tokens, in order (empty for CJK and case-sensitive terms).
        compact: Its letters run together, for searching text written without separators
            (empty when too short to search that way safely).
        cjk: The term itself when it is written in CJK characters.
        exact_case: For short abbreviations (``PE``, ``MI``): matched case-sensitively in the raw text.
    """

    text: str
    words: tuple[str, ...]
    compact: str = ""
    cjk: str = ""
    exact_case: re.Pattern[str] | None = None


def make_term(text: str) -> Term | None:
    """Build a :class:`Term`; None when it has no content to look for."""
    raw = text.strip()
    if not raw:
        return None
    folded = fold(raw)
    if re.search(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]", folded):
        # Only the CJK characters: the text's CJK view keeps nothing else ("格林-巴利综合征").
        return Term(raw, (), "", "".join(_CJK_RUN.findall(folded)))
    if re.fullmatch(r"[A-Z][A-Z0-9]{1,2}", raw):
        letters = r"\.?".join(re.escape(ch) for ch in raw)
        return Term(raw, (), "", "", re.compile(rf"(?<![A-Za-z0-9]){letters}\.?(?![A-Za-z0-9])"))
    words = tuple(w for w in tokens(folded) if w not in STOPWORDS)
    if not words:
        return None
    # Run together as written ("ataquealcorazon"), for text written without separators.
    compact = "".join(words)
    content = tuple(w for w in words if w not in FOREIGN_FUNCTION_WORDS)
    if len(content) >= 2:
        words = content
    return Term(raw, words, compact if len(compact) >= 8 else "")


@lru_cache(maxsize=131072)
def _similar(word: str, target: str) -> bool:
    """Fuzzy equality of two long words (spelling variants, close translations)."""
    if word == target:
        return True
    if len(target) < 7 or len(word) < 6:
        return False
    a, b = collapse_doubles(word), collapse_doubles(target)
    if a == b:
        return True
    if len(word) < 7 and target.startswith(word):
        # A short word that only starts a longer name is another word ("phlegm", "phlegmon").
        return False
    if a[:5] != b[:5] or abs(len(a) - len(b)) > 4:
        return False
    return SequenceMatcher(None, a, b).ratio() >= 0.8


def _in_sequence(words: Sequence[str], seq: Sequence[str], fuzzy: bool) -> bool:
    """Whether ``words`` occur in order in ``seq`` within a window of len(words) + 3 tokens."""
    first = words[0]
    window = len(words) + 3
    for start, tok in enumerate(seq):
        if tok != first and not (fuzzy and _similar(tok, first)):
            continue
        pos = start + 1
        for word in words[1:]:
            end = min(len(seq), start + window)
            while pos < end and seq[pos] != word and not (fuzzy and _similar(seq[pos], word)):
                pos += 1
            if pos >= end:
                break
            pos += 1
        else:
            return True
    return False


@lru_cache(maxsize=1)
def _common_words() -> frozenset[str]:
    """Words of the bundled case and knowledge texts: a Caesar shift of a term that happens to be
    an ordinary word is not searched (it would block ordinary speech)."""
    words: set[str] = set()
    root = Path(__file__).resolve().parent.parent / "data"
    for folder in ("cases", "knowledge"):
        for path in (root / folder).rglob("*.yaml"):
            words.update(re.findall(r"[a-z]{4,}", path.read_text(encoding="utf-8").lower()))
    return frozenset(words)


@lru_cache(maxsize=65536)
def _shape(letters: str) -> str:
    """The steps between successive letters (mod 26): the same for every Caesar shift of a word,
    so one substring test finds all 25 shifts."""
    return "".join(chr(97 + (ord(b) - ord(a)) % 26) for a, b in itertools.pairwise(letters))


@lru_cache(maxsize=65536)
def _rotations(term: Term) -> tuple[frozenset[str], str]:
    """Caesar shifts of a term: of its single word (4+ letters; shifts that are ordinary words
    left out) and the shape of its compact form (8+ letters)."""
    common = _common_words()
    words = frozenset(r for w in term.words if len(w) >= 4 and len(term.words) == 1
                      for r in rotations(w) if r not in common)
    return words, _shape(term.compact) if term.compact else ""


def _rotated_in(term: Term, v: TextViews) -> bool:
    """Whether ``v`` holds the term shifted by ROT-1 ... ROT-25 (ROT-13 is also a view)."""
    if not term.words:
        return False
    words, shape = _rotations(term)
    if words & v.all_tokens:
        return True
    return bool(shape) and any(shape in _shape(c) for c in v.compact[:2])


def _cheap_hit(term: Term, v: TextViews) -> bool:
    """A necessary condition for a spelled, acrostic or shifted match (before the full search)."""
    letters = "".join(term.words)
    if len(letters) >= 4 and any(letters in run or letters[::-1] in run for run in v.spelled):
        return True
    if v.initials and len(letters) >= 4 and letters in v.initials:
        return True
    return _rotated_in(term, v)


def term_in(term: Term, v: TextViews, raw: str, fuzzy: bool = True) -> bool:
    """Whether ``term`` occurs in the text whose views are ``v`` (``raw`` is the original text)."""
    if term.exact_case is not None:
        # Also spelled out as a whole ("D. V. T.", "Delta Victor Tango", "starts with M ... then I").
        return bool(term.exact_case.search(raw)) or term.text.lower() in v.runs
    if term.cjk:
        return term.cjk in v.cjk
    if term.compact and any(term.compact in c for c in v.compact):
        return True
    if v.spelled:
        letters = "".join(term.words)
        if len(letters) >= 4 and any(letters in run or letters[::-1] in run for run in v.spelled):
            return True
    if v.initials and len(letters := "".join(term.words)) >= 4 and letters in v.initials:
        return True
    if _rotated_in(term, v):
        return True
    for seq, present in zip(v.token_lists, v.token_sets, strict=True):
        # Cheap necessary condition first: every word present exactly, or a fuzzy candidate.
        if all(w in present or (fuzzy and len(w) >= 7 and collapse_doubles(w)[:5] in v.prefixes)
               for w in term.words) and _in_sequence(term.words, seq, fuzzy):
            return True
    return False


class TermIndex:
    """Many terms, searched together: a cheap key test picks the few candidates worth a full match.

    Args:
        terms: The terms, in the order :meth:`find` reports their indices.
        fuzzy: Allow fuzzy matching of long words.
    """

    def __init__(self, terms: Sequence[Term], fuzzy: bool = True) -> None:
        self.terms = list(terms)
        self.fuzzy = fuzzy
        # Key of a word term: its longest word (any match needs it, exactly or fuzzily).
        self._keys = [(max(t.words, key=len) if t.words else "") for t in self.terms]
        self._prefix = [collapse_doubles(k)[:5] if len(k) >= 7 else "" for k in self._keys]

    def find(self, text: str, v: TextViews | None = None) -> list[int]:
        """Indices of the terms that occur in ``text``."""
        v = v or views(text)
        out = []
        for i, term in enumerate(self.terms):
            key = self._keys[i]
            if key and key not in v.all_tokens and not (self.fuzzy and self._prefix[i] in v.prefixes) \
                    and not (term.compact and any(term.compact in c for c in v.compact)) and not _cheap_hit(term, v):
                continue
            if term_in(term, v, text, self.fuzzy):
                out.append(i)
        return out


def find_terms(terms: Iterable[Term], text: str, fuzzy: bool = True) -> list[Term]:
    """The terms that occur in ``text``."""
    v = views(text)
    return [t for t in terms if term_in(t, v, text, fuzzy)]


def code_mentions(text: str) -> list[str]:
    """ICD-10-like codes mentioned in ``text``, as ``"K35"`` or ``"K35.8"`` (spaces, dashes and
    look-alike letters tolerated)."""
    out = []
    for m in _CODE.finditer(fold(text)):
        letter, d1, d2, sub, extra = m.groups()
        code = f"{letter.upper()}{d1}{d2}"
        tail = sub or extra
        out.append(f"{code}.{tail}" if tail else code)
    return out


@lru_cache(maxsize=1)
def load_synonyms() -> dict[str, tuple[str, ...]]:
    """The shipped synonym list: ICD-10 code -> lay, clinical and other-language names."""
    path = _KNOWLEDGE / "synonyms.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    items = data.get("synonyms", {})
    out = {str(code): tuple(str(s) for s in names) for code, names in items.items()}
    # Names in Spanish, French, German, Portuguese and Italian for every gold (data/leak/foreign.yaml).
    foreign = yaml.safe_load((_LEAK / "foreign.yaml").read_text(encoding="utf-8")) or {}
    for code, names in (foreign.get("foreign") or {}).items():
        out[str(code)] = tuple(dict.fromkeys((*out.get(str(code), ()), *(str(n) for n in names or ()))))
    # Names that are also ordinary words of another language ("gota" is a drop, "gotta" is "got
    # to") name nothing on their own: only the phrases that contain them are kept.
    ordinary = {fold(str(w)) for w in foreign.get("ordinary_words") or ()}
    return {code: tuple(n for n in names if fold(n) not in ordinary) for code, names in out.items()}


@lru_cache(maxsize=1)
def _giveaways() -> dict[str, tuple[str, ...]]:
    data = yaml.safe_load((_LEAK / "giveaways.yaml").read_text(encoding="utf-8")) or {}
    return {str(code): tuple(str(n) for n in names or ()) for code, names in (data.get("giveaways") or {}).items()}


def giveaway_terms(code: str) -> list[str]:
    """Drugs, tests and procedures specific to diagnosis ``code`` (``data/leak/giveaways.yaml``);
    the code's 3-character category's entry is used when the code has none."""
    table = _giveaways()
    return list(table.get(code) or table.get(code.split(".")[0]) or ())


def _label_parts(label: str) -> list[str]:
    inner = re.findall(r"[(\[]([^)\]]*)[)\]]", label)
    outer = re.sub(r"[(\[][^)\]]*[)\]]", " ", label)
    parts = [outer, *inner]
    for part in list(parts):
        parts += [p for p in re.split(r",|;|\bincluding\b|\be\.g\.", part) if p.strip()]
    return [p.strip() for p in parts if p.strip()]


def diagnosis_synonyms(code: str, label: str | None) -> list[str]:
    """Every name of a diagnosis: the label, its parenthesised and comma-separated parts, its
    abbreviations and distinctive words, and the shipped synonyms of the code."""
    names: list[str] = []
    if label:
        for part in _label_parts(label):
            words = [w for w in tokens(fold(part)) if w not in STOPWORDS]
            # A phrase of general words ("acute renal failure") still names the diagnosis as a whole.
            if any(w not in GENERIC_WORDS for w in words) or len(words) >= 2:
                names.append(part)
            names += [w for w in re.findall(r"\b[A-Z][A-Z0-9]{1,6}\b", part)]
            names += [w for w in words if w not in GENERIC_WORDS and len(w) >= 5]
    names += load_synonyms().get(code, ())
    return list(dict.fromkeys(n for n in names if n))


def diagnosis_terms(code: str, label: str | None, extra: Iterable[str] = ()) -> list[Term]:
    """The :class:`Term` list naming a diagnosis (see :func:`diagnosis_synonyms`)."""
    out: dict[str, Term] = {}
    for name in [*diagnosis_synonyms(code, label), *extra]:
        term = make_term(name)
        if term is not None:
            out.setdefault(term.cjk or (term.exact_case.pattern if term.exact_case else " ".join(term.words)), term)
    return list(out.values())
