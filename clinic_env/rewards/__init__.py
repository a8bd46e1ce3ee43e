"""Reward formulas (pure functions) and the rule checks behind rubric items."""

from clinic_env.rewards.checks import EpisodeView, evaluate_check
from clinic_env.rewards.config import RewardConfig
from clinic_env.rewards.segment import (
    diagnosis_reward,
    differential_reward,
    history_reward,
    rubric_score,
    tests_reward,
)

__all__ = [
    "EpisodeView",
    "RewardConfig",
    "diagnosis_reward",
    "differential_reward",
    "evaluate_check",
    "history_reward",
    "rubric_score",
    "tests_reward",
]
