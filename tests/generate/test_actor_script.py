"""Actor-ready scripts: backstories, unlisted questions, vital-sign acting notes, brief vs script,
risk-factor checklist, legend; bundled and generated cases; the CLI with a case file."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import clinic_env
from clinic_env.cli import app
from clinic_env.generate import CaseGenerator, export_script, write_cases
from clinic_env.generate.actor import backstories, checklist_extras, unlisted_rules, vital_notes
from clinic_env.schema.case import Case

runner = CliRunner()


@pytest.fixture(scope="module")
def plastered() -> Case:
    made = CaseGenerator().generate_many(200, seed=0, conditions=["pulmonary-embolism"])
    return next(m.case for m in made if m.case.history["hx.immobilisation"].present
                and "plaster" in m.case.history["hx.immobilisation"].text)


def test_every_positive_item_has_a_backstory_and_the_injury_is_never_denied(
        plastered: Case, catalogue: clinic_env.Catalogue) -> None:
    stories = {topic: story for topic, _, story in backstories(plastered, catalogue)}
    positives = [h for h, f in plastered.history.items() if f.present and h != plastered.presenting_complaint]
    assert len(stories) == len(positives)
    assert "X-ray" in stories["Injury or trauma"]  # how it happened, what they were told
    rules = " ".join(unlisted_rules(plastered, catalogue))
    assert "healthy" in rules and "Never deny" in rules and "broke my" in rules
    md = export_script(plastered, "md")
    assert "deny anything not listed" not in md and "Anything not listed" not in md
    assert "Questions this script does not cover" in md and "Your backstory" in md


def test_vital_sign_acting_notes_follow_the_numbers(catalogue: clinic_env.Catalogue) -> None:
    gen = CaseGenerator()
    asthma = next(m.case for m in gen.generate_many(30, seed=0, conditions=["acute-severe-asthma"])
                  if "RR 2" in m.case.exam["exam.vitals"].text or "RR 3" in m.case.exam["exam.vitals"].text) \
        if "acute-severe-asthma" in gen.kb.conditions else None
    case = asthma or gen.generate("community-acquired-pneumonia", seed=0).case
    vitals = case.exam["exam.vitals"].text
    notes = vital_notes(case)
    if any(f"RR {n}/min" in vitals for n in range(25, 60)):
        assert any("short sentences" in n or "few words" in n for n in notes), (vitals, notes)
    febrile = case.model_copy(update={"exam": {**case.exam, "exam.vitals": case.exam["exam.vitals"].model_copy(
        update={"text": "HR 124/min, BP 118/70 mmHg, RR 28/min, SpO2 93% on air, T 39.4 °C"})}})
    febrile_notes = " ".join(vital_notes(febrile))
    assert "shivery" in febrile_notes and "short sentences" in febrile_notes and "racing" in febrile_notes


def test_checklist_rewards_the_risk_factors_present_and_pertinent_negatives(
        plastered: Case, catalogue: clinic_env.Catalogue) -> None:
    extras = checklist_extras(plastered, catalogue)
    asked = {r.check.asked for r in plastered.rubric if r.check is not None and r.check.asked}
    if "hx.immobilisation" not in asked:
        assert any("risk factor" in e and "plaster" in e for e in extras), extras
    assert any("pertinent negative" in e for e in extras)
    absent_risks = [h for h, f in plastered.history.items() if not f.present and f.criticality == 1 and h.startswith("pmh.")]
    for hid in absent_risks:  # an absent background item is not a risk factor to reward
        assert not any(catalogue.history[hid].label.lower() in e and "risk factor" in e for e in extras)


def test_bundled_and_generated_scripts_have_legend_and_consistent_brief(cases: list[clinic_env.Case]) -> None:
    bundled = next(c for c in cases if c.id == "card-nstemi")
    md = export_script(bundled, "md")
    assert "### Legend" in md and "SCRIPTED INCONSISTENCY" in md and "must not miss" in md
    for made in CaseGenerator().generate_many(120, seed=0):
        text = export_script(made.case, "md", made.persona)
        assert "the brief and the script disagree" not in text, made.case.id


def test_html_is_self_contained_and_escaped(plastered: Case) -> None:
    hostile = plastered.model_copy(update={"chief_complaint": "Chest pain <script>alert(1)</script> & \"quotes\""})
    page = export_script(hostile, "html")
    assert "<script" not in page and "&lt;script&gt;" in page and "&amp;" in page
    assert "http://" not in page and "https://" not in page and "<link" not in page and "<style>" in page


def test_cli_exports_a_case_file(tmp_path: Path, plastered: Case) -> None:
    file = tmp_path / "one.yaml"
    write_cases([plastered], file)
    out = tmp_path / "sp.html"
    result = runner.invoke(app, ["cases", "export", str(file), "--format", "html", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("<!DOCTYPE html>") and "Your backstory" in out.read_text()
    many = tmp_path / "many.jsonl"
    write_cases([plastered, CaseGenerator().generate("appendicitis", seed=1).case], many)
    assert runner.invoke(app, ["cases", "export", str(many)]).exit_code == 2
    picked = runner.invoke(app, ["cases", "export", plastered.id, "--cases", str(many), "--format", "md"])
    assert picked.exit_code == 0 and "# OSCE station" in picked.output
