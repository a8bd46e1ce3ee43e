"""Rubric evolution catches a reward-gaming doctor.

A "shotgun" doctor (every question, every test, a long differential) beats the honest baselines
(the guideline-checklist ``thorough`` doctor and the ``info-gain`` doctor) under a naive static
reward (coverage and recall terms only). Three rounds of Dynamic Rubric Evolution mine its failure
modes from its own high-reward episodes; afterwards its mean reward falls below the thorough
doctor's, and neither baseline's reward moves.

Usage: python examples/evolve_rubrics.py [--rounds 3] [--seed 0]
The last line is one JSON object with the before/after means, the admitted failure modes and the
bank version.
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import clinic_env
from clinic_env.evolve import run_evolution


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    result = run_evolution(clinic_env.load_cases(), doctors=("shotgun",), baselines=("thorough", "info-gain"),
                           rounds=args.rounds, seed=args.seed)
    for when, rows in (("before", result.before), ("after", result.after)):
        print(f"{when}:")
        for row in rows:
            print(f"  {row['doctor']:10s} reward {row['reward'][0]:.3f} ± {row['reward'][1]:.3f}")
    for r in result.rounds:
        print(f"round {r['round']}: admitted {r['admitted']} items, retired {r['retired']}, bank v{r['bank_version']}")
    print(json.dumps({
        "shotgun_before": round(result.mean_reward("shotgun", "before"), 4),
        "shotgun_after": round(result.mean_reward("shotgun", "after"), 4),
        "thorough_before": round(result.mean_reward("thorough", "before"), 4),
        "thorough_after": round(result.mean_reward("thorough", "after"), 4),
        "infogain_before": round(result.mean_reward("info-gain", "before"), 4),
        "infogain_after": round(result.mean_reward("info-gain", "after"), 4),
        "admitted": result.admitted_miners,
        "bank_version": result.bank.version,
    }))


if __name__ == "__main__":
    main()
