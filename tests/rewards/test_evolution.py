"""Dynamic Rubric Evolution: admission, caps, retirement, review, versioning, and the end-to-end effect."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import clinic_env
from clinic_env.evolve import run_evolution
from clinic_env.rewards.evolution import (
    DynamicBank,
    EvolutionConfig,
    evolve_step,
    load_review,
    mine,
    save_review,
    wilson_lower,
)


def test_wilson_lower_bound() -> None:
    assert wilson_lower(16, 16) == pytest.approx(16 / (16 + 1.96**2), abs=1e-9)
    assert wilson_lower(0, 10) == 0.0
    assert wilson_lower(0, 0) == 0.0
    assert 0.0 < wilson_lower(5, 10) < 0.5


def _record(case: clinic_env.Case, seed: int, reward: float, questions: int = 5, tests: int = 1,
            differential: int = 3, diagnosed: bool = True) -> dict[str, Any]:
    cat = clinic_env.load_catalogue()
    turns = [{"agent": "doctor_0", "action": f"ask:{h}", "violations": []} for h in cat.history_ids[:questions]]
    return {"case_id": case.id, "seed": seed, "doctor": "x", "totals": {"reward": reward}, "turns": turns,
            "tests_ordered": list(dict.fromkeys([*case.essential_tests, *cat.test_ids[:tests]])), "differential": list(cat.diagnosis_codes[:differential]),
            "final_diagnosis": case.gold_diagnosis if diagnosed else None, "cost_usd": 0.0}


@pytest.fixture
def two_cases(cases: list[clinic_env.Case]) -> dict[str, clinic_env.Case]:
    return {c.id: c for c in cases[:2]}


def test_admits_failure_modes_of_high_reward_episodes_only(two_cases: dict[str, clinic_env.Case]) -> None:
    a, b = two_cases.values()
    # High-reward episodes shotgun-question; low-reward ones over-order tests.
    records = [_record(a, s, 4.0, questions=200) for s in range(6)] + [_record(b, s, 0.5, tests=60) for s in range(18)]
    bank = DynamicBank()
    log = evolve_step(bank, records, two_cases)
    admitted = {(e["miner"], e["case_id"]) for e in log if e["action"] == "admit"}
    assert admitted == {("shotgun_questioning", a.id)}
    entry = next(e for e in log if e["action"] == "admit")
    assert entry["evidence"]["wilson_lower"] >= 0.3 and entry["bank_version"] == 1
    assert bank.version == 1 and [d.item.points < 0 for d in bank.items] == [True]
    assert bank.items_for(a.id) and not bank.items_for(b.id)


def test_small_evidence_is_not_enough(two_cases: dict[str, clinic_env.Case]) -> None:
    a = next(iter(two_cases.values()))
    records = [_record(a, 0, 4.0, questions=200), _record(a, 1, 1.0)]
    assert evolve_step(DynamicBank(), records, two_cases, EvolutionConfig(min_episodes=4)) == []


def test_cap_per_case(two_cases: dict[str, clinic_env.Case]) -> None:
    a = next(iter(two_cases.values()))
    records = [_record(a, s, 4.0, questions=200, tests=140, differential=20) for s in range(8)]
    bank = DynamicBank()
    log = evolve_step(bank, records, two_cases, EvolutionConfig(max_per_case=2))
    assert len(bank.items) == 2
    assert any(e["action"] == "skipped_cap" for e in log)


def test_retirement_after_quiet_rounds(two_cases: dict[str, clinic_env.Case]) -> None:
    a = next(iter(two_cases.values()))
    bank = DynamicBank()
    evolve_step(bank, [_record(a, s, 4.0, questions=200) for s in range(8)], two_cases)
    assert len(bank.items) == 1
    quiet = [_record(a, s, 2.0) for s in range(8)]
    cfg = EvolutionConfig(retire_after=2)
    assert not [e for e in evolve_step(bank, quiet, two_cases, cfg) if e["action"] == "retire"]
    log = evolve_step(bank, quiet, two_cases, cfg)
    assert [e["action"] for e in log if e["action"] == "retire"] == ["retire"]
    assert not bank.items and len(bank.retired) == 1 and bank.version == 2


def test_human_review_gates_admission(tmp_path: Path, two_cases: dict[str, clinic_env.Case]) -> None:
    a = next(iter(two_cases.values()))
    records = [_record(a, s, 4.0, questions=200) for s in range(8)]
    review: dict[str, str] = {}
    bank = DynamicBank()
    assert not [e for e in evolve_step(bank, records, two_cases, review=review) if e["action"] == "admit"]
    (item_id,) = review
    assert review[item_id] == "pending"
    path = tmp_path / "review.yaml"
    save_review(review, path)
    path.write_text(path.read_text().replace("pending", "accept"))
    log = evolve_step(bank, records, two_cases, review=load_review(path))
    assert [e["id"] for e in log if e["action"] == "admit"] == [item_id]
    bad = tmp_path / "bad.yaml"
    bad.write_text("decisions: {x: maybe}\n")
    with pytest.raises(clinic_env.DataError, match="accept, reject or pending"):
        load_review(bad)


def test_bank_round_trip(tmp_path: Path, two_cases: dict[str, clinic_env.Case]) -> None:
    a = next(iter(two_cases.values()))
    bank = DynamicBank()
    evolve_step(bank, [_record(a, s, 4.0, questions=200) for s in range(8)], two_cases)
    bank.save(tmp_path / "bank.yaml")
    again = DynamicBank.load(tmp_path / "bank.yaml")
    assert again == bank and again.label == "dynamic@v1"
    assert DynamicBank.load(tmp_path / "missing.yaml").version == 0


def test_mine_rules_on_real_episodes(cases: list[clinic_env.Case]) -> None:
    from clinic_env.rewards.config import RewardConfig
    from clinic_env.rollout import run_batch

    records = run_batch(cases[:2], ["shotgun", "info-gain"], env_kwargs={
        "reward_config": RewardConfig.naive(), "persona": "cooperative", "max_cycles": 1200})
    cands = mine(records, {c.id: c for c in cases[:2]})
    by = {(c.miner, c.case_id): c for c in cands}
    for case in cases[:2]:
        flags = by[("shotgun_questioning", case.id)].violated
        shot = [i for i, r in enumerate(records) if r["doctor"] == "shotgun" and r["case_id"] == case.id]
        ig = [i for i, r in enumerate(records) if r["doctor"] == "info-gain" and r["case_id"] == case.id]
        assert all(flags[i] for i in shot) and not any(flags[i] for i in ig)


def test_evolution_makes_the_shotgun_doctor_lose(cases: list[clinic_env.Case]) -> None:
    subset = cases[::8]
    result = run_evolution(subset, rounds=2, baselines=("thorough",))
    assert result.mean_reward("shotgun", "before") > result.mean_reward("thorough", "before")
    assert result.mean_reward("shotgun", "after") < result.mean_reward("thorough", "after")
    assert abs(result.mean_reward("thorough", "after") - result.mean_reward("thorough", "before")) < 0.05
    assert "shotgun_questioning" in result.admitted_miners
    assert all(r["rubric_version"].endswith(f"dynamic@v{result.bank.version}") for r in result.records_after)


def test_cli_evolve(tmp_path: Path, cases: list[clinic_env.Case]) -> None:
    import yaml

    folder = tmp_path / "cases"
    folder.mkdir()
    for case in cases[:3]:
        (folder / f"{case.id}.yaml").write_text(yaml.safe_dump(case.model_dump(mode="json", exclude_none=True)))
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, "-m", "clinic_env", "rubrics", "evolve", "--doctor", "shotgun", "--rounds", "2",
                          "--cases", str(folder), "--out", str(out), "--min-episodes", "1"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert "Before evolution" in res.stdout and "After 2 round(s)" in res.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["bank_version"] >= 1 and (out / "bank.yaml").exists()
    assert [json.loads(x)["action"] for x in (out / "changes.jsonl").read_text().splitlines()]


def test_llm_miner_against_a_loopback_server(cases: list[clinic_env.Case]) -> None:
    from clinic_env.rewards.config import RewardConfig
    from clinic_env.rewards.llm_miner import LLMMiner, parse_proposals
    from clinic_env.rollout import run_batch
    from clinic_env.testing.openai_server import OpenAITestServer

    proposals = json.dumps([
        {"criterion": "Asks far more questions than the problem needs", "points": -6,
         "tags": ["axis:context_awareness", "segment:history"], "check": {"asked_count_gt": 60}},
        {"criterion": "Never explains what happens next", "points": -3, "tags": ["axis:communication"]},
        {"criterion": "not valid", "points": 42},
    ])

    def reply(request: dict[str, Any]) -> str:
        prompt = request["messages"][-1]["content"]
        if "High-reward consultations" in prompt:
            return proposals
        return json.dumps({"explanation": "judged", "criteria_met": "Doctor [" in prompt})

    assert len(parse_proposals(proposals)) == 2
    records = run_batch(cases[:4], ["shotgun"], env_kwargs={"reward_config": RewardConfig.naive(),
                                                          "persona": "cooperative", "max_cycles": 1200})
    with OpenAITestServer(reply) as srv:
        miner = LLMMiner("openai/test-model", api_base=srv.base_url)
        cands = miner.mine(records, [0, 1, 2, 3], existing=[])
        assert [c.item.points for c in cands] == [-6, -3]
        assert all(c.case_id == "*" for c in cands)
        assert all(cands[0].violated.values()) and len(cands[1].violated) == 4
        bank = DynamicBank()
        log = evolve_step(bank, records, {c.id: c for c in cases[:4]}, EvolutionConfig(min_episodes=1), candidates=cands)
    admitted = [e for e in log if e["action"] == "admit"]
    assert len(admitted) == 2 and all(d.case_id == "*" for d in bank.items)
    assert all(bank.items_for(c.id) for c in cases[:4])
