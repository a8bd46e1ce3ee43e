"""Every bundled catalogue, case, persona and rubric validates and clears the library's bar."""

from __future__ import annotations

from pathlib import Path

import clinic_env
from clinic_env.schema.loading import bundled_dir, load_personas, load_rubric_banks
from clinic_env.schema.validate import library_standards, validate_paths


def test_catalogue_sizes(catalogue: clinic_env.Catalogue) -> None:
    assert len(catalogue.history) >= 120
    assert len(catalogue.tests) >= 60
    assert len(catalogue.diagnoses) >= 150
    assert all(t.cost_usd >= 0 for t in catalogue.tests.values())
    assert {t.category for t in catalogue.tests.values()} >= {"exam", "lab", "imaging"}


def test_case_library_breadth(cases: list[clinic_env.Case]) -> None:
    assert len(cases) >= 60
    assert len({c.specialty for c in cases}) >= 12
    assert len({c.gold_diagnosis for c in cases}) >= 45
    assert len({c.id for c in cases}) == len(cases)


def test_every_bundled_case_meets_the_library_standard(cases: list[clinic_env.Case]) -> None:
    problems = [p for c in cases for p in library_standards(c, c.id)]
    assert not problems, "\n".join(map(str, problems))


def test_bundled_cases_are_internally_coherent(cases: list[clinic_env.Case], catalogue: clinic_env.Catalogue) -> None:
    for case in cases:
        gold = catalogue.diagnoses[case.gold_diagnosis]
        assert gold.plausible_for(case.demographics.age, case.demographics.sex), case.id
        assert case.presenting_complaint in catalogue.history
        assert case.essential_tests, case.id


def test_validate_accepts_every_bundled_file() -> None:
    paths = [bundled_dir(n) for n in ("catalogues", "cases", "personas", "rubrics")]
    count, problems = validate_paths(paths, strict=True)
    assert count >= 60 + 12 + 1 + 3
    assert not problems, "\n".join(map(str, problems))


def test_personas_cover_the_noise_model() -> None:
    personas = load_personas()
    assert len(personas) >= 12
    assert any(p.id == "cooperative" and p.noise.vague == p.noise.withholding == 0 for p in personas)
    for field in ("vague", "withholding", "contradiction", "tangential"):
        assert any(getattr(p.noise, field) > 0 for p in personas), field
    assert {p.literacy for p in personas} == {"low", "medium", "high"}
    assert any(p.interruption.rate > 0 for p in personas)
    assert any(p.patience for p in personas)


def test_general_rubric_loads() -> None:
    banks = load_rubric_banks()
    assert banks and all(item.id for bank in banks for item in bank.items)
    assert Path(bundled_dir("rubrics")).is_dir()
