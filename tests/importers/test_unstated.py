"""Imported records whose source leaves something open are kept, never guessed: a patient whose sex
is not stated (sex ``U``) and a diagnosis no ICD-10 code fits (``gold_status: unmapped``, open mode
only)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import clinic_env
from clinic_env.envs.open import OpenConsultationEnv
from clinic_env.importers import import_agentclinic, import_mediq
from clinic_env.importers.build import catalogue_for
from clinic_env.open import roles
from clinic_env.patients.speaker import Speaker, pronouns
from clinic_env.rollout import run_batch
from clinic_env.schema.errors import DataError

#: The oracle open-mode doctor (renamed from OpenScriptedDoctor to OpenOracleDoctor).
OracleDoctor = getattr(roles, "OpenOracleDoctor", None) or getattr(roles, "OpenScriptedDoctor")  # noqa: B009

_NEWBORN = {"OSCE_Examination": {
    "Objective_for_Doctor": "Assess the newborn and establish the most likely diagnosis.",
    "Patient_Actor": {
        "Demographics": "Newborn, born at 34 weeks of gestation",
        "History": "Born by caesarean section. Within an hour of birth the baby began grunting and breathing fast. "
                   "The mother had no antenatal care.",
        "Symptoms": {"Primary_Symptom": "Shortness of breath", "Secondary_Symptoms": ["Grunting", "Cyanosis"]},
        "Past_Medical_History": "None", "Social_History": "Not applicable", "Review_of_Systems": "Not applicable"},
    "Physical_Examination_Findings": {"Vital_Signs": {"Heart_Rate": "165/min", "Respiratory_Rate": "78/min"},
                                      "Respiratory_Examination": "Intercostal retractions, reduced air entry"},
    "Test_Results": {"Chest_X-Ray": "Diffuse ground-glass appearance with air bronchograms"},
    "Correct_Diagnosis": "Respiratory distress syndrome"}}

_MECHANISM = {"OSCE_Examination": {
    "Objective_for_Doctor": "Find the cause of the anaemia.",
    "Patient_Actor": {
        "Demographics": "61-year-old man",
        "History": "He has felt tired and short of breath on exertion for three months. He has long-standing kidney disease.",
        "Symptoms": {"Primary_Symptom": "Fatigue", "Secondary_Symptoms": ["Shortness of breath on exertion"]},
        "Past_Medical_History": "Chronic kidney disease stage 4.", "Social_History": "Non-smoker.",
        "Review_of_Systems": "No bleeding."},
    "Physical_Examination_Findings": {"Vital_Signs": {"Heart_Rate": "92/min"}},
    "Test_Results": {"Complete_Blood_Count": {"Hemoglobin": "8.9 g/dL"}},
    "Correct_Diagnosis": "Impaired erythropoietin production"}}


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[clinic_env.Case], object]:
    path = tmp_path_factory.mktemp("unstated") / "records.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in (_NEWBORN, _MECHANISM)) + "\n", encoding="utf-8")
    return import_agentclinic(path)


def test_both_records_import_with_nothing_guessed(imported: tuple[list[clinic_env.Case], object]) -> None:
    cases, report = imported
    assert len(cases) == 2 and not report.skipped  # type: ignore[attr-defined]
    newborn, mechanism = cases
    # "born at 34 weeks of gestation" is not the age: a newborn, so RDS is P22.0 (not J80, the adult form).
    assert newborn.demographics.sex == "U" and newborn.coded and newborn.gold_diagnosis == "P22.0"
    assert newborn.demographics.age == 0.0 and newborn.specialty == "paediatrics"
    assert mechanism.gold_status == "unmapped" and mechanism.gold_diagnosis == "" and not mechanism.coded
    assert mechanism.gold_text == "Impaired erythropoietin production"
    # No rubric item checks a diagnosis code (ordering the essential tests still counts).
    assert mechanism.rubric and all(item.criterion.startswith("Orders ") for item in mechanism.rubric)
    summary = report.summary()  # type: ignore[attr-defined]
    assert "unmapped    1" in summary
    assert "diagnosis unmapped (gold kept as free text, open mode only): line 2: " in summary
    assert "'Impaired erythropoietin production'" in summary
    assert "sex not stated in the source (imported as U, not guessed): line 1: " in summary


def test_sex_not_stated_reaches_no_sex_specific_wording(imported: tuple[list[clinic_env.Case], object]) -> None:
    cases, _ = imported
    newborn = cases[0]
    assert newborn.demographics.noun() == "baby" and newborn.informant == "parent"
    who = Speaker.of(newborn)
    said = pronouns("No, {he}'s far too young for that; {his} feeds are fine, I'd tell {him}.", who)
    assert said == "No, the baby's far too young for that; their feeds are fine, I'd tell them."
    env = clinic_env.doctor_env(cases=[newborn], catalogue=catalogue_for([newborn], clinic_env.load_catalogue()))
    obs, _ = env.reset(seed=0)
    lay = env.info.layout
    vec = np.asarray(obs["observation"] if isinstance(obs, dict) else obs)
    sex_slots = [i for i, j in enumerate(lay.doctor_index) if j in (lay.SEX, lay.SEX + 1)]
    assert len(sex_slots) == 2 and not vec[sex_slots].any()  # both one-hot slots 0: not stated
    opening = env.unwrapped.engine.transcript.lines[0][1]
    assert "-year-old baby" in opening or "child aged" in opening, opening
    assert not any(w in opening for w in (" boy", " girl", " man", " woman"))


def test_structured_env_skips_uncoded_golds_by_name(imported: tuple[list[clinic_env.Case], object]) -> None:
    cases, _ = imported
    cat = catalogue_for(cases, clinic_env.load_catalogue())
    with pytest.warns(UserWarning, match=r"1 case\(s\) skipped: gold unmapped .*Impaired erythropoietin production"):
        records = run_batch(cases, ["thorough"], seed=0, env_kwargs={"catalogue": cat})
    assert [r["case_id"] for r in records] == [cases[0].id] and not records[0]["errors"]
    with pytest.raises(DataError, match="use open mode"):
        clinic_env.doctor_env(cases=[cases[1]])
    from clinic_env.teaching.guide import SessionError, resolve_case

    with pytest.raises(SessionError, match=r"no ICD-10 code .* open mode"):  # teaching feedback scores a code
        resolve_case(cases[1], condition=None, difficulty=None, persona=None, seed=0, cases=None)
    assert resolve_case(cases[0], condition=None, difficulty=None, persona=None, seed=0, cases=None).case is cases[0]


def test_open_mode_runs_both_and_grades_the_unmapped_gold(imported: tuple[list[clinic_env.Case], object]) -> None:
    cases, _ = imported
    for case in cases:
        env = OpenConsultationEnv(cases=[case], catalogue=catalogue_for([case], clinic_env.load_catalogue()))
        doctor = OracleDoctor(env)
        env.reset(seed=0)
        doctor.reset(0)
        for _ in range(100):
            if all(env.terminations.values()):
                break
            env.step(doctor.act(env.observe(env.agent_selection)))
        record = env.record_fields()
        assert record["end_reason"] == "diagnosis" and not record["errors"]
        method = record["verdict"]["method"]  # the doctor's "Respiratory distress syndrome": the age decides
        assert method == ("icd10" if case.coded else "unmapped"), record["verdict"]
        if not case.coded:
            assert record["gold_diagnosis"] is None and record["diagnosis_correct"] is False


def test_unmapped_gold_goes_to_the_moderator(imported: tuple[list[clinic_env.Case], object]) -> None:
    _, mechanism = imported[0]
    env = OpenConsultationEnv(cases=[mechanism], moderator="agent",
                              catalogue=catalogue_for([mechanism], clinic_env.load_catalogue()))
    env.reset(seed=0)
    env.step("DIAGNOSIS READY: anaemia of chronic kidney disease (low erythropoietin)")
    for _ in range(10):
        if env.task == "moderator":
            break
        env.step("Yes")
    assert env.task == "moderator"
    system = " ".join(m["content"] for m in env.observe(env.agent_selection)["messages"])
    assert "Impaired erythropoietin production" in system
    env.step("Yes")
    assert env.verdict is not None and env.verdict.method == "moderator" and env.verdict.correct


def test_mediq_record_without_a_stated_sex(tmp_path: Path) -> None:
    record = {"id": 7, "question": "Which of the following is the most likely diagnosis?",
              "options": {"A": "Croup", "B": "Epiglottitis"}, "answer": "Croup",
              "facts": ["A 2-year-old child is brought in with a barking cough.", "The child has a low-grade fever.",
                        "There is inspiratory stridor when the child cries."]}
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cases, report = import_mediq(path)
    assert len(cases) == 1 and cases[0].demographics.sex == "U" and report.sex_not_stated


def test_cli_import_validate_and_run_in_each_mode(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from clinic_env.cli import app

    runner = CliRunner()
    both, alone = tmp_path / "both.jsonl", tmp_path / "alone.jsonl"
    both.write_text(json.dumps(_NEWBORN) + "\n" + json.dumps(_MECHANISM) + "\n", encoding="utf-8")
    alone.write_text(json.dumps(_MECHANISM) + "\n", encoding="utf-8")
    for src in (both, alone):
        result = runner.invoke(app, ["cases", "import", "--format", "agentclinic", str(src), str(tmp_path / f"{src.stem}.yaml")])
        assert result.exit_code == 0 and "diagnosis unmapped" in result.output, result.output
        assert runner.invoke(app, ["validate", str(tmp_path / f"{src.stem}.yaml")]).exit_code == 0
    run = runner.invoke(app, ["run", "--cases", str(tmp_path / "both.yaml"), "--doctor", "thorough", "--out", str(tmp_path / "r1")])
    assert run.exit_code == 0 and "1 case(s) skipped: gold unmapped" in run.output, run.output
    run = runner.invoke(app, ["run", "--cases", str(tmp_path / "alone.yaml"), "--doctor", "thorough", "--out", str(tmp_path / "r2")])
    assert run.exit_code == 2 and "use open mode" in run.output
    run = runner.invoke(app, ["run", "--mode", "open", "--cases", str(tmp_path / "alone.yaml"), "--doctor", "open-oracle",
                              "--out", str(tmp_path / "r3")])
    assert run.exit_code == 0, run.output
    record = json.loads((tmp_path / "r3" / "results.jsonl").read_text().splitlines()[0])
    assert record["verdict"]["method"] == "unmapped" and record.get("gold_diagnosis") is None
