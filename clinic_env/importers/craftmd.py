"""Importer for CRAFT-MD's case CSV (``usmle_and_derm_dataset.csv``: ``case_vignette``,
``choice_1`` .. ``choice_4``, ``answer``, ``category``, ``dataset``, ``case_id``).

Each row becomes a MediQ-shaped record (the vignette's sentences as facts, the choices as
options) and goes through :func:`clinic_env.importers.mediq.import_record`; a row missing a
column or with an answer that is not one of its choices is reported (row, column) and skipped.
"""

from __future__ import annotations

import re
from pathlib import Path

from clinic_env.importers.build import ImportReport, unique
from clinic_env.importers.mapping import CatalogueMapper, split_sentences
from clinic_env.importers.mediq import import_record
from clinic_env.importers.reading import read_csv_rows
from clinic_env.schema.case import Case
from clinic_env.schema.catalogue import Catalogue
from clinic_env.schema.loading import load_catalogue

__all__ = ["import_craftmd"]

_REQUIRED = ("case_vignette", "answer")


def import_craftmd(path: str | Path, catalogue: Catalogue | None = None) -> tuple[list[Case], ImportReport]:
    """Import a CRAFT-MD case CSV.

    Returns:
        The valid cases and the import report (rows are numbered as lines, the header being line 1).
    """
    file = Path(path)
    mapper = CatalogueMapper(catalogue or load_catalogue())
    report = ImportReport("craftmd")
    cases: list[Case] = []
    seen: set[str] = set()
    for n, row, raw in read_csv_rows(file, report):
        missing = [c for c in _REQUIRED if not row.get(c, "").strip()]
        if missing:
            report.skip(n, missing[0], "missing or empty")
            continue
        choices = [row[k] for k in sorted(row, key=str) if re.fullmatch(r"choice_\d+", k) and row[k].strip()]
        if choices and row["answer"] not in choices:
            report.skip(n, "answer", f"{row['answer']!r} is not one of the choices")
            continue
        record = {"id": row.get("case_id") or str(n), "question": "Which of the following is the most likely diagnosis?",
                  "options": choices, "answer": row["answer"], "facts": split_sentences(row["case_vignette"])}
        case = import_record(n, record, raw, mapper, report, file, "craftmd")
        if case is not None:
            cases.append(unique(case, seen))
            report.imported += 1
    return cases, report
