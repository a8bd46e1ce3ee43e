"""Mapping peers' free text onto the catalogues: test and examination names, symptom sentences,
diagnoses (to ICD-10), with negation and an abnormal/normal guess for results.

Names are normalised (``Chest_X-Ray`` -> ``chest x ray``, US -> UK spelling variants handled by
aliases), looked up among catalogue labels, synonyms and the shipped aliases
(``data/knowledge/aliases.yaml``), then matched fuzzily (:mod:`difflib`) when nothing matches
exactly. What cannot be mapped is returned as ``None`` for the importer to keep as free text.
Diagnoses go through :func:`clinic_env.schema.vocabulary.map_diagnosis` (the WHO ICD-10 vocabulary,
curated synonyms; it refuses to guess and says why): :meth:`CatalogueMapper.diagnosis` gives the
full :class:`DiagnosisMapping`, :meth:`CatalogueMapper.map_diagnosis` only its code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache
from pathlib import Path

import yaml

from clinic_env.generate.coherence import vital_flags
from clinic_env.patients.normalise import fold, views
from clinic_env.patients.terms import (
    Term,
    TermIndex,
    make_term,
)
from clinic_env.schema.catalogue import Catalogue
from clinic_env.schema.vocabulary import DiagnosisMapping, DiagnosisVocabulary, map_diagnosis

__all__ = ["CatalogueMapper", "DiagnosisMapping", "looks_abnormal", "map_diagnosis", "normalise_name",
           "split_sentences"]

_ALIASES = Path(__file__).resolve().parent.parent / "data" / "knowledge" / "aliases.yaml"
_NEGATION = re.compile(r"\b(?:no|not|denies|denied|denying|without|negative for|absence of|absent|never|nor|free of|"
                       r"rules? out|unremarkable for)\b", re.IGNORECASE)
_CLAUSE = re.compile(r"[;]|\bbut\b|\bhowever\b|\balthough\b|\bexcept\b", re.IGNORECASE)
_ABNORMAL = re.compile(
    r"\b(?:elevated|raised|increased|decreased|reduced|low|high|positive|abnormal|enlarged|tender(?:ness)?|swelling|swollen|"
    r"mass|effusion|consolidation|opacit\w*|infiltrat\w*|fracture|lesion|deviat\w*|absent|weak\w*|ptosis|diminished|"
    r"murmur|crackles|rales|wheez\w*|rash|erythema\w*|o?edema|distended|guarding|rebound|rigid\w*|thickened|dilat\w*|"
    r"occlu\w*|stenosis|filling defect|ha?emorrhage|infarct\w*|elevation|depression|inversion|tachycardi\w*|"
    r"bradycardi\w*|fatigab\w*|nystagmus|jaundice|icter\w*|pallor|pale|hypo\w+|hyper\w+|leukocytosis|anemia|anaemia|"
    r"thrombocytopenia|cardiomegaly|detected|isolated|grew|growth of|cultured|present|seen|shows? (?:a|an)|reveals? (?:a|an)|"
    r"consistent with|suggestive of|decrement\w*|blunted|irregular|bulging|exudate|petechiae|purpura|neutrophilia|"
    r"leukocytosis|lymphocytosis|crystals|non-?compressible|defects?|undetectable|hyperplasia|collection|abscess|"
    r"calculus|stone|thrombus|vegetation|regurgitation|hypokinesi\w*|ring forms|parasit\w*|blasts|organisms)\b",
    re.IGNORECASE)
_NORMAL = re.compile(r"\b(?:normal|unremarkable|within normal limits|wnl|negative|no abnormalit\w*|clear|intact|"
                     r"non-?contributory|non-?tender|soft|no growth|not detected|none)\b", re.IGNORECASE)
_NEGATED_ABN = re.compile(r"\b(?:no|not|without|absent|negative for)\s+(?:\w+\s+){0,3}?$", re.IGNORECASE)
_SPELLING = (("haem", "hem"), ("oedema", "edema"), ("oesophag", "esophag"), ("paed", "ped"), ("aemia", "emia"),
             ("coeliac", "celiac"), ("faec", "fec"), ("goitre", "goiter"), ("tumour", "tumor"), ("ischaem", "ischem"))
#: Single catalogue synonyms too general to map a sentence onto a history item on their own.
_WEAK = frozenset({"home", "housing", "job", "work", "family", "sleep", "timing", "pattern", "diet", "support",
                   "pet", "school", "stress", "time", "day"})
_FAMILY = re.compile(r"\b(?:mother|father|mum|mom|dad|sister|brother|parents?|grand\w+|aunt|uncle|family|cousin|"
                     r"son|daughter)\b", re.IGNORECASE)
_FAMILY_ITEM = {"pmh.thyroid_disease": "fam.thyroid", "pmh.diabetes": "fam.diabetes", "pmh.ischaemic_heart_disease": "fam.cad",
                "pmh.stroke_tia": "fam.stroke", "pmh.cancer": "fam.cancer", "pmh.vte": "fam.vte",
                "pmh.autoimmune": "fam.autoimmune", "pmh.mental_health": "fam.mental_health", "pmh.epilepsy": "fam.epilepsy",
                "pmh.hypertension": "fam.hypertension", "pmh.hyperlipidaemia": "fam.hyperlipidaemia",
                "pmh.aneurysm": "fam.aneurysm", "pmh.inflammatory_bowel_disease": "fam.ibd", "pmh.ckd": "fam.kidney_disease"}
#: Reference ranges of common analytes in vignettes (name pattern, low, high, conventional US units).
_ANALYTES = (
    (r"(?:wbc|white (?:blood )?cell count|leuko?cyte count)", 4.0, 11.0, 1000.0),
    (r"(?:crp|c-reactive protein)", 0.0, 10.0, 1.0),
    (r"(?:h(?:a)?emoglobin|hgb|hb)", 12.0, 17.5, 1.0),
    (r"(?:platelet count|platelets)", 150.0, 400.0, 1000.0),
    (r"(?:uric acid|urate)", 2.5, 7.0, 1.0),
    (r"(?:d-?dimer)", 0.0, 0.5, 1.0),
    (r"(?:sodium|na\+?)", 135.0, 145.0, 1.0),
    (r"(?:potassium|k\+?)", 3.5, 5.0, 1.0),
    (r"(?:creatinine)", 0.5, 1.3, 1.0),
    (r"(?:glucose)", 70.0, 140.0, 1.0),
    (r"(?:lipase)", 0.0, 60.0, 1.0),
    (r"(?:tsh)", 0.4, 4.0, 1.0),
    (r"(?:troponin)", 0.0, 0.04, 1.0),
    (r"(?:esr|erythrocyte sedimentation rate)", 0.0, 25.0, 1.0),
)


def normalise_name(name: str) -> str:
    """``Chest_X-Ray`` -> ``chest x ray``; ``AcetylcholineReceptorAntibodies`` -> words."""
    name = re.sub(r"([a-z])([A-Z])", r"\1 \2", name)
    name = fold(name).replace("_", " ").replace("-", " ").replace("/", " ")
    name = re.sub(r"[^a-z0-9 ]", " ", name)
    return re.sub(r"\s+", " ", name).strip()


def _us(text: str) -> str:
    for uk, us in _SPELLING:
        text = text.replace(uk, us)
    return text


def split_sentences(text: str) -> list[str]:
    """Sentences of a free-text paragraph (decimal points and abbreviations kept whole)."""
    parts = re.split(r"(?<=[.!?])\s+(?=[A-Z])|\n+", text.strip())
    return [p.strip() for p in parts if p and p.strip()]


def _analyte_abnormal(text: str) -> bool | None:
    """An analyte value outside its reference range (None when no known analyte has a value)."""
    verdict = None
    for name, low, high, per_thousand in _ANALYTES:
        for m in re.finditer(rf"\b{name}\b[^0-9]{{0,25}}?(\d[\d,]*(?:\.\d+)?)", text, re.IGNORECASE):
            value = float(m.group(1).replace(",", ""))
            if per_thousand != 1.0 and value > high * 20:  # counts written per microlitre
                value /= per_thousand
            out = not low <= value <= high
            verdict = out if verdict is None else verdict or out
    return verdict


def looks_abnormal(text: str, age: float = 40.0) -> bool:
    """A guess whether a finding or result is abnormal (vital signs and common analytes by their
    numbers, other findings by their wording)."""
    flags = vital_flags(text, age)
    if flags is not None and re.search(r"\b(?:HR|BP|RR|SpO2)\b|°C|mmHg|bpm", text):
        return bool(flags)
    analyte = _analyte_abnormal(text)
    if analyte:
        return True
    for m in _ABNORMAL.finditer(text):
        before = text[max(0, m.start() - 40) : m.start()]
        if not _NEGATED_ABN.search(before):
            return True
    return bool(re.search(r"\b(?:shows?|reveals?|demonstrates?)\b", text, re.IGNORECASE) and not _NORMAL.search(text))


@dataclass(frozen=True)
class HistoryHit:
    """A history item found in a sentence."""

    hid: str
    present: bool
    phrase: str


@lru_cache(maxsize=1)
def _aliases() -> dict[str, dict[str, tuple[str, ...]]]:
    data = yaml.safe_load(_ALIASES.read_text(encoding="utf-8")) or {}
    return {kind: {k: tuple(v) for k, v in (data.get(kind) or {}).items()} for kind in ("tests", "history")}


class CatalogueMapper:
    """Maps free text onto one catalogue.

    Args:
        catalogue: The catalogue cases are imported into.
        fuzzy_cutoff: Least :class:`difflib.SequenceMatcher` ratio for a fuzzy name match.
    """

    def __init__(self, catalogue: Catalogue, fuzzy_cutoff: float = 0.85) -> None:
        self.cat = catalogue
        self.cutoff = fuzzy_cutoff
        aliases = _aliases()
        self._test_names: dict[str, str] = {}
        for tid, item in catalogue.tests.items():
            names = [item.label, re.sub(r"\([^)]*\)", "", item.label), tid.split(".", 1)[1].replace("_", " ")]
            for name in (*names, *aliases["tests"].get(tid, ())):
                key = _us(normalise_name(name))
                if key:
                    self._test_names.setdefault(key, tid)
        # Sentence search uses only names long or specific enough not to match by accident.
        self._test_terms: list[tuple[str, Term]] = []
        for key, tid in self._test_names.items():
            term = make_term(key)
            if term is not None and (len(key) >= 4 or " " in key):
                self._test_terms.append((tid, term))
        self._test_index = TermIndex([t for _, t in self._test_terms], fuzzy=False)
        self._hx_terms: list[tuple[str, Term]] = []
        for hid, hx_item in catalogue.history.items():
            for phrase in (hx_item.label, *hx_item.synonyms, *aliases["history"].get(hid, ())):
                term = make_term(re.sub(r"\([^)]*\)", " ", phrase))
                if term is not None and term.words and sum(map(len, term.words)) >= 4 \
                        and not (len(term.words) == 1 and term.words[0] in _WEAK):
                    self._hx_terms.append((hid, term))
        self._hx_index = TermIndex([t for _, t in self._hx_terms], fuzzy=False)
        self._vocabulary: DiagnosisVocabulary | None = None

    # ------------------------------------------------------------------------------- tests
    def map_test(self, name: str, kind: str | None = None) -> str | None:
        """The catalogue test id a test or examination name refers to (``kind="exam"`` or
        ``"test"`` restricts the category), or None."""
        key = _us(normalise_name(name))
        if not key:
            return None

        def ok(tid: str) -> bool:
            is_exam = self.cat.tests[tid].category == "exam"
            return kind is None or (kind == "exam") == is_exam

        tid = self._test_names.get(key)
        if tid and ok(tid):
            return tid
        best, best_score = None, 0.0
        for name_key, tid in self._test_names.items():
            if not ok(tid):
                continue
            if len(name_key) >= 4 and re.search(rf"\b{re.escape(name_key)}\b", key):
                score = 0.9 + len(name_key) / 1000  # a known name inside a longer one
            else:
                score = SequenceMatcher(None, key, name_key).ratio()
            if score > best_score:
                best, best_score = tid, score
        return best if best_score >= self.cutoff else None

    def find_tests(self, sentence: str, kind: str | None = None) -> list[str]:
        """Catalogue test ids named anywhere in a sentence (longest names first)."""
        text = _us(normalise_name(sentence))
        hits = sorted(self._test_index.find(text), key=lambda i: -len(self._test_terms[i][1].text))
        out: list[str] = []
        for i in hits:
            tid = self._test_terms[i][0]
            is_exam = self.cat.tests[tid].category == "exam"
            if (kind is None or (kind == "exam") == is_exam) and tid not in out:
                out.append(tid)
        return out

    # ------------------------------------------------------------------------------- history
    def map_history(self, sentence: str) -> list[HistoryHit]:
        """History items a sentence talks about, each with whether it is affirmed or denied."""
        hits: list[HistoryHit] = []
        for clause in _CLAUSE.split(sentence):
            v = views(clause)
            found = self._hx_index.find(clause, v)
            # Prefer the longest phrase when several items match overlapping words.
            found.sort(key=lambda i: -len(self._hx_terms[i][1].words))
            used: set[str] = set()
            neg = _NEGATION.search(clause)
            for i in found:
                hid, term = self._hx_terms[i]
                if any(h.hid == hid for h in hits) or set(term.words) <= used:
                    continue
                used |= set(term.words)
                position = self._position(clause, term)
                present = not (neg is not None and position is not None and neg.start() <= position)
                if _FAMILY.search(clause) and hid in _FAMILY_ITEM and _FAMILY_ITEM[hid] in self.cat.history:
                    hid = _FAMILY_ITEM[hid]  # "my mother has thyroid disease" is family history
                if any(h.hid == hid for h in hits):
                    continue
                hits.append(HistoryHit(hid, present, term.text))
        return hits

    @staticmethod
    def _position(clause: str, term: Term) -> int | None:
        folded = fold(clause)
        first = term.words[0]
        m = re.search(rf"\b{re.escape(first[:5])}", folded)
        return m.start() if m else None

    # ------------------------------------------------------------------------------- diagnoses
    def diagnosis(self, text: str, context: str = "") -> DiagnosisMapping:
        """The full mapping of a free-text diagnosis (code, status, confidence, evidence,
        candidates) against the WHO ICD-10 vocabulary and this catalogue's labels; see
        :func:`clinic_env.schema.vocabulary.map_diagnosis`."""
        if self._vocabulary is None:
            self._vocabulary = DiagnosisVocabulary(self.cat)
        return self._vocabulary.map(text, context)

    def map_diagnosis(self, text: str, context: str = "") -> str | None:
        """The ICD-10 code of a free-text diagnosis, or None when the mapping refuses to guess
        (:meth:`diagnosis` gives the reasons)."""
        return self.diagnosis(text, context).code
