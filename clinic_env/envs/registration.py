"""Register the consultation envs in PettingZoo's registry (``clinic/consultation-v0``)."""

from __future__ import annotations

import pettingzoo

__all__ = ["ENV_ID", "register_envs"]

ENV_ID = "clinic/consultation-v0"


def register_envs() -> None:
    """Register the AEC and Parallel envs once; safe to call repeatedly."""
    if ENV_ID not in pettingzoo.aec_registry:
        pettingzoo.register("aec", ENV_ID, entry_point="clinic_env.envs.aec:ConsultationEnv", max_cycles=150)
    if ENV_ID not in pettingzoo.parallel_registry:
        pettingzoo.register("parallel", ENV_ID, entry_point="clinic_env.envs.parallel:ConsultationParallelEnv",
                            max_cycles=150)
