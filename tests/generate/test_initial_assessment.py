"""Generated cases list pulse oximetry and the GCS, consistent with their own texts."""

from __future__ import annotations

import re

import pytest

from clinic_env.generate import CaseGenerator
from clinic_env.generate.coherence import GCS_STATED, SPO2_STATED, initial_assessment_problems
from clinic_env.generate.knowledge import load_knowledge


@pytest.fixture(scope="module")
def gen() -> CaseGenerator:
    return CaseGenerator()


def test_300_generated_cases_have_a_coherent_initial_assessment(gen: CaseGenerator) -> None:
    made = gen.generate_many(300, seed=0)
    assert {m.condition.id for m in made} == set(gen.kb.conditions)
    failures = [(m.case.id, p) for m in made if (p := initial_assessment_problems(m.case))]
    assert not failures, failures[:10]
    abnormal_spo2 = abnormal_gcs = 0
    for m in made:
        case = m.case
        pulse, gcs = case.tests["bedside.pulse_oximetry"], case.exam["exam.gcs"]
        said = SPO2_STATED.search(case.exam["exam.vitals"].text)
        found = SPO2_STATED.search(pulse.text)
        assert said and found and found.group(1, 2) == said.group(1, 2), (case.id, pulse.text)
        spo2 = int(found.group(1))
        assert pulse.abnormal == (spo2 < 94) and pulse.grade == (None if spo2 >= 94 else "mild" if spo2 >= 92 else "marked")
        own = GCS_STATED.search(gcs.text)
        assert own and own.group(2), (case.id, gcs.text)
        total = int(own.group(1))
        assert sum(int(own.group(i)) for i in (2, 3, 4)) == total
        assert gcs.abnormal == (total < 15) and gcs.grade == (None if total == 15 else "mild" if total >= 13 else "marked")
        stated = {int(n) for t, f in {**case.exam, **case.tests}.items() if t != "exam.gcs"
                  for n, *_ in GCS_STATED.findall(f.text)}
        assert stated <= {total}, (case.id, stated, gcs.text)
        assert ("paediatric scale" in gcs.text) == (case.demographics.age < 5)
        abnormal_spo2 += pulse.abnormal
        abnormal_gcs += gcs.abnormal
    # The sample holds hypoxic and drowsy patients, not only normal readings.
    assert abnormal_spo2 >= 10 and abnormal_gcs >= 5


def test_hypoxic_pneumonia_pulse_oximetry_matches_the_vital_signs(gen: CaseGenerator) -> None:
    for seed in range(40):
        case = gen.generate("community-acquired-pneumonia", seed=seed).case
        spo2 = re.search(r"SpO2 (\d+)% on air", case.exam["exam.vitals"].text)
        assert spo2 is not None
        pulse = case.tests["bedside.pulse_oximetry"]
        assert pulse.text.startswith(f"SpO2 {spo2.group(1)}% on air")
        if int(spo2.group(1)) < 94:
            assert pulse.abnormal and pulse.grade in ("mild", "marked")
            return
    pytest.fail("no hypoxic pneumonia in 40 seeds")


def test_gcs_follows_the_neurological_examination_and_cue_words(gen: CaseGenerator) -> None:
    for seed in range(30):
        case = gen.generate("hsv-encephalitis", seed=seed).case
        m = re.search(r"GCS (\d+)", case.exam["exam.neurological"].text)
        assert m is not None and case.exam["exam.gcs"].text.startswith(f"GCS {m.group(1)} (E")
    drowsy = [c for c in (gen.generate("gram-negative-urosepsis", seed=s).case for s in range(20))
              if "drowsy" in c.exam["exam.general"].text and "GCS" not in c.exam["exam.general"].text]
    assert drowsy and all(c.exam["exam.gcs"].text.startswith("GCS 14 (E4 V4 M6)") for c in drowsy)


def test_under_fives_get_the_paediatric_verbal_scale(gen: CaseGenerator) -> None:
    infant = gen.generate("bronchiolitis", seed=1).case
    assert infant.demographics.age < 1
    assert "coos and babbles" in infant.exam["exam.gcs"].text
    toddler = gen.generate("croup", seed=1, age=3).case
    text = toddler.exam["exam.gcs"].text
    assert "on the paediatric scale" in text and "says words" in text and "normal spontaneous movements" in text
    adult = gen.generate("community-acquired-pneumonia", seed=1).case
    assert adult.exam["exam.gcs"].text == "GCS 15 (E4 V5 M6): eyes open spontaneously, orientated, obeys commands"


def test_thresholds_are_data() -> None:
    variables = load_knowledge().variables
    assert variables["spo2_abnormal_below"] == {"any": "94"}
    assert variables["spo2_marked_below"] == {"any": "92"}
    assert variables["gcs_marked_below"] == {"any": "13"}


def test_the_coherence_rule_catches_a_contradiction(gen: CaseGenerator) -> None:
    case = gen.generate("community-acquired-pneumonia", seed=3).case
    assert not initial_assessment_problems(case)
    tests = dict(case.tests)
    tests["bedside.pulse_oximetry"] = tests["bedside.pulse_oximetry"].model_copy(
        update={"text": "SpO2 97% on room air with a good plethysmograph trace", "abnormal": False, "grade": None})
    exam = dict(case.exam)
    exam["exam.neurological"] = exam["exam.gcs"].model_copy(update={"text": "GCS 11; no focal deficit", "abnormal": True})
    broken = case.model_copy(update={"tests": tests, "exam": exam})
    problems = initial_assessment_problems(broken)
    spo2 = SPO2_STATED.search(case.exam["exam.vitals"].text)
    assert spo2 is not None
    if spo2.group(1) != "97":
        assert any("pulse oximetry" in p for p in problems), problems
    assert any("GCS 15" in p and "GCS 11" in p for p in problems), problems
