"""Every reward component, declared once.

A component is a name, the pure function that computes it, the range of its raw value, its default
weight, when it fires and a one-line description. Everything else reads this table:
:class:`~clinic_env.rewards.config.RewardConfig` validates weights against it, the env docstring's
reward table and the leaderboard columns are generated from it, and the flat ``infos`` carry one
``reward/<name>`` key per component. Adding a component is one :class:`Component` entry here (plus
the code in the engine that produces its value).

The scalar reward of a step is ``sum(weight[c] * value[c])`` over the components the step produced.
*Outcome* components (``paid="end"``) are computed when their segment closes but paid to the
doctor only when the episode ends, so nothing the doctor receives before its final diagnosis depends
on the gold diagnosis (no oracle); *cost* components are paid on the step that incurs them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from clinic_env.rewards import segment

__all__ = ["COMPONENTS", "Component", "component_names", "default_weights", "reward_table"]


def _constant(value: float) -> Callable[..., float]:
    def fn(*_: Any, **__: Any) -> float:
        return value

    fn.__doc__ = f"The constant {value}."
    return fn


@dataclass(frozen=True)
class Component:
    """One reward component.

    Attributes:
        name: Key in ``reward_components`` and in episode records' ``totals``.
        fn: The pure function that computes its raw value (see :mod:`clinic_env.rewards.segment`).
        low: Smallest raw value (with the default constants).
        high: Largest raw value.
        weight: Default weight in the scalar reward.
        paid: ``"end"``: paid when the episode ends (outcomes); ``"step"``: on the step that earns it.
        fires: When it is computed.
        description: One line for docs and tables.
    """

    name: str
    fn: Callable[..., Any]
    low: float
    high: float
    weight: float
    paid: Literal["end", "step"]
    fires: str
    description: str


COMPONENTS: dict[str, Component] = {c.name: c for c in (
    Component("history", segment.history_reward, 0.0, 1.0, 1.0, "end", "history closes",
              "elicited fact weight / total (critical facts 2, others 1, vague answers half); presenting "
              "complaint excluded"),
    Component("differential", segment.differential_reward, 0.0, 1.0, 1.0, "end", "differential committed",
              "1 if the gold is in the top k (5) + 0.5 x share of must-not-miss diagnoses listed - 0.05 per "
              "entry beyond k, clipped to [0, 1]"),
    Component("tests", segment.tests_reward, -0.4, 1.0, 1.0, "end", "tests close",
              "weighted F1 of tests ordered (recall (2 R_ess + R_opt) / 3) - 0.2 x min(cost / budget, 2)"),
    Component("diagnosis", segment.diagnosis_reward, 0.0, 1.0, 2.0, "end", "final diagnosis",
              "ICD-10 match (gold or a consistent descendant 1, same category 0.6, same block 0.3; 0 for a "
              "must-not-miss gold) x share of a confirmatory evidence set obtained"),
    Component("rubric", segment.rubric_score, 0.0, 1.0, 1.0, "end", "episode end",
              "HealthBench score of the rubric items (case, general, principles); on a cut-short episode "
              "unjudged items count as not met"),
    Component("dynamic_rubric", _constant(0.0), -1.0, 1.0, 1.0, "end", "episode end",
              "evolved rubric items met: sum of points / 10 (only with a dynamic bank)"),
    Component("fact", _constant(0.0), -1.0, 0.0, 1.0, "end", "episode end (text mode)",
              "gated fact-aware reward over the doctor's own claims (only when enabled)"),
    Component("incomplete", _constant(-1.0), -1.0, 0.0, 2.0, "end", "episode cut short without a final diagnosis",
              "-1: a consultation without a diagnosis is a failed one (stalling never beats finishing)"),
    Component("safety", _constant(-1.0), -1.0, 0.0, 1.0, "step", "an emergency patient runs out of patience",
              "-1 once: a recorded safety event (an emergency patient does not walk out)"),
    Component("step", _constant(-0.01), -0.01, 0.0, 1.0, "step", "every doctor action but wait",
              "-step_cost (0.01), also for an unusable text reply"),
    Component("illegal", _constant(-0.05), -0.05, 0.0, 1.0, "step", "an action outside the mask (any agent)",
              "-illegal_penalty (0.05); the action is a no-op"),
    Component("violation", _constant(0.0), -1.0, 0.0, 1.0, "step", "a doctor step with SPAR violations",
              "-violation_cost x sum(1 - lambda_v) (0 by default: violations feed SPAR instead)"),
)}


def component_names() -> tuple[str, ...]:
    """Every component name, in declaration order."""
    return tuple(COMPONENTS)


def default_weights() -> dict[str, float]:
    """Component name -> default weight."""
    return {name: c.weight for name, c in COMPONENTS.items()}


def reward_table() -> str:
    """The components as a reStructuredText-style table (for docstrings and docs)."""
    rows = [(c.name, f"{c.weight:g}", f"[{c.low:g}, {c.high:g}]", "episode end" if c.paid == "end" else "same step",
             c.fires, c.description) for c in COMPONENTS.values()]
    head = ("component", "weight", "range", "paid", "computed when", "what")
    widths = [max(len(r[i]) for r in (*rows, head)) for i in range(len(head))]
    line = "  ".join("=" * w for w in widths)
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([line, fmt.format(*head), line, *(fmt.format(*r) for r in rows), line])
