"""Evaluate rubric ``check`` predicates over an episode (pure functions)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from clinic_env.schema.icd10 import matches
from clinic_env.schema.rubric import Check

__all__ = ["EpisodeView", "evaluate_check"]


@dataclass(frozen=True)
class EpisodeView:
    """What a rule check may look at: the doctor's questions, tests, differential and final call,
    and how many of its steps repeated an earlier question or test."""

    asked: Collection[str]
    ordered: Collection[str]
    cost_usd: float
    differential: Sequence[str]
    final_dx: str | None
    repeats: int = 0
    order_cycle: Mapping[str, int] = field(default_factory=dict)
    """Test id -> the cycle it was first ordered in (for ``ordered_within``)."""


def evaluate_check(check: Check, ep: EpisodeView) -> bool:
    """Whether ``check`` holds for the episode (see docs/DATA_FORMAT.md §4)."""
    op, arg = check.operator
    if op == "asked":
        return arg in ep.asked
    if op == "not_asked":
        return arg not in ep.asked
    if op == "ordered":
        return arg in ep.ordered
    if op == "not_ordered":
        return arg not in ep.ordered
    if op == "ordered_within":
        first = ep.order_cycle.get(arg.item)
        return first is not None and first <= arg.cycle
    if op == "asked_all":
        return all(a in ep.asked for a in arg)
    if op == "asked_any":
        return any(a in ep.asked for a in arg)
    if op == "ordered_all":
        return all(a in ep.ordered for a in arg)
    if op == "ordered_any":
        return any(a in ep.ordered for a in arg)
    if op == "asked_count_gt":
        return bool(len(ep.asked) > arg)
    if op == "ordered_count_gt":
        return bool(len(ep.ordered) > arg)
    if op == "differential_size_gt":
        return bool(len(ep.differential) > arg)
    if op == "diagnosed":
        return bool((ep.final_dx is not None) == arg)
    if op == "repeats_gt":
        return bool(ep.repeats > arg)
    if op == "cost_gt":
        return bool(ep.cost_usd > arg)
    if op == "differential_includes":
        return any(matches(code, arg) for code in ep.differential)
    if op == "final_dx_in":
        return ep.final_dx is not None and any(matches(ep.final_dx, p) for p in arg)
    if op == "all_of":
        return all(evaluate_check(c, ep) for c in arg)
    if op == "any_of":
        return any(evaluate_check(c, ep) for c in arg)
    if op == "not":
        return not evaluate_check(arg, ep)
    raise ValueError(f"unknown check operator {op!r}")
