"""A MediQ record none of whose history the catalogue codes: its own first complaint-like history
item (a case-specific ``src.*`` item, the source's words) is the presenting complaint, and the case
runs in structured, text and open modes (fixture written for these tests:
tests/fixtures/mediq_no_mapped_symptom.jsonl)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import clinic_env
from clinic_env.envs.open import OpenConsultationEnv
from clinic_env.importers import catalogue_for, import_mediq
from clinic_env.importers.build import _demographics_only
from clinic_env.open.roles import OpenOracleDoctor
from clinic_env.schema.case import Case
from clinic_env.schema.loading import check_case_references

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "mediq_no_mapped_symptom.jsonl"


@pytest.fixture(scope="module")
def imported() -> tuple[dict[str, Case], clinic_env.Catalogue, list[str]]:
    cases, report = import_mediq(FIXTURE)
    return {c.id: c for c in cases}, catalogue_for(cases, clinic_env.load_catalogue()), report.skipped


def test_own_complaint_is_the_first_complaint_like_history_item(imported: tuple[dict[str, Case], clinic_env.Catalogue, list[str]]) -> None:
    cases, cat, skipped = imported
    assert set(cases) == {"mediq-nm-immune", "mediq-nm-rules", "mediq-nm-uncoded"}
    immune = cases["mediq-nm-immune"]
    # The demographics-only first fact is passed over; the complaint keeps its own id and words.
    assert immune.presenting_complaint == "src.since_infancy_he_has_had_repeated_oral_t"
    own = immune.extra_items[immune.presenting_complaint]
    assert own.kind == "history" and "repeated oral thrush" in own.text
    assert immune.chief_complaint == own.text and "oral thrush" in immune.opening_statement
    assert immune.gold_diagnosis == "D81.9" and not immune.history
    # A sentence with a negation ("no audit ... signed off") is not taken as the complaint.
    rules = cases["mediq-nm-rules"]
    assert rules.presenting_complaint.startswith("src.he_rewrites")
    assert rules.opening_statement.startswith("I rewrite each spreadsheet")
    assert rules.gold_diagnosis == "F60.5"
    for case in cases.values():
        assert check_case_references(case, cat, "fixture") == []
    # Nothing the patient says at all: still refused, with the reason.
    assert skipped == ["line 4: presenting_complaint: no symptom could be mapped"]


@pytest.mark.parametrize(("text", "only"), [
    ("The patient is a 2-year-old Portuguese-American boy.", True), ("A 45-year-old woman.", True),
    ("A 6-month-old boy of Somali origin.", True), ("Fever.", False),
    ("A 41-year-old accountant was moved off his team.", False), ("Since infancy he has had thrush.", False),
])
def test_demographics_only(text: str, only: bool) -> None:
    assert _demographics_only(text) is only


def test_case_model_requires_the_own_complaint_to_be_a_history_item(imported: tuple[dict[str, Case], clinic_env.Catalogue, list[str]]) -> None:
    case = imported[0]["mediq-nm-immune"]
    data = case.model_dump()
    with pytest.raises(ValueError, match="presenting_complaint"):
        Case.model_validate({**data, "presenting_complaint": "src.serum_immunoglobulins"})  # a test item
    with pytest.raises(ValueError, match="history"):
        Case.model_validate({**data, "presenting_complaint": "sx.fever"})  # no facts at all


def test_structured_mode_runs_without_a_complaint_slot(imported: tuple[dict[str, Case], clinic_env.Catalogue, list[str]]) -> None:
    cases, cat, _ = imported
    coded = [c for c in cases.values() if c.coded]
    env = clinic_env.doctor_env(cases=coded, catalogue=cat)
    for case in coded:
        env.reset(seed=0, options={"case_id": case.id})
        # No catalogue symptom is set as the complaint (the structured view has no slot for it).
        lay = env.engine.layout
        assert not env.engine.pub[lay.hx_yes:lay.hx_yes + lay.n_history].any()
        rng = np.random.default_rng(0)
        for _ in range(200):
            mask = env.action_masks()
            _, _, term, trunc, _ = env.step(int(rng.choice(np.flatnonzero(mask))))
            if term or trunc:
                break
        assert term or trunc


def test_text_mode_opening_tells_the_own_complaint(imported: tuple[dict[str, Case], clinic_env.Catalogue, list[str]]) -> None:
    cases, cat, _ = imported
    case = cases["mediq-nm-immune"]
    env = clinic_env.doctor_env(mode="text", cases=[case], catalogue=cat, persona="cooperative")
    obs, _ = env.reset(seed=0)
    assert "oral thrush" in obs["transcript"]
    obs, _, term, _, _ = env.step("Has there been anything else?")
    assert not term


@pytest.mark.parametrize("case_id", ["mediq-nm-immune", "mediq-nm-uncoded"])
def test_open_mode_runs_to_a_diagnosis(imported: tuple[dict[str, Case], clinic_env.Catalogue, list[str]], case_id: str) -> None:
    cases, _, _ = imported
    env = clinic_env.env(mode="open", cases=list(cases.values()))
    assert isinstance(env.unwrapped, OpenConsultationEnv)
    doctor = OpenOracleDoctor(env)
    env.reset(seed=0, options={"case_id": case_id})
    for agent in env.agent_iter():
        obs, _, term, trunc, _ = env.last()
        if term or trunc:
            env.step(None)
            continue
        assert agent == "doctor"
        env.step(doctor.act(obs))
    fields = env.unwrapped.record_fields()
    first = fields["messages"][0]
    assert first["role"] == "patient" and cases[case_id].opening_statement in first["content"]
    assert fields["end_reason"] == "diagnosis"
    # A coded gold is judged by its code; an uncoded one needs a judge model (none here).
    if cases[case_id].coded:
        assert fields["diagnosis_correct"] is True


def test_structured_mode_skips_the_uncoded_one_with_a_warning(imported: tuple[dict[str, Case], clinic_env.Catalogue, list[str]]) -> None:
    cases, cat, _ = imported
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = clinic_env.doctor_env(cases=list(cases.values()), catalogue=cat)
    assert any("mediq-nm-uncoded" in str(w.message) for w in caught)
    env.reset(seed=0)
