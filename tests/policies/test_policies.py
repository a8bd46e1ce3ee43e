"""Built-in policies: legality, determinism, the human policy, and the baselines beat random."""

from __future__ import annotations

import numpy as np

import clinic_env
from clinic_env.policies import HumanPolicy, available_policies, make_policy
from clinic_env.rollout import play_episode, run_batch


def test_every_builtin_policy_only_plays_legal_actions(small_cases: list[clinic_env.Case]) -> None:
    env = clinic_env.raw_env(cases=small_cases)
    for name in ("random", "thorough", "info-gain", "shotgun"):
        policies = {"doctor_0": make_policy(name, env.info, seed=1), "patient_0": make_policy("persona", env.info),
                    "examiner_0": make_policy("rubric", env.info)}
        for case in small_cases[:3]:
            record = play_episode(env, policies, seed=5, options={"case_id": case.id, "persona_id": "anxious-worrier"})
            assert not any(t["reward_components"].get("illegal") for t in record["turns"]), name


def test_policies_are_deterministic_given_a_seed(small_cases: list[clinic_env.Case]) -> None:
    a = run_batch(small_cases[:3], ["random", "info-gain"], seed=9)
    b = run_batch(small_cases[:3], ["random", "info-gain"], seed=9)
    assert a == b


def test_baselines_beat_random(cases: list[clinic_env.Case]) -> None:
    records = run_batch(cases[::4], ["random", "thorough", "info-gain"], seed=0)
    mean = {d: np.mean([r["totals"]["reward"] for r in records if r["doctor"] == d]) for d in ("random", "thorough", "info-gain")}
    assert mean["thorough"] > mean["random"] + 1.0 and mean["info-gain"] > mean["random"] + 1.0
    exact = np.mean([r["final_diagnosis"] == r["gold_diagnosis"] for r in records if r["doctor"] == "info-gain"])
    assert exact >= 0.5


def test_human_policy_reads_names_fragments_and_numbers(cases: list[clinic_env.Case]) -> None:
    env = clinic_env.raw_env(case=cases[0], persona="cooperative")
    env.reset(seed=0)
    replies = iter(["nonsense-xyz", "?", "ask:allergy.drug"])
    shown: list[str] = []
    human = HumanPolicy(env.info, read=lambda _prompt: next(replies), write=shown.append)
    action = human.act(env.observe("doctor_0"), "doctor_0")
    assert env.info.table.names[action] == "ask:allergy.drug"
    assert any("match" in s for s in shown) and any("end_segment" in s for s in shown)
    replies = iter(["0"])
    assert human.act(env.observe("doctor_0"), "doctor_0") == int(np.flatnonzero(env.observe("doctor_0")["action_mask"])[0])


def test_unknown_policy_names_list_the_available_ones() -> None:
    env = clinic_env.raw_env()
    try:
        make_policy("no-such-doctor", env.info)
    except KeyError as exc:
        assert "info-gain" in str(exc)
    else:
        raise AssertionError("expected KeyError")
    assert {"random", "thorough", "info-gain", "shotgun", "persona", "rubric", "human"} <= set(available_policies())
