"""Feedback (clinic_env.teaching.feedback) on a hand-checked consultation of card-nstemi: the
student asks a few questions, orders the ECG and the renal panel but no troponin, and names NSTEMI."""

from __future__ import annotations

from pathlib import Path

import pytest

import clinic_env
from clinic_env.records import EpisodeRecord
from clinic_env.teaching import PlaySession
from clinic_env.teaching.feedback import Feedback

INPUTS = ["when did it start?", "chest pain", "diabetes?", "ECG", "done", "heart attack", "pulmonary embolism",
          "done", "kidney function", "chest x-ray", "CT pulmonary angiogram", "done",
          "say: I think this is a <b>heart attack</b>; if the pain comes back, tell the nurse at once", "NSTEMI"]


@pytest.fixture(scope="module")
def session() -> PlaySession:
    s = PlaySession("card-nstemi", seed=0, persona="cooperative")
    for text in INPUTS:
        s.say(text)
    assert s.done
    return s


@pytest.fixture(scope="module")
def feedback(session: PlaySession) -> Feedback:
    return session.feedback()


def test_gold_and_confirmatory_evidence(feedback: Feedback) -> None:
    assert feedback.gold == "I21.4" and "NSTEMI" in feedback.gold_label
    assert feedback.final_diagnosis == "I21.4" and feedback.diagnosis_correct and feedback.finished
    # confirmatory evidence of card-nstemi: troponin and ECG; only the ECG was obtained
    assert {(e.id, e.done) for e in feedback.evidence} == {("lab.troponin", False), ("ecg.12lead", True)}
    assert "131 ng/L" in next(e.detail for e in feedback.evidence if e.id == "lab.troponin")


def test_questions_and_tests_asked_and_missed(feedback: Feedback, catalogue: clinic_env.Catalogue) -> None:
    asked = {q.id for q in feedback.questions if q.done}
    missed = {q.id for q in feedback.missed_questions}
    assert {"sx.chest_pain", "pmh.diabetes"} <= asked
    assert {"sx.diaphoresis", "hx.timing", "meds.current"} <= missed  # critical facts and rubric items
    sweat = next(q for q in feedback.questions if q.id == "sx.diaphoresis")
    assert sweat.detail.startswith("the patient would have said:") and "clammy" in sweat.detail
    assert {t.id for t in feedback.missed_tests} == {"exam.vitals", "lab.troponin"}
    assert {t.id for t in feedback.tests if t.done} == {"ecg.12lead", "lab.bmp"}
    assert [t.id for t in feedback.unnecessary] == ["img.ctpa"]  # the chest X-ray is optional, not unneeded
    ctpa = catalogue.tests["img.ctpa"].cost_usd
    assert feedback.unnecessary[0].detail == f"${ctpa:,.0f}"
    expected = sum(catalogue.tests[t].cost_usd for t in ("ecg.12lead", "lab.bmp", "img.cxr", "img.ctpa"))
    assert feedback.cost_usd == pytest.approx(expected) and feedback.budget_usd == 400


def test_rubric_reasons_timing_and_flags(feedback: Feedback) -> None:
    by_text = {r.criterion: r for r in feedback.rubric}
    trop = by_text["Measures high-sensitivity troponin (serial, 0/1-hour algorithm)"]
    assert trop.met is False and trop.reason == "rule: ordered: High-sensitivity cardiac troponin"
    ctpa = next(r for r in feedback.rubric if r.criterion.startswith("Orders a CT pulmonary angiogram"))
    assert ctpa.met is True and ctpa.points < 0  # a penalty incurred
    talk = [r for r in feedback.rubric if r.judged_by == "none"]
    assert talk and all(r.met is None and r.reason.startswith("needs an examiner") for r in talk)
    ecg = next(t for t in feedback.timing if t.item == "ecg.12lead")
    assert ecg.within == 20 and ecg.met and ecg.cycle is not None and ecg.cycle <= 20
    assert "dangerous_miss" not in feedback.flags and "unsupported_diagnosis" not in feedback.flags
    assert {m.id for m in feedback.must_not_miss_missing} == {"I20.0", "I71.0"}
    assert any("heart attack" in s for s in feedback.said) and not any("diabetes" in s for s in feedback.said)


def test_scripted_doctors_side_by_side(feedback: Feedback) -> None:
    assert [r.doctor for r in feedback.comparison] == ["student", "thorough", "info-gain"]
    student = feedback.comparison[0]
    assert student.final_diagnosis == "I21.4" and student.cost_usd == feedback.cost_usd and student.score is not None
    assert all(r.score is not None and r.questions > 0 for r in feedback.comparison[1:])


def test_markdown_html_and_save(feedback: Feedback, tmp_path: Path) -> None:
    md = feedback.markdown()
    for text in ("I21.4", "High-sensitivity cardiac troponin", "CT pulmonary angiography", "| thorough |",
                 "needs an examiner", "Total cost of tests: $"):
        assert text in md
    page = feedback.html()
    assert page.startswith("<!DOCTYPE html>") and "&lt;b&gt;heart attack&lt;/b&gt;" in page
    assert "<b>heart attack" not in page and "http" not in page  # escaped, nothing loaded from outside
    md_path, html_path = feedback.save(tmp_path / "fb")
    assert md_path.read_text(encoding="utf-8") == md and html_path.read_text(encoding="utf-8") == page


def test_from_a_saved_record_and_a_quit_session(session: PlaySession, feedback: Feedback,
                                                catalogue: clinic_env.Catalogue) -> None:
    record = EpisodeRecord.model_validate_json(session.record.to_json())
    again = Feedback.from_record(record, session.case, catalogue, session.engine.rubric)
    assert [(r.criterion, r.met) for r in again.rubric] == [(r.criterion, r.met) for r in feedback.rubric]
    assert again.missed_tests == feedback.missed_tests
    quitter = PlaySession("card-nstemi", seed=0, persona="cooperative")
    quitter.say("chest pain")
    quitter.pending_speech.clear()
    quitter.quit_requested = True  # as quit() does, without writing a file
    fb = quitter.feedback(compare=False)
    assert not fb.finished and fb.score is None and fb.final_diagnosis is None and len(fb.comparison) == 1
    assert "not scored" in fb.markdown() and "lab.troponin" in {t.id for t in fb.missed_tests}
