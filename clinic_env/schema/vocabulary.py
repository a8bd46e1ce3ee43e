"""Diagnosis text -> WHO ICD-10 code, refusing to guess.

:func:`map_diagnosis` tries, in order, and stops at the first stage that names one entity:

1. ``exact``: the text equals a diagnosis catalogue label or a WHO ICD-10 2019 title (case,
   punctuation, possessives, word order, UK/US spelling, "of/the" and ", unspecified" ignored);
2. ``synonym``: a curated synonym (``data/icd10/synonyms.yaml``, checked by hand);
3. ``abbreviation``: the whole text, or a parenthesised part of it, is a curated abbreviation
   (``NSTEMI``, ``CLL``, ``AML``...);
4. ``vocabulary``: the text's content words equal those of a title or synonym once words that
   never distinguish two entities ("disease", "syndrome", "disorder", "unspecified") are set
   aside: every content word of either side must be on the other, so an eponym or one shared
   word is never enough (``reactive arthritis`` never reaches ``rheumatoid arthritis``);
5. ``fuzzy``: the same, after correcting misspelt words to vocabulary words. A correction is
   accepted only when the words are at least :data:`FUZZY_THRESHOLD` similar
   (:class:`difflib.SequenceMatcher` ratio), at least 6 letters long, end alike (``-itis`` is
   never ``-osis``) and are not a curated pair of distinguishing words (lymphocytic/lymphoblastic,
   acute/chronic...). The mapping's confidence is the least similarity of the corrected words.

6. ``within``: the text (two words or more) is how the titles of exactly one WHO category begin
   (``lichen sclerosus`` -> L90.0 "Lichen sclerosus et atrophicus"; never "valley fever" -> "Rift
   Valley fever"); several codes of that category, or a title that adds a distinguishing word
   (acute/chronic), give the category's unspecified code; two categories, nothing.

Where a stage finds several entities (two categories) nothing is chosen: the result is
``unmapped`` with the alternatives in ``candidates``, and the case keeps its gold as free text
(it still runs in open mode). Curated ambiguous names (``respiratory distress syndrome``: newborn
P22.0 or adult J80) are resolved only by words of the ``context`` (e.g. the case's demographics).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import yaml

from clinic_env.schema import icd10
from clinic_env.schema.vocabulary_words import (
    affirmed_part,
    content_words,
    normalise_text,
    qualifies,
    tokens,
)
from clinic_env.schema.vocabulary_words import (
    strong as _strong,
)

if TYPE_CHECKING:
    from clinic_env.schema.catalogue import Catalogue

__all__ = [
    "FUZZY_THRESHOLD",
    "Candidate",
    "DiagnosisMapping",
    "DiagnosisVocabulary",
    "MappingStatus",
    "content_words",
    "default_vocabulary",
    "map_diagnosis",
    "normalise_text",
]

MappingStatus = Literal["exact", "synonym", "abbreviation", "vocabulary", "fuzzy", "within", "unmapped"]

#: Least word similarity for a fuzzy correction (and so the least confidence of a fuzzy mapping).
FUZZY_THRESHOLD = 0.88
#: Confidence of a mapping by stage (a fuzzy mapping's is the least similarity of its corrections).
CONFIDENCE: dict[str, float] = {"exact": 1.0, "synonym": 0.97, "abbreviation": 0.93, "vocabulary": 0.9,
                                 "within": 0.85}

_DATA = Path(__file__).resolve().parent.parent / "data" / "icd10" / "synonyms.yaml"
@dataclass(frozen=True)
class Candidate:
    """An alternative the mapper considered."""

    code: str
    label: str
    score: float


@dataclass(frozen=True)
class DiagnosisMapping:
    """The outcome of mapping one diagnosis text.

    Attributes:
        text: The source text.
        code: The ICD-10 code, or None when ``status`` is ``unmapped``.
        status: The stage that decided (see the module docstring).
        confidence: 0 for unmapped; see :data:`CONFIDENCE` and :data:`FUZZY_THRESHOLD`.
        evidence: What matched (``WHO title 'Coarctation of aorta'``, ``curated synonym ...``) or why
            nothing was chosen.
        candidates: The top alternatives with scores (best first), also when unmapped.
    """

    text: str
    code: str | None
    status: MappingStatus
    confidence: float
    evidence: str
    candidates: tuple[Candidate, ...] = ()

    @property
    def mapped(self) -> bool:
        """Whether a code was chosen."""
        return self.code is not None


@dataclass(frozen=True)
class _Name:
    code: str
    label: str
    origin: str  # "catalogue", "WHO title", "curated synonym"
    rank: float  # tie-break among names of one key: higher wins


class DiagnosisVocabulary:
    """The names every code can be reached by, indexed for :meth:`map`.

    Args:
        catalogue: The diagnosis catalogue whose labels are names too (and which wins a tie).
        data: The curated synonyms file (default: the shipped ``data/icd10/synonyms.yaml``).
    """

    def __init__(self, catalogue: Catalogue | None = None, data: str | Path | None = None) -> None:
        raw = yaml.safe_load(Path(data or _DATA).read_text(encoding="utf-8")) or {}
        self.catalogue_codes = frozenset(catalogue.diagnoses) if catalogue is not None else frozenset()
        self._exact: dict[frozenset[str], list[_Name]] = {}
        self._synonyms: dict[frozenset[str], list[_Name]] = {}
        self._strong: dict[frozenset[str], list[_Name]] = {}
        self.abbreviations: dict[str, str] = {str(k): icd10.normalise_code(str(v))
                                              for k, v in (raw.get("abbreviations") or {}).items()}
        for abbr, code in self.abbreviations.items():
            if not icd10.is_valid(code):
                raise ValueError(f"{_DATA}: abbreviations: {abbr} -> {code!r} is not a WHO ICD-10 code")
        self.ambiguous: dict[frozenset[str], list[tuple[str, tuple[str, ...]]]] = {}
        for name, options in (raw.get("ambiguous") or {}).items():
            self.ambiguous[content_words(str(name))] = [
                (icd10.normalise_code(str(o["code"])), tuple(str(w).lower() for w in o.get("context", ())))
                for o in options]
        self.organisms = frozenset(normalise_text(str(w)) for w in raw.get("organism_words") or ())
        self.qualifiers = frozenset(normalise_text(str(w)) for w in raw.get("qualifier_words") or ())
        self.distinct: list[frozenset[str]] = [frozenset(normalise_text(str(w)) for w in group)
                                               for group in raw.get("distinct_words") or ()]
        if catalogue is not None:
            for code, dx in catalogue.diagnoses.items():
                for part in _label_names(dx.label):
                    self._add(self._exact, _Name(code, dx.label, "catalogue label", 2.0 + dx.prior), part)
        for code in icd10.all_codes():
            title = icd10.description(code) or ""
            rank = 1.0 + (0.5 if code.endswith(".9") else 0.0) + 0.1 * (len(code) > 3)
            for part in _label_names(title):
                self._add(self._exact, _Name(code, title, "WHO title", rank), part)
        for code, names in (raw.get("synonyms") or {}).items():
            norm = icd10.normalise_code(str(code))
            if not icd10.is_valid(norm) and norm not in self.catalogue_codes:
                raise ValueError(f"{_DATA}: synonyms: {code!r} is not a WHO ICD-10 code")
            for name in names:
                self._add(self._synonyms, _Name(norm, str(name), "curated synonym", 3.0), str(name))
        # "Schistosomiasis due to Schistosoma haematobium": the organism alone names the title's
        # entity when it names only one category (stage 4b).
        self._due_to: dict[frozenset[str], list[_Name]] = {}
        for code in icd10.all_codes():
            title = icd10.description(code) or ""
            m = re.search(r"\bdue to (.+)$", re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", title))
            if m:
                self._add(self._due_to, _Name(code, title, "WHO title (organism)", 1.0), m.group(1))
        for index in (self._exact, self._synonyms):
            for key, found in index.items():
                for n in found:
                    self._strong.setdefault(_strong(key), []).append(n)
        self._words = sorted({w for key in self._strong for w in key})

    def _add(self, index: dict[frozenset[str], list[_Name]], name: _Name, text: str | None = None) -> None:
        key = content_words(text if text is not None else name.label)
        if key:
            index.setdefault(key, []).append(name)

    # ---------------------------------------------------------------------------------------
    def map(self, text: str, context: str = "") -> DiagnosisMapping:
        """Map one diagnosis text (see the module docstring). ``context`` (e.g. the case's
        demographics) only resolves the curated ambiguous names."""
        main = re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", text)
        inner = [part.strip() for group in re.findall(r"\(([^)]*)\)|\[([^\]]*)\]", text)
                 for part in group if part.strip()]
        result = self._map_phrase(text, main, context)
        if result.mapped:
            return result
        for phrase in [main.strip(), *inner]:
            abbr = self._abbreviation(phrase)
            if abbr is not None:
                return DiagnosisMapping(text, abbr, "abbreviation", CONFIDENCE["abbreviation"],
                                        f"curated abbreviation {phrase!r} -> {abbr} {_title(abbr)!r}")
        for phrase in inner:
            sub = self._map_phrase(text, phrase, context)
            if sub.mapped:
                return sub
        # Last: the words of the text inside one category's titles (never for an abbreviation).
        if not re.fullmatch(r"[A-Z0-9-]{2,6}", main.strip()) and content_words(main) not in self.ambiguous:
            within = self._within(text, _strong(content_words(main)))
            if within is not None:
                return within
            # "Pseudomonas keratitis": WHO codes the disease (H16.9) and the organism apart
            # (B95-B98); with no combination title, the organism's words are set aside.
            words = normalise_text(main).split()
            bare = " ".join(w for w in words if w not in self.organisms)
            if bare and len(bare.split()) < len(words):
                sub = self._map_phrase(text, bare, context)
                # Only where the disease's block has no organism-specific titles (pneumonia,
                # sepsis and meningitis have them: there the organism decides the code).
                if sub.mapped and sub.code and not _organism_block(sub.code):
                    return DiagnosisMapping(text, sub.code, sub.status, sub.confidence,
                                            f"{sub.evidence}; organism named apart (WHO B95-B98)", sub.candidates)
            # "Monomorphic ventricular tachycardia": a form WHO does not code apart (data:
            # qualifier_words) is set aside when the rest is a name as it stands (never fuzzy).
            rest = [w for w in words if w not in self.qualifiers]
            if rest and len(rest) < len(words):
                sub = self._map_phrase(text, " ".join(rest), context)
                if sub.mapped and sub.code and sub.status in ("exact", "synonym", "vocabulary"):
                    dropped = ", ".join(w for w in words if w in self.qualifiers)
                    return DiagnosisMapping(text, sub.code, sub.status, sub.confidence,
                                            f"{sub.evidence}; form {dropped!r} not coded apart by WHO", sub.candidates)
        return result

    def _abbreviation(self, phrase: str) -> str | None:
        phrase = phrase.strip().strip(".")
        if phrase in self.abbreviations:
            return self.abbreviations[phrase]
        upper = phrase.upper()
        # A whole field written in lower case ("nstemi") is still the abbreviation.
        if upper in self.abbreviations and phrase == phrase.lower() and len(phrase) >= 3:
            return self.abbreviations[upper]
        return None

    def _map_phrase(self, text: str, phrase: str, context: str) -> DiagnosisMapping:
        key = content_words(phrase)
        if not key:
            return DiagnosisMapping(text, None, "unmapped", 0.0, "no words to map")
        if key in self.ambiguous:
            return self._ambiguous(text, key, context)
        stages: tuple[tuple[dict[frozenset[str], list[_Name]], MappingStatus], ...] = (
            (self._exact, "exact"), (self._synonyms, "synonym"))
        for index, status in stages:
            if key in index:
                found = self._decide(text, index[key], status, CONFIDENCE[status])
                # A WHO category that is subdivided is not a valid code to record: a curated
                # synonym naming one of its subcategories wins (irritable bowel syndrome -> K58.8).
                if status == "exact" and found.code and icd10.descendants(found.code):
                    if key in self._synonyms:
                        continue
                    found = _nos(found)
                return found
        strong = _strong(key)
        if strong in self._strong:
            return self._decide(text, self._strong[strong], "vocabulary", CONFIDENCE["vocabulary"])
        if key in self._due_to:
            found = self._decide(text, self._due_to[key], "vocabulary", CONFIDENCE["vocabulary"])
            if found.mapped and found.code and icd10.descendants(found.code):
                found = _nos(found)
            return found
        return self._fuzzy(text, strong)

    def _within(self, text: str, strong: frozenset[str]) -> DiagnosisMapping | None:
        """Stage 6, ``within``: every content word of the text lies in the titles (or curated
        names) of exactly one WHO category ("lichen sclerosus" in L90.0 "Lichen sclerosus et
        atrophicus"). One code: that code; several codes of the category, or a title adding a
        distinguishing word (acute/chronic...), the category's unspecified code (C91.9 for
        "lymphocytic leukaemia", never C91.1); two categories: refuse."""
        phrase = tokens(text)
        if not strong or len(phrase) < 2:
            return None
        # The text must be where the title begins ("Lichen sclerosus" et atrophicus): a word it
        # merely shares is not enough ("valley fever" is not "Rift Valley fever"), and a title's
        # negated part is not its content ("aneurysm, without mention of rupture").
        found = [n for key, names in self._strong.items() if strong < key for n in names
                 if qualifies(phrase, tokens(affirmed_part(n.label))) and not _supplementary(n.code)]
        categories = {icd10.category(n.code) for n in found}
        if len(categories) != 1:
            return None
        codes = {n.code for n in found}
        extra = {w for n in found for w in _strong(content_words(n.label)) - strong}
        distinguishing = any(extra & group for group in self.distinct)
        cands = tuple(dict.fromkeys(Candidate(n.code, n.label, CONFIDENCE["within"]) for n in found))[:5]
        if len(codes) == 1 and not distinguishing:
            code = next(iter(codes))
            found_map = DiagnosisMapping(text, code, "within", CONFIDENCE["within"],
                                         f"every word in {found[0].origin} {found[0].label!r} (one category)", cands)
            return _nos(found_map) if icd10.descendants(code) else found_map
        category = next(iter(categories))
        nos = _nos(DiagnosisMapping(text, category, "within", CONFIDENCE["within"],
                                    f"every word in titles of category {category} only", cands))
        # The unspecified code must not itself carry the distinguishing word ("in situ").
        if nos.code == category or not _unspecified(nos.code or "") or \
                extra & _strong(content_words(_title(nos.code or ""))) & frozenset().union(*self.distinct):
            return None
        return nos

    def _ambiguous(self, text: str, key: frozenset[str], context: str) -> DiagnosisMapping:
        options = self.ambiguous[key]
        ctx = set(normalise_text(context).split())
        hits = [code for code, words in options if ctx & {normalise_text(w) for w in words}]
        cands = tuple(Candidate(c, _title(c), 0.5) for c, _ in options)
        if len(set(hits)) == 1:
            return DiagnosisMapping(text, hits[0], "synonym", CONFIDENCE["synonym"],
                                    f"curated ambiguous name resolved by context {context!r} -> {hits[0]} "
                                    f"{_title(hits[0])!r}", cands)
        return DiagnosisMapping(text, None, "unmapped", 0.0,
                                f"ambiguous name: {', '.join(c for c, _ in options)}; the context does not decide",
                                cands)

    def _decide(self, text: str, names: list[_Name], status: MappingStatus, confidence: float,
                detail: str = "") -> DiagnosisMapping:
        ranked = sorted(names, key=lambda n: (-(n.rank + (1.0 if n.code in self.catalogue_codes else 0.0)), n.code))
        cands = tuple(dict.fromkeys(Candidate(n.code, n.label, confidence) for n in ranked))[:5]
        categories = {icd10.category(n.code) for n in ranked}
        best = ranked[0]
        # An unspecified title stays unspecified: "Myeloid leukaemia, unspecified" is C92.9, never
        # the catalogue's one code of the category (C92.0, acute myeloblastic): a coder does not
        # add specificity the source does not give.
        if len(categories) > 1 and not ({n.origin for n in ranked[:1]} & {"catalogue label", "curated synonym"}):
            return DiagnosisMapping(text, None, "unmapped", 0.0,
                                    f"{status} match names {len(categories)} categories "
                                    f"({', '.join(sorted(categories))}): not choosing", cands)
        return DiagnosisMapping(text, best.code, status, confidence,
                                f"{best.origin} {best.label!r}{detail}", cands)

    def _fuzzy(self, text: str, strong: frozenset[str]) -> DiagnosisMapping:
        known = set(self._words)
        fixed: list[str] = []
        worst = 1.0
        notes: list[str] = []
        for word in sorted(strong):
            if word in known:
                fixed.append(word)
                continue
            best, score = self._correct(word)
            if best is None:
                return DiagnosisMapping(text, None, "unmapped", 0.0,
                                        f"no vocabulary word for {word!r} (fuzzy threshold {FUZZY_THRESHOLD})",
                                        self._near(strong))
            fixed.append(best)
            worst = min(worst, score)
            notes.append(f"{word}->{best} {score:.2f}")
        key = frozenset(fixed)
        if notes and key in self._strong:
            return self._decide(text, self._strong[key], "fuzzy", round(worst, 3), f" after {', '.join(notes)}")
        return DiagnosisMapping(text, None, "unmapped", 0.0,
                                "no title or synonym has exactly these content words", self._near(strong))

    def _correct(self, word: str) -> tuple[str | None, float]:
        if len(word) < 6:
            return None, 0.0
        best: str | None = None
        score = 0.0
        for cand in self._words:
            # Long words may drop a syllable ("paracoccidiomycosis"): the length may differ by a fifth.
            if abs(len(cand) - len(word)) > max(2, len(word) // 5) or cand[-3:] != word[-3:] or cand[0] != word[0]:
                continue
            if any(word in g and cand in g for g in self.distinct):
                continue
            ratio = SequenceMatcher(None, word, cand).ratio()
            if ratio > score:
                best, score = cand, ratio
        return (best, score) if score >= FUZZY_THRESHOLD else (None, score)

    def _near(self, strong: frozenset[str]) -> tuple[Candidate, ...]:
        """The closest names by word overlap (Dice), for the record only."""
        scored: dict[str, Candidate] = {}
        for key, names in self._strong.items():
            common = len(key & strong)
            if not common:
                continue
            dice = 2 * common / (len(key) + len(strong))
            for n in names:
                if n.code not in scored or scored[n.code].score < dice:
                    scored[n.code] = Candidate(n.code, n.label, round(dice, 3))
        return tuple(sorted(scored.values(), key=lambda c: (-c.score, c.code))[:5])


def _label_names(label: str) -> list[str]:
    """Names a catalogue label or WHO title stands for: itself, without its bracketed parts, its
    short bracketed parts, and the parts of a ``Malignant neoplasm: Pancreas`` title joined."""
    names = [label]
    bare = re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", label)
    names.append(bare)
    names += [p for p in re.findall(r"[(\[]([^)\]]*)[)\]]", label) if 1 <= len(p.split()) <= 5
              and not re.fullmatch(r"[A-Z0-9-]+", p.strip())]
    if "," in bare:
        head, _, tail = bare.partition(",")
        if normalise_text(tail) in {"unspecified", "not elsewhere classified"}:
            names.append(head)
    return [n for n in names if n.strip()]


def _nos(found: DiagnosisMapping) -> DiagnosisMapping:
    """A subdivided category replaced by its "unspecified" subcategory (WHO convention: ``.9``, or
    the child titled "... unspecified"): I26 pulmonary embolism -> I26.9."""
    assert found.code is not None
    children = [c for c in icd10.descendants(found.code) if icd10.category(c) == found.code and len(c) == 5]
    nos = [c for c in children if c.endswith(".9")] or [c for c in children if "unspecified" in _title(c).lower()]
    if not nos:
        return found
    return DiagnosisMapping(found.text, nos[0], found.status, found.confidence,
                            f"{found.evidence}; category {found.code} is subdivided: its unspecified "
                            f"subcategory {nos[0]} {_title(nos[0])!r}", found.candidates)


def _supplementary(code: str) -> bool:
    """WHO B95-B98 (an infectious agent "as the cause of diseases classified to other chapters"):
    a supplementary code, never a case's diagnosis."""
    return icd10.block(code) == "B95-B98"


@lru_cache(maxsize=512)
def _organism_block(code: str) -> bool:
    """Whether the WHO block of ``code`` has titles that name an organism ("... due to ...")."""
    block = icd10.block(code)
    return bool(block) and any(" due to " in (icd10.description(c) or "") for c in icd10.descendants(block or ""))


def _unspecified(code: str) -> bool:
    return len(code) == 3 or code.endswith(".9") or "unspecified" in _title(code).lower()


def _title(code: str) -> str:
    return icd10.description(code) or code


@lru_cache(maxsize=1)
def default_vocabulary() -> DiagnosisVocabulary:
    """The vocabulary over the shipped catalogue and synonyms (built once, ~1 s)."""
    from clinic_env.schema.loading import load_catalogue

    return DiagnosisVocabulary(load_catalogue())


def map_diagnosis(text: str, context: str = "", vocabulary: DiagnosisVocabulary | None = None) -> DiagnosisMapping:
    """Map a free-text diagnosis to a WHO ICD-10 code, or refuse (``status == "unmapped"``).

    Args:
        text: The source's diagnosis text (``"Reactive Arthritis"``, ``"NSTEMI"``).
        context: Other words of the case (demographics), used only for curated ambiguous names.
        vocabulary: A vocabulary built over another catalogue (default: the shipped one).

    Returns:
        The :class:`DiagnosisMapping` with its evidence and the alternatives considered.
    """
    return (vocabulary or default_vocabulary()).map(text, context)
