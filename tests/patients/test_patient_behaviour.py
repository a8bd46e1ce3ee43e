"""The persona-driven patient inside the engine: disclosure tracking, withholding, interruptions,
patience, lay vocabulary, varied wording, episode records and simulation-quality metrics."""

from __future__ import annotations

import numpy as np
import pytest

import clinic_env
from clinic_env.core.actions import WAIT
from clinic_env.core.engine import DOCTOR, EXAMINER, PATIENT
from clinic_env.patients import (
    DEFAULT_INTERRUPTION_SHARE,
    episode_quality,
    interruption_rate,
    jargon,
    lay_text,
    simulation_quality,
    vary_answer,
)
from clinic_env.policies import make_policy
from clinic_env.rollout import play_episode
from clinic_env.schema.persona import Interruption, Noise, Persona, Phrases


def _persona(**kwargs: object) -> Persona:
    return Persona(id="test-persona", name="Test persona", **kwargs)  # type: ignore[arg-type]


class Driver:
    def __init__(self, case: clinic_env.Case, persona: Persona | str = "cooperative", **kwargs: object) -> None:
        kwargs.setdefault("allow_repeats", True)  # these tests re-ask items on purpose
        self.env = clinic_env.raw_env(cases=[case], persona=persona, **kwargs)
        self.env.reset(seed=5)
        self.eng, self.t, self.case = self.env.engine, self.env.info.table, case

    def cycle(self, doctor: int, patient: int, said: str | None = None, reply: str | None = None) -> None:
        self.eng.act(DOCTOR, doctor, said)
        self.eng.act(PATIENT, patient, reply)
        self.eng.act(EXAMINER, WAIT)
        self.eng.end_cycle()

    def ask(self, hid: str, mode: str = "truthful", said: str | None = None, reply: str | None = None) -> dict:
        self.cycle(self.t.ask(hid), WAIT, said=said)
        self.cycle(WAIT, self.t.answer(mode), reply=reply)
        return next(t for t in reversed(self.eng.turns) if t["agent"] == "patient_0")


@pytest.fixture(scope="module")
def case(cases: list[clinic_env.Case]) -> clinic_env.Case:
    return next(c for c in cases if c.id == "card-nstemi")


def test_disclosures_are_recorded_per_turn(case: clinic_env.Case) -> None:
    d = Driver(case)
    hid = next(h for h, f in case.history.items() if f.present and f.vague and h != case.presenting_complaint)
    assert d.ask(hid, "vague")["disclosed"] == {hid: 0.5}
    turn = d.ask(hid, "truthful")
    assert turn["disclosed"] == {hid: 1.0} and turn["fact"] == hid and turn["mode"] == "truthful"
    unlisted = next(h for h in d.env.info.catalogue.history_ids if h not in case.history)
    assert "disclosed" not in d.ask(unlisted)
    assert d.eng.patient.disclosed == {hid: 1.0}


def test_structured_patient_only_answers_what_was_asked(case: clinic_env.Case) -> None:
    d = Driver(case, persona="anxious-worrier")
    for hid in list(case.history)[:12]:
        turn = d.ask(hid)
        assert set(turn.get("disclosed", {})) <= {hid}


def test_withholding_only_until_asked_twice_or_directly(cases: list[clinic_env.Case]) -> None:
    case = next(c for c in cases if "social.alcohol" in c.history)
    d = Driver(case, persona="withholding")
    withhold = d.t.answer("withhold")
    d.cycle(d.t.ask("social.alcohol"), WAIT)
    assert d.eng.masks[PATIENT][withhold]  # first, indirect asking: may withhold
    d.cycle(WAIT, withhold)
    d.cycle(d.t.ask("social.alcohol"), WAIT)
    assert not d.eng.masks[PATIENT][withhold]  # asked twice: must answer
    d.cycle(WAIT, d.t.answer("truthful"))
    d2 = Driver(case, persona="withholding")
    d2.cycle(d2.t.ask("social.alcohol"), WAIT, said="How much alcohol do you drink in a week?")
    assert not d2.eng.masks[PATIENT][withhold]  # asked directly: must answer


def test_interruption_share_is_configurable_with_a_25_percent_default(case: clinic_env.Case) -> None:
    questions = ("Is this serious?", "Will I be all right?")
    no_rate = _persona(interruption=Interruption(questions=questions))
    assert DEFAULT_INTERRUPTION_SHARE == 0.25 and interruption_rate(no_rate) == 0.25
    assert interruption_rate(_persona(interruption=Interruption(rate=0.1, questions=questions))) == 0.1
    assert interruption_rate(no_rate, 0.6) == 0.6
    with pytest.raises(ValueError):
        interruption_rate(no_rate, 1.5)
    shares = {}
    for share in (None, 0.0, 1.0):
        d = Driver(case, persona=no_rate, interruption_share=share, max_cycles=1000)
        turns = [d.ask(h) for h in list(case.history) * 6]
        shares[share] = np.mean([bool(t.get("interruption")) for t in turns])
    assert shares[0.0] == 0.0 and shares[1.0] == 1.0 and 0.12 < shares[None] < 0.4
    doctor_view, patient_view = d.eng.view_text(DOCTOR), d.eng.view_text(PATIENT)
    assert "Patient (to the doctor)" in doctor_view and "Patient (to the doctor)" not in patient_view


def test_an_aside_hinting_at_the_diagnosis_is_replaced(cases: list[clinic_env.Case]) -> None:
    stemi = next(c for c in cases if c.gold_diagnosis == "I21.0")
    worrier = _persona(interruption=Interruption(rate=1.0, questions=("Am I having a heart attack?",)))
    d = Driver(stemi, persona=worrier)
    for hid in list(stemi.history)[:5]:
        d.ask(hid)
    assert "heart attack" not in d.eng.view_text(DOCTOR).lower()
    assert any(b["source"] == "interruption" for b in d.eng.patient.blocks)


def test_patient_leaves_when_patience_runs_out(cases: list[clinic_env.Case]) -> None:
    calm = next(c for c in cases if c.setting != "emergency department")
    d = Driver(calm, persona=_persona(patience=6))
    for hid in list(calm.history)[:4]:
        d.ask(hid)
    assert d.eng.terminated and d.eng.end_reason == "patient_left"
    assert d.eng.segment_scores["incomplete"] == -1.0  # leaving without a diagnosis is a failed consultation


def test_an_emergency_patient_does_not_walk_out(case: clinic_env.Case) -> None:
    # NSTEMI in the emergency department: running out of patience is a safety event, not an exit.
    d = Driver(case, persona=_persona(patience=6), max_cycles=60)
    assert d.eng.emergency
    for hid in list(case.history)[:6]:
        d.ask(hid)
    assert not d.eng.terminated and d.eng.flags == ["patience_exhausted"]


def test_lay_vocabulary_by_literacy() -> None:
    text = "I had haematuria and dyspnoea, and my hypertension is treated."
    assert lay_text(text, "high") == text
    low = lay_text(text, "low")
    assert "haematuria" not in low and "wee" in low and "blood pressure" in low
    assert "blood in my urine" in lay_text(text, "medium")
    assert jargon(text, "low") and not jargon(low, "low")


def test_varied_wording_is_seeded() -> None:
    chatty = _persona(verbosity=1.0, language_register="colloquial")  # type: ignore[call-arg]
    said = [vary_answer("It started yesterday.", chatty, np.random.default_rng(s)) for s in range(40)]
    assert len(set(said)) > 2 and all(s.endswith("It started yesterday.") for s in said)
    again = [vary_answer("It started yesterday.", chatty, np.random.default_rng(s)) for s in range(40)]
    assert said == again
    plain = [vary_answer("No, not that I know of.", chatty, np.random.default_rng(s), default=True) for s in range(40)]
    assert len(set(plain)) > 2


def test_episode_record_has_disclosures_blocks_and_quality(case: clinic_env.Case) -> None:
    env = clinic_env.raw_env(cases=[case], persona="anxious-worrier")
    pols = {"doctor_0": make_policy("info-gain", env.info), "patient_0": make_policy("persona", env.info),
            "examiner_0": make_policy("rubric", env.info)}
    rec = play_episode(env, pols, seed=4)
    q = rec["patient_quality"]
    assert rec["disclosed"] and isinstance(rec["guard_blocks"], list)
    assert q["fact_score"] == 1.0 and q["privacy_score"] == 1.0 and 0.0 <= q["persona_consistency"] <= 1.0


def test_quality_metrics_react_to_bad_behaviour(case: clinic_env.Case) -> None:
    d = Driver(case)
    present = [h for h, f in case.history.items() if f.present and h != case.presenting_complaint][:4]
    for hid in present[:2]:
        d.ask(hid, "truthful")
    for hid in present[2:]:
        d.ask(hid, "deny")  # lies about present findings
    q = episode_quality(d.eng)
    assert q.fact_score == pytest.approx(0.5) and q.privacy_score == 1.0
    d2 = Driver(case)
    d2.ask(present[0], "truthful", reply="Yes. It's a heart attack, the NSTEMI kind.")
    d2.ask(present[1], "truthful", reply="No, never.")
    q2 = episode_quality(d2.eng)
    assert q2.privacy_score == 0.5 and q2.details["judged_answers"] >= 1
    assert q2.fact_score < 1.0  # "No, never." contradicts a present fact


def test_persona_consistency_penalises_jargon_for_low_literacy(case: clinic_env.Case) -> None:
    low = _persona(literacy="low", noise=Noise(), phrases=Phrases())
    turns = [{"agent": "patient_0", "action": "answer:truthful", "fact": "sx.chest_pain", "mode": "truthful",
              "text": "I have retrosternal pain with dyspnoea and diaphoresis.", "free_text": True}] * 3
    q = simulation_quality(turns, case, low)
    assert q.details["consistency_register"] == 0.0 and q.persona_consistency < 1.0
