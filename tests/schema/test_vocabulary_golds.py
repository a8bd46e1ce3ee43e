"""Any valid WHO ICD-10 code may be a case's gold: written case files load and play."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import clinic_env


def _write(case: clinic_env.Case, folder: Path) -> None:
    (folder / f"{case.id}.yaml").write_text(
        yaml.safe_dump(case.model_dump(mode="json", exclude_defaults=True), sort_keys=False), encoding="utf-8")


def _with_gold(case: clinic_env.Case, code: str, new_id: str) -> clinic_env.Case:
    first = case.differential[0].model_copy(update={"code": code})
    return case.model_copy(update={"id": new_id, "gold_diagnosis": code, "differential": (first, *case.differential[1:])})


def test_a_vocabulary_gold_loads_and_is_in_the_action_space(cases: list[clinic_env.Case], tmp_path: Path) -> None:
    base = next(c for c in cases if c.id == "card-nstemi")
    _write(_with_gold(base, "A69.2", "lyme-written"), tmp_path)  # Lyme disease: not in the curated catalogue
    loaded = clinic_env.load_cases(tmp_path)
    assert loaded[0].gold_diagnosis == "A69.2"
    assert "A69.2" not in clinic_env.load_catalogue().diagnoses
    env = clinic_env.raw_env(cases=loaded)
    env.reset(seed=0)
    assert env.info.catalogue.diagnoses["A69.2"].block  # added from the vocabulary, with its WHO block
    assert env.info.table.dx("A69.2") >= env.info.table.dx0


def test_an_invalid_code_is_still_refused(cases: list[clinic_env.Case], tmp_path: Path) -> None:
    base = next(c for c in cases if c.id == "card-nstemi")
    _write(_with_gold(base, "Z99.99", "bad-code"), tmp_path)
    with pytest.raises(clinic_env.DataError) as err:
        clinic_env.load_cases(tmp_path)
    assert any(p.field == "gold_diagnosis" and p.value == "Z99.99" for p in err.value.problems)
