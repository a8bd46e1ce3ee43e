"""AgentClinic OSCE and MediQ importers: mapping, free text kept, reports, CLI, end-to-end runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import clinic_env
from clinic_env.cli import app
from clinic_env.importers import import_agentclinic, import_cases, import_mediq
from clinic_env.importers.build import catalogue_for
from clinic_env.importers.mapping import CatalogueMapper, looks_abnormal, normalise_name
from clinic_env.importers.voice import first_person
from clinic_env.rollout import run_batch

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
AC = FIXTURES / "agentclinic_osce.jsonl"
MQ = FIXTURES / "mediq.jsonl"
runner = CliRunner()


@pytest.fixture(scope="module")
def mapper(catalogue: clinic_env.Catalogue) -> CatalogueMapper:
    return CatalogueMapper(catalogue)


@pytest.mark.parametrize(("name", "tid"), [
    ("Chest_X-Ray", "img.cxr"), ("Chest_X-ray", "img.cxr"), ("chest radiograph", "img.cxr"), ("CBC", "lab.cbc"),
    ("Complete_Blood_Count", "lab.cbc"), ("Hemoglobin", "lab.cbc"), ("ECG", "ecg.12lead"), ("EKG", "ecg.12lead"),
    ("CT_Pulmonary_Angiogram", "img.ctpa"), ("D-Dimer", "lab.d_dimer"), ("Thyroid_Function_Tests", "lab.tsh_ft4"),
    ("Electrolytes", "lab.bmp"), ("Urinalysis", "bedside.urinalysis"), ("Liver function test", "lab.lft"),
])
def test_test_names_map_onto_the_catalogue(mapper: CatalogueMapper, name: str, tid: str) -> None:
    assert mapper.map_test(name) == tid


@pytest.mark.parametrize(("name", "tid"), [("Vital_Signs", "exam.vitals"), ("Neurological_Examination", "exam.neurological"),
                                           ("Abdominal_Examination", "exam.abdominal"), ("HEENT", "exam.ent")])
def test_exam_names_map(mapper: CatalogueMapper, name: str, tid: str) -> None:
    assert mapper.map_test(name, "exam") == tid


@pytest.mark.parametrize(("text", "code"), [
    ("Myasthenia Gravis", "G70.0"), ("Acute Appendicitis", "K35.8"), ("Pulmonary Embolism", "I26.9"),
    ("Community-acquired pneumonia", "J18.9"), ("Graves disease", "E05.0"), ("Gout", "M10.9"),
    ("Ectopic pregnancy", "O00.1"), ("Toxic multinodular goiter", "E05.2"), ("Septic arthritis", "M00.9"),
    # Outside the curated catalogue, from the full WHO vocabulary:
    ("Lyme disease", "A69.2"), ("Sarcoidosis", "D86.9"),
    # Refuses to guess: no code names this (not a diagnosis the vocabulary can hold).
    ("Impaired erythropoietin production", None),
])
def test_diagnoses_map_to_icd10(mapper: CatalogueMapper, text: str, code: str | None) -> None:
    assert mapper.map_diagnosis(text) == code


def test_history_sentences_with_negation(mapper: CatalogueMapper) -> None:
    hits = {h.hid: h.present for h in mapper.map_history("Reports headache, but denies fever, vomiting, or neck stiffness.")}
    assert hits["sx.headache"] is True
    assert hits["sx.fever"] is False and hits["sx.vomiting"] is False and hits["sx.neck_stiffness"] is False
    assert {h.hid for h in mapper.map_history("Her mother has thyroid disease.")} == {"fam.thyroid"}


def test_helpers() -> None:
    assert normalise_name("Chest_X-Ray") == "chest x ray"
    assert first_person("She smokes 10 cigarettes a day and lives with her husband.") == \
        "I smoke 10 cigarettes a day and live with my husband."
    assert looks_abnormal("WBC 16,500/uL") and not looks_abnormal("WBC 7,200/uL")
    assert looks_abnormal("CRP: 190 mg/L") and not looks_abnormal("Negative for nitrites and leukocytes")


def test_agentclinic_import(catalogue: clinic_env.Catalogue) -> None:
    cases, report = import_agentclinic(AC)
    assert report.records == 5 and report.imported >= 4 and len(cases) == report.imported
    c = report.counts
    assert c["history_mapped"] > 30 and c["tests_mapped"] >= 10 and c["diagnoses_mapped"] == 4
    assert c["tests_case_specific"] >= 1 and c["tests_unmapped"] == 0 and report.unmapped["tests"]
    by_id = {case.id.split("-")[1]: case for case in cases}
    mg = by_id["myasthenia"]
    assert mg.gold_diagnosis == "G70.0" and mg.demographics.sex == "F" and mg.demographics.age == 34
    assert mg.presenting_complaint == "sx.diplopia" and "exam.neurological" in mg.exam
    found = mg.lookup_item("acetylcholine receptor antibodies")  # no catalogue item: kept case-specific
    assert found is not None and found[0].startswith("src.") and found[1].abnormal
    assert mg.unlisted == "not_available" and mg.source_text and "Non-smoker" in mg.source_text
    assert mg.history["social.smoking"].present is False
    pneumonia = next(case for case in cases if case.gold_diagnosis == "J18.9")
    assert pneumonia.tests["img.cxr"].abnormal and pneumonia.exam["exam.vitals"].abnormal
    pe = next(case for case in cases if case.gold_diagnosis == "I26.9")
    assert pe.tests["img.cxr"].abnormal is False and pe.tests["img.ctpa"].abnormal
    for case in cases:
        assert not clinic_env.patients.LeakGuard(case, catalogue).leaks(case.opening_statement)


def test_mediq_import() -> None:
    cases, report = import_mediq(MQ)
    assert report.records == 5 and report.imported >= 3 and report.counts["not_diagnosis_questions"] == 1
    assert any("not a diagnosis question" in s for s in report.skipped)
    ectopic = next(c for c in cases if c.gold_diagnosis == "O00.1")
    assert ectopic.demographics.sex == "F" and ectopic.tests["bedside.urine_hcg"].abnormal
    assert {d.code for d in ectopic.differential} >= {"O00.1", "K35.8", "N83.5", "N73.9"}
    assert ectopic.exam["exam.vitals"].text.startswith("HR 104/min")
    with pytest.raises(ValueError, match="format"):
        import_cases(MQ, "xml")


@pytest.mark.parametrize(("fmt", "path"), [("agentclinic", AC), ("mediq", MQ)])
def test_cli_import_then_run_with_the_info_gain_doctor(tmp_path: Path, fmt: str, path: Path) -> None:
    out, rep = tmp_path / "cases.yaml", tmp_path / "report.json"
    result = runner.invoke(app, ["cases", "import", "--format", fmt, str(path), str(out), "--report", str(rep)])
    assert result.exit_code == 0, result.output
    assert "mapped" in result.output and "unmapped" in result.output
    assert json.loads(rep.read_text())["imported"] >= 3
    cases, _ = import_cases(path, fmt)
    cat = catalogue_for(cases, clinic_env.load_catalogue())
    records = run_batch(cases, ["info-gain"], seed=0, env_kwargs={"catalogue": cat})
    assert records and all(not r["errors"] and r["end_reason"] for r in records)
    in_catalogue = [c for c in cases if c.gold_diagnosis in clinic_env.load_catalogue().diagnoses]
    if len(in_catalogue) == len(cases):  # golds from the full vocabulary need loading to accept them
        assert runner.invoke(app, ["validate", str(out)]).exit_code == 0
        run = runner.invoke(app, ["run", "--cases", str(out), "--doctor", "info-gain", "--out", str(tmp_path / "run")])
        assert run.exit_code == 0, run.output


def test_cli_import_rejects_an_unknown_format(tmp_path: Path) -> None:
    result = runner.invoke(app, ["cases", "import", "--format", "xml", str(AC), str(tmp_path / "x.yaml")])
    assert result.exit_code == 2
