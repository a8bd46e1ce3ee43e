"""sb3-contrib's MaskablePPO accepts doctor_env (skipped unless the optional `rl` extra is installed)."""

from __future__ import annotations

import pytest

import clinic_env


def test_maskable_ppo_learns_a_few_steps(cases: list[clinic_env.Case]) -> None:
    sb3_contrib = pytest.importorskip("sb3_contrib")
    env = clinic_env.doctor_env(cases=cases[:2], persona="cooperative", max_cycles=40)
    model = sb3_contrib.MaskablePPO("MultiInputPolicy", env, n_steps=64, batch_size=32, seed=0, verbose=0)
    model.learn(total_timesteps=128)
    obs, _ = env.reset(seed=1)
    action, _ = model.predict(obs, action_masks=env.action_masks(), deterministic=True)
    assert env.action_masks()[int(action)]
