"""Importer for AgentClinic OSCE cases (JSONL, one ``{"OSCE_Examination": {...}}`` per line).

Fields read: ``Objective_for_Doctor``; ``Patient_Actor`` (``Demographics``, ``History``,
``Symptoms`` {``Primary_Symptom``, ``Secondary_Symptoms``}, ``Past_Medical_History``,
``Social_History``, ``Review_of_Systems``); ``Physical_Examination_Findings`` and ``Test_Results``
(nested dicts of free text; names such as ``Chest_X-Ray``/``Chest_X-ray`` are normalised);
``Correct_Diagnosis``. Free-text sentences become history facts in the patient's own voice where
they map onto the catalogue, examination sections and test names map onto test ids, the diagnosis
maps onto an ICD-10 code; everything else is kept as free text in the case's ``source`` and
counted in the :class:`~clinic_env.importers.build.ImportReport`. A diagnosis the mapper refuses
stays free text (``gold_status: unmapped``: open mode only) and a sex the source never states is
``U``; both are listed in the report.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from clinic_env.importers.build import (
    CaseDraft,
    ImportReport,
    age_band,
    gold_for,
    parse_demographics,
    parse_sex,
    unique,
)
from clinic_env.importers.mapping import CatalogueMapper, split_sentences
from clinic_env.importers.reading import read_jsonl_records
from clinic_env.schema.case import Case
from clinic_env.schema.catalogue import Catalogue
from clinic_env.schema.loading import load_catalogue

__all__ = ["import_agentclinic"]

_GENERIC = frozenset({"imaging", "findings", "finding", "results", "result", "blood", "tests", "test", "work",
                      "laboratory", "labs", "other", "comments", "biopsy_results"})


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """``(name path, text)`` leaves of nested dicts and lists."""
    if isinstance(value, dict):
        for key, sub in value.items():
            yield from _flatten(sub, f"{prefix} {key}".strip())
    elif isinstance(value, list):
        for sub in value:
            yield from _flatten(sub, prefix)
    elif value is not None and str(value).strip():
        yield prefix, str(value).strip()


def _text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return " ".join(f"{k}: {t}." if k else f"{t}." for k, t in _flatten(value))
    return str(value or "")


def _label(name: str) -> str:
    return re.sub(r"[_]+", " ", name).strip()


def _map_findings(draft: CaseDraft, mapper: CatalogueMapper, data: Any, kind: str, report: ImportReport) -> None:
    """Examination findings (``kind="exam"``) or test results: top-level section names first, then
    the names inside a section."""
    if not isinstance(data, dict):
        if data:
            draft.add_extra("examination" if kind == "exam" else "test results", kind, _text(data), report)
        return
    target = draft.exam if kind == "exam" else draft.tests
    counter = "exam" if kind == "exam" else "tests"
    for section, content in data.items():
        tid = mapper.map_test(section, kind)
        if tid is not None and not (kind == "test" and isinstance(content, dict) and _mixed(mapper, content, kind)):
            target.setdefault(tid, []).append(f"{_label(section)}: {_text(content) if not isinstance(content, str) else content}")
            report.add(counter, True)
            continue
        leaves = list(_flatten(content, section)) if isinstance(content, (dict, list)) else [(section, str(content))]
        for name, text in leaves:
            leaf = name.split(" ")[-1]
            tid = mapper.map_test(leaf, kind) or mapper.map_test(name, kind)
            if tid is None:
                draft.add_extra(_strip_generic(name), kind, text, report)
            else:
                target.setdefault(tid, []).append(f"{_label(leaf)}: {text}")
                report.add(counter, True)


def _mixed(mapper: CatalogueMapper, content: dict[str, Any], kind: str) -> bool:
    """A section whose items are themselves different tests (``Blood_Tests: {CBC: .., CRP: ..}``)."""
    ids = {mapper.map_test(k, kind) for k in content}
    return len(ids - {None}) > 1


def _strip_generic(name: str) -> str:
    """``Imaging CT_Angiogram Findings`` -> ``CT Angiogram`` (section words that name no test dropped)."""
    words = [w for w in _label(name).split() if w.lower() not in _GENERIC]
    return " ".join(words) or _label(name)


def _osce_case(n: int, osce: dict[str, Any], raw: str, mapper: CatalogueMapper, report: ImportReport,
               file: Path) -> Case | None:
    actor = osce.get("Patient_Actor")
    if not isinstance(actor, dict):
        report.skip(n, "OSCE_Examination.Patient_Actor", "missing or not a mapping")
        return None
    dx_text = osce.get("Correct_Diagnosis")
    if not isinstance(dx_text, str) or not dx_text.strip():
        report.skip(n, "OSCE_Examination.Correct_Diagnosis", "missing or not text")
        return None
    history = str(actor.get("History", ""))
    age, sex = parse_demographics(str(actor.get("Demographics", "")))
    if sex is None:  # "Newborn" with no sex: the history's own words about the patient
        sex = parse_sex(history, narrative=True)
    if age is None:
        report.skip(n, "OSCE_Examination.Patient_Actor.Demographics", f"{actor.get('Demographics')!r}: no age")
        return None
    if sex is None:  # kept as "not stated", never guessed
        sex = "U"
        report.sex_not_stated.append(f"line {n}: {actor.get('Demographics')!r}")
    gold, cat = gold_for(mapper, dx_text, report, n, "OSCE_Examination.Correct_Diagnosis", age_band(age))
    symptoms = actor.get("Symptoms") or {}
    primary = str(symptoms.get("Primary_Symptom") or "").strip() if isinstance(symptoms, dict) else ""
    objective = str(osce.get("Objective_for_Doctor", ""))
    setting = "emergency department" if re.search(r"emergenc|acute|urgent", objective + primary, re.I) else "outpatient clinic"
    slug = re.sub(r"[^a-z0-9]+", "-", dx_text.lower()).strip("-")[:40] or "case"
    draft = CaseDraft(f"ac-{slug}-{n}", age, sex, gold, primary, primary or dx_text, setting,
                      source=f"Imported from AgentClinic OSCE format ({file.name}, line {n}); "
                             f"correct diagnosis given as {dx_text!r}. Objective: {objective}",
                      source_text=raw, gold_text=dx_text)
    for sentence in split_sentences(history):
        draft.add_history(mapper, sentence, report)
    if isinstance(symptoms, dict):
        secondary = symptoms.get("Secondary_Symptoms") or []
        for symptom in [primary, *(secondary if isinstance(secondary, list) else [secondary])]:
            if str(symptom).strip():
                draft.add_history(mapper, str(symptom), report, default_present=True)
    for key in ("Past_Medical_History", "Social_History", "Review_of_Systems"):
        for sentence in split_sentences(_text(actor.get(key, ""))):
            draft.add_history(mapper, sentence, report)
    _map_findings(draft, mapper, osce.get("Physical_Examination_Findings"), "exam", report)
    _map_findings(draft, mapper, osce.get("Test_Results"), "test", report)
    return draft.build_or_skip(mapper, report, f"{file}:{n}", n, cat)


def _nejm_record(record: dict[str, Any]) -> dict[str, Any] | str:
    """A NEJM image-challenge record in the MediQ shape (or the name of the broken field)."""
    question = record.get("question")
    if not isinstance(question, str) or not question.strip():
        return "question"
    answers = record.get("answers")
    if not isinstance(answers, list) or not all(isinstance(a, dict) for a in answers):
        return "answers"
    correct = [str(a.get("text", "")) for a in answers if a.get("correct") is True]
    if len(correct) != 1:
        return "answers (exactly one correct)"
    sentences = split_sentences(question)
    asks = [s for s in sentences if s.rstrip().endswith("?")]
    facts = [s for s in sentences if s not in asks]
    exams = record.get("physical_exams")
    if isinstance(exams, str):
        facts += [p.strip(" -") for p in re.split(r"\s-\s|\s\d+\.\s|\n", exams) if len(p.strip(" -")) > 3
                  and not p.lower().startswith("the information extracted")]
    return {"id": record.get("id") or re.sub(r".*id=([A-Za-z0-9]+).*", r"\1", str(record.get("image_url", ""))) or None,
            "question": asks[-1] if asks else "What is the most likely diagnosis?",
            "options": [str(a.get("text", "")) for a in answers], "answer": correct[0], "facts": facts}


def import_agentclinic(path: str | Path, catalogue: Catalogue | None = None) -> tuple[list[Case], ImportReport]:
    """Import an AgentClinic JSONL file: the OSCE shape (MedQA, MedQA-Extended) or the NEJM image
    challenge shape (NEJM, NEJM-Extended; the image URL is kept on the case).

    Returns:
        The valid cases and the import report (records read, cases imported, skipped records with
        line and field, and per field the items mapped, kept case-specific or unmapped).
    """
    from clinic_env.importers.mediq import import_record

    file = Path(path)
    mapper = CatalogueMapper(catalogue or load_catalogue())
    report = ImportReport("agentclinic")
    cases: list[Case] = []
    seen: set[str] = set()
    for n, record, raw in read_jsonl_records(file, report):
        case: Case | None
        if "OSCE_Examination" in record or "Patient_Actor" in record:
            osce = record.get("OSCE_Examination", record)
            if not isinstance(osce, dict):
                report.skip(n, "OSCE_Examination", "not a mapping")
                continue
            case = _osce_case(n, osce, raw, mapper, report, file)
        elif "answers" in record and "question" in record:
            shaped = _nejm_record(record)
            if isinstance(shaped, str):
                report.skip(n, shaped, "missing or wrongly shaped")
                continue
            url = record.get("image_url")
            case = import_record(n, shaped, raw, mapper, report, file, "nejm", str(url) if url else None)
        else:
            report.skip(n, "(record)", "neither OSCE_Examination nor a NEJM question with answers")
            continue
        if case is not None:
            cases.append(unique(case, seen))
            report.imported += 1
    return cases, report
