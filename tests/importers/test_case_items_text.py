"""Text mode: a doctor who asks for an imported case's own item by name gets the case's result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import clinic_env
from clinic_env.importers import catalogue_for, import_agentclinic

# An OSCE record written for this test in AgentClinic's shape: the CT angiogram and the
# tilt-table test have no catalogue item, so the import keeps them as case-specific items.
_RECORD = {"OSCE_Examination": {
    "Objective_for_Doctor": "Assess the patient with sudden tearing chest pain.",
    "Patient_Actor": {"Demographics": "61-year-old man",
                      "History": "Sudden tearing chest pain going through to the back an hour ago.",
                      "Symptoms": {"Primary_Symptom": "Chest pain", "Secondary_Symptoms": ["Back pain"]},
                      "Past_Medical_History": "Long-standing hypertension.",
                      "Social_History": "Non-smoker. Drinks rarely.",
                      "Review_of_Systems": "Denies fever."},
    "Physical_Examination_Findings": {"Vital_Signs": {"Blood_Pressure": "182/104 mmHg", "Heart_Rate": "104 bpm"}},
    "Test_Results": {"Imaging": {"CT_Angiogram": {"Findings": "Intimal flap in the ascending aorta extending to the arch"}},
                     "Tilt_Table_Test": "Not performed"},
    "Correct_Diagnosis": "Aortic dissection"}}


@pytest.fixture()
def case_and_catalogue(tmp_path: Path) -> tuple[clinic_env.Case, clinic_env.Catalogue]:
    path = tmp_path / "osce.jsonl"
    path.write_text(json.dumps(_RECORD) + "\n", encoding="utf-8")
    cases, report = import_agentclinic(path)
    assert report.imported == 1, report.summary()
    return cases[0], catalogue_for(cases, clinic_env.load_catalogue())


def _to_tests(env: clinic_env.envs.text.TextDoctorEnv) -> None:
    for reply in ("end_segment", env.engine.case.gold_diagnosis if env.engine.case else "",
                  '{"action": "commit_differential", "item": "", "text": ""}'):
        env.step(reply)
    assert env.engine.segment == 2


def test_case_item_asked_by_name_gets_the_source_result(case_and_catalogue: tuple[clinic_env.Case, clinic_env.Catalogue]) -> None:
    case, cat = case_and_catalogue
    key, item = case.lookup_item("CT angiogram") or ("", None)
    assert item is not None and "intimal flap" in item.text.lower()
    env = clinic_env.doctor_env(mode="text", cases=[case], catalogue=cat, persona="cooperative")
    env.reset(seed=0)
    _to_tests(env)
    cycle, ordered = env.engine.cycle, list(env.engine.ordered)
    obs, reward, term, _, info = env.step("Please order the CT angiogram of the chest.")
    assert "Intimal flap in the ascending aorta" in obs["transcript"]
    assert "Could not be used" not in obs["messages"][1]["content"]
    # No engine action (the catalogue's own defaults are never used), one step's cost, recorded.
    assert env.engine.ordered == ordered and env.engine.cycle == cycle and not term
    assert reward == pytest.approx(-env.info.config.step_cost) and "reask" in info
    assert any(e.get("outcome") == "case_item" and e.get("item") == key for e in env.turns.events)


def test_case_item_not_answered_outside_its_segment_or_when_unnamed(
        case_and_catalogue: tuple[clinic_env.Case, clinic_env.Catalogue]) -> None:
    case, cat = case_and_catalogue
    env = clinic_env.doctor_env(mode="text", cases=[case], catalogue=cat, persona="cooperative")
    obs, *_ = env.reset(seed=0)
    obs, *_ = env.step("order the CT angiogram")  # history segment: not a result yet
    assert "Intimal flap" not in obs["transcript"]
    _to_tests(env)
    obs, *_ = env.step("order a ventilation perfusion scintigraphy")  # not in this case
    assert "Intimal flap" not in obs["transcript"]
    assert not any(e.get("outcome") == "case_item" for e in env.turns.events)


def test_vital_signs_keep_the_source_words_beside_the_standard_form(tmp_path: Path) -> None:
    # Written for this test: vital signs with a weight, an age-relative value and a fetal trace,
    # none of which the standard "HR/BP/RR/T" form can hold.
    rec = json.loads(json.dumps(_RECORD))
    rec["OSCE_Examination"]["Physical_Examination_Findings"]["Vital_Signs"] = {
        "Heart_Rate": "104 bpm", "Blood_Pressure": "Normal for age", "Weight": "45 kg (99 lbs)",
        "Fetal_Heart_Rate_Monitoring": "Shows recurrent variable decelerations"}
    path = tmp_path / "vitals.jsonl"
    path.write_text(json.dumps(rec) + "\n", encoding="utf-8")
    cases, _ = import_agentclinic(path)
    texts = " ".join(f.text for f in (*cases[0].exam.values(), *cases[0].extra_items.values()))
    for words in ("104", "Normal for age", "45 kg (99 lbs)", "recurrent variable decelerations"):
        assert words in texts, (words, texts)
