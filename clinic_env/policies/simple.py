"""Simple built-in policies: mask-aware random, the persona-driven patient, the rubric examiner."""

from __future__ import annotations

from typing import Any

import numpy as np

from clinic_env.core.actions import WAIT
from clinic_env.envs.setup import EnvInfo
from clinic_env.policies.base import legal_actions

__all__ = ["PersonaPatient", "RandomPolicy", "RubricExaminer"]


class RandomPolicy:
    """Uniform over the legal actions (never picks an illegal one).

    Args:
        info: The env's :class:`~clinic_env.envs.setup.EnvInfo` (unused; kept for a uniform constructor).
        seed: Seed of the policy's own generator.
    """

    def __init__(self, info: EnvInfo | None = None, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.rng = np.random.default_rng(seed)

    def act(self, observation: dict[str, Any], agent: str) -> int:
        legal = legal_actions(observation)
        return int(legal[self.rng.integers(len(legal))]) if len(legal) else WAIT


class PersonaPatient:
    """The default patient: chooses an answer mode from the persona's noise rates.

    Reads the persona and pending-question fields of its observation. A scripted contradiction is
    used with the persona's contradiction rate; a sensitive item is withheld on first asking with
    the withholding rate and disclosed when asked again (the persona "discloses when asked twice");
    a first answer is vague with the vague rate; otherwise it answers truthfully.
    """

    def __init__(self, info: EnvInfo, seed: int | None = None) -> None:
        self.info = info
        self.rng = np.random.default_rng(seed)

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.rng = np.random.default_rng(seed)

    def act(self, observation: dict[str, Any], agent: str) -> int:
        mask = observation["action_mask"]
        t = self.info.table
        if not mask[t.answer0]:
            return WAIT
        v = observation["observation"]
        lay = self.info.layout
        listed, times, contra, sensitive = v[lay.pending_flags : lay.pending_flags + 4]
        vague, withholding, contradiction = v[lay.persona : lay.persona + 3]
        first = times <= 1 / 3 + 1e-6
        if listed and contra and mask[t.answer("contradict")] and self.rng.random() < contradiction:
            return t.answer("contradict")
        if listed and sensitive and first and self.rng.random() < withholding:
            return t.answer("withhold")
        if listed and first and self.rng.random() < vague:
            return t.answer("vague")
        return t.answer("truthful")


class RubricExaminer:
    """The default examiner: follows the rule check of the item being graded; abstains (a failed
    judgement, left out of the score) on items without a check."""

    def __init__(self, info: EnvInfo, seed: int | None = None) -> None:
        self.info = info

    def reset(self, seed: int | None = None) -> None:
        pass

    def act(self, observation: dict[str, Any], agent: str) -> int:
        t = self.info.table
        if not observation["action_mask"][t.verdict0]:
            return WAIT
        v = observation["observation"]
        e = self.info.layout.examiner
        if not v[e]:
            return t.verdict("abstain")
        return t.verdict("met" if v[e + 1] else "not_met")
