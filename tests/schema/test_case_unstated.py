"""The case model's explicit "not stated": sex ``U`` and a gold with no ICD-10 code
(``gold_status: unmapped``) are valid data, each checked for what it needs."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

import clinic_env
from clinic_env.generate.profile import _both_sexes
from clinic_env.schema.case import Case, Demographics


def _doc(case: Case, **update: Any) -> dict[str, Any]:
    doc = case.model_dump(mode="json")
    doc.update(update)
    return doc


@pytest.fixture(scope="module")
def base() -> Case:
    return clinic_env.load_cases()[0]


def test_sex_not_stated_is_valid_and_worded_neutrally(base: Case) -> None:
    case = Case.model_validate(_doc(base, demographics={"age": 0.01, "sex": "U"}))
    assert not case.demographics.sex_stated and case.demographics.noun() == "baby"
    assert Demographics(age=7, sex="U").noun() == "child" and Demographics(age=40, sex="U").noun(0) == "adult"
    assert Demographics(age=3, sex="U").noun(0) == "child"  # by age alone, whatever the caller's threshold
    assert Demographics(age=7, sex="F").noun() == "girl" and Demographics(age=40, sex="M").noun() == "man"
    with pytest.raises(ValidationError):
        Case.model_validate(_doc(base, demographics={"age": 3, "sex": "X"}))


def test_sex_not_stated_rules_out_no_diagnosis(catalogue: clinic_env.Catalogue) -> None:
    female_only = [dx for dx in catalogue.diagnoses.values() if dx.sex == "F" and dx.age_min in (None, 0)]
    assert female_only
    dx = female_only[0]
    assert not dx.plausible_for(30, "M") and dx.plausible_for(30, "U")


def test_profile_ranges_hold_for_both_sexes() -> None:
    assert _both_sexes({"M": "134-162", "F": "122-148"}) == "134-148"
    assert _both_sexes({"M": "1-2", "F": "3-4"}) is None
    assert _both_sexes({"any": "94"}) is None


def test_unmapped_gold_needs_its_text_and_no_code(base: Case) -> None:
    case = Case.model_validate(_doc(base, gold_diagnosis="", gold_status="unmapped",
                                    gold_text="Impaired erythropoietin production", differential=[]))
    assert not case.coded and case.gold_diagnosis == ""
    with pytest.raises(ValidationError, match="needs gold_text"):
        Case.model_validate(_doc(base, gold_diagnosis="", gold_status="unmapped", gold_text=None))
    with pytest.raises(ValidationError, match="takes no gold_diagnosis"):
        Case.model_validate(_doc(base, gold_status="unmapped", gold_text="Something"))
    with pytest.raises(ValidationError, match="an ICD-10 code is required"):
        Case.model_validate(_doc(base, gold_diagnosis=""))
    assert base.coded and base.gold_status == "coded"


def test_bundled_cases_keep_their_sexes_and_codes() -> None:
    cases = clinic_env.load_cases()
    assert all(c.demographics.sex in ("M", "F") and c.coded for c in cases)
