"""Play one consultation with the information-gain doctor and print the transcript and rewards.

Usage: python examples/play_one_episode.py [CASE_ID] [--persona ID] [--seed N]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import clinic_env
from clinic_env.policies import make_policy
from clinic_env.rollout import play_episode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case_id", nargs="?", default=None, help="A bundled case id (default: drawn by the seed).")
    parser.add_argument("--persona", default=None, help="Persona id (default: drawn by the seed).")
    parser.add_argument("--doctor", default="info-gain")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    env = clinic_env.raw_env(render_mode="ansi")
    policies = {
        "doctor_0": make_policy(args.doctor, env.info),
        "patient_0": make_policy("persona", env.info),
        "examiner_0": make_policy("rubric", env.info),
    }
    options = {k: v for k, v in {"case_id": args.case_id, "persona_id": args.persona}.items() if v}
    record = play_episode(env, policies, seed=args.seed, options=options, doctor_name=args.doctor)
    print(env.render())
    print()
    print(f"case {record['case_id']} | persona {record['persona']} | gold {record['gold_diagnosis']}"
          f" | final {record['final_diagnosis']}")
    for name, value in record["totals"].items():
        print(f"  {name:13s} {value:7.3f}")


if __name__ == "__main__":
    main()
