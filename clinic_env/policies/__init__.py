"""Pluggable policies: built-ins by name, third-party ones through the ``clinic_env.policies``
entry-point group (each entry point is a class taking ``(info, seed=None)``)."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from clinic_env.envs.setup import EnvInfo
from clinic_env.policies.base import Policy, legal_actions
from clinic_env.policies.belief import Belief
from clinic_env.policies.doctors import InfoGainDoctor, ShotgunDoctor, ThoroughDoctor
from clinic_env.policies.human import HumanPolicy
from clinic_env.policies.simple import PersonaPatient, RandomPolicy, RubricExaminer

__all__ = [
    "BUILTIN_POLICIES", "Belief", "HumanPolicy", "InfoGainDoctor", "PersonaPatient", "Policy", "RandomPolicy",
    "RubricExaminer", "ShotgunDoctor", "ThoroughDoctor", "available_policies", "known_policy", "legal_actions",
    "make_policy",
]

BUILTIN_POLICIES: dict[str, Callable[..., Any]] = {
    "random": RandomPolicy,
    "thorough": ThoroughDoctor,
    "info-gain": InfoGainDoctor,
    "shotgun": ShotgunDoctor,
    "persona": PersonaPatient,
    "rubric": RubricExaminer,
    "human": HumanPolicy,
}
_ALIASES = {"infogain": "info-gain", "info_gain": "info-gain", "persona-patient": "persona",
            "rubric-examiner": "rubric"}


def _plugins() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group="clinic_env.policies")}


def available_policies() -> list[str]:
    """Names accepted by :func:`make_policy` (built-ins and installed plugins)."""
    return sorted({*BUILTIN_POLICIES, *_plugins()})


def known_policy(name: str) -> bool:
    """Whether :func:`make_policy` accepts ``name`` (aliases included)."""
    return _ALIASES.get(name, name) in available_policies()


def make_policy(name: str, info: EnvInfo, seed: int | None = None, **kwargs: Any) -> Policy:
    """Build a policy by name (``random``, ``thorough``, ``info-gain``, ``shotgun``, ``persona``,
    ``rubric``, ``human`` or an installed plugin)."""
    key = _ALIASES.get(name, name)
    factory = BUILTIN_POLICIES.get(key)
    if factory is None:
        plugin = _plugins().get(key)
        if plugin is None:
            raise KeyError(f"unknown policy {name!r}; available: {', '.join(available_policies())}")
        factory = plugin.load()
    policy: Policy = factory(info, seed=seed, **kwargs)
    return policy
