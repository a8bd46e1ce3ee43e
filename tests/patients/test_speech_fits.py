"""Patient speech that fits (issue 8 item 8): generic answers fit the question's type and the
patient's age, sex and informant; tangents never repeat; no patient line names a test.

The episode checks play every bundled case with every bundled persona (the doctor asks random
history items, the patient answers in random legal modes weighted towards the generic ones) and
judge what the patient said with the independent rule tables of ``speechcheck.py``.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from speechcheck import (
    Episode,
    Said,
    catalogue_test_terms,
    episodes,
    named_tests,
    person_problem,
    play,
    scripted_texts,
    vague_problem,
)

import clinic_env
from clinic_env.core.speech import render_answer
from clinic_env.patients.answers import fit_answer, item_answers
from clinic_env.patients.question_types import line_types, question_type, vague_lines
from clinic_env.patients.session import PatientSession
from clinic_env.patients.speaker import Speaker, line_fits
from clinic_env.schema.persona import Noise, Persona, Phrases

QUESTIONS = 25  # history questions per episode


@pytest.fixture(scope="module")
def played(cases: list[clinic_env.Case]) -> list[Episode]:
    """One episode (its own seed) of each of the 64 cases x 15 personas."""
    personas = [p.id for p in clinic_env.load_personas()]
    return list(episodes(cases, personas, per_pair=1, questions=QUESTIONS))


def _generic(eps: list[Episode]) -> list[Said]:
    return [s for ep in eps for s in ep.said if s.kind != "answer" or s.source not in ("fact", "contradiction")]


def _report(problems: list[tuple[str, Said]]) -> str:
    return "\n".join(f"{why}: {s.case.id} / {s.persona} / seed {s.seed} / {s.item} / {s.kind}: {s.text!r}"
                     for why, s in problems[:15])


# ----------------------------------------------------------------------- question-typed vague answers
def test_every_item_has_a_question_type_and_every_persona_vague_line_a_fit(catalogue: clinic_env.Catalogue) -> None:
    types = {h: question_type(item) for h, item in catalogue.history.items()}
    assert types["sx.photophobia"] == "yesno" and types["hx.onset"] == "time" and types["hx.site"] == "site"
    assert types["hx.severity"] == "severity" and types["social.alcohol"] == "quantity"
    assert types["hx.character"] == "character" and types["meds.current"] == "medication"
    for persona in clinic_env.load_personas():
        untyped = [line for line in persona.phrases.vague if not line_types(line)]
        assert not untyped, f"{persona.id}: vague lines that fit no question type: {untyped}"


def test_a_vague_answer_to_a_yes_no_question_is_not_about_time(catalogue: clinic_env.Catalogue) -> None:
    low = next(p for p in clinic_env.load_personas() if p.id == "low-literacy")
    item = catalogue.history["sx.photophobia"]
    said = {render_answer("vague", item, None, low, np.random.default_rng(s), None).text for s in range(200)}
    assert not any("while" in s.lower() or "little white tablet" in s.lower() for s in said)
    assert said <= set(vague_lines(item, low.phrases.vague)) and len(said) >= 3
    onset = {render_answer("vague", catalogue.history["hx.onset"], None, low, np.random.default_rng(s), None).text
             for s in range(200)}
    assert "A while, I think. I don't keep track." in onset and "Sort of, maybe." not in onset


def test_vague_answers_fit_the_question_type_over_every_case_and_persona(
        played: list[Episode], catalogue: clinic_env.Catalogue) -> None:
    vague = [s for s in _generic(played) if s.kind == "answer" and s.source == "vague"]
    problems = [(why, s) for s in vague if (why := vague_problem(s, catalogue))]
    assert len(vague) > 2000
    assert not problems, f"{len(problems)} of {len(vague)} vague answers misfit:\n{_report(problems)}"


# ------------------------------------------------------------------------------------- tangents
def test_tangents_never_repeat_within_an_episode(played: list[Episode], cases: list[clinic_env.Case]) -> None:
    repeats = [(s.text, s) for ep in played for i, s in enumerate(t for t in ep.said if t.kind == "tangent")
               if s.text in [t.text for t in ep.said if t.kind == "tangent"][:i]]
    assert not repeats, _report(repeats)
    # A persona that always wanders says each of its tangents once, then stays on topic.
    lines = ("My cat is poorly.", "The bus was late.", "I've just moved house.")
    chatty = Persona(id="chatty", name="Chatty", noise=Noise(tangential=1.0), phrases=Phrases(tangents=lines))
    case = next(c for c in cases if c.id == "pulm-cap")
    env = clinic_env.raw_env(cases=[case], persona=chatty, max_cycles=400)
    said = play(case, "chatty", 3, 80, env).said
    tangents = [s.text for s in said if s.kind == "tangent"]
    assert sorted(tangents) == sorted(lines)
    answers = [s for s in said if s.kind == "answer"]
    assert len(answers) > 20  # ...and the rest of the answers carry none


# -------------------------------------------------------------------- age, sex and informant
def test_generic_speech_fits_the_patients_age_sex_and_informant(played: list[Episode]) -> None:
    said = _generic(played)
    problems = [(why, s) for s in said if (why := person_problem(s))]
    assert len(said) > 10000
    assert not problems, f"{len(problems)} of {len(said)} generic texts misfit the patient:\n{_report(problems)}"


def test_applicability_rules_by_example(catalogue: clinic_env.Catalogue) -> None:
    toddler = Speaker(1.5, "F", "parent")
    old_man = Speaker(72, "M", "patient")
    daughter_for_mother = Speaker(82, "F", "relative")
    assert line_fits("My mum thinks it's just teething.", toddler)
    assert not line_fits("My mum thinks it's just teething.", old_man)
    assert not line_fits("Am I going to be all right?", toddler) and line_fits("Am I going to be all right?", old_man)
    assert not line_fits("Shouldn't we do an ECG first?", old_man)
    assert item_answers(catalogue.history["obgyn.lmp"], old_man)[0].startswith("I'm a man")
    assert "went through the change" in item_answers(catalogue.history["obgyn.lmp"], daughter_for_mother)[0]
    assert item_answers(catalogue.history["obgyn.lmp"], Speaker(30, "F", "patient")) == ()
    rng = np.random.default_rng(0)
    cooperative = next(p for p in clinic_env.load_personas() if p.id == "cooperative")
    smoke = catalogue.history["social.smoking"]
    assert "little" in fit_answer(smoke.default_answer, "default", smoke, cooperative, toddler, rng) \
        or "too young" in fit_answer(smoke.default_answer, "default", smoke, cooperative, toddler, rng)
    tummy = catalogue.history["sx.abdominal_pain"]
    said = fit_answer(tummy.default_answer, "default", tummy, cooperative, toddler, rng)
    assert "my tummy" not in said.lower() and said.startswith("No")
    fine = fit_answer("No, not that I know of.", "default", catalogue.history["fam.cad"], cooperative, toddler, rng)
    assert fine == "No, not that I know of."


# ------------------------------------------------------------------------------------ test names
def test_no_persona_line_names_a_test(catalogue: clinic_env.Catalogue) -> None:
    terms = catalogue_test_terms(catalogue)
    assert {"troponin", "ecg", "mri", "ct", "x-ray", "blood tests"} <= set(terms)
    found = []
    for persona in clinic_env.load_personas():
        for line in (*persona.interruption.questions, *persona.phrases.tangents, *persona.phrases.vague,
                     *persona.phrases.withhold):
            if hits := named_tests(line, terms, ""):
                found.append((persona.id, line, hits))
    assert not found, found


def test_patient_speech_names_no_test_beyond_the_cases_own_words(
        played: list[Episode], catalogue: clinic_env.Catalogue) -> None:
    terms = catalogue_test_terms(catalogue)
    allowed = {ep.case.id: scripted_texts(ep.case) for ep in played}
    found = [(",".join(hits), s) for ep in played for s in ep.said
             if (hits := named_tests(s.text, terms, allowed[ep.case.id]))]
    assert not found, _report(found)


def test_a_line_naming_a_test_is_never_said(cases: list[clinic_env.Case], catalogue: clinic_env.Catalogue) -> None:
    nurse = Persona(id="nurse", name="Nurse", noise=Noise(tangential=1.0),
                    phrases=Phrases(tangents=("Are you sending a troponin?", "I used to love the night shifts.")))
    case = next(c for c in cases if c.id == "pulm-cap")
    session = PatientSession(case, nurse, catalogue, np.random.default_rng(0))
    assert session.tangents == ("I used to love the night shifts.",)
    assert all(re.search(r"troponin", q, re.I) is None for q in session.questions)
