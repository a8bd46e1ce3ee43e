"""Open mode: AgentClinic's protocol inside clinic-env (see docs/OPEN_MODE.md).

- :class:`clinic_env.envs.open.OpenConsultationEnv` (``clinic_env.env(mode="open")``): the AEC env;
- :func:`arun_open` (:mod:`clinic_env.open.rollout`): async rollouts with LLM or scripted roles;
- :mod:`clinic_env.open.prompts`, :mod:`~clinic_env.open.roles`, :mod:`~clinic_env.open.grading`,
  :mod:`~clinic_env.open.biases`: the prompts, scripted stand-ins, grading and bias data.
"""

from __future__ import annotations

from typing import Any

from clinic_env.open.biases import BIAS_IDS, bias_text, load_biases

__all__ = ["BIAS_IDS", "arun_open", "bias_text", "load_biases"]


async def arun_open(*args: Any, **kwargs: Any) -> Any:
    """See :func:`clinic_env.open.rollout.arun_open` (imported on first use)."""
    from clinic_env.open.rollout import arun_open as run

    return await run(*args, **kwargs)
