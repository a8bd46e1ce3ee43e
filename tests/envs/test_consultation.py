"""Behaviour of the consultation: segments, alternation, illegal actions, rewards of a scripted episode."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import clinic_env
from clinic_env.core.actions import COMMIT_DIFFERENTIAL, END_SEGMENT, WAIT
from clinic_env.policies import RubricExaminer


class Driver:
    """Plays the parallel env with a given doctor action, a truthful patient and the rule examiner."""

    def __init__(self, case: clinic_env.Case, **kwargs: Any) -> None:
        self.env = clinic_env.parallel_env(case=case, persona="cooperative", infos="full", **kwargs)
        self.t = self.env.info.table
        self.examiner = RubricExaminer(self.env.info)
        self.obs, _ = self.env.reset(seed=0)
        self.total = 0.0
        self.components: dict[str, float] = {}

    def cycle(self, doctor_action: Any) -> dict[str, Any]:
        obs = self.obs
        patient = self.t.answer("truthful") if obs["patient_0"]["action_mask"][self.t.answer0] else WAIT
        examiner = self.examiner.act(obs["examiner_0"], "examiner_0")
        self.obs, rewards, _terms, _truncs, infos = self.env.step(
            {"doctor_0": doctor_action, "patient_0": patient, "examiner_0": examiner})
        self.total += rewards["doctor_0"]
        for k, v in infos["doctor_0"]["reward_components"].items():
            self.components[k] = self.components.get(k, 0.0) + v
        return infos["doctor_0"]

    def ask(self, hid: str) -> None:
        self.cycle(self.t.ask(hid))
        self.cycle(WAIT)  # the patient answers while the doctor waits

    def drain(self) -> None:
        while self.env.agents:
            self.cycle(WAIT)


@pytest.fixture
def case(cases: list[clinic_env.Case]) -> clinic_env.Case:
    return cases[0]


def test_question_and_answer_alternate(case: clinic_env.Case) -> None:
    d = Driver(case)
    hid = next(h for h in case.history if h != case.presenting_complaint)
    d.cycle(d.t.ask(hid))
    doctor_mask = d.obs["doctor_0"]["action_mask"]
    assert doctor_mask[WAIT] and doctor_mask.sum() == 1
    assert d.obs["patient_0"]["action_mask"][d.t.answer("truthful")]
    d.cycle(WAIT)
    assert case.history[hid].text.split()[0] in d.obs["doctor_0"]["transcript"]
    assert not d.obs["doctor_0"]["action_mask"][WAIT]


def test_illegal_action_is_a_penalised_no_op(case: clinic_env.Case) -> None:
    d = Driver(case)
    before = d.obs["doctor_0"]["observation"].copy()
    info = d.cycle(d.t.order("lab.cbc"))  # only initial assessments can be ordered while taking the history
    assert info["illegal_action"] is True
    assert info["reward_components"] == {"illegal": pytest.approx(-0.05)}
    assert d.env.engine.ordered == []
    after = d.obs["doctor_0"]["observation"]
    lay = d.env.info.layout
    assert np.array_equal(before[lay.COMMON :], after[lay.COMMON :])
    hid = next(h for h in case.history if h != case.presenting_complaint)
    legal = d.t.ask(hid)
    for bad in (-1, 10**6, None, "ask:hx.onset", 3.7j, str(legal), True, legal + 0.5, float("inf"), float("nan"),
                np.array([legal, legal])):
        assert d.cycle(bad)["illegal_action"] is True, bad
    assert d.env.engine.asked == {}
    assert d.cycle(np.int64(legal))["illegal_action"] is False  # NumPy integers (what RL libraries pass) are fine


def test_scripted_perfect_episode_scores_full_marks(case: clinic_env.Case) -> None:
    d = Driver(case, max_cycles=400)
    for hid in case.history:
        if hid != case.presenting_complaint:
            d.ask(hid)
    # Outcome components are paid only when the episode ends (no oracle): closing pays the step cost.
    assert d.cycle(END_SEGMENT)["reward_components"] == {"step": pytest.approx(-0.01)}
    d.cycle(d.t.dx(case.gold_diagnosis))
    for code in case.must_not_miss:
        if code != case.gold_diagnosis and len(d.env.engine.differential) < 5:
            d.cycle(d.t.dx(code))
    assert d.cycle(COMMIT_DIFFERENTIAL)["reward_components"] == {"step": pytest.approx(-0.01)}
    mask = d.obs["doctor_0"]["action_mask"]
    for tid in case.essential_tests + case.optional_tests:
        for proc in d.env.info.catalogue.tests[tid].requires[:1]:
            if not mask[d.t.order(tid)] and proc not in d.env.engine.ordered:
                d.cycle(d.t.order(proc))
        d.cycle(d.t.order(tid))
    d.cycle(END_SEGMENT)
    info = d.cycle(d.t.dx(case.gold_diagnosis))
    assert "diagnosis" not in info["reward_components"]
    d.drain()
    eng = d.env.engine
    assert d.components["history"] == pytest.approx(1.0)
    assert d.components["differential"] == pytest.approx(1.0)
    extra = [t for t in eng.ordered if t not in case.essential_tests + case.optional_tests]
    n = len(case.essential_tests + case.optional_tests)
    f1 = 2 * (n / (n + len(extra))) / (1 + n / (n + len(extra)))
    assert d.components["tests"] == pytest.approx(f1 - 0.2 * min(eng.cost / case.budget_usd, 2.0))
    evidence = max(sum(k in eng.evidence() for k in alt) / len(alt) for alt in case.confirmatory_evidence())
    assert d.components["diagnosis"] == pytest.approx(evidence)
    assert eng.terminated and eng.end_reason == "final_diagnosis"
    assert not eng.queue and len(eng.verdicts) == len(eng.rubric)
    assert d.components["rubric"] == pytest.approx(eng.rubric_result()[0])
    assert d.total == pytest.approx(d.env.setup.config.scalar(d.components))


def test_unlisted_test_returns_a_result_consistent_with_the_case(case: clinic_env.Case,
                                                                   catalogue: clinic_env.Catalogue) -> None:
    from clinic_env.generate.profile import unlisted_result

    d = Driver(case)
    d.cycle(END_SEGMENT)
    d.cycle(d.t.dx(case.gold_diagnosis))
    d.cycle(COMMIT_DIFFERENTIAL)
    mask = d.obs["doctor_0"]["action_mask"]
    unlisted = next(t for t in catalogue.test_ids if case.result(t) is None and mask[d.t.order(t)])
    d.cycle(d.t.order(unlisted))
    expected = unlisted_result(case, unlisted, catalogue)
    assert expected.text.split()[0] in d.obs["doctor_0"]["transcript"]
    lay = d.env.info.layout
    col = catalogue.test_ids.index(unlisted)
    grades = lay.test_grades(d.obs["doctor_0"]["observation"])[:, col]
    assert grades.sum() == 1.0 and grades[expected.level] == 1.0
    assert not mask[d.t.order(unlisted)] or not d.obs["doctor_0"]["action_mask"][d.t.order(unlisted)]


def test_truncation_scores_a_failed_consultation(case: clinic_env.Case) -> None:
    d = Driver(case, max_cycles=4)
    hid = next(h for h in case.history if h != case.presenting_complaint)
    d.ask(hid)
    d.cycle(WAIT)
    info = d.cycle(WAIT)
    eng = d.env.engine
    assert eng.truncated and info["end_reason"] == "max_cycles"
    assert 0.0 < d.components["history"] <= 1.0
    assert d.components["differential"] == d.components["tests"] == d.components["diagnosis"] == 0.0
    assert d.components["incomplete"] == -1.0
    assert d.total == pytest.approx(d.env.setup.config.scalar(d.components))


def test_doctor_never_sees_the_case_truth(case: clinic_env.Case) -> None:
    env = clinic_env.raw_env(case=case)
    env.reset(seed=3)
    lay = env.info.layout
    doc = env.observe("doctor_0")["observation"]
    assert not doc[lay.public_end :].any()
    pat = env.observe("patient_0")["observation"]
    assert pat[lay.case_present : lay.case_present + lay.n_history].sum() == sum(f.present for f in case.history.values())


def test_reset_options_choose_case_and_persona(cases: list[clinic_env.Case]) -> None:
    env = clinic_env.raw_env(cases=cases[:3])
    env.reset(seed=1, options={"case_id": cases[2].id, "persona_id": "cooperative"})
    assert env.engine.case.id == cases[2].id and env.engine.persona.id == "cooperative"
    with pytest.raises(KeyError, match="case_id"):
        env.reset(options={"case_id": "no-such-case"})
