"""Importers of peers' case formats into clinic-env cases.

- :func:`import_agentclinic`: AgentClinic JSONL (OSCE shape: MedQA, MedQA-Extended; image-challenge
  shape: NEJM, NEJM-Extended).
- :func:`import_mediq`: MediQ JSONL (``all_dev_good``, ``all_craft_md``).
- :func:`import_craftmd`: CRAFT-MD's case CSV.
- :func:`import_cases`: any of them, by name; returns the cases and an :class:`ImportReport`.
"""

from __future__ import annotations

from pathlib import Path

from clinic_env.importers.agentclinic import import_agentclinic
from clinic_env.importers.build import ImportReport, catalogue_for
from clinic_env.importers.craftmd import import_craftmd
from clinic_env.importers.mediq import import_mediq
from clinic_env.schema.case import Case
from clinic_env.schema.catalogue import Catalogue

__all__ = ["IMPORT_FORMATS", "ImportReport", "catalogue_for", "import_agentclinic", "import_cases", "import_craftmd",
           "import_mediq"]

IMPORT_FORMATS = ("agentclinic", "mediq", "craftmd")


def import_cases(path: str | Path, fmt: str, catalogue: Catalogue | None = None) -> tuple[list[Case], ImportReport]:
    """Import a peer case file.

    Args:
        path: The JSONL file.
        fmt: ``"agentclinic"``, ``"mediq"`` or ``"craftmd"``.
        catalogue: Catalogue to map onto (default bundled).

    Raises:
        ValueError: For an unknown format.
    """
    if fmt == "agentclinic":
        return import_agentclinic(path, catalogue)
    if fmt == "mediq":
        return import_mediq(path, catalogue)
    if fmt == "craftmd":
        return import_craftmd(path, catalogue)
    raise ValueError(f"format must be one of {IMPORT_FORMATS}, got {fmt!r}")
