"""Statistics a reviewer accepts: bootstrap and Wilson intervals, paired comparisons, breakdowns.

Conventions (all intervals are two-sided, 95% by default):

- **Means** (reward, segment scores, cost, turns): BCa bootstrap (bias-corrected and accelerated,
  Efron 1987) over ``resamples`` (default 2,000) resamples of the episodes, drawn from a local
  ``numpy.random.Generator`` seeded from ``seed`` and the quantity's label, so a figure does not
  change when doctors or metrics are added. When BCa is undefined (every resample on one side of
  the estimate) the percentile interval is used; ``method`` in the output says which. A sample whose
  values are all equal has a zero-width interval and ``degenerate: true``: the data give no spread.
- **Rates** (exact diagnosis, dangerous miss, unsupported diagnosis): Wilson score intervals, which
  stay inside [0, 1] and are never zero-width (0/5 gives [0, 0.434]).
- **Paired comparisons**: every doctor plays the same (case_id, persona, seed) episodes, so two
  doctors are compared on the episodes both finished without error: the mean difference A - B with
  a BCa bootstrap over the pairs, and A's win rate on the reward (wins + ties / 2 over pairs; a tie is
  a difference within ``1e-9``) with a Wilson interval. Intervals are not adjusted for multiplicity.
- Episodes that crashed (``errors``) count in ``errors`` only, as in :mod:`clinic_env.leaderboard`.
- **Cost vs accuracy** as in SDBench: mean cost per episode and exact-diagnosis accuracy per doctor;
  the Pareto frontier is the doctors no other doctor beats on both (cheaper or as cheap and at least as
  accurate, better on one).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from clinic_env.leaderboard import METRICS
from clinic_env.records import RecordLike, Scalar, flatten

__all__ = [
    "MEANS",
    "PAIRED_METRICS",
    "RATES",
    "Interval",
    "PairedComparison",
    "bootstrap_mean",
    "by_case",
    "by_specialty",
    "cost_accuracy",
    "doctor_table",
    "paired",
    "pareto_frontier",
    "summarise",
    "wilson",
]

#: Mean metrics: (name, column of :func:`clinic_env.records.flatten`).
MEANS: tuple[tuple[str, str], ...] = tuple(
    (name, f"totals.{name}" if path.startswith("totals.") else path) for name, path in METRICS
)
#: Rates: (name, boolean column of :func:`clinic_env.records.flatten`).
RATES: tuple[tuple[str, str], ...] = (
    ("exact_dx", "exact_dx"),
    ("dangerous_miss", "flag.dangerous_miss"),
    ("unsupported_diagnosis", "flag.unsupported_diagnosis"),
)
#: Metrics compared pairwise; the first decides wins.
PAIRED_METRICS: tuple[str, ...] = ("reward", "exact_dx", "cost_usd")
PAIR_KEY = ("case_id", "persona", "seed")
TIE_TOLERANCE = 1e-9
_CHUNK = 2_000_000  # values per resampling block: bounds memory for long runs


@dataclass(frozen=True)
class Interval:
    """An estimate with its confidence interval.

    Attributes:
        estimate: The mean (or rate) of the sample.
        low: Lower bound.
        high: Upper bound.
        n: Sample size.
        method: ``"bca"``, ``"percentile"``, ``"wilson"`` or ``"none"`` (fewer than 2 values).
        successes: For rates, the count (wins + ties / 2 for win rates).
    """

    estimate: float
    low: float
    high: float
    n: int
    method: str
    successes: float | None = None

    @property
    def degenerate(self) -> bool:
        """True when the interval has zero width (a sample without spread)."""
        return self.n > 0 and self.high - self.low <= 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``None`` for an empty sample (JSON has no NaN)."""
        def num(x: float) -> float | None:
            return None if math.isnan(x) else x

        out: dict[str, Any] = {"estimate": num(self.estimate), "low": num(self.low), "high": num(self.high),
                               "n": self.n, "method": self.method}
        if self.successes is not None:
            out["successes"] = self.successes
        if self.degenerate:
            out["degenerate"] = True
        return out


def _rng(seed: int, label: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(label.encode())])


def _resample_means(x: NDArray[np.float64], resamples: int, rng: np.random.Generator) -> NDArray[np.float64]:
    n = len(x)
    rows = max(1, _CHUNK // n)
    parts = []
    for start in range(0, resamples, rows):
        idx = rng.integers(0, n, size=(min(rows, resamples - start), n))
        parts.append(x[idx].mean(axis=1))
    return np.concatenate(parts)


def bootstrap_mean(values: Sequence[float] | NDArray[np.float64], *, confidence: float = 0.95,
                   resamples: int = 2000, seed: int = 0, label: str = "",
                   method: Literal["bca", "percentile"] = "bca") -> Interval:
    """Mean of ``values`` with a bootstrap confidence interval.

    Args:
        values: The sample (one value per episode).
        confidence: Two-sided coverage.
        resamples: Bootstrap resamples (at least 2,000 recommended).
        seed: Seed of the local generator (combined with ``label``).
        label: Names the quantity, so each gets its own reproducible stream.
        method: ``"bca"`` (falls back to percentile where BCa is undefined) or ``"percentile"``.
    """
    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, "none")
    mean = float(x.mean())
    if n == 1 or float(x.max() - x.min()) == 0.0:
        return Interval(mean, mean, mean, n, "none" if n == 1 else method)
    boot = np.sort(_resample_means(x, resamples, _rng(seed, label)))
    alpha = (1.0 - confidence) / 2.0
    quantiles = (alpha, 1.0 - alpha)
    used: str = "percentile"
    if method == "bca":
        # Bias correction from the share of resamples below the estimate (ties count half).
        share = (np.count_nonzero(boot < mean) + 0.5 * np.count_nonzero(boot == mean)) / resamples
        if 0.0 < share < 1.0:
            norm = NormalDist()
            z0 = norm.inv_cdf(share)
            # Acceleration from the jackknife means (sum - x_i) / (n - 1).
            jack = (x.sum() - x) / (n - 1)
            d = jack.mean() - jack
            denom = 6.0 * float((d**2).sum()) ** 1.5
            accel = float((d**3).sum()) / denom if denom > 0 else 0.0
            adjusted = []
            for q in quantiles:
                z = z0 + norm.inv_cdf(q)
                adjusted.append(norm.cdf(z0 + z / (1.0 - accel * z)))
            quantiles = (adjusted[0], adjusted[1])
            used = "bca"
    low, high = np.quantile(boot, quantiles)
    return Interval(mean, float(low), float(high), n, used)


def wilson(successes: float, n: int, *, confidence: float = 0.95) -> Interval:
    """Rate ``successes / n`` with its Wilson score interval (``successes`` may be a half count)."""
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, "wilson", successes)
    z = NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2.0)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(max(p * (1 - p) / n + z * z / (4 * n * n), 0.0))
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half), n, "wilson", successes)


# ---------------------------------------------------------------------------- tables of episodes

Row = dict[str, Scalar]


def _rows(records: Iterable[RecordLike]) -> list[Row]:
    return [flatten(r) for r in records]


def _ok(rows: Iterable[Row]) -> list[Row]:
    return [r for r in rows if not r["errors"]]


def _column(rows: Sequence[Row], column: str) -> NDArray[np.float64]:
    return np.array([float(r[column] or 0.0) for r in rows], dtype=np.float64)


def _group(rows: Iterable[Row], *keys: str) -> dict[tuple[str, ...], list[Row]]:
    groups: dict[tuple[str, ...], list[Row]] = {}
    for r in rows:
        groups.setdefault(tuple(str(r[k]) for k in keys), []).append(r)
    return groups


def _rate(rows: Sequence[Row], column: str, confidence: float) -> Interval:
    return wilson(sum(1 for r in rows if r[column]), len(rows), confidence=confidence)


def doctor_table(rows: Sequence[Row], *, confidence: float = 0.95, resamples: int = 2000,
                 seed: int = 0) -> list[dict[str, Any]]:
    """One entry per doctor (best mean reward first): episodes, errors, means and rates."""
    out = []
    for (doctor,), recs in _group(rows, "doctor").items():
        ok = _ok(recs)
        means = {name: bootstrap_mean(_column(ok, col), confidence=confidence, resamples=resamples, seed=seed,
                                      label=f"{doctor}/{name}").to_dict() for name, col in MEANS}
        rates = {name: _rate(ok, col, confidence).to_dict() for name, col in RATES}
        out.append({"doctor": doctor, "episodes": len(recs), "errors": len(recs) - len(ok),
                    "means": means, "rates": rates})

    def rank(entry: dict[str, Any]) -> float:
        mean = entry["means"]["reward"]["estimate"]
        return math.inf if mean is None else -float(mean)

    out.sort(key=rank)
    return out


@dataclass(frozen=True)
class PairedComparison:
    """Doctor ``a`` against doctor ``b`` on the episodes both finished."""

    a: str
    b: str
    n: int
    differences: dict[str, Interval]
    wins: int
    ties: int
    losses: int
    win_rate: Interval

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"a": self.a, "b": self.b, "n": self.n, "wins": self.wins, "ties": self.ties,
                "losses": self.losses, "win_rate": self.win_rate.to_dict(),
                "differences": {k: v.to_dict() for k, v in self.differences.items()}}


def paired(rows: Sequence[Row], a: str, b: str, *, metrics: Sequence[str] = PAIRED_METRICS,
           confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> PairedComparison:
    """Compare doctors ``a`` and ``b`` over their shared (case_id, persona, seed) episodes.

    Args:
        rows: Flat rows (:func:`clinic_env.records.flatten`) of both doctors.
        a: First doctor (differences are ``a - b``; wins are ``a``'s, on the first metric).
        b: Second doctor.
        metrics: Metric names (of ``MEANS`` or ``RATES``).
        confidence: Two-sided coverage.
        resamples: Bootstrap resamples.
        seed: Seed of the local generators.
    """
    columns = dict(MEANS) | dict(RATES)
    by_key = {doctor: {tuple(r[k] for k in PAIR_KEY): r for r in _ok(recs)}
              for (doctor,), recs in _group(rows, "doctor").items() if doctor in (a, b)}
    left, right = by_key.get(a, {}), by_key.get(b, {})
    shared = sorted(set(left) & set(right), key=str)
    diffs = {}
    for metric in metrics:
        col = columns[metric]
        d = _column([left[k] for k in shared], col) - _column([right[k] for k in shared], col)
        diffs[metric] = bootstrap_mean(d, confidence=confidence, resamples=resamples, seed=seed,
                                       label=f"{a}-{b}/{metric}")
    first = columns[metrics[0]]
    d = _column([left[k] for k in shared], first) - _column([right[k] for k in shared], first)
    wins, losses = int((d > TIE_TOLERANCE).sum()), int((d < -TIE_TOLERANCE).sum())
    ties = len(shared) - wins - losses
    return PairedComparison(a, b, len(shared), diffs, wins, ties, losses,
                            wilson(wins + ties / 2, len(shared), confidence=confidence))


def by_specialty(rows: Sequence[Row], *, confidence: float = 0.95, resamples: int = 2000,
                 seed: int = 0) -> list[dict[str, Any]]:
    """Per doctor and specialty: mean reward (bootstrap CI) and exact-diagnosis rate (Wilson)."""
    out = []
    for (doctor, specialty), recs in sorted(_group(_ok(rows), "doctor", "specialty").items()):
        reward = bootstrap_mean(_column(recs, "totals.reward"), confidence=confidence, resamples=resamples,
                                seed=seed, label=f"{doctor}/{specialty}/reward")
        out.append({"doctor": doctor, "specialty": specialty, "n": len(recs), "reward": reward.to_dict(),
                    "exact_dx": _rate(recs, "exact_dx", confidence).to_dict()})
    return out


def by_case(rows: Sequence[Row], *, confidence: float = 0.95) -> list[dict[str, Any]]:
    """Per doctor and case: episodes, mean/min/max reward and exact-diagnosis rate (Wilson)."""
    out = []
    for (doctor, case_id), recs in sorted(_group(_ok(rows), "doctor", "case_id").items()):
        reward = _column(recs, "totals.reward")
        out.append({"doctor": doctor, "case_id": case_id, "specialty": recs[0]["specialty"], "n": len(recs),
                    "reward_mean": float(reward.mean()), "reward_min": float(reward.min()),
                    "reward_max": float(reward.max()), "gold_diagnosis": recs[0]["gold_diagnosis"],
                    "exact_dx": _rate(recs, "exact_dx", confidence).to_dict()})
    return out


def pareto_frontier(points: dict[str, tuple[float, float]]) -> list[str]:
    """Names of the (cost, accuracy) points no other point dominates, cheapest first.

    A point is dominated when another costs no more and is at least as accurate, and is strictly
    better on one of the two.
    """
    def dominated(c: float, acc: float) -> bool:
        return any(c2 <= c and a2 >= acc and (c2 < c or a2 > acc) for c2, a2 in points.values())

    front = [name for name, (c, acc) in points.items() if not dominated(c, acc)]
    return sorted(front, key=lambda name: (points[name][0], -points[name][1], name))


def cost_accuracy(doctors: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean cost and exact-diagnosis accuracy per doctor (from :func:`doctor_table`), frontier marked."""
    points = {d["doctor"]: (d["means"]["cost_usd"]["estimate"], d["rates"]["exact_dx"]["estimate"])
              for d in doctors if d["means"]["cost_usd"]["estimate"] is not None}
    front = pareto_frontier(points)
    return {"x": "mean cost per episode (USD)", "y": "exact diagnosis rate", "frontier": front,
            "points": [{"doctor": d["doctor"], "cost_usd": d["means"]["cost_usd"],
                        "accuracy": d["rates"]["exact_dx"], "pareto": d["doctor"] in front} for d in doctors]}


def summarise(records: Iterable[RecordLike], *, confidence: float = 0.95, resamples: int = 2000,
              seed: int = 0) -> dict[str, Any]:
    """Every statistic of a run, JSON-ready (what the tournament writes into ``summary.json``).

    Args:
        records: Episode records (typed or plain dicts).
        confidence: Two-sided coverage of every interval.
        resamples: Bootstrap resamples per interval.
        seed: Seed of the bootstrap generators (the same records and seed give the same figures).

    Returns:
        ``{"method", "doctors", "paired", "by_specialty", "by_case", "cost_accuracy"}``: ``doctors``
        best mean reward first, each with ``means`` (bootstrap) and ``rates`` (Wilson); ``paired`` one
        entry per pair of doctors, the better-ranked first.
    """
    rows = _rows(records)
    kw: dict[str, Any] = {"confidence": confidence, "resamples": resamples, "seed": seed}
    doctors = doctor_table(rows, **kw)
    names = [d["doctor"] for d in doctors]
    return {
        "method": {
            "confidence": confidence, "means": "BCa bootstrap (percentile where BCa is undefined)",
            "resamples": resamples, "seed": seed, "rates": "Wilson score",
            "pair_key": list(PAIR_KEY), "win_metric": PAIRED_METRICS[0], "tie_tolerance": TIE_TOLERANCE,
            "errors": "episodes with errors are left out of every statistic and counted in errors",
        },
        "doctors": doctors,
        "paired": [paired(rows, a, b, **kw).to_dict() for a, b in combinations(names, 2)],
        "by_specialty": by_specialty(rows, **kw),
        "by_case": by_case(rows, confidence=confidence),
        "cost_accuracy": cost_accuracy(doctors),
    }
