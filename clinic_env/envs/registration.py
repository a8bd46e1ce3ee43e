"""Register the envs, in one place: PettingZoo's ``clinic/consultation-v1`` and Gymnasium's doctor ids.

PettingZoo (``pettingzoo.make("aec" | "parallel", ENV_ID)``) builds the same wrapped env as
``clinic_env.env()`` / ``clinic_env.parallel_env()``. Gymnasium ids (``gym.make`` and
``gym.make_vec`` work with each):

=========================  ====================================================================
id                         what
=========================  ====================================================================
``clinic/Doctor-v0``       :class:`~clinic_env.envs.doctor.DoctorEnv` with the defaults: every
                           bundled case, the full catalogue, 150 cycles
``clinic/Doctor-lite-v0``  a curriculum env: the 10 bundled cases in :data:`LITE_CASES` (chest
                           pain, headache and shortness of breath), the reduced catalogue built
                           from them (``catalogue="cases"``), segment budgets of 15 questions, 5
                           differential entries and 8 tests, 100 cycles
``clinic/Doctor-text-v0``  :class:`~clinic_env.envs.text.TextDoctorEnv` (``step(str)``)
=========================  ====================================================================

Any keyword given to ``gym.make`` overrides these defaults (``cases=splits.load(...)``).
"""

from __future__ import annotations

from typing import Any

import gymnasium
import pettingzoo

__all__ = ["DOCTOR_IDS", "ENV_ID", "LEGACY_ENV_ID", "LITE_CASES", "LITE_KWARGS", "lite_env", "register_envs"]

ENV_ID = "clinic/consultation-v1"

#: The Doctor-lite-v0 case set: bundled cases of three presenting complaints, so that a learner
#: meets diagnoses that share questions and tests.
LITE_CASES = (
    "card-stemi-anterior", "card-nstemi", "card-aortic-dissection", "pulm-pe", "card-pericarditis",
    "neuro-sah", "neuro-bacterial-meningitis", "neuro-migraine-aura",
    "pulm-cap", "pulm-acute-asthma",
)
LITE_KWARGS: dict[str, Any] = {
    "cases": list(LITE_CASES), "catalogue": "cases", "max_cycles": 100,
    "budgets": {"questions": 15, "differential": 5, "tests": 8},
}
DOCTOR_IDS = ("clinic/Doctor-v0", "clinic/Doctor-lite-v0", "clinic/Doctor-text-v0")


def lite_env(**kwargs: Any) -> Any:
    """The Doctor-lite-v0 env (its cases given as ids are resolved from the bundled library)."""
    from clinic_env.envs.doctor import DoctorEnv
    from clinic_env.schema import load_cases

    merged = {**LITE_KWARGS, **kwargs}
    if merged.get("cases") == list(LITE_CASES):
        by_id = {c.id: c for c in load_cases()}
        merged["cases"] = [by_id[c] for c in LITE_CASES]
    return DoctorEnv(**merged)


#: The first release's id, kept as an alias of the current env so that existing scripts still run;
#: its v0 behaviour is not kept (see the version history in ConsultationEnv's docstring).
LEGACY_ENV_ID = "clinic/consultation-v0"


def register_envs() -> None:
    """Register every env once; safe to call repeatedly."""
    for env_id in (ENV_ID, LEGACY_ENV_ID):
        if env_id not in pettingzoo.aec_registry:
            pettingzoo.register("aec", env_id, entry_point="clinic_env:env", max_cycles=150)
        if env_id not in pettingzoo.parallel_registry:
            pettingzoo.register("parallel", env_id, entry_point="clinic_env:parallel_env", max_cycles=150)
    registry = gymnasium.envs.registration.registry
    if "clinic/Doctor-v0" not in registry:
        gymnasium.register("clinic/Doctor-v0", entry_point="clinic_env.envs.doctor:DoctorEnv",
                           disable_env_checker=False)
    if "clinic/Doctor-lite-v0" not in registry:
        gymnasium.register("clinic/Doctor-lite-v0", entry_point="clinic_env.envs.registration:lite_env")
    if "clinic/Doctor-text-v0" not in registry:
        gymnasium.register("clinic/Doctor-text-v0", entry_point="clinic_env.envs.text:TextDoctorEnv")
