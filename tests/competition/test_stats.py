"""Statistics against hand-computed values (clinic_env.competition.stats)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from clinic_env.competition import stats
from clinic_env.records import flatten


def record(doctor: str, case: str, reward: float, *, seed: int = 1, exact: bool = False, cost: float = 10.0,
           specialty: str = "cardiology", flags: tuple[str, ...] = (), errors: tuple[str, ...] = ()) -> dict[str, Any]:
    """A plain-dict episode record with just what the statistics read."""
    return {"doctor": doctor, "case_id": case, "seed": seed, "persona": "cooperative", "env_version": "consultation-v1",
            "specialty": specialty, "totals": {"reward": reward}, "gold_diagnosis": "I21.0",
            "final_diagnosis": "I21.0" if exact else "I20.0", "flags": list(flags), "cost_usd": cost,
            "errors": list(errors)}


# ------------------------------------------------------------------------------------------- Wilson

def test_wilson_zero_of_five_is_not_zero_width() -> None:
    # Upper bound z^2/n / (1 + z^2/n) with z = 1.959964: 0.768292 / 1.768292.
    iv = stats.wilson(0, 5)
    assert (iv.estimate, iv.low) == (0.0, 0.0)
    assert iv.high == pytest.approx(0.434482, abs=1e-6)
    assert not iv.degenerate


def test_wilson_two_of_five() -> None:
    # Centre (0.4 + z^2/10) / (1 + z^2/5) = 0.443448, half-width 0.325827 (hand-computed).
    iv = stats.wilson(2, 5)
    assert iv.low == pytest.approx(0.117621, abs=1e-6)
    assert iv.high == pytest.approx(0.769275, abs=1e-6)


def test_wilson_all_successes_and_empty() -> None:
    iv = stats.wilson(5, 5)
    assert iv.high == 1.0 and iv.low == pytest.approx(0.565518, abs=1e-6)
    empty = stats.wilson(0, 0).to_dict()
    assert empty["estimate"] is None and empty["n"] == 0


# ---------------------------------------------------------------------------------------- bootstrap

def test_bootstrap_contains_the_true_mean_seeded() -> None:
    # One seeded sample (any one interval misses 5% of the time; the coverage test checks that rate).
    sample = np.random.default_rng(0).normal(2.0, 1.0, size=200)
    iv = stats.bootstrap_mean(sample, seed=3)
    assert iv.method == "bca"
    assert iv.low < 2.0 < iv.high
    assert 0.2 < iv.high - iv.low < 0.4  # about 2 x 1.96 / sqrt(200) = 0.277


def test_bootstrap_coverage_on_a_skewed_distribution() -> None:
    # Exponential(1), n = 30: a 95% interval should cover the mean 1 in roughly 95% of samples
    # (BCa a little under at this n). 200 seeded samples, so the check is deterministic.
    rng = np.random.default_rng(11)
    covered = 0
    for i in range(200):
        iv = stats.bootstrap_mean(rng.exponential(1.0, 30), seed=i)
        covered += iv.low < 1.0 < iv.high
    assert 0.88 <= covered / 200 <= 0.99


def test_bootstrap_is_reproducible_and_labelled() -> None:
    sample = np.random.default_rng(1).uniform(size=40)
    assert stats.bootstrap_mean(sample, seed=5, label="x") == stats.bootstrap_mean(sample, seed=5, label="x")
    assert stats.bootstrap_mean(sample, seed=5, label="x") != stats.bootstrap_mean(sample, seed=5, label="y")
    pct = stats.bootstrap_mean(sample, method="percentile", resamples=4000)
    bca = stats.bootstrap_mean(sample, resamples=4000)
    assert pct.method == "percentile" and bca.method == "bca"
    assert pct.low == pytest.approx(bca.low, abs=0.02) and pct.high == pytest.approx(bca.high, abs=0.02)


def test_bootstrap_edge_samples() -> None:
    assert stats.bootstrap_mean([]).to_dict()["estimate"] is None
    one = stats.bootstrap_mean([3.0])
    assert (one.estimate, one.low, one.high, one.method) == (3.0, 3.0, 3.0, "none")
    constant = stats.bootstrap_mean([0.0] * 5).to_dict()
    assert constant["degenerate"] is True and constant["low"] == constant["high"] == 0.0


# ----------------------------------------------------------------------------------------- paired

def paired_rows() -> list[dict[str, Any]]:
    recs = [
        record("A", "c1", 3.0, exact=True), record("B", "c1", 1.0),
        record("A", "c2", 1.0), record("B", "c2", 1.0),
        record("A", "c3", 2.0, cost=30.0), record("B", "c3", 3.0, exact=True),
        record("A", "c4", 9.0),                      # B never played c4
        record("A", "c5", 0.0), record("B", "c5", 5.0, errors=("boom",)),  # B crashed: not shared
        record("A", "c1", 0.0, seed=2),              # another seed: a different key
    ]
    return [flatten(r) for r in recs]


def test_paired_differences_by_hand() -> None:
    cmp = stats.paired(paired_rows(), "A", "B", resamples=2000)
    # Shared keys c1, c2, c3 (seed 1): reward differences 2, 0, -1.
    assert cmp.n == 3
    assert (cmp.wins, cmp.ties, cmp.losses) == (1, 1, 1)
    assert cmp.win_rate.estimate == pytest.approx(0.5) and cmp.win_rate.successes == 1.5
    reward = cmp.differences["reward"]
    assert reward.estimate == pytest.approx(1 / 3)
    assert -1.0 <= reward.low < reward.estimate < reward.high <= 2.0
    assert cmp.differences["exact_dx"].estimate == pytest.approx(0.0)   # 1 - 0, 0 - 0, 0 - 1
    assert cmp.differences["cost_usd"].estimate == pytest.approx(20 / 3)  # 0, 0, 20


def test_paired_is_antisymmetric() -> None:
    ab = stats.paired(paired_rows(), "A", "B")
    ba = stats.paired(paired_rows(), "B", "A")
    assert (ba.wins, ba.losses) == (ab.losses, ab.wins)
    assert ba.differences["reward"].estimate == pytest.approx(-ab.differences["reward"].estimate)


# ---------------------------------------------------------------------------- frontier, summarise

def test_pareto_frontier() -> None:
    points = {"cheap": (10.0, 0.3), "good": (100.0, 0.8), "worse": (120.0, 0.7), "same_cost": (10.0, 0.2),
              "best": (100.0, 0.8)}
    assert stats.pareto_frontier(points) == ["cheap", "best", "good"]


def test_summarise_is_json_ready_and_complete() -> None:
    recs = [record("A", f"c{i}", float(i % 3), exact=i % 2 == 0, specialty="cardiology" if i < 4 else "neurology",
                   flags=("dangerous_miss",) if i == 1 else ()) for i in range(8)]
    recs += [record("B", f"c{i}", 0.5, cost=5.0, specialty="cardiology" if i < 4 else "neurology") for i in range(8)]
    recs.append(record("B", "c9", 0.0, errors=("ValueError: x",)))
    out = stats.summarise(recs)
    json.dumps(out, allow_nan=False)
    assert [d["doctor"] for d in out["doctors"]] == ["A", "B"]  # A: mean 7/8 > 0.5
    a, b = out["doctors"]
    assert a["rates"]["exact_dx"]["successes"] == 4 and a["rates"]["dangerous_miss"]["successes"] == 1
    assert (b["episodes"], b["errors"]) == (9, 1)
    assert b["means"]["reward"]["degenerate"] is True
    assert a["means"]["reward"]["low"] < 0.875 < a["means"]["reward"]["high"]
    assert len(out["paired"]) == 1 and out["paired"][0]["n"] == 8
    assert {(s["doctor"], s["specialty"]) for s in out["by_specialty"]} == {
        ("A", "cardiology"), ("A", "neurology"), ("B", "cardiology"), ("B", "neurology")}
    assert len(out["by_case"]) == 16
    assert out["cost_accuracy"]["frontier"] == ["B", "A"]  # B cheaper (exact 0), A more accurate
    assert stats.summarise(recs) == out  # seeded


def test_summarise_empty() -> None:
    out = stats.summarise([])
    assert out["doctors"] == [] and out["paired"] == []
