"""Importer for AgentClinic OSCE cases (JSONL, one ``{"OSCE_Examination": {...}}`` per line).

Fields read: ``Objective_for_Doctor``; ``Patient_Actor`` (``Demographics``, ``History``,
``Symptoms`` {``Primary_Symptom``, ``Secondary_Symptoms``}, ``Past_Medical_History``,
``Social_History``, ``Review_of_Systems``); ``Physical_Examination_Findings`` and ``Test_Results``
(nested dicts of free text; names such as ``Chest_X-Ray``/``Chest_X-ray`` are normalised);
``Correct_Diagnosis``. Free-text sentences become history facts in the patient's own voice where
they map onto the catalogue, examination sections and test names map onto test ids, the diagnosis
maps onto an ICD-10 code; everything else is kept as free text in the case's ``source`` and
counted in the :class:`~clinic_env.importers.build.ImportReport`. A record whose diagnosis cannot
be mapped is skipped and reported.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from clinic_env.importers.build import CaseDraft, ImportReport, parse_demographics
from clinic_env.importers.mapping import CatalogueMapper, split_sentences
from clinic_env.schema.case import Case
from clinic_env.schema.catalogue import Catalogue
from clinic_env.schema.errors import DataError
from clinic_env.schema.loading import load_catalogue

__all__ = ["import_agentclinic", "read_jsonl"]


def read_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """``(line number, record)`` for each non-empty line; a bad line raises :class:`DataError`."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError.single(path, "", f"cannot read file: {exc}") from None
    for n, line in enumerate(lines, 1):
        if line.strip():
            try:
                yield n, json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError.single(path, f"line {n}", f"not valid JSON: {exc}") from None


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
            draft.free_text.append(_text(data))
            report.add("exam" if kind == "exam" else "tests", False, _text(data)[:80])
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
                draft.free_text.append(f"{_label(name)}: {text}")
                report.add(counter, False, _label(name))
            else:
                target.setdefault(tid, []).append(f"{_label(leaf)}: {text}")
                report.add(counter, True)


def _mixed(mapper: CatalogueMapper, content: dict[str, Any], kind: str) -> bool:
    """A section whose items are themselves different tests (``Blood_Tests: {CBC: .., CRP: ..}``)."""
    ids = {mapper.map_test(k, kind) for k in content}
    return len(ids - {None}) > 1


def import_agentclinic(path: str | Path, catalogue: Catalogue | None = None) -> tuple[list[Case], ImportReport]:
    """Import an AgentClinic OSCE JSONL file.

    Returns:
        The valid cases and the import report (records read, cases imported, skipped records with
        the reason, mapped and unmapped history, examination, test and diagnosis items).
    """
    file = Path(path)
    mapper = CatalogueMapper(catalogue or load_catalogue())
    report = ImportReport("agentclinic")
    cases: list[Case] = []
    seen: set[str] = set()
    for n, record in read_jsonl(file):
        report.records += 1
        osce = record.get("OSCE_Examination", record) if isinstance(record, dict) else None
        if not isinstance(osce, dict) or "Patient_Actor" not in osce:
            report.skipped.append(f"line {n}: no OSCE_Examination.Patient_Actor")
            continue
        dx_text = str(osce.get("Correct_Diagnosis", "")).strip()
        gold = mapper.map_diagnosis(dx_text)
        report.add("diagnoses", gold is not None, dx_text)
        if gold is None:
            report.skipped.append(f"line {n}: diagnosis {dx_text!r} not in the catalogue")
            continue
        actor = osce["Patient_Actor"]
        age, sex = parse_demographics(str(actor.get("Demographics", "")))
        if age is None or sex is None:
            report.skipped.append(f"line {n}: demographics {actor.get('Demographics')!r} not understood")
            continue
        symptoms = actor.get("Symptoms") or {}
        primary = str(symptoms.get("Primary_Symptom") or "").strip() if isinstance(symptoms, dict) else ""
        objective = str(osce.get("Objective_for_Doctor", ""))
        setting = "emergency department" if re.search(r"emergenc|acute|urgent", objective + primary, re.I) else "outpatient clinic"
        slug = re.sub(r"[^a-z0-9]+", "-", dx_text.lower()).strip("-")[:40] or "case"
        case_id = f"ac-{slug}-{n}"
        draft = CaseDraft(case_id, age, sex, gold, primary, primary or dx_text, setting,
                          source=f"Imported from AgentClinic OSCE format ({file.name}, line {n}); "
                                 f"correct diagnosis given as {dx_text!r}. Objective: {objective}")
        for sentence in split_sentences(str(actor.get("History", ""))):
            draft.add_history(mapper, sentence, report)
        if isinstance(symptoms, dict):
            for symptom in [primary, *(symptoms.get("Secondary_Symptoms") or [])]:
                if str(symptom).strip():
                    draft.add_history(mapper, str(symptom), report, default_present=True)
        for key in ("Past_Medical_History", "Social_History", "Review_of_Systems"):
            for sentence in split_sentences(_text(actor.get(key, ""))):
                draft.add_history(mapper, sentence, report)
        _map_findings(draft, mapper, osce.get("Physical_Examination_Findings"), "exam", report)
        _map_findings(draft, mapper, osce.get("Test_Results"), "test", report)
        try:
            case = draft.build(mapper, report, f"{file}:{n}")
        except DataError as exc:
            report.skipped.append(f"line {n}: {exc.problems[0].message if exc.problems else exc}")
            continue
        if case.id in seen:
            case = case.model_copy(update={"id": f"{case.id}-{len(seen)}"})
        seen.add(case.id)
        cases.append(case)
        report.imported += 1
    return cases, report
