"""The mapping mechanisms added for the NEJM golds: organ adjectives, organisms named in a WHO
'due to' title, long misspelt words, and ambiguous names resolved by the patient's age band."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clinic_env.importers import import_agentclinic
from clinic_env.importers.build import age_band
from clinic_env.schema.vocabulary import map_diagnosis


@pytest.mark.parametrize(("text", "code"), [
    ("Pulmonary sarcoidosis", "D86.0"),          # pulmonary = of lung
    ("Cutaneous sarcoidosis", "D86.3"),          # cutaneous = of skin
    ("Schistosoma haematobium", "B65.0"),        # the organism of exactly one WHO 'due to' title
    ("Paracoccidiomycosis", "B41.9"),            # a syllable dropped from a long word
    ("Coccidiomycosis", "B38.9"),
])
def test_mechanisms_map(text: str, code: str) -> None:
    assert map_diagnosis(text).code == code


@pytest.mark.parametrize("text", [
    "Streptococcus pneumoniae",   # 'due to' titles in two categories (pneumonia, sepsis): refuse
    "Pulmonary hypertensive sarcoid nodule",  # extra words: no title has exactly these
    "Coccidiomycoma",                           # a misspelling that changes the ending: never corrected
])
def test_mechanisms_still_refuse(text: str) -> None:
    m = map_diagnosis(text)
    assert m.code is None, m


def test_equivalent_words_do_not_create_collisions() -> None:
    assert map_diagnosis("Reactive arthritis").code == "M02.9"
    assert map_diagnosis("Endometritis").code != map_diagnosis("Endometriosis").code
    assert map_diagnosis("Renal cell carcinoma").code == "C64"


def test_age_band_and_ambiguous_golds() -> None:
    assert [age_band(a) for a in (None, 0.0, 0.5, 9, 40)] == ["", "newborn", "infant", "child", "adult"]
    assert map_diagnosis("Respiratory distress syndrome").code is None
    assert map_diagnosis("Respiratory distress syndrome", "newborn").code == "P22.0"
    assert map_diagnosis("Respiratory distress syndrome", "adult").code == "J80"
    assert map_diagnosis("Intraventricular hemorrhage", "newborn").code == "P52.3"


def test_import_resolves_an_ambiguous_gold_by_the_patients_age(tmp_path: Path) -> None:
    # A record written for this test: a preterm newborn girl whose gold is the ambiguous name.
    rec = {"OSCE_Examination": {
        "Objective_for_Doctor": "Assess the newborn with fast breathing.",
        "Patient_Actor": {"Demographics": "Newborn, female", "History": "Born at 30 weeks. She is breathing fast and grunting.",
                          "Symptoms": {"Primary_Symptom": "Shortness of breath", "Secondary_Symptoms": ["Grunting"]},
                          "Past_Medical_History": "None.", "Social_History": "Lives with her parents.",
                          "Review_of_Systems": "No fever."},
        "Physical_Examination_Findings": {"Vital_Signs": {"Respiratory_Rate": "72 breaths/min"}},
        "Test_Results": {"Chest_X-Ray": {"Findings": "Diffuse ground-glass appearance with air bronchograms"}},
        "Correct_Diagnosis": "Respiratory Distress Syndrome"}}
    path = tmp_path / "rds.jsonl"
    path.write_text(json.dumps(rec) + "\n", encoding="utf-8")
    cases, report = import_agentclinic(path)
    assert report.imported == 1, report.summary()
    assert cases[0].gold_diagnosis == "P22.0"


@pytest.mark.parametrize(("text", "code"), [
    ("Lichen sclerosus", "L90.0"),            # how one title begins: "Lichen sclerosus et atrophicus"
])
def test_within_one_category(text: str, code: str) -> None:
    m = map_diagnosis(text)
    assert (m.code, m.status) == (code, "within"), m


@pytest.mark.parametrize("text", ["Hepatitis", "Lymphoma", "Diabetes", "AML", "Valley fever", "Toxic exposure",
                                  "Squamous cell carcinoma", "Lymphocytic leukemia"])
def test_within_refuses_shared_words_other_categories_and_abbreviations(text: str) -> None:
    # "Valley fever" is not "Rift Valley fever"; "squamous cell carcinoma" is not carcinoma in situ;
    # "lymphocytic leukaemia" is never CLL (C91.1) by a shared word.
    m = map_diagnosis(text)
    assert m.status != "within" and m.code not in ("A92.4", "D04.9", "Z57.9", "C91.1"), m


def test_bacterial_organism_set_aside_only_without_combination_titles() -> None:
    assert map_diagnosis("Pseudomonas keratitis").code == "H16.9"   # keratitis; organism coded apart
    assert map_diagnosis("Pseudomonas pneumonia").code is None      # J15.1 or P23.5: the organism decides
    assert map_diagnosis("Herpetic keratitis").code != "H16.9"      # viral: its own WHO code, never stripped


def test_negated_part_of_a_title_is_not_its_content() -> None:
    # I71.2 is "Thoracic aortic aneurysm, without mention of rupture": never a rupture.
    assert map_diagnosis("Thoracic aortic rupture").code != "I71.2"


@pytest.mark.parametrize("text", ["Posttraumatic stress disorder", "Post traumatic stress disorder",
                                  "Post-traumatic stress disorder"])
def test_compound_prefixes_written_apart_or_joined(text: str) -> None:
    assert map_diagnosis(text).code == "F43.1"


def test_within_never_adds_a_second_entity() -> None:
    # M31.5 is "Giant cell arteritis *with polymyalgia rheumatica*"; D51.0 is B12 deficiency
    # *anaemia due to intrinsic factor deficiency*: a prefix that adds an entity is not a match.
    assert map_diagnosis("Giant-cell arteritis").code != "M31.5"
    assert map_diagnosis("Vitamin B12 deficiency").code != "D51.0"


def test_curly_possessive_is_a_possessive() -> None:
    assert map_diagnosis("Kaposi’s sarcoma").code == map_diagnosis("Kaposi sarcoma").code == "C46.9"
