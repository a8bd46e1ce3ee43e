"""SPAR, GRPO and no-std advantages: hand-computed numbers and invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import clinic_env
from clinic_env.rewards.spar import grpo_advantages, no_std_advantages, segment_inputs, spar_advantages
from clinic_env.rewards.verifier import step_gamma
from clinic_env.rollout import group


def test_spar_by_hand() -> None:
    # R = [1, 0.5, 0]: mean 0.5, population std sqrt(1/6) = 0.408248; eps 0.05 -> denom 0.458248
    R = [1.0, 0.5, 0.0]
    gammas = [[1.0, 0.1], [1.0], [0.3]]
    adv = spar_advantages(R, gammas, eps=0.05, clip=5.0)
    denom = math.sqrt(1 / 6) + 0.05
    assert adv[0] == pytest.approx([0.5 / denom, (0.1 - 0.5) / denom])
    assert adv[1] == pytest.approx([0.0])
    assert adv[2] == pytest.approx([-0.5 / denom])  # R = 0: the penalty vanishes (documented pitfall)
    floored = spar_advantages(R, gammas, zero_floor=0.2)
    assert floored[2] == pytest.approx([(-(1 - 0.3) * 0.2 - 0.5) / denom])


def test_spar_negative_reward_is_penalised_not_rewarded() -> None:
    adv = spar_advantages([-0.4, 0.0], [[0.5], [1.0]], eps=0.05)
    # penalised = -0.4 - 0.5 * 0.4 = -0.6; mean -0.2, std 0.2 -> (-0.6 + 0.2) / 0.25 = -1.6
    assert adv[0] == pytest.approx([-1.6])
    unpenalised = spar_advantages([-0.4, 0.0], [[1.0], [1.0]], eps=0.05)
    assert adv[0][0] < unpenalised[0][0]


def test_equal_rewards_give_zero_unless_penalised_and_clip() -> None:
    adv = spar_advantages([1.0, 1.0, 1.0], [[1.0], [1.0], [0.1]], eps=0.05, clip=5.0)
    assert adv[0][0] == 0.0 and adv[1][0] == 0.0
    assert adv[2][0] == -5.0  # (0.1 - 1) / 0.05 = -18, clipped


def test_grpo_and_no_std_by_hand() -> None:
    assert grpo_advantages([2.0, 0.0], eps=0.0) == pytest.approx([1.0, -1.0])
    assert no_std_advantages([2.0, 0.0]) == pytest.approx([1.0, -1.0])
    steps = no_std_advantages([2.0, 0.0], [[1.0, 0.5], []])
    assert steps[0] == pytest.approx([1.0, 0.0]) and len(steps[1]) == 0


def test_input_validation() -> None:
    with pytest.raises(ValueError, match="episodes"):
        spar_advantages([1.0, 0.0], [[1.0]])
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        spar_advantages([1.0], [[0.0]])
    with pytest.raises(ValueError, match="non-empty"):
        grpo_advantages([])


@settings(max_examples=200, deadline=None)
@given(R=st.lists(st.floats(0.0, 1.0), min_size=2, max_size=16),
       steps=st.lists(st.integers(1, 6), min_size=16, max_size=16))
def test_unpenalised_advantages_sum_to_zero(R: list[float], steps: list[int]) -> None:
    gammas = [[1.0] * steps[i] for i in range(len(R))]
    adv = spar_advantages(R, gammas, clip=1e9)
    assert abs(sum(a[0] for a in adv)) < 1e-6
    assert np.allclose(sum(grpo_advantages(R, clip=1e9)), 0.0, atol=1e-6)
    for a in adv:
        assert np.allclose(a, a[0])


@settings(max_examples=200, deadline=None)
@given(R=st.lists(st.floats(-1.0, 6.0), min_size=1, max_size=12),
       g=st.lists(st.lists(st.floats(0.01, 1.0), max_size=5), min_size=12, max_size=12),
       clip=st.floats(0.5, 10.0))
def test_advantages_stay_in_bounds_and_penalties_never_help(R: list[float], g: list[list[float]], clip: float) -> None:
    gammas = g[: len(R)]
    adv = spar_advantages(R, gammas, clip=clip)
    base = spar_advantages(R, [[1.0] * len(x) for x in gammas], clip=clip)
    for a, b in zip(adv, base, strict=False):
        assert np.all(np.abs(a) <= clip + 1e-12)
        assert np.all(a <= b + 1e-12)


def test_group_rollouts_feed_spar(cases: list[clinic_env.Case]) -> None:
    case = cases[0]
    records = group(clinic_env.raw_env, "random", case, seed=11, G=4)
    assert len(records) == 4 and {r["seed"] for r in records} == {11}
    assert {r["persona"] for r in records} == {records[0]["persona"]}
    assert len({tuple(t["action"] for t in r["turns"]) for r in records}) > 1
    R, gammas = segment_inputs(records, "history")
    assert len(R) == 4
    for record, gam in zip(records, gammas, strict=False):
        doctor_history = [t for t in record["turns"] if t["agent"] == "doctor_0" and t["segment"] == "history"]
        assert len(gam) == len(doctor_history)
        assert gam == [step_gamma(t["violations"], record_lambdas()) for t in doctor_history]
    assert all(len(a) == len(x) for a, x in zip(spar_advantages(R, gammas), gammas, strict=False))
    with pytest.raises(ValueError, match="one case and seed"):
        segment_inputs(records + group(clinic_env.raw_env, "random", case, seed=12, G=1), "history")


def record_lambdas() -> dict[str, float]:
    from clinic_env.rewards.verifier import VerifierConfig

    return VerifierConfig().lambdas
