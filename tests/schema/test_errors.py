"""Malformed data gets a clear error naming the file, the field and the value."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import clinic_env
from clinic_env.schema import DataError


@pytest.fixture
def good_case(cases: list[clinic_env.Case]) -> dict[str, Any]:
    return cases[0].model_dump(mode="json", by_alias=True, exclude_none=True)


def _write(tmp_path: Path, data: Any, name: str = "case.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("mutate", "field", "value"),
    [
        (lambda c: c["demographics"].update(age=-4), "demographics.age", "-4"),
        (lambda c: c.update(gold_diagnosis="heart attack"), "gold_diagnosis", "heart attack"),
        (lambda c: c["history"].update({"sx.not_a_symptom": {"text": "x", "criticality": 1}}), "history.sx.not_a_symptom", "sx.not_a_symptom"),
        (lambda c: c["history"][next(iter(c["history"]))].update(criticality=5), "criticality", "5"),
        (lambda c: c.update(specialty="astrology"), "specialty", "astrology"),
        (lambda c: c["rubric"][0].update(points=42), "rubric[0].points", "42"),
        (lambda c: c.update(essential_tests=["lab.unobtainium"]), "essential_tests", "lab.unobtainium"),
        (lambda c: c.update(surprise="field"), "surprise", "field"),
    ],
)
def test_bad_case_names_file_field_and_value(tmp_path: Path, good_case: dict[str, Any], mutate: Any, field: str, value: str) -> None:
    mutate(good_case)
    path = _write(tmp_path, good_case)
    with pytest.raises(DataError) as err:
        clinic_env.load_cases(path)
    text = "\n".join(map(str, err.value.problems))
    assert str(path) in text and field in text and value in text


def test_json_and_jsonl_cases_load(tmp_path: Path, good_case: dict[str, Any]) -> None:
    (tmp_path / "one.json").write_text(json.dumps(good_case))
    second = dict(good_case, id="second-copy")
    (tmp_path / "many.jsonl").write_text(json.dumps(dict(good_case, id="third-copy")) + "\n" + json.dumps(second) + "\n")
    loaded = clinic_env.load_cases(tmp_path)
    assert sorted(c.id for c in loaded) == sorted([good_case["id"], "second-copy", "third-copy"])


def test_duplicate_case_ids_are_reported(tmp_path: Path, good_case: dict[str, Any]) -> None:
    _write(tmp_path, good_case, "a.yaml")
    _write(tmp_path, good_case, "b.yaml")
    with pytest.raises(DataError, match="duplicate case id"):
        clinic_env.load_cases(tmp_path)


def test_invalid_yaml_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("id: [unclosed\n")
    with pytest.raises(DataError, match="not valid YAML"):
        clinic_env.load_cases(path)


def test_bad_persona_and_rubric(tmp_path: Path) -> None:
    persona = tmp_path / "p.yaml"
    persona.write_text(yaml.safe_dump({"id": "x", "name": "X", "noise": {"vague": 1.5}}))
    with pytest.raises(DataError) as err:
        clinic_env.load_personas(persona)
    assert "noise.vague" in str(err.value) and "1.5" in str(err.value)
    bank = tmp_path / "r.yaml"
    bank.write_text(yaml.safe_dump({"name": "b", "items": [{"id": "a", "criterion": "asks", "points": 2,
                                                             "check": {"asked": "sx.nonexistent"}}]}))
    with pytest.raises(DataError, match=r"sx\.nonexistent"):
        clinic_env.load_rubric_banks(bank)
