"""Reading data files (YAML, JSON, JSONL) into validated models, with errors that name the file,
the field path and the value. Cross-file checks (a case's ids against the catalogue) live here too.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from clinic_env.schema import icd10
from clinic_env.schema.case import Case
from clinic_env.schema.catalogue import Catalogue, Diagnosis, HistoryItem, Presentation, TestItem
from clinic_env.schema.errors import DataError, Problem
from clinic_env.schema.persona import Persona
from clinic_env.schema.principles import PrincipleSet
from clinic_env.schema.rubric import RubricBank
from clinic_env.schema.safe_read import DATA_SUFFIXES, data_format, read_documents

__all__ = [
    "DATA_SUFFIXES",
    "bundled_dir",
    "check_case_references",
    "iter_data_files",
    "load_cases",
    "load_catalogue",
    "load_personas",
    "load_principles",
    "load_rubric_banks",
    "parse_model",
    "read_documents",
]

M = TypeVar("M", bound=BaseModel)
_PKG = Path(__file__).resolve().parent.parent


def bundled_dir(name: str) -> Path:
    """Folder of bundled data: ``catalogues``, ``cases``, ``personas`` or ``rubrics``.

    Catalogues and cases are package data. ``personas/`` and ``rubrics/`` sit at the top of the
    repository; a wheel carries them as ``clinic_env/_bundled/<name>``.
    """
    candidates = [_PKG / "data" / name, _PKG / "_bundled" / name, _PKG.parent / name]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"bundled data folder {name!r} not found (looked in {candidates})")


def iter_data_files(path: Path) -> Iterator[Path]:
    """The data files in ``path`` (itself unless a folder), sorted, recursing into folders.

    A folder yields every entry with a data suffix (any case) that is not a folder, so a FIFO or
    device named ``*.yaml`` is reported by :func:`read_documents` rather than skipped; anything
    given directly that is not a folder is yielded as it is, to be read (or refused) there.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise DataError.single(path, "", "no such file or folder") from None
    except OSError as exc:
        raise DataError.single(path, "", f"cannot read: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(st.st_mode):
        yield path
        return
    for child in sorted(path.rglob("*")):
        if data_format(child) is not None and not child.is_dir():
            yield child


def _loc(prefix: str, loc: Iterable[int | str]) -> str:
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out = f"{out}.{part}" if out else str(part)
    return out


def parse_model(model: type[M], data: Any, file: str, prefix: str = "") -> M:
    """Validate ``data`` as ``model``; a failure becomes a :class:`DataError` naming every field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [
            Problem(file, _loc(prefix, err["loc"]), err["msg"], err.get("input"))
            for err in exc.errors(include_url=False)
        ]
        raise DataError(problems) from None


def _records(doc: Any, key: str) -> list[tuple[str, Any]]:
    """Split a document into (field prefix, record): a mapping, a list, or ``{key: [...]}``."""
    if isinstance(doc, dict) and key in doc and isinstance(doc[key], list):
        return [(f"{key}[{i}]", r) for i, r in enumerate(doc[key])]
    if isinstance(doc, list):
        return [(f"[{i}]", r) for i, r in enumerate(doc)]
    return [("", doc)]


def _catalogue_items(model: type[M], files: list[Path], key: str) -> dict[str, M]:
    items: dict[str, M] = {}
    problems: list[Problem] = []
    for file in files:
        for doc in read_documents(file):
            if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
                problems.append(Problem(str(file), "items", "expected a mapping with an 'items' list"))
                continue
            for i, raw in enumerate(doc["items"]):
                try:
                    item = parse_model(model, raw, str(file), f"items[{i}]")
                except DataError as exc:
                    problems.extend(exc.problems)
                    continue
                ident = getattr(item, key)
                if ident in items:
                    problems.append(Problem(str(file), f"items[{i}].{key}", "defined twice", ident))
                items[ident] = item
    if problems:
        raise DataError(problems)
    return items


def check_catalogue(cat: Catalogue, file: str = "<catalogue>") -> list[Problem]:
    """Cross-references inside the catalogue: diagnosis features and presentations name real ids."""
    problems: list[Problem] = []
    for code, dx in cat.diagnoses.items():
        for key in dx.features:
            if key not in cat.history and key not in cat.tests:
                problems.append(Problem(file, f"diagnoses.{code}.features", "unknown history/test id", key))
    for tid, test in cat.tests.items():
        for req in test.requires:
            proc = cat.tests.get(req)
            if proc is None or proc.category != "procedure":
                problems.append(Problem(file, f"tests.{tid}.requires", "not a procedure id in the catalogue", req))
    for sym, pres in cat.presentations.items():
        if sym not in cat.history:
            problems.append(Problem(file, f"presentations.{sym}.symptom", "unknown history id", sym))
        problems += [Problem(file, f"presentations.{sym}.history", "unknown history id", h)
                     for h in pres.history if h not in cat.history]
        problems += [Problem(file, f"presentations.{sym}.tests", "unknown test id", t)
                     for t in pres.tests if t not in cat.tests]
        problems += [Problem(file, f"presentations.{sym}.differential", "unknown ICD-10 code", c)
                     for c in pres.differential if c not in cat.diagnoses]
    return problems


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    """Load and merge the catalogues in a folder (default: the bundled ones).

    Every ``history*``, ``tests*``, ``diagnoses*`` and ``presentations*`` file is merged; an id
    defined twice, a malformed item or a dangling reference raises :class:`DataError`.
    """
    if path is None:
        return _bundled_catalogue()
    return _load_catalogue(Path(path))


@lru_cache(maxsize=1)
def _bundled_catalogue() -> Catalogue:
    return _load_catalogue(bundled_dir("catalogues"))


def _load_catalogue(folder: Path) -> Catalogue:
    try:
        files = [f for f in sorted(folder.iterdir()) if data_format(f) is not None]
    except OSError as exc:
        raise DataError.single(folder, "", f"cannot read catalogue folder: {exc.strerror or exc}") from None

    def pick(stem: str) -> list[Path]:
        return [f for f in files if f.stem.startswith(stem)]

    cat = Catalogue.build(
        history=_catalogue_items(HistoryItem, pick("history"), "id"),
        tests=_catalogue_items(TestItem, pick("tests"), "id"),
        diagnoses=_catalogue_items(Diagnosis, pick("diagnoses"), "code"),
        presentations=_catalogue_items(Presentation, pick("presentations"), "symptom"),
    )
    problems = check_catalogue(cat, str(folder))
    if problems:
        raise DataError(problems)
    return cat


def check_case_references(case: Case, cat: Catalogue, file: str, prefix: str = "") -> list[Problem]:
    """Every id and code a case uses must exist in the catalogue, in the right category."""
    p = f"{prefix}." if prefix else ""
    problems: list[Problem] = []
    # A case-specific complaint (an imported ``src.*`` history item) is checked by the Case model.
    if case.presenting_complaint not in cat.history and case.presenting_complaint not in case.extra_items:
        problems.append(Problem(file, f"{p}presenting_complaint", "unknown history id", case.presenting_complaint))
    problems += [Problem(file, f"{p}history.{k}", "unknown history id", k) for k in case.history if k not in cat.history]
    for key in case.exam:
        item = cat.tests.get(key)
        if item is None or item.category != "exam":
            problems.append(Problem(file, f"{p}exam.{key}", "not an examination id in the catalogue", key))
    for key in case.tests:
        item = cat.tests.get(key)
        if item is None or item.category == "exam":
            problems.append(Problem(file, f"{p}tests.{key}", "not a (non-exam) test id in the catalogue", key))
    problems += [Problem(file, f"{p}contraindicated_tests.{t}", "unknown test id", t)
                 for t in case.contraindicated_tests if t not in cat.tests]
    for name in ("essential_tests", "optional_tests"):
        problems += [Problem(file, f"{p}{name}", "unknown test id", t) for t in getattr(case, name) if t not in cat.tests]
    # Any valid WHO ICD-10 code may be a gold or a differential entry: the env adds the ones the
    # catalogue lacks from the vocabulary (clinic_env.schema.catalogue.with_diagnoses).
    if case.coded and case.gold_diagnosis not in cat.diagnoses and not icd10.is_valid(case.gold_diagnosis):
        problems.append(Problem(file, f"{p}gold_diagnosis", "not a WHO ICD-10 code (nor in the catalogue)",
                                case.gold_diagnosis))
    problems += [Problem(file, f"{p}differential[{i}].code", "not a WHO ICD-10 code (nor in the catalogue)", d.code)
                 for i, d in enumerate(case.differential) if d.code not in cat.diagnoses and not icd10.is_valid(d.code)]
    for i, alt in enumerate(case.confirmatory):
        problems += [Problem(file, f"{p}confirmatory[{i}]", "unknown history, exam or test id", k)
                     for k in alt if k not in cat.history and k not in cat.tests]
    for i, rubric_item in enumerate(case.rubric):
        if rubric_item.check is None:
            continue
        hx, tests = rubric_item.check.referenced_ids()
        problems += [Problem(file, f"{p}rubric[{i}].check", "unknown history id", h) for h in sorted(hx - cat.history.keys())]
        problems += [Problem(file, f"{p}rubric[{i}].check", "unknown test id", t) for t in sorted(tests - cat.tests.keys())]
    return problems


def _load_all(model: type[M], path: Path, key: str) -> list[tuple[str, str, M]]:
    """Parse every record of ``model`` under ``path``; collect problems across all files."""
    out: list[tuple[str, str, M]] = []
    problems: list[Problem] = []
    for file in iter_data_files(path):
        for doc in read_documents(file):
            for prefix, raw in _records(doc, key):
                try:
                    out.append((str(file), prefix, parse_model(model, raw, str(file), prefix)))
                except DataError as exc:
                    problems.extend(exc.problems)
    if problems:
        raise DataError(problems)
    return out


def load_cases(path: str | Path | None = None, catalogue: Catalogue | None = None) -> list[Case]:
    """Load cases: the bundled library, or every case in a file or folder (YAML, JSON, JSONL).

    A file may hold one case, a list of cases or ``{cases: [...]}``. Ids must be unique and every
    catalogue reference must resolve; otherwise :class:`DataError` lists every problem.
    """
    if path is None and catalogue is None:
        return list(_bundled_cases())
    return _load_cases(Path(path) if path is not None else bundled_dir("cases"), catalogue or load_catalogue())


@lru_cache(maxsize=1)
def _bundled_cases() -> tuple[Case, ...]:
    return tuple(_load_cases(bundled_dir("cases"), load_catalogue()))


def _load_cases(path: Path, cat: Catalogue) -> list[Case]:
    loaded = _load_all(Case, path, "cases")
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for file, prefix, case in loaded:
        problems += check_case_references(case, cat, file, prefix)
        if case.id in seen:
            problems.append(Problem(file, f"{prefix}.id" if prefix else "id", f"duplicate case id (also in {seen[case.id]})", case.id))
        seen[case.id] = file
    if problems:
        raise DataError(problems)
    if not loaded:
        raise DataError.single(path, "", "no cases found")
    return [case for _, _, case in loaded]


def load_personas(path: str | Path | None = None) -> list[Persona]:
    """Load personas from a file or folder (default: the bundled ``personas/``)."""
    folder = Path(path) if path is not None else bundled_dir("personas")
    personas = [p for _, _, p in _load_all(Persona, folder, "personas")]
    ids = [p.id for p in personas]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise DataError.single(folder, "id", "duplicate persona id", dupes)
    return personas


def _is_principles(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("kind") == "principles"


def _rubric_files(folder: Path, principles: bool) -> list[tuple[Path, Any]]:
    out = []
    for file in iter_data_files(folder):
        for doc in read_documents(file):
            if _is_principles(doc) == principles:
                out.append((file, doc))
    return out


def check_rubric_references(items: Iterable[Any], cat: Catalogue, file: str, prefix: str = "items") -> list[Problem]:
    """Every id a rubric check names must exist in the catalogue."""
    problems: list[Problem] = []
    for i, item in enumerate(items):
        check = getattr(item, "check", None) or getattr(getattr(item, "rubric", None), "check", None)
        if check is None:
            continue
        hx, tests = check.referenced_ids()
        problems += [Problem(file, f"{prefix}[{i}].check", "unknown history id", h) for h in sorted(hx - cat.history.keys())]
        problems += [Problem(file, f"{prefix}[{i}].check", "unknown test id", t) for t in sorted(tests - cat.tests.keys())]
    return problems


def load_rubric_banks(path: str | Path | None = None, catalogue: Catalogue | None = None) -> list[RubricBank]:
    """Load rubric banks from a file or folder (default: the bundled ``rubrics/``); principle files
    (``kind: principles``) are skipped: see :func:`load_principles`."""
    folder = Path(path) if path is not None else bundled_dir("rubrics")
    cat = catalogue or load_catalogue()
    banks: list[RubricBank] = []
    problems: list[Problem] = []
    for file, doc in _rubric_files(folder, principles=False):
        for prefix, raw in _records(doc, "banks"):
            try:
                bank = parse_model(RubricBank, raw, str(file), prefix)
            except DataError as exc:
                problems.extend(exc.problems)
                continue
            problems += check_rubric_references(bank.items, cat, str(file))
            banks.append(bank)
    if problems:
        raise DataError(problems)
    return banks


def load_principles(path: str | Path | None = None, catalogue: Catalogue | None = None) -> list[PrincipleSet]:
    """Load principle files (``kind: principles``) from a file or folder (default: bundled ``rubrics/``)."""
    folder = Path(path) if path is not None else bundled_dir("rubrics")
    cat = catalogue or load_catalogue()
    sets: list[PrincipleSet] = []
    problems: list[Problem] = []
    for file, doc in _rubric_files(folder, principles=True):
        try:
            pset = parse_model(PrincipleSet, doc, str(file))
        except DataError as exc:
            problems.extend(exc.problems)
            continue
        problems += check_rubric_references(pset.items, cat, str(file))
        sets.append(pset)
    if problems:
        raise DataError(problems)
    return sets
