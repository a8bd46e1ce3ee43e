"""Importer for MediQ cases (JSONL: ``id``, ``question``, ``context`` (sentences), ``facts`` (atomic
facts), ``options`` {letter: text}, ``answer``, ``answer_idx``).

Only questions that ask for a diagnosis become cases (a question about the next step or a
mechanism is skipped and reported). Each atomic fact is sorted into vital signs, examination
findings, investigation results or history, mapped onto the catalogue (history in the patient's
own voice), and kept as free text when it maps onto nothing. The answer and the other options map
onto ICD-10 codes: the answer is the gold diagnosis, the options seed the differential.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from clinic_env.importers.agentclinic import read_jsonl
from clinic_env.importers.build import CaseDraft, ImportReport, parse_demographics
from clinic_env.importers.mapping import CatalogueMapper, split_sentences
from clinic_env.schema.case import Case
from clinic_env.schema.catalogue import Catalogue
from clinic_env.schema.errors import DataError
from clinic_env.schema.loading import load_catalogue

__all__ = ["import_mediq", "standard_vitals"]

_DX_QUESTION = re.compile(r"diagnos|most likely (?:cause|explanation|condition)|underlying (?:condition|cause)", re.I)
_VITALS = re.compile(r"\btemperature\b|\bpulse\b|\bheart rate\b|blood pressure|respirations|respiratory rate|"
                     r"oxygen saturation|pulse oximetry", re.I)
_EXAM = re.compile(r"examination|exam shows|on exam|auscultation|palpation|\btender|percussion|inspection|"
                   r"breath sounds|murmur|\bsigns?\b|reflexes|\bthere is (?:an?|no)\b", re.I)
_TESTS = re.compile(r"laborator|\bserum\b|\blevel|\bcount\b|concentration|x-ray|radiograph|\bct\b|ultrasound|"
                    r"\becg\b|\bekg\b|electrocardiogra|\bmri\b|culture|biopsy|urinalysis|smear|antibod|titer|"
                    r"\bmg/dl\b|mmol/l|g/dl|/mm3|u/l|\bmeq/l\b|gram stain|aspirat|spirometry|echocardiogra|\bpcr\b|\btest\b|"
                    r"immunoglobulin|antigen|crystals|smear", re.I)
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


def _facts(record: dict[str, Any]) -> list[str]:
    facts = record.get("facts") or []
    if not facts:
        context = record.get("context") or []
        facts = [s for c in (context if isinstance(context, list) else [context]) for s in split_sentences(str(c))]
    return [str(f).strip() for f in facts if str(f).strip()]


def _add_fact(draft: CaseDraft, mapper: CatalogueMapper, fact: str, report: ImportReport) -> None:
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
            draft.free_text.append(fact)
            report.add("tests", False, fact)
            return
    if _EXAM.search(fact):
        found = mapper.find_tests(fact, "exam")
        if found:
            draft.exam.setdefault(found[0], []).append(fact)
            report.add("exam", True)
        else:
            draft.free_text.append(fact)
            report.add("exam", False, fact)
        return
    draft.add_history(mapper, fact, report)


def import_mediq(path: str | Path, catalogue: Catalogue | None = None) -> tuple[list[Case], ImportReport]:
    """Import a MediQ JSONL file.

    Returns:
        The valid cases and the import report (see :class:`~clinic_env.importers.build.ImportReport`).
    """
    file = Path(path)
    mapper = CatalogueMapper(catalogue or load_catalogue())
    report = ImportReport("mediq")
    cases: list[Case] = []
    for n, record in read_jsonl(file):
        report.records += 1
        if not isinstance(record, dict):
            report.skipped.append(f"line {n}: not a JSON object")
            continue
        rid = str(record.get("id", n))
        question = str(record.get("question", ""))
        if not _DX_QUESTION.search(question):
            report.skipped.append(f"line {n} (id {rid}): not a diagnosis question ({question[-60:]!r})")
            continue
        options = record.get("options") or {}
        answer = str(record.get("answer") or options.get(str(record.get("answer_idx", "")), ""))
        gold = mapper.map_diagnosis(answer)
        report.add("diagnoses", gold is not None, answer)
        if gold is None:
            report.skipped.append(f"line {n} (id {rid}): diagnosis {answer!r} not in the catalogue")
            continue
        others = []
        for text in options.values() if isinstance(options, dict) else options:
            if str(text) != answer:
                code = mapper.map_diagnosis(str(text))
                report.add("diagnoses", code is not None, str(text))
                if code:
                    others.append(code)
        facts = _facts(record)
        if not facts:
            report.skipped.append(f"line {n} (id {rid}): no facts or context")
            continue
        age, sex = parse_demographics(facts[0])
        if age is None or sex is None:
            report.skipped.append(f"line {n} (id {rid}): demographics not found in {facts[0][:60]!r}")
            continue
        chief = _chief(facts[0])
        setting = "emergency department" if re.search(r"emergency", facts[0], re.I) else "primary care"
        slug = re.sub(r"[^a-z0-9]+", "-", rid.lower()).strip("-") or str(n)
        draft = CaseDraft(f"mediq-{slug}", age, sex, gold, chief, chief or facts[0], setting, options=others,
                          source=f"Imported from MediQ format ({file.name}, line {n}, id {rid}); answer {answer!r}. "
                                 f"Question: {question}")
        for fact in facts:
            _add_fact(draft, mapper, fact, report)
        try:
            case = draft.build(mapper, report, f"{file}:{n}")
        except DataError as exc:
            report.skipped.append(f"line {n} (id {rid}): {exc.problems[0].message if exc.problems else exc}")
            continue
        cases.append(case)
        report.imported += 1
    return cases, report
