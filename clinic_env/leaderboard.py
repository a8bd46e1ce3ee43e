"""Summaries of episode records: means with 95% confidence intervals, per doctor."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from clinic_env.records import RecordLike
from clinic_env.rewards.registry import COMPONENTS

__all__ = ["METRICS", "leaderboard", "mean_ci"]

#: (column, how to read it from a record): the scalar reward, every outcome component of the
#: reward registry, then cost and turns.
METRICS: tuple[tuple[str, str], ...] = (
    ("reward", "totals.reward"),
    *((name, f"totals.{name}") for name, c in COMPONENTS.items() if c.paid == "end"),
    ("cost_usd", "cost_usd"),
    ("doctor_turns", "doctor_turns"),
)
#: Rates of episode flags reported next to the metrics.
FLAGS = ("unsupported_diagnosis", "dangerous_miss")

# Two-sided 97.5% quantiles of Student's t for small samples (df 1..30); beyond, the normal 1.96.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
         2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
         2.052, 2.048, 2.045, 2.042)


def mean_ci(values: Sequence[float]) -> tuple[float, float]:
    """Mean and half-width of its 95% t-interval (half-width 0 for fewer than 2 values)."""
    n = len(values)
    if n == 0:
        return float("nan"), 0.0
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    t = _T975[n - 2] if n - 1 <= len(_T975) else 1.96
    return mean, t * math.sqrt(var / n)


def _get(record: RecordLike, path: str) -> float | None:
    node: Any = record
    for part in path.split("."):
        if not hasattr(node, "__getitem__") or part not in node:
            return None
        node = node[part]
    return float(node) if isinstance(node, (int, float)) else None


def leaderboard(records: Iterable[RecordLike]) -> list[dict[str, Any]]:
    """One row per doctor: episodes, errors, accuracy and (mean, ci95) for every metric.

    A segment the episode never reached counts as 0 (the doctor earned nothing there); episodes
    that crashed count in ``errors`` only.
    """
    by_doctor: dict[str, list[RecordLike]] = {}
    for r in records:
        by_doctor.setdefault(str(r.get("doctor")), []).append(r)
    rows = []
    for doctor, recs in by_doctor.items():
        ok = [r for r in recs if not r.get("errors")]
        row: dict[str, Any] = {"doctor": doctor, "episodes": len(recs), "errors": len(recs) - len(ok)}
        for name, path in METRICS:
            vals = [_get(r, path) for r in ok]
            row[name] = mean_ci([v if v is not None else 0.0 for v in vals])
        exact = [r.get("final_diagnosis") == r.get("gold_diagnosis") for r in ok]
        row["exact_dx"] = mean_ci([float(x) for x in exact])
        for flag in FLAGS:
            row[flag] = mean_ci([float(flag in (r.get("flags") or ())) for r in ok])
        rows.append(row)
    rows.sort(key=lambda row: -row["reward"][0] if not math.isnan(row["reward"][0]) else math.inf)
    return rows
