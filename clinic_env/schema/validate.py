"""``clinic-env validate``: recognise what kind of data a file holds and check it completely."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clinic_env.schema.case import Case
from clinic_env.schema.catalogue import Catalogue, Diagnosis, HistoryItem, Presentation, TestItem
from clinic_env.schema.errors import DataError, Problem
from clinic_env.schema.loading import (
    _records,
    check_case_references,
    check_rubric_references,
    iter_data_files,
    load_catalogue,
    parse_model,
    read_documents,
)
from clinic_env.schema.persona import Persona
from clinic_env.schema.principles import PrincipleSet
from clinic_env.schema.rubric import RubricBank

__all__ = ["detect_kind", "library_standards", "validate_paths"]

_ITEM_KINDS: dict[str, tuple[type, str]] = {
    "history": (HistoryItem, "id"),
    "tests": (TestItem, "id"),
    "diagnoses": (Diagnosis, "code"),
    "presentations": (Presentation, "symptom"),
}


def detect_kind(doc: Any) -> str | None:
    """Guess what a parsed document is: case, persona, rubric bank or a catalogue kind."""
    if isinstance(doc, list):
        return detect_kind(doc[0]) if doc else None
    if not isinstance(doc, dict):
        return None
    if doc.get("kind") == "principles":
        return "principles"
    if "cases" in doc and isinstance(doc["cases"], list):
        return "case"
    if "gold_diagnosis" in doc or ("history" in doc and "differential" in doc):
        return "case"
    if "noise" in doc or "literacy" in doc or "persona" in str(doc.get("id", "")):
        return "persona"
    items = doc.get("items")
    if isinstance(items, list) and items and isinstance(items[0], dict):
        first = items[0]
        if "criterion" in first:
            return "rubric"
        if "code" in first:
            return "diagnoses"
        if "symptom" in first:
            return "presentations"
        if "cost_usd" in first or "normal_result" in first:
            return "tests"
        if "question" in first or "default_answer" in first:
            return "history"
    return None


def library_standards(case: Case, file: str, prefix: str = "") -> list[Problem]:
    """The bar a bundled case must clear beyond validity (counts of facts, tests, rubric items)."""
    p = f"{prefix}." if prefix else ""
    rules = [
        ("history", len(case.history), 15),
        ("tests", len(case.tests), 6),
        ("rubric", len(case.rubric), 5),
        ("differential", len(case.differential), 4),
        ("essential_tests", len(case.essential_tests), 1),
    ]
    return [
        Problem(file, f"{p}{name}", f"a bundled case needs at least {minimum} entries", count)
        for name, count, minimum in rules
        if count < minimum
    ]


def _validate_items(kind: str, doc: dict[str, Any], file: str) -> list[Problem]:
    model, _ = _ITEM_KINDS[kind]
    problems: list[Problem] = []
    for i, raw in enumerate(doc.get("items", [])):
        try:
            parse_model(model, raw, file, f"items[{i}]")
        except DataError as exc:
            problems.extend(exc.problems)
    return problems


def _validate_doc(doc: Any, file: str, cat: Catalogue | None, strict: bool) -> list[Problem]:
    kind = detect_kind(doc)
    if kind is None:
        return [Problem(file, "", "cannot tell what this file is (case, persona, rubric bank or catalogue)")]
    problems: list[Problem] = []
    if kind in _ITEM_KINDS:
        return _validate_items(kind, doc, file)
    if kind == "principles":
        try:
            pset = parse_model(PrincipleSet, doc, file)
        except DataError as exc:
            return exc.problems
        return check_rubric_references(pset.items, cat, file) if cat is not None else []
    models: dict[str, type[Case | Persona | RubricBank]] = {"case": Case, "persona": Persona, "rubric": RubricBank}
    model = models[kind]
    for prefix, raw in _records(doc, {"case": "cases", "persona": "personas", "rubric": "banks"}[kind]):
        try:
            obj = parse_model(model, raw, file, prefix)
        except DataError as exc:
            problems.extend(exc.problems)
            continue
        if isinstance(obj, Case) and cat is not None:
            problems += check_case_references(obj, cat, file, prefix)
            if strict:
                problems += library_standards(obj, file, prefix)
        if isinstance(obj, RubricBank) and cat is not None:
            problems += check_rubric_references(obj.items, cat, file)
    return problems


def _knowledge_root(file: Path) -> Path | None:
    """The disease knowledge-base folder a file belongs to (its files are checked together)."""
    for parent in file.resolve().parents:
        if parent.name == "knowledge":
            return parent
    return None


def _validate_knowledge(root: Path, catalogue: str | Path | None) -> list[Problem]:
    from clinic_env.generate.knowledge import load_knowledge

    try:
        load_knowledge(root, load_catalogue(catalogue))
    except DataError as exc:
        return exc.problems
    return []


def validate_paths(paths: list[Path], catalogue: str | Path | None = None, strict: bool = False) -> tuple[int, list[Problem]]:
    """Validate every data file under ``paths``.

    Args:
        paths: Files or folders.
        catalogue: Catalogue folder that cases and rubrics are checked against (default bundled).
        strict: Also apply the bundled-library standards to cases.

    Returns:
        The number of files checked and the problems found (empty when all are valid).
    """
    problems: list[Problem] = []
    cat: Catalogue | None = None
    try:
        cat = load_catalogue(catalogue)
    except DataError as exc:
        problems.extend(exc.problems)
    except FileNotFoundError as exc:
        problems.append(Problem(str(catalogue or "<bundled catalogues>"), "", str(exc)))
    count = 0
    knowledge_roots: set[Path] = set()
    for path in paths:
        try:
            files = list(iter_data_files(path))
        except DataError as exc:
            problems.extend(exc.problems)
            continue
        for file in files:
            count += 1
            root = _knowledge_root(file)
            if root is not None:
                knowledge_roots.add(root)
                continue
            try:
                docs = read_documents(file)
            except DataError as exc:
                problems.extend(exc.problems)
                continue
            for doc in docs:
                problems += _validate_doc(doc, str(file), cat, strict)
    for root in sorted(knowledge_roots):
        problems += _validate_knowledge(root, catalogue)
    # A problem inside the catalogue is reported once even when many files are checked.
    return count, list({str(p): p for p in problems}.values())
