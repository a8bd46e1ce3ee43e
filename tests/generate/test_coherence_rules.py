"""The coherence rules (data/coherence/rules.yaml): 1,000 generated cases (seed 0) break none, each
rule catches a hand-broken case, and the difficulty levels mean what they say."""

from __future__ import annotations

import statistics
import time
from typing import Any

import pytest

import clinic_env
from clinic_env.generate import CaseGenerator, GeneratedCase, check_coherence
from clinic_env.generate.coherence import check_rules
from clinic_env.generate.rules import load_rules, natural_duration, natural_durations
from clinic_env.schema.case import Case, Fact, Finding


@pytest.fixture(scope="module")
def gen() -> CaseGenerator:
    return CaseGenerator()


@pytest.fixture(scope="module")
def thousand(gen: CaseGenerator) -> tuple[list[GeneratedCase], float]:
    start = time.perf_counter()
    made = gen.generate_many(1000, seed=0)
    return made, time.perf_counter() - start


def test_1000_generated_cases_seed_0_have_no_coherence_failures(
        gen: CaseGenerator, thousand: tuple[list[GeneratedCase], float], catalogue: clinic_env.Catalogue) -> None:
    made, elapsed = thousand
    failures = {m.case.id: p for m in made if (p := check_coherence(m.case, m.condition, catalogue))}
    assert not failures, (len(failures), list(failures.items())[:5])
    assert elapsed < 60, f"generating 1,000 cases took {elapsed:.1f} s"


# ---------------------------------------------------------------------------- hand-broken cases
def _case(gen: CaseGenerator, condition: str, **kwargs: Any) -> Case:
    return gen.generate(condition, seed=kwargs.pop("seed", 0), **kwargs).case


def _with_fact(case: Case, hid: str, text: str, present: bool = True) -> Case:
    return case.model_copy(update={"history": {**case.history, hid: Fact(text=text, present=present, criticality=1)}})


def _with_finding(case: Case, tid: str, text: str, abnormal: bool = True) -> Case:
    group = "exam" if tid in case.exam or tid.startswith("exam.") else "tests"
    return case.model_copy(update={group: {**getattr(case, group), tid: Finding(text=text, abnormal=abnormal)}})


def _vitals(case: Case, temp: float) -> Case:
    return _with_finding(case, "exam.vitals", f"HR 88/min, BP 128/76 mmHg, RR 16/min, SpO2 98% on air, T {temp:g} °C",
                         abnormal=temp >= 38)


def _rules_broken(case: Case) -> set[str]:
    return {p.split(":")[0] for p in check_rules(case)}


def test_the_rules_file_loads_and_the_generated_cases_pass_it(gen: CaseGenerator) -> None:
    rules = load_rules()
    assert rules.laterality.regions and rules.history_limits and rules.durations
    assert not check_rules(_case(gen, "community-acquired-pneumonia"))


def test_laterality_catches_opposite_sides_across_exam_and_imaging(gen: CaseGenerator) -> None:
    case = _case(gen, "community-acquired-pneumonia", difficulty=1)
    side = "left" if "left" in case.tests["img.cxr"].text.lower() else "right"
    other = "right" if side == "left" else "left"
    broken = _with_finding(case, "exam.respiratory", f"Coarse crackles at the {other} base")
    assert "laterality" in _rules_broken(broken)
    # The hemisphere of a stroke is opposite the weak arm: that is coherent.
    tia = _case(gen, "transient-ischaemic-attack", seed=3)
    assert "laterality" not in _rules_broken(tia)


def test_history_and_text_limits_catch_impossible_patients(gen: CaseGenerator) -> None:
    young = _case(gen, "community-acquired-pneumonia", age=24)
    assert "history-limits" in _rules_broken(_with_fact(young, "pmh.copd", "I've had COPD for years."))
    old = _case(gen, "community-acquired-pneumonia", age=80)
    assert "text-limits" in _rules_broken(_with_fact(old, "social.living_situation", "With my partner and our two children."))
    assert "text-limits" not in _rules_broken(_with_fact(old, "social.living_situation", "I live with my wife."))


def test_brief_symptoms_and_fever_rules(gen: CaseGenerator) -> None:
    case = _case(gen, "migraine-with-aura")
    briefed = case.model_copy(update={"chief_complaint": "Headache and fever for 2 days"})
    no_fever = _vitals(_with_fact(briefed, "sx.fever", "No, I haven't had a temperature.", present=False), 37.2)
    broken = _rules_broken(no_fever)
    assert {"brief-symptoms", "fever-claimed"} <= broken
    febrile = _vitals(_with_fact(case, "sx.fever", "No, no fever.", present=False), 39.1)
    assert {"no-fever-stated", "fever-denied-febrile"} <= _rules_broken(febrile)
    # A fever at home, normal now (paracetamol): coherent.
    assert not {"fever-claimed", "fever-denied-febrile"} & _rules_broken(
        _vitals(_with_fact(briefed, "sx.fever", "I've been hot and shivery.", present=True), 37.2))


def test_initial_assessment_is_never_optional(gen: CaseGenerator) -> None:
    case = _case(gen, "pulmonary-embolism")
    assert {"exam.vitals", "bedside.pulse_oximetry"} <= set(case.essential_tests)  # hypoxic
    optional = case.model_copy(update={"essential_tests": [t for t in case.essential_tests if t != "exam.vitals"],
                                       "optional_tests": ["exam.vitals", *case.optional_tests]})
    assert "initial-assessment" in _rules_broken(optional)
    hypoxic = _with_finding(case, "bedside.pulse_oximetry", "SpO2 89% on air")
    dropped = hypoxic.model_copy(update={"essential_tests": [t for t in case.essential_tests if t != "bedside.pulse_oximetry"]})
    assert "initial-assessment" in _rules_broken(dropped)


def test_a_leg_in_plaster_needs_its_injury_and_its_exam_card(gen: CaseGenerator) -> None:
    made = [m.case for m in gen.generate_many(200, seed=0, conditions=["pulmonary-embolism"])]
    plastered = [c for c in made if "plaster" in c.history["hx.immobilisation"].text and c.history["hx.immobilisation"].present]
    assert plastered, "no PE case immobilised in plaster in 200 draws"
    for case in plastered:  # the generator tells the injury and puts the cast on the exam card
        assert any("broke" in f.text for f in case.history.values() if f.present)
        if "exam.calves" in case.exam:
            assert "plaster" in case.exam["exam.calves"].text
    bare = plastered[0]
    history = {h: f for h, f in bare.history.items() if h != "hx.trauma"}
    broken = bare.model_copy(update={"history": history})
    broken = _with_finding(broken, "exam.calves", "Calves soft and non-tender; no swelling", abnormal=False)
    assert "plaster-cast" in _rules_broken(broken)


def test_units_and_durations(gen: CaseGenerator) -> None:
    case = _case(gen, "iron-deficiency-anaemia") if "iron-deficiency-anaemia" in gen.kb.conditions else _case(gen, "appendicitis")
    cbc = case.tests.get("lab.cbc")
    assert cbc is None or "g/dL" not in cbc.text
    assert "units" in _rules_broken(_with_finding(case, "lab.cbc", "Hb 9.8 g/dL, WCC 7.1 x10^9/L"))
    assert "units" not in _rules_broken(_with_finding(case, "lab.cbc", "Hb 98 g/L, WCC 7.1 x10^9/L"))
    assert "durations" in _rules_broken(case.model_copy(update={"chief_complaint": "Abdominal pain for 44 hours"}))
    assert natural_duration(44, "hour") == "2 days"
    assert natural_duration(95, "minute") == "2 hours"
    assert natural_duration(1, "day") == "1 day"
    assert natural_duration(21, "day") == "3 weeks"
    assert natural_durations("for 6 hours, then 44 hours ago") == "for 6 hours, then 2 days ago"


# ---------------------------------------------------------------------------- difficulty
def _typical_shown(m: GeneratedCase) -> float:
    """The share of the condition's typical features (likelihood 0.5-0.95) the patient has."""
    typical = [h for h, e in m.condition.history.items() if 0.5 <= e.p < 0.95 and h in m.case.history
               and h != m.case.presenting_complaint]
    return sum(m.case.history[h].present for h in typical) / len(typical) if typical else 1.0


def test_difficulty_levels_mean_what_they_say(gen: CaseGenerator) -> None:
    by_level = {d: gen.generate_many(140, seed=5, difficulty=d) for d in (1, 2, 3)}
    clues = {d: statistics.mean(_typical_shown(m) for m in made) for d, made in by_level.items()}
    assert clues[1] == 1.0 and clues[1] > clues[2] > clues[3], clues  # fewer typical features as it gets harder
    vague = {d: statistics.mean(sum(1 for f in m.case.history.values() if f.vague) for m in made)
             for d, made in by_level.items()}
    assert vague[1] == 0 < vague[2] < vague[3], vague  # more noise
    contra = {d: sum(any(f.contradiction for f in m.case.history.values()) for m in made) for d, made in by_level.items()}
    assert contra[1] == 0 < contra[2] < contra[3], contra
    width = {d: statistics.mean(len(m.case.differential) for m in made) for d, made in by_level.items()}
    assert width[1] < width[2] < width[3], width  # a wider differential to consider
    # Classic cases take the commonest presentation; atypical ones draw among all of them.
    presentations = {d: {m.case.presenting_complaint for m in made} for d, made in by_level.items()}
    assert len(presentations[3]) >= len(presentations[1])


def test_conflicting_wording_and_unfilled_placeholders_are_caught(gen: CaseGenerator) -> None:
    case = _case(gen, "sulfonylurea-hypoglycaemia", seed=477)
    assert not {"conflicts", "placeholders"} & _rules_broken(case)
    alone = _with_fact(case.model_copy(update={"opening_statement": "My husband found me muddled this morning."}),
                       "social.living_situation", "I live on my own.")
    assert "conflicts" in _rules_broken(alone)
    assert "placeholders" in _rules_broken(_with_fact(case, "meds.current", "I take {gliclazide|glimepiride}."))
    # The generator never says "I live on my own" after "my husband found me".
    for made in gen.generate_many(60, seed=0, conditions=["sulfonylurea-hypoglycaemia"]):
        assert "conflicts" not in _rules_broken(made.case), made.case.id
