"""SuperSuit vectorises the numeric Parallel env as-is: one vector slot per agent, copies concatenated."""

from __future__ import annotations

import numpy as np
import pytest

import clinic_env

ss = pytest.importorskip("supersuit")


def test_concat_vec_envs_over_numeric_parallel_env() -> None:
    penv = clinic_env.parallel_env(observation="numeric", max_cycles=20)
    venv = ss.concat_vec_envs_v1(ss.pettingzoo_env_to_vec_env_v1(penv), 2, num_cpus=0, base_class="gymnasium")
    n = 2 * len(penv.possible_agents)
    space = penv.observation_space("doctor_0")
    assert venv.num_envs == n
    obs, infos = venv.reset(seed=0)
    assert obs["observation"].shape == (n, *space["observation"].shape)
    assert obs["observation"].dtype == np.float32 and obs["action_mask"].dtype == np.int8
    keys = set(infos[0])
    rng = np.random.default_rng(0)
    episodes_ended = 0
    for _ in range(45):
        actions = np.array([rng.choice(np.flatnonzero(mask)) for mask in obs["action_mask"]])
        obs, rewards, terminated, truncated, infos = venv.step(actions)
        assert rewards.shape == terminated.shape == truncated.shape == (n,)
        # SuperSuit adds "terminal_observation" on the step that ends an episode.
        assert all(set(info) - {"terminal_observation"} == keys and not info["illegal_action"] for info in infos)
        episodes_ended += int(np.sum(terminated | truncated))
    assert episodes_ended > 0  # ended episodes were reset in place
    venv.close()
