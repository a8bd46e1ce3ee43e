"""clinic-env: a PettingZoo multi-agent simulation of a clinical consultation.

Public API::

    import clinic_env
    env = clinic_env.env()                 # AEC env (PettingZoo), order-enforced
    penv = clinic_env.parallel_env()       # native ParallelEnv
    genv = clinic_env.doctor_env()         # single-agent gymnasium.Env for training a doctor
    cases = clinic_env.load_cases()        # the bundled case library (or a file/folder)

The envs are registered as ``clinic/consultation-v1`` in PettingZoo's registry (the same wrapped
env as ``env()``), and the doctor's seat as Gymnasium ids ``clinic/Doctor-v0``,
``clinic/Doctor-lite-v0`` and ``clinic/Doctor-text-v0`` (see :mod:`clinic_env.envs.registration`).
"""

from __future__ import annotations

from typing import Any

from pettingzoo.utils import OrderEnforcingWrapper

from clinic_env.envs.aec import ConsultationEnv
from clinic_env.envs.doctor import DoctorEnv
from clinic_env.envs.parallel import ConsultationParallelEnv
from clinic_env.envs.registration import ENV_ID, register_envs
from clinic_env.envs.setup import ENV_VERSION, EnvInfo
from clinic_env.rewards.config import RewardConfig
from clinic_env.schema import (
    Case,
    Catalogue,
    DataError,
    Persona,
    RubricBank,
    RubricItem,
    load_cases,
    load_catalogue,
    load_personas,
    load_rubric_banks,
)

__version__ = "0.2.0"

__all__ = [
    "ENV_ID", "ENV_VERSION", "Case", "Catalogue", "ConsultationEnv", "ConsultationParallelEnv",
    "DataError", "DoctorEnv", "EnvInfo", "Persona", "RewardConfig", "RubricBank", "RubricItem",
    "doctor_env", "env", "load_cases", "load_catalogue", "load_personas", "load_rubric_banks",
    "parallel_env", "raw_env",
]


def _text_mode(mode: str) -> bool:
    if mode not in ("structured", "text"):
        raise ValueError(f"mode must be 'structured' or 'text', got {mode!r}")
    return mode == "text"


def raw_env(mode: str = "structured", **kwargs: Any) -> Any:
    """The AEC env without wrappers (see :class:`ConsultationEnv` for the arguments;
    ``mode="text"``: chat messages in the observations, text actions, see :mod:`clinic_env.envs.text`;
    ``mode="open"``: AgentClinic's free-dialogue protocol, see :mod:`clinic_env.envs.open`)."""
    if mode == "open":
        from clinic_env.envs.open import OpenConsultationEnv

        return OpenConsultationEnv(**kwargs)
    if _text_mode(mode):
        from clinic_env.envs.text import TextConsultationEnv

        return TextConsultationEnv(**kwargs)
    return ConsultationEnv(**kwargs)


def env(mode: str = "structured", **kwargs: Any) -> OrderEnforcingWrapper:
    """The AEC env, wrapped to enforce PettingZoo's call order (reset before step, ...);
    ``mode`` is ``"structured"``, ``"text"`` or ``"open"``."""
    return OrderEnforcingWrapper(raw_env(mode, **kwargs))


def parallel_env(mode: str = "structured", **kwargs: Any) -> ConsultationParallelEnv:
    """The native Parallel env (same arguments as :func:`env`)."""
    if _text_mode(mode):
        from clinic_env.envs.text import TextParallelEnv

        return TextParallelEnv(**kwargs)
    return ConsultationParallelEnv(**kwargs)


def doctor_env(mode: str = "structured", **kwargs: Any) -> DoctorEnv:
    """Single-agent Gymnasium env: the doctor's view, with the default patient and examiner built in
    (``mode="text"``: ``step(str)``, observation with ``"transcript"`` and ``"messages"``)."""
    if _text_mode(mode):
        from clinic_env.envs.text import TextDoctorEnv

        return TextDoctorEnv(**kwargs)
    return DoctorEnv(**kwargs)


register_envs()
