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


# Keys that say what a record is even when it is incomplete: a mapping with at least
# _CLEAR_KEYS of a kind's distinctive keys is that kind, so its missing fields can be named.
_DISTINCTIVE: dict[str, frozenset[str]] = {
    "case": frozenset(Case.model_fields) - {"id", "title", "source", "difficulty", "tests", "rubric"},
    "persona": frozenset(Persona.model_fields) - {"id", "name", "description"},
}
_CLEAR_KEYS = 3


def _clear_kind(doc: dict[Any, Any]) -> str | None:
    keys = {k for k in doc if isinstance(k, str)}
    scores = {kind: len(keys & distinctive) for kind, distinctive in _DISTINCTIVE.items()}
    kind, score = max(scores.items(), key=lambda kv: kv[1])
    return kind if score >= _CLEAR_KEYS else None


def detect_kind(doc: Any) -> str | None:
    """Guess what a parsed document is: case, persona, rubric bank or a catalogue kind.

    A mapping holding several of a case's (or persona's) own keys is that kind even when required
    fields are missing, so that validation names the missing fields.
    """
    if isinstance(doc, list):
        return detect_kind(doc[0]) if doc else None
    if not isinstance(doc, dict):
        return None
    if doc.get("kind") == "principles":
        return "principles"
    if "cases" in doc and isinstance(doc["cases"], list):
        return "case"
    if "gold_diagnosis" in doc or "gold_status" in doc or ("history" in doc and "differential" in doc):
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
    if isinstance(items, list) and "name" in doc:
        return "rubric"
    return _clear_kind(doc)


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


def _validate_doc(doc: Any, file: str, cat: Catalogue | None, strict: bool,
                  ids: dict[str, dict[str, str]] | None = None) -> list[Problem]:
    """Problems of one document; ``ids`` (kind -> id -> first file) catches ids defined twice."""
    kind = detect_kind(doc)
    if kind is None:
        return [Problem(file, "", "cannot tell what this file is (case, persona, rubric bank or catalogue)")]
    problems: list[Problem] = []
    if kind in _ITEM_KINDS:
        if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
            return [Problem(file, "items", "expected a mapping with an 'items' list")]
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
        if isinstance(obj, (Case, Persona)) and ids is not None:
            seen = ids.setdefault(kind, {})
            if obj.id in seen:
                problems.append(Problem(file, f"{prefix}.id" if prefix else "id",
                                        f"duplicate {kind} id (also in {seen[obj.id]})", obj.id))
            seen.setdefault(obj.id, file)
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
    unreadable_roots: set[Path] = set()
    ids: dict[str, dict[str, str]] = {}
    for path in paths:
        try:
            files = list(iter_data_files(path))
        except DataError as exc:
            problems.extend(exc.problems)
            continue
        if not files:
            problems.append(Problem(str(path), "", "no data files (.yaml, .yml, .json, .jsonl) in this folder"))
        for file in files:
            count += 1
            try:
                docs = read_documents(file)
            except DataError as exc:
                problems.extend(exc.problems)
                docs = None
            root = _knowledge_root(file)
            if root is not None:
                # The knowledge base is loaded as a whole (by its own loader): only after every
                # file in it has passed the bounded reader above.
                (knowledge_roots if docs is not None else unreadable_roots).add(root)
                continue
            for doc in docs or ():
                problems += _validate_doc(doc, str(file), cat, strict, ids)
    for root in sorted(knowledge_roots - unreadable_roots):
        problems += _validate_knowledge(root, catalogue)
    # A problem inside the catalogue is reported once even when many files are checked.
    return count, list({str(p): p for p in problems}.values())
