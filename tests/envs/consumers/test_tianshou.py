"""Tianshou 2's PettingZoo pattern (its test/pettingzoo/tic_tac_toe.py) over the numeric AEC env:
a DQN doctor against random patient and examiner, collecting whole episodes."""

from __future__ import annotations

import numpy as np
import pytest

import clinic_env

pytest.importorskip("tianshou")
from tianshou.algorithm import (
    DQN,
    MARLRandomDiscreteMaskedOffPolicyAlgorithm,
    MultiAgentOffPolicyAlgorithm,
)
from tianshou.algorithm.modelfree.dqn import DiscreteQLearningPolicy
from tianshou.algorithm.optim import AdamOptimizerFactory
from tianshou.data import Collector, CollectStats, VectorReplayBuffer
from tianshou.env import DummyVectorEnv
from tianshou.env.pettingzoo_env import PettingZooEnv
from tianshou.utils.net.common import Net


def get_env() -> PettingZooEnv:
    return PettingZooEnv(clinic_env.env(observation="numeric", max_cycles=20))


def test_collector_plays_episodes_with_a_dqn_doctor() -> None:
    env = get_env()
    assert env.agents == ["doctor_0", "patient_0", "examiner_0"]
    net = Net(state_shape=env.observation_space["observation"].shape, action_shape=int(env.action_space.n),
              hidden_sizes=[64])
    doctor = DQN(policy=DiscreteQLearningPolicy(model=net, action_space=env.action_space, eps_training=0.1,
                                                eps_inference=0.05),
                 optim=AdamOptimizerFactory(lr=1e-3), n_step_return_horizon=1, gamma=0.9, target_update_freq=10)
    others = [MARLRandomDiscreteMaskedOffPolicyAlgorithm(action_space=env.action_space) for _ in range(2)]
    algorithm = MultiAgentOffPolicyAlgorithm(algorithms=[doctor, *others], env=env)
    envs = DummyVectorEnv([get_env for _ in range(2)])
    envs.seed(0)
    collector = Collector[CollectStats](algorithm, envs, VectorReplayBuffer(2000, len(envs)), exploration_noise=True)
    collector.reset()
    stats = collector.collect(n_episode=4)
    assert stats.n_collected_episodes >= 4 and stats.n_collected_steps > 0
    assert stats.returns.shape[1] == 3  # one return per agent
    info = collector.buffer.info
    assert {"reward/diagnosis", "n_violations", "segment", "cycle"} <= set(info.keys())
    assert not np.any(info["illegal_action"][: len(collector.buffer)])
