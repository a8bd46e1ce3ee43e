"""Random-play throughput of the AEC env against PettingZoo's tictactoe_v3, in the same process.

Both envs are built by their public ``env()`` constructors and played by the same loop: mask-aware
random actions, ``last()`` every turn, ``reset()`` when an episode ends. Also measures full
episodes per second with the information-gain doctor (persona patient, rubric examiner).

Usage: ``python benchmarks/env_throughput.py [--seconds 5]``. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import numpy as np
from pettingzoo.classic import tictactoe_v3

import clinic_env
from clinic_env.core.engine import AGENTS
from clinic_env.policies import make_policy
from clinic_env.rollout import play_episode


def random_turns_per_second(env: Any, seconds: float, seed: int = 0, waits: list[int] | None = None) -> float:
    """Agent turns per second of mask-aware random play (``waits`` collects [wait-only turns, turns])."""
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    turns = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _agent in env.agent_iter():
            obs, _, terminated, truncated, _ = env.last()
            if terminated or truncated:
                action = None
            else:
                legal = np.flatnonzero(obs["action_mask"])
                action = int(legal[rng.integers(len(legal))])
                if waits is not None and len(legal) == 1:
                    waits[0] += 1
            env.step(action)
            turns += 1
        if time.perf_counter() >= deadline:
            break
        env.reset()
    if waits is not None:
        waits[1] += turns
    return turns / (time.perf_counter() - start)


def episodes_per_second(seconds: float, doctor: str = "info-gain") -> float:
    """Full episodes per second with a scripted doctor over the bundled cases."""
    env = clinic_env.raw_env()
    policies = {
        AGENTS[0]: make_policy(doctor, env.info),
        AGENTS[1]: make_policy("persona", env.info),
        AGENTS[2]: make_policy("rubric", env.info),
    }
    cases = env.setup.cases
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        play_episode(env, policies, seed=n, options={"case_id": cases[n % len(cases)].id})
        n += 1
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="Duration of each measurement.")
    args = parser.parse_args()
    ttt = random_turns_per_second(tictactoe_v3.env(), args.seconds)
    waits = [0, 0]
    ours = random_turns_per_second(clinic_env.env(), args.seconds, waits=waits)
    eps = episodes_per_second(args.seconds)
    print(f"tictactoe_v3 random play : {ttt:10.0f} agent turns/s")
    print(f"clinic consultation-v0   : {ours:10.0f} agent turns/s  (ratio {ours / ttt:.2f}; "
          f"{waits[0] / waits[1]:.0%} of turns had only 'wait' legal)")
    print(f"info-gain doctor episodes: {eps:10.1f} episodes/s")
    print(json.dumps({"turns_per_s": round(ours, 1), "tictactoe_turns_per_s": round(ttt, 1),
                      "ratio": round(ours / ttt, 3), "episodes_per_s": round(eps, 2),
                      "wait_share": round(waits[0] / waits[1], 3)}))


if __name__ == "__main__":
    main()
