"""Reward weights and constants, validated by pydantic against the component registry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from clinic_env.rewards.facts import FactConfig
from clinic_env.rewards.registry import COMPONENTS, default_weights
from clinic_env.rewards.verifier import VerifierConfig

__all__ = ["COMPONENTS", "RewardConfig"]


class RewardConfig(BaseModel):
    """Weights and constants of the doctor's reward (DESIGN.md §4).

    The scalar reward of a turn is ``sum(weights[c] * components[c])`` over the components
    produced since the agent last acted (see :mod:`clinic_env.rewards.registry`). ``weights`` may
    name only some components: the others keep their default weights; a name that is not a
    registered component is an error naming it and the known names.
    """

    @classmethod
    def naive(cls) -> RewardConfig:
        """A coverage-and-recall reward with no cost, step, precision or rubric terms: the static
        reward many RL set-ups start from, and the easiest to game by asking and ordering everything."""
        return cls(
            weights={"diagnosis": 1.0, "rubric": 0.0, "step": 0.0, "violation": 0.0, "fact": 0.0,
                     "incomplete": 0.0, "safety": 0.0},
            differential_k=1000, differential_extra_penalty=0.0, cost_weight=0.0, tests_metric="recall",
            differential_max=30,
        )

    model_config = ConfigDict(extra="forbid", frozen=True)

    weights: dict[str, float] = Field(
        default_factory=default_weights,
        description="Weight of each component in the scalar reward; a partial dict overrides only what it names.",
    )
    step_cost: float = Field(default=0.01, ge=0, le=1, description="Cost of each doctor action (not wait).")
    illegal_penalty: float = Field(default=0.05, ge=0, le=1, description="Penalty of an action outside the mask.")
    differential_k: int = Field(default=5, ge=1, description="Top-k in which the gold diagnosis must appear.")
    differential_extra_penalty: float = Field(default=0.05, ge=0, description="Per differential entry beyond k.")
    differential_max: int = Field(default=10, ge=1, description="Most entries a differential may hold.")
    cost_weight: float = Field(default=0.2, ge=0, description="Weight of cost/budget in the tests reward.")
    cost_cap: float = Field(default=2.0, gt=0, description="cost/budget is capped at this value.")
    evidence_floor: float = Field(
        default=0.0, ge=0, le=0.5,
        description="Diagnosis credit of a right label with no confirmatory evidence (a training curriculum "
                    "option; 0 by default: a label without its evidence earns nothing).")
    tests_metric: Literal["f1", "recall"] = Field(
        default="f1", description="'recall' scores tests by weighted recall alone (a naive, gameable reward).")
    violations: VerifierConfig = Field(default_factory=VerifierConfig, description="Step verifier settings.")
    fact: FactConfig = Field(default_factory=FactConfig, description="Fact-aware reward (text mode).")
    violation_cost: float = Field(
        default=0.0, ge=0, description="Plain per-step cost: each violation v adds -violation_cost * (1 - lambda_v).")

    @field_validator("weights", mode="before")
    @classmethod
    def _known(cls, value: Any) -> dict[str, float]:
        if not isinstance(value, Mapping):
            raise ValueError(f"weights must be a mapping of component name to weight, got {type(value).__name__}")
        unknown = sorted(str(k) for k in value if k not in COMPONENTS)
        if unknown:
            raise ValueError(f"unknown reward component(s) {', '.join(map(repr, unknown))}; "
                             f"known components: {', '.join(COMPONENTS)}")
        merged = default_weights()
        for key, weight in value.items():
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight != weight:
                raise ValueError(f"weight of {key!r} must be a finite number, got {weight!r}")
            merged[str(key)] = float(weight)
        return merged

    def weight(self, component: str) -> float:
        """The weight of a registered component (KeyError for an unknown name)."""
        return self.weights[component]

    def scalar(self, components: Mapping[str, float]) -> float:
        """Weighted sum of reward components."""
        w = self.weights
        return float(sum(w[k] * v for k, v in components.items()))
