"""Importer for MediQ cases (JSONL: ``id``, ``question``, ``context`` (sentences), ``facts`` (atomic
facts), ``options`` {letter: text}, ``answer``, ``answer_idx``).

Only questions that ask for a diagnosis become cases (:func:`question_kind`): a question about the
next step, a test, a treatment or a mechanism is skipped and reported, and one that asks for a cause
becomes a case only when its answer names a condition. Each atomic fact is sorted into vital signs, examination
findings, investigation results or history, mapped onto the catalogue (history in the patient's
own voice), and kept as free text when it maps onto nothing. The answer and the other options map
onto ICD-10 codes: the answer is the gold diagnosis, the options seed the differential.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from clinic_env.importers.build import (
    CaseDraft,
    ImportReport,
    age_band,
    gold_for,
    map_gold,
    parse_demographics,
    parse_sex,
    unique,
)
from clinic_env.importers.mapping import CatalogueMapper, split_sentences
from clinic_env.importers.reading import read_jsonl_records
from clinic_env.schema.case import Case
from clinic_env.schema.catalogue import Catalogue
from clinic_env.schema.loading import load_catalogue

__all__ = ["add_fact", "cause_gold_text", "import_mediq", "import_record", "item_name", "question_kind",
           "standard_vitals"]

# What a question asks for. A question about a step, test, treatment, drug, mechanism, finding or
# risk is never a diagnosis question, even when it names "the diagnosis" or "the cause" ("Which
# test confirms the diagnosis?", "the best treatment for the most likely cause"); it is checked first.
_NOT_DX = re.compile(
    r"\btreat|therap|\bmanag|\bnext (?:best )?step|\bbest (?:next )?step|\b(?:initial|first) step|"
    r"\b(?:which|what) (?:\S+ ){0,5}(?:tests?|stud(?:y|ies)|investigations?|imaging|drugs?|medications?|"
    r"antibiotics?|agents?|hormones?|markers?|enzymes?|findings?|features?|characteristics?|changes?|"
    r"complications?|effects?)\b|\bthis (?:drug|medication|study)\b|mechanism|adverse|\bside effect|"
    r"\brisk\b|prognos|criteria|minimum|monitor|counsel|prevent|screen|pathogenesis|enzymatic|"
    r"would (?:most likely )?(?:show|reveal|be (?:seen|found|present))|\bexpected\b|"
    r"associated with which|known to cause|\bresult in\b|lab(?:oratory)? (?:results|values|changes)",
    re.I)
# Questions that ask for the patient's condition itself: imported, the gold coded or kept as text.
_DX_QUESTION = re.compile(
    r"\bdiagnos[ie]s\b|\b(?:likely|probably|potentially) (?:has|have|suffers?|suffering)\b|\bsuffer(?:s|ing)? from\b|"
    r"\b(?:which|what) (?:\S+ ){0,3}(?:diseases?|disorders?|conditions?|syndromes?|illness(?:es)?)\b "
    r"(?:is|are|does|do|has|best|most)\b",
    re.I)
# Questions that ask for a cause, an explanation or an organism: a diagnosis question only when the
# answer names a condition (a code); "Proteasomal degradation" or "Gram-negative coccobacillus"
# answers one of them as a mechanism or a description, and the record is skipped.
_CAUSE_QUESTION = re.compile(
    r"\b(?:most likely|probable|underlying|primary)\b(?: \S+)? (?:cause|causes|etiology|aetiology|explanation|"
    r"pathogen|organism)\b|\b(?:cause|etiology|aetiology|explanation) (?:of|for) (?:this|the|his|her|their)\b|"
    r"\binfection with which\b|\bwhich (?:organism|pathogen)\b",
    re.I)
# The condition whose cause is asked ("the most likely etiology of her anemia"): named with the
# answer first ("Iron deficiency" -> "Iron deficiency anemia"), the answer alone when that names nothing.
_CAUSE_OF = re.compile(r"\b(?:cause|etiology|aetiology) of (?:this|the) patient['’]?s? (\w+)\W*$|"
                       r"\b(?:cause|etiology|aetiology) of (?:his|her|their) (\w+)\W*$", re.I)
_GENERIC = frozenset({"symptoms", "symptom", "condition", "presentation", "findings", "finding", "illness", "disease",
                      "problem", "problems", "complaints", "complaint", "signs", "state", "death", "fall"})


def question_kind(question: str) -> str | None:
    """What a MediQ question asks for: ``"diagnosis"`` (the patient's condition), ``"cause"`` (a
    cause, explanation or organism: a diagnosis only when the answer names a condition) or None (a
    step, test, treatment, drug, mechanism, finding or anything else)."""
    if _NOT_DX.search(question):
        return None
    if _DX_QUESTION.search(question):
        return "diagnosis"
    if _CAUSE_QUESTION.search(question):
        return "cause"
    return None


def cause_gold_text(question: str, answer: str, mapper: CatalogueMapper, context: str = "") -> str | None:
    """The text that names the condition a cause question's answer gives, or None when the answer
    names none (a mechanism): the answer joined to the condition whose cause is asked when that
    names a code ("Iron deficiency" + "anemia"), else the answer when it names a code."""
    m = _CAUSE_OF.search(question.strip())
    named = (m.group(1) or m.group(2)) if m else None
    if named and named.lower() not in _GENERIC and named.lower() not in answer.lower():
        joined = f"{answer} {named}"
        if map_gold(mapper, joined, context)[0]:
            return joined
    return answer if map_gold(mapper, answer, context)[0] else None
_VITALS = re.compile(r"\btemperature\b|\bpulse\b|\bheart rate\b|blood pressure|respirations|respiratory rate|"
                     r"oxygen saturation|pulse oximetry", re.I)
_EXAM = re.compile(r"examination|exam shows|on exam|auscultation|palpation|\btender|percussion|inspection|"
                   r"breath sounds|murmur|\bsigns?\b|reflexes|\bthere is (?:an?|no)\b", re.I)
_TESTS = re.compile(r"laborator|\bserum\b|\blevel|\bcount\b|concentration|x-ray|radiograph|\bct\b|ultrasound|"
                    r"\becg\b|\bekg\b|electrocardiogra|\bmri\b|culture|biopsy|urinalysis|smear|antibod|titer|"
                    r"\bmg/dl\b|mmol/l|g/dl|/mm3|u/l|\bmeq/l\b|gram stain|aspirat|spirometry|echocardiogra|\bpcr\b|\btest\b|"
                    r"immunoglobulin|antigen|crystals|smear|\bpositive\b|\bnegative\b|manoeuvre|maneuver|biops", re.I)
_CHIEF = re.compile(r"(?:because of|with|complains? of|complaining of|presents with|for evaluation of)\s+(.+?)(?:\.|$)", re.I)


def standard_vitals(sentence: str) -> str | None:
    """A vignette's vital signs as ``HR .. /min, BP ../.. mmHg, RR .. /min, SpO2 ..%, T .. °C``."""
    parts = []
    m = re.search(r"(?:pulse|heart rate|\bHR\b)(?: is| of)?[:\s]*(\d+)", sentence, re.I)
    if m:
        parts.append(f"HR {m.group(1)}/min")
    m = re.search(r"(?:blood pressure|\bBP\b)(?: is| of)?[:\sA-Za-z]*?(\d+)\s*/\s*(\d+)", sentence, re.I)
    if m:
        parts.append(f"BP {m.group(1)}/{m.group(2)} mmHg")
    m = re.search(r"(?:respirations|respiratory rate|\bRR\b)(?: are| is| of)?[:\sA-Za-z]*?(\d+)", sentence, re.I)
    if m:
        parts.append(f"RR {m.group(1)}/min")
    m = (re.search(r"SpO2\s*:?\s*(?:of\s*)?(\d+)\s*%", sentence, re.I)
         or re.search(r"(?:oxygen saturation|pulse oximetry)[^\d]{0,40}?(\d+)\s*%", sentence, re.I))
    if m:
        parts.append(f"SpO2 {m.group(1)}%")
    m = re.search(r"(\d+(?:\.\d)?)\s*°?\s*C\b", sentence)
    if m:
        parts.append(f"T {m.group(1)} °C")
    return ", ".join(parts) if parts else None


def _chief(first: str) -> str:
    m = _CHIEF.search(first)
    if not m:
        return ""
    text = re.sub(r"^(?:an?\s+)?\d+[- ](?:hour|day|week|month|year)s?[- ]history of\s+", "", m.group(1).strip(), flags=re.I)
    return text[:1].upper() + text[1:]


_NUMBERED = re.compile(r"^\s*\d+[.)]\s+")
_NAME_CUT = re.compile(r"\b(?:is|was|were|are|shows?|showed|revealed?|reveals|demonstrated?|demonstrates|"
                       r"found|identified|returned|came back)\b|[:,(]", re.I)


def _facts(record: dict[str, Any]) -> list[str]:
    facts = record.get("facts") or record.get("atomic_facts") or []
    if not facts:
        context = record.get("context") or []
        facts = [s for c in (context if isinstance(context, list) else [context]) for s in split_sentences(str(c))]
    return [_NUMBERED.sub("", str(f)).strip() for f in facts if _NUMBERED.sub("", str(f)).strip()]


def item_name(fact: str) -> str:
    """The name a case-specific result goes by: the words before its verb (``"A potassium hydroxide
    test is negative"`` -> ``potassium hydroxide test``)."""
    head = _NAME_CUT.split(fact, maxsplit=1)[0]
    head = re.sub(r"^(?:an?|the|his|her|their)\s+", "", head.strip(), flags=re.I)
    words = head.split()
    return " ".join(words[:6]) if words else fact[:40]


def add_fact(draft: CaseDraft, mapper: CatalogueMapper, fact: str, report: ImportReport) -> None:
    """Sort one atomic fact into vital signs, examination, investigations or history and keep it,
    mapped onto the catalogue or as a case-specific item."""
    if _VITALS.search(fact):
        vitals = standard_vitals(fact)
        if vitals:
            draft.exam.setdefault("exam.vitals", []).append(vitals)
            report.add("exam", True)
            return
    if _TESTS.search(fact):
        found = mapper.find_tests(fact, "test")
        if found:
            draft.tests.setdefault(found[0], []).append(fact)
            report.add("tests", True)
            return
        if not _EXAM.search(fact):
            draft.add_extra(item_name(fact), "test", fact, report)
            return
    if _EXAM.search(fact):
        found = mapper.find_tests(fact, "exam")
        if found:
            draft.exam.setdefault(found[0], []).append(fact)
            report.add("exam", True)
        else:
            draft.add_extra(item_name(fact), "exam", fact, report)
        return
    draft.add_history(mapper, fact, report)


def _demographics(record: dict[str, Any], first: str) -> tuple[float | None, str | None]:
    age, sex = parse_demographics(first)
    patient = record.get("patient")
    if isinstance(patient, dict):
        a, _ = parse_demographics(str(patient.get("age", "")))
        g = str(patient.get("gender", patient.get("sex", ""))).strip().lower()
        age = age if age is not None else a
        sex = sex or ("F" if g in ("female", "f", "woman") else "M" if g in ("male", "m", "man") else None)
    return age, sex


def import_record(n: int, record: dict[str, Any], raw: str, mapper: CatalogueMapper, report: ImportReport,
                  file: Path, prefix: str = "mediq", image_url: str | None = None) -> Case | None:
    """One MediQ-shaped record (``question``, ``options``, ``answer``, ``facts``/``context``) as a
    case, or None (the reason reported with the line and field)."""
    rid = str(record.get("id", n))
    question = record.get("question", "")
    if not isinstance(question, str):
        report.skip(n, "question", f"not text but {type(question).__name__}")
        return None
    kind = question_kind(question)
    if kind is None:
        report.counts["not_diagnosis_questions"] += 1
        report.skip(n, "question", f"not a diagnosis question ({question[-60:]!r})")
        return None
    options = record.get("options") or {}
    if not isinstance(options, (dict, list)):
        report.skip(n, "options", f"not a mapping or list but {type(options).__name__}")
        return None
    texts = [str(t) for t in (options.values() if isinstance(options, dict) else options)]
    answer = record.get("answer")
    if answer is not None and not isinstance(answer, str):
        report.skip(n, "answer", f"not text but {type(answer).__name__}")
        return None
    if not answer or not answer.strip():
        idx = str(record.get("answer_idx", ""))
        answer = str(options.get(idx, "")) if isinstance(options, dict) else ""
    if not answer.strip():
        report.skip(n, "answer", "missing")
        return None
    facts = _facts(record)
    if not facts:
        report.skip(n, "facts", "no facts or context")
        return None
    age, sex = _demographics(record, facts[0])
    if age is None:
        report.skip(n, "facts[0]", f"age not found in {facts[0][:60]!r}")
        return None
    if sex is None:  # the facts' own words about the patient, else "not stated" (never guessed)
        sex = parse_sex(" ".join(facts), narrative=True)
    if sex is None:
        sex = "U"
        report.sex_not_stated.append(f"line {n}: {facts[0][:60]!r}")
    gold_text = answer
    if kind == "cause":
        named = cause_gold_text(question, answer, mapper, age_band(age))
        if named is None:
            report.counts["not_diagnosis_questions"] += 1
            report.skip(n, "answer", f"asks for a cause and the answer names no condition ({answer[:60]!r})")
            return None
        gold_text = named
    gold, cat = gold_for(mapper, gold_text, report, n, "answer", age_band(age))
    others = []
    for text in texts:
        if text != answer:
            code, _ = map_gold(mapper, text, age_band(age))
            if code and code in cat.diagnoses:
                others.append(code)
    chief = _chief(facts[0])
    setting = "emergency department" if re.search(r"emergency", facts[0], re.I) else "primary care"
    slug = re.sub(r"[^a-z0-9]+", "-", rid.lower()).strip("-") or str(n)
    draft = CaseDraft(f"{prefix}-{slug}", age, sex, gold, chief, chief or facts[0], setting, options=others,
                      source=f"Imported from {report.source_format} format ({file.name}, line {n}, id {rid}); "
                             f"answer {answer!r}. Question: {question}",
                      source_text=raw, image_url=image_url, gold_text=gold_text)
    for fact in facts:
        add_fact(draft, mapper, fact, report)
    return draft.build_or_skip(mapper, report, f"{file}:{n}", n, cat)


def import_mediq(path: str | Path, catalogue: Catalogue | None = None) -> tuple[list[Case], ImportReport]:
    """Import a MediQ JSONL file (``all_dev_good.jsonl``, ``all_craft_md.jsonl``).

    Returns:
        The valid cases and the import report (see :class:`~clinic_env.importers.build.ImportReport`).
    """
    file = Path(path)
    mapper = CatalogueMapper(catalogue or load_catalogue())
    report = ImportReport("mediq")
    cases: list[Case] = []
    seen: set[str] = set()
    for n, record, raw in read_jsonl_records(file, report):
        case = import_record(n, record, raw, mapper, report, file)
        if case is not None:
            cases.append(unique(case, seen))
            report.imported += 1
    return cases, report
