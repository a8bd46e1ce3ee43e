"""RLlib (new API stack) trains on the numeric Parallel env through ParallelPettingZooEnv, one PPO
module per role with RLlib's own action-masking RLModule. RLlib pins its own gymnasium, so this
runs in .venv-rllib (``make test-rl``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import clinic_env

pytest.importorskip("ray.rllib")
import ray
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv
from ray.rllib.examples.rl_modules.classes.action_masking_rlm import ActionMaskingTorchRLModule
from ray.tune.registry import register_env

ROLES = ("doctor", "patient", "examiner")


@pytest.fixture
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ppo_with_action_masking_trains_one_iteration(local_ray: None) -> None:
    register_env("clinic-numeric", lambda config: ParallelPettingZooEnv(clinic_env.parallel_env(**config)))
    config = (
        PPOConfig()
        # RLlib's masking module reads the key "observations".
        .environment("clinic-numeric", env_config={"observation": "numeric", "obs_key": "observations",
                                                   "max_cycles": 20})
        .env_runners(num_env_runners=0)
        .multi_agent(policies=set(ROLES), policy_mapping_fn=lambda agent_id, *_a, **_k: agent_id.split("_")[0])
        .rl_module(rl_module_spec=MultiRLModuleSpec(rl_module_specs={
            role: RLModuleSpec(module_class=ActionMaskingTorchRLModule, model_config={"head_fcnet_hiddens": [32]})
            for role in ROLES}))
        .training(train_batch_size_per_learner=120, minibatch_size=60, num_epochs=1)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        result: dict[str, Any] = algo.train()
    finally:
        algo.stop()
    assert result["training_iteration"] == 1
    assert result["num_env_steps_sampled_lifetime"] >= 120
    assert set(ROLES) <= set(result["learners"])
