"""TorchRL's PettingZooWrapper over the numeric envs: specs (infos included) from reset, then a rollout."""

from __future__ import annotations

from typing import Any

import pytest

import clinic_env

pytest.importorskip("torchrl")
from torchrl.envs.libs.pettingzoo import PettingZooWrapper
from torchrl.envs.utils import check_env_specs

GROUPS = ["doctor", "patient", "examiner"]
pytestmark = pytest.mark.filterwarnings("ignore:PettingZoo in TorchRL is tested:UserWarning")


@pytest.mark.parametrize(("make", "kwargs", "groups"), [
    (clinic_env.parallel_env, {}, {g: [f"{g}_0"] for g in GROUPS}),
    (clinic_env.env, {"use_mask": True}, {f"{g}_0": [f"{g}_0"] for g in GROUPS}),
], ids=["parallel", "aec"])
def test_wrapper_rollout(make: Any, kwargs: dict[str, Any], groups: dict[str, list[str]]) -> None:
    env = PettingZooWrapper(env=make(observation="numeric", max_cycles=10), seed=0, **kwargs)
    assert env.group_map == groups
    check_env_specs(env, seed=0)
    rollout = env.rollout(50, break_when_any_done=False)  # past max_cycles (10 cycles, 30 AEC turns): resets in between
    assert rollout.batch_size == (50,)
    for group in groups:
        info = rollout["next", group, "info"]
        assert {"reward/diagnosis", "n_violations", "illegal_action", "segment", "cycle"} <= set(info.keys())
        assert not info["illegal_action"].any()  # TorchRL's random actions follow the action mask
    assert rollout["next", "done"].any()
