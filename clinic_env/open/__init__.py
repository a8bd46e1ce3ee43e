"""Open mode: AgentClinic's protocol inside clinic-env (see docs/OPEN_MODE.md).

- :class:`clinic_env.envs.open.OpenConsultationEnv` (``clinic_env.env(mode="open")``): the AEC env;
- :func:`arun_open` (:mod:`clinic_env.open.rollout`): async rollouts with LLM or scripted roles;
- :mod:`clinic_env.open.prompts`, :mod:`~clinic_env.open.roles`, :mod:`~clinic_env.open.grading`,
  :mod:`~clinic_env.open.biases`: the prompts, scripted stand-ins, grading and bias data.

The rollout names are loaded on first use (the env imports this package's prompts, and the rollout
imports the env).
"""

from __future__ import annotations

from typing import Any

from clinic_env.open.biases import BIAS_IDS, bias_text, load_biases

__all__ = ["BIAS_IDS", "OPEN_ROLES", "SCRIPTED", "arun_open", "bias_text", "load_biases"]

_LAZY = ("OPEN_ROLES", "SCRIPTED", "arun_open")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from clinic_env.open import rollout

        return getattr(rollout, name)
    raise AttributeError(f"module 'clinic_env.open' has no attribute {name!r}")
