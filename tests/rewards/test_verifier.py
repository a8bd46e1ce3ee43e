"""The step verifier flags each violation type, in infos and in the episode record."""

from __future__ import annotations

from typing import Any

import pytest

import clinic_env
from clinic_env.core.actions import COMMIT_DIFFERENTIAL, END_SEGMENT, WAIT
from clinic_env.core.engine import DOCTOR
from clinic_env.rewards.verifier import VerifierConfig, step_gamma


class Driver:
    def __init__(self, case: clinic_env.Case, **kwargs: Any) -> None:
        self.env = clinic_env.parallel_env(case=case, persona="cooperative", infos="full", **kwargs)
        self.t = self.env.info.table
        self.obs, _ = self.env.reset(seed=0)

    def cycle(self, doctor: Any, patient_mode: str = "truthful") -> dict[str, Any]:
        patient = self.t.answer(patient_mode) if self.obs["patient_0"]["action_mask"][self.t.answer0] else WAIT
        examiner = self.t.verdict("abstain") if self.obs["examiner_0"]["action_mask"][self.t.verdict0] else WAIT
        self.obs, _, _, _, infos = self.env.step({"doctor_0": doctor, "patient_0": patient, "examiner_0": examiner})
        return infos["doctor_0"]

    def ask(self, hid: str, mode: str = "truthful") -> list[str]:
        info = self.cycle(self.t.ask(hid))
        self.cycle(WAIT, mode)
        return info["violations"]


@pytest.fixture
def case(cases: list[clinic_env.Case]) -> clinic_env.Case:
    return cases[0]


def _fact(case: clinic_env.Case) -> str:
    return next(h for h, f in case.history.items() if h != case.presenting_complaint)


def test_repeated_question_but_not_clarification(case: clinic_env.Case) -> None:
    d = Driver(case, allow_repeats=True)  # by default an answered question is masked
    hid = _fact(case)
    assert "repeated_question" not in d.ask(hid)
    assert "repeated_question" in d.ask(hid)
    other = next(h for h in case.history if h not in (hid, case.presenting_complaint))
    d.ask(other, mode="vague")
    assert "repeated_question" not in d.ask(other)  # re-asking after a vague answer is clarification


def test_irrelevant_question(case: clinic_env.Case) -> None:
    d = Driver(case)
    relevant = d.env.engine.verifier.relevant
    cat = d.env.info.catalogue
    irrelevant = next(h for h in cat.history_ids if h not in relevant)
    assert cat.history[irrelevant].category in ("symptom", "presenting")
    assert "irrelevant_question" in d.ask(irrelevant)
    assert "irrelevant_question" not in d.ask("allergy.drug")


def test_premature_closure_and_diagnosis(case: clinic_env.Case) -> None:
    d = Driver(case)
    assert "premature_diagnosis" in d.cycle(END_SEGMENT)["violations"]
    d.cycle(d.t.dx(case.gold_diagnosis))
    d.cycle(COMMIT_DIFFERENTIAL)
    d.cycle(END_SEGMENT)
    assert "premature_diagnosis" in d.cycle(d.t.dx(case.gold_diagnosis))["violations"]


def test_repeated_and_unsafe_tests(case: clinic_env.Case, catalogue: clinic_env.Catalogue) -> None:
    unsafe = next(t for t in catalogue.test_ids
                  if t not in case.essential_tests + case.optional_tests and not catalogue.tests[t].requires)
    risky = case.model_copy(update={"contraindicated_tests": {unsafe: "for the test"}})
    d = Driver(risky, reward_config={"violation_cost": 1.0}, allow_repeats=True)
    d.cycle(END_SEGMENT)
    d.cycle(d.t.dx(case.gold_diagnosis))
    d.cycle(COMMIT_DIFFERENTIAL)
    tid = case.essential_tests[0]
    assert d.cycle(d.t.order(tid))["violations"] == []
    info = d.cycle(d.t.order(tid))
    assert info["violations"] == ["repeated_test"]
    assert info["reward_components"]["violation"] == pytest.approx(-(1 - 0.3))
    assert d.cycle(d.t.order(unsafe))["violations"] == ["unsafe_action"]
    assert d.env.engine.ordered.count(tid) == 2


def test_overlong_text_and_records(case: clinic_env.Case) -> None:
    env = clinic_env.raw_env(case=case, persona="cooperative")
    env.reset(seed=0)
    eng = env.engine
    eng.act(DOCTOR, env.info.table.ask(_fact(case)), text="Tell me about it. " * 60)
    assert "overlong_text" in eng.step_violations
    assert eng.turns[-1]["violations"] == eng.step_violations
    assert eng.step_gammas() == [step_gamma(eng.step_violations, VerifierConfig().lambdas)]


def test_lambdas_are_validated() -> None:
    with pytest.raises(ValueError, match="in \\(0, 1\\)"):
        VerifierConfig(lambdas={"repeated_question": 1.5})
    with pytest.raises(ValueError, match="unknown violation"):
        VerifierConfig(lambdas={"typo": 0.5})
