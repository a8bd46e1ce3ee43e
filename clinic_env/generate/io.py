"""Writing cases to disk in the formats ``load_cases`` reads (YAML, JSON, JSONL or a folder)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from clinic_env.schema.case import Case

__all__ = ["case_to_dict", "write_cases"]


def case_to_dict(case: Case) -> dict[str, Any]:
    """A case as plain data, in the file format (``None`` fields left out, ``not`` checks aliased)."""
    return case.model_dump(mode="json", exclude_none=True, by_alias=True)


def _dump_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)


def write_cases(cases: Sequence[Case], path: str | Path) -> list[Path]:
    """Write ``cases`` to ``path`` and return the files written.

    ``*.jsonl``: one case per line; ``*.json``: a list; ``*.yaml``/``*.yml``: one case, or
    ``{cases: [...]}``; anything else is a folder that gets one ``<id>.yaml`` per case.
    """
    out = Path(path)
    data = [case_to_dict(c) for c in cases]
    suffix = out.suffix.lower()
    if suffix in (".jsonl", ".json", ".yaml", ".yml"):
        out.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".jsonl":
            text = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in data)
        elif suffix == ".json":
            text = json.dumps(data, ensure_ascii=False, indent=1) + "\n"
        else:
            text = _dump_yaml(data[0] if len(data) == 1 else {"cases": data})
        out.write_text(text, encoding="utf-8")
        return [out]
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for d in data:
        file = out / f"{d['id']}.yaml"
        file.write_text(_dump_yaml(d), encoding="utf-8")
        written.append(file)
    return written
