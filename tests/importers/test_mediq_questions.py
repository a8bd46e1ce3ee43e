"""MediQ question kinds: only questions that ask for the patient's condition become cases; a step,
test, treatment or criteria question that names "the diagnosis" or "the cause" is skipped, and a
cause question becomes a case only when its answer names a condition (fixture written for these
tests: tests/fixtures/mediq_questions.jsonl)."""

from __future__ import annotations

from pathlib import Path

import pytest

from clinic_env.importers import import_mediq
from clinic_env.importers.mediq import question_kind

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "mediq_questions.jsonl"


@pytest.mark.parametrize(("question", "kind"), [
    ("Which of the following is the most likely diagnosis?", "diagnosis"),
    ("What is the most likely diagnosis in this patient?", "diagnosis"),
    ("The child likely has:", "diagnosis"),
    ("Which of the following disorders does this patient potentially suffer from?", "diagnosis"),
    ("Which of the following conditions is the most likely cause of her symptoms?", "diagnosis"),
    ("What is the most likely cause of his condition?", "cause"),
    ("Which of the following represents the most likely etiology of her anemia.", "cause"),
    ("Of the following organisms, infection with which one is most consistent with her symptoms?", "cause"),
    ("Which of the following is the best treatment for the most likely cause for this patient's illness?", None),
    ("Which of the following is the next best diagnostic step?", None),
    ("What is the most logical diagnostic test for this patient?", None),
    ("Which test would best confirm the diagnosis?", None),
    ("What is the minimum amount of time this patient must exhibit these symptoms to meet the diagnostic "
     "criteria for dysthymia?", None),
    ("The most likely cause of this patient's symptoms is associated with which of the following enzymatic "
     "reactions?", None),
    ("Which of the following characteristics best describes the most likely causal pathogen?", None),
    ("Which of the following findings indicates that the cause of shock is cardiogenic?", None),
    ("Which of the following is the most likely underlying mechanism of this patient's fall?", None),
    ("Which of the following is the most important risk factor for the development of this condition?", None),
    ("Which of the following serum markers is most strongly associated with this patient's condition?", None),
    ("Which of the following is the most appropriate next step in management?", None),
])
def test_question_kind(question: str, kind: str | None) -> None:
    assert question_kind(question) == kind


def test_only_diagnosis_questions_become_cases() -> None:
    cases, report = import_mediq(FIXTURE)
    golds = {c.id: (c.gold_diagnosis, c.gold_text) for c in cases}
    assert golds == {
        "mediq-q-vt": ("I47.2", "Monomorphic ventricular tachycardia"),  # a cause question answered by a condition
        "mediq-q-has": ("J18.9", "Pneumonia"),  # "The patient most likely has:"
        "mediq-q-anaemia": ("D50.9", "Iron deficiency anemia"),  # the cause named with the condition asked about
        "mediq-q-suffer": ("G43.9", "Migraine"),
    }
    reasons = {s.split(":")[0]: s for s in report.skipped}
    assert set(reasons) == {"line 2", "line 3", "line 6", "line 7"}
    assert "names no condition" in reasons["line 6"]  # a mechanism answer to a cause question
    assert all("not a diagnosis question" in reasons[k] for k in ("line 2", "line 3", "line 7"))
    assert report.counts["not_diagnosis_questions"] == 4
