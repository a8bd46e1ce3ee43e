"""Fact-aware reward: claim splitting, rule verdicts, the judge, the gate and the env component."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

import clinic_env
from clinic_env.core.actions import COMMIT_DIFFERENTIAL, END_SEGMENT, WAIT
from clinic_env.core.engine import DOCTOR, EXAMINER, PATIENT
from clinic_env.rewards.facts import Claim, FactChecker, LLMClaimJudge, fact_gate, fact_reward, split_claims
from clinic_env.rewards.grader import LLMGrader
from clinic_env.testing.openai_server import OpenAITestServer


def test_split_claims() -> None:
    text = "Your ECG shows ST elevation. You have no fever, but the troponin is raised; do you smoke? Ok."
    assert split_claims(text) == ["Your ECG shows ST elevation", "You have no fever", "the troponin is raised"]


def test_fact_reward_and_gate_by_hand() -> None:
    claims = [Claim("a b c", "supported", weight=2.0), Claim("d e f", "refuted", weight=1.0),
              Claim("g h i", "unverifiable", weight=1.0)]
    assert fact_reward(claims, eps=0.0) == pytest.approx(-1 / 4)
    assert fact_reward(claims, include_unverifiable=True, eps=0.0) == pytest.approx(-2 / 4)
    assert fact_reward([]) == 0.0
    assert fact_gate(0.85) == pytest.approx(0.5)
    assert fact_gate(1.0) == pytest.approx(1 / (1 + math.exp(-7.5)))
    assert fact_gate(0.0) < 1e-15


@pytest.fixture
def case(cases: list[clinic_env.Case]) -> clinic_env.Case:
    return next(c for c in cases if c.id == "card-stemi-anterior")


def test_rule_verdicts_against_the_case(case: clinic_env.Case, catalogue: clinic_env.Catalogue) -> None:
    checker = FactChecker(catalogue)
    present = next(k for k, f in case.history.items() if f.present and k.startswith("sx.") and k != case.presenting_complaint)
    label = catalogue.history[present].synonyms[0] if catalogue.history[present].synonyms else catalogue.history[present].label
    assert checker.check(f"the patient reports {label}", case).verdict == "supported"
    assert checker.check(f"the patient has no {label}", case).verdict == "refuted"
    abnormal = next(k for k, r in case.tests.items() if r.abnormal)
    name = catalogue.tests[abnormal].label
    assert checker.check(f"the {name} is abnormal", case).verdict == "supported"
    assert checker.check(f"the {name} was normal", case).verdict == "refuted"
    assert checker.check("the weather today is lovely", case).verdict == "unverifiable"


def test_judge_is_used_and_cached(case: clinic_env.Case, catalogue: clinic_env.Catalogue) -> None:
    calls: list[str] = []

    def judge(claim: str, c: clinic_env.Case) -> str:
        calls.append(claim)
        return "refuted"

    checker = FactChecker(catalogue, judge)  # type: ignore[arg-type]
    for _ in range(3):
        assert checker.check("your heart muscle was damaged this morning", case).verdict == "refuted"
    assert len(calls) == 1


def test_llm_claim_judge_over_loopback(case: clinic_env.Case) -> None:
    def reply(request: dict[str, Any]) -> str:
        prompt = request["messages"][-1]["content"]
        return json.dumps({"explanation": "x", "criteria_met": "ST elevation" in prompt.split("<criterion")[1]})

    with OpenAITestServer(reply) as srv:
        judge = LLMClaimJudge(LLMGrader("openai/test-model", api_base=srv.base_url, retries=0))
        assert judge("a heart attack pattern with ST elevation", case) == "supported"
        assert judge("completely healthy heart", case) == "refuted"


def test_env_reports_the_gated_fact_component(case: clinic_env.Case) -> None:
    env = clinic_env.raw_env(case=case, persona="cooperative", max_cycles=600,
                             reward_config={"fact": {"enabled": True}})
    env.reset(seed=0)
    eng, t = env.engine, env.info.table

    def cycle(doctor: int, text: str | None = None) -> dict[str, float]:
        comps = dict(eng.act(DOCTOR, doctor, text=text)[0])
        if eng.masks[PATIENT][t.answer0]:
            eng.act(PATIENT, t.answer("truthful"))
        if eng.masks[EXAMINER][t.verdict0]:
            eng.act(EXAMINER, t.verdict("met" if eng.rule_verdict(eng.queue[0]) else "not_met"))
        for k, v in eng.end_cycle().items():
            comps[k] = comps.get(k, 0.0) + v
        return comps

    for hid in case.history:
        if hid != case.presenting_complaint:
            cycle(t.ask(hid))
            cycle(WAIT)
    cycle(END_SEGMENT)
    cycle(t.dx(case.gold_diagnosis))
    cycle(COMMIT_DIFFERENTIAL)
    for tid in case.essential_tests:
        cycle(t.order(tid))
    cycle(END_SEGMENT)
    ecg = env.info.catalogue.tests["ecg.12lead"].label
    final = cycle(t.dx(case.gold_diagnosis), text=f"This is a heart attack. The {ecg} was normal. You have chest pain.")
    total: dict[str, float] = dict(final)
    while not (eng.terminated or eng.truncated):
        for k, v in cycle(WAIT).items():
            total[k] = total.get(k, 0.0) + v
    assert eng.terminated
    verdicts = {c.item: c.verdict for c in eng.claims}
    assert verdicts["ecg.12lead"] == "refuted" and verdicts["sx.chest_pain"] == "supported"
    assert total["fact"] < 0 and eng.segment_scores["fact"] == pytest.approx(total["fact"])
    assert any(ln.startswith("Doctor: This is a heart attack") for ln in eng.transcript.full().splitlines())
