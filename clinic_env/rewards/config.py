"""Reward weights and constants, validated by pydantic (configurable per env)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from clinic_env.rewards.facts import FactConfig
from clinic_env.rewards.verifier import VerifierConfig

__all__ = ["COMPONENTS", "RewardConfig"]

#: Names of the reward components reported in ``infos[agent]["reward_components"]``.
COMPONENTS = ("history", "differential", "tests", "diagnosis", "rubric", "step", "illegal", "violation",
              "dynamic_rubric", "fact")


class RewardConfig(BaseModel):
    """Weights and constants of the doctor's reward (DESIGN.md §4).

    The scalar reward of a turn is ``sum(weights[c] * components[c])`` over the components
    produced since the agent last acted. ``step``, ``illegal`` and ``violation`` components are
    already negative.
    """

    @classmethod
    def naive(cls) -> RewardConfig:
        """A coverage-and-recall reward with no cost, step, precision or rubric terms: the static
        reward many RL set-ups start from, and the easiest to game by asking and ordering everything."""
        return cls(
            weights={"history": 1.0, "differential": 1.0, "tests": 1.0, "diagnosis": 1.0, "rubric": 0.0,
                     "step": 0.0, "illegal": 1.0, "violation": 0.0, "dynamic_rubric": 1.0},
            differential_k=1000, differential_extra_penalty=0.0, cost_weight=0.0, tests_metric="recall",
            differential_max=30,
        )

    model_config = ConfigDict(extra="forbid", frozen=True)

    weights: dict[str, float] = Field(
        default_factory=lambda: {
            "history": 1.0, "differential": 1.0, "tests": 1.0, "diagnosis": 2.0,
            "rubric": 1.0, "step": 1.0, "illegal": 1.0, "violation": 1.0, "dynamic_rubric": 1.0, "fact": 1.0,
        },
        description="Weight of each component in the scalar reward.",
    )
    step_cost: float = Field(default=0.01, ge=0, le=1, description="Cost of each doctor action (not wait).")
    illegal_penalty: float = Field(default=0.05, ge=0, le=1, description="Penalty of an action outside the mask.")
    differential_k: int = Field(default=5, ge=1, description="Top-k in which the gold diagnosis must appear.")
    differential_extra_penalty: float = Field(default=0.05, ge=0, description="Per differential entry beyond k.")
    differential_max: int = Field(default=10, ge=1, description="Most entries a differential may hold.")
    cost_weight: float = Field(default=0.2, ge=0, description="Weight of cost/budget in the tests reward.")
    cost_cap: float = Field(default=2.0, gt=0, description="cost/budget is capped at this value.")
    tests_metric: Literal["f1", "recall"] = Field(
        default="f1", description="'recall' scores tests by weighted recall alone (a naive, gameable reward).")
    violations: VerifierConfig = Field(default_factory=VerifierConfig, description="Step verifier settings.")
    fact: FactConfig = Field(default_factory=FactConfig, description="Fact-aware reward (text mode).")
    violation_cost: float = Field(
        default=0.0, ge=0, description="Plain per-step cost: each violation v adds -violation_cost * (1 - lambda_v).")

    def weight(self, component: str) -> float:
        """The weight of a component (0 for unknown names)."""
        return self.weights.get(component, 0.0)

    def scalar(self, components: dict[str, float]) -> float:
        """Weighted sum of reward components."""
        return float(sum(self.weights.get(k, 0.0) * v for k, v in components.items()))
