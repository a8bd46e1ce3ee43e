"""Random-play throughput of clinic-env, each figure a ratio against PettingZoo's tictactoe_v3.

tictactoe_v3 is measured first, in the same process, by the same mask-aware random loop the AEC
figures use (``last()`` every turn, a uniformly random legal action, ``reset()`` when an episode
ends). Every env is built by its public constructor before its clock starts, as tictactoe's is.

Figures (each measured for ``--seconds``):

- ``aec``: all agent turns/s of ``clinic_env.env()`` (hybrid observations: vector, transcript, mask).
- ``nonwait``: the turns of that same run in which the acting agent had more than ``wait`` legal,
  per second of the run (target: >= 1.0x tictactoe turns/s; every tictactoe turn is a real move).
- ``aec_numeric``: all agent turns/s of ``clinic_env.env(observation="numeric")`` (no transcript).
- ``doctor``: steps/s of ``clinic_env.doctor_env()`` with mask-aware random actions (target >= 1.0x).
- ``text_doctor``: steps/s of ``clinic_env.doctor_env(mode="text")`` stepped with the same integer
  actions (target: within 1.5x of ``doctor``, i.e. ``doctor / text_doctor <= 1.5``).
- ``infogain``: full episodes/s of the information-gain doctor with the persona patient and rubric
  examiner, after a warm-up of ``--warmup`` episodes that is timed and reported but excluded.
- ``reset``: mean ``reset(options={"case_id": ...})`` time on envs built with 64 and with 10,000
  cases (bundled cases copied under new ids), case ids drawn at random; the first reset, which
  indexes the cases by id, is included. The ratio 10,000 / 64 should be ~1 (O(1) reset).

Before any figure, one random episode is played and timed on its own (``first_episode_s``): it
pays the one-time lazy loading of the speech, vocabulary and synonym data, which every later
episode in the process reuses; no other warm-up precedes any figure but ``infogain``'s.

Usage: ``python benchmarks/env_throughput.py [--seconds 5] [--warmup 3]`` (``make bench``). The
last line printed is one JSON object with every figure.
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
from clinic_env.core.actions import WAIT
from clinic_env.core.engine import AGENTS
from clinic_env.policies import make_policy
from clinic_env.rollout import play_episode
from clinic_env.schema.case import Case

RESET_CASES = (64, 10_000)


def aec_random(env: Any, seconds: float, seed: int = 0, max_episodes: int | None = None) -> tuple[int, int, float]:
    """Mask-aware random play of an AEC env for ``seconds`` (or ``max_episodes`` episodes).

    Returns:
        All agent turns, the turns whose acting agent had more than ``wait`` legal, elapsed seconds.
    """
    rng = np.random.default_rng(seed)
    turns = nonwait = episodes = 0
    start = time.perf_counter()
    deadline = start + seconds
    env.reset(seed=seed)
    while True:
        for _agent in env.agent_iter():
            obs, _, terminated, truncated, _ = env.last()
            if terminated or truncated:
                action = None
            else:
                legal = np.flatnonzero(obs["action_mask"])
                action = int(legal[rng.integers(len(legal))])
                if len(legal) > 1 or legal[0] != WAIT:
                    nonwait += 1
            env.step(action)
            turns += 1
        episodes += 1
        if time.perf_counter() >= deadline or (max_episodes is not None and episodes >= max_episodes):
            break
        env.reset()
    return turns, nonwait, time.perf_counter() - start


def gym_random(env: Any, seconds: float, seed: int = 0) -> tuple[int, float]:
    """Mask-aware random play of a Gymnasium env with an ``action_mask`` observation: (steps, seconds)."""
    rng = np.random.default_rng(seed)
    steps = 0
    start = time.perf_counter()
    deadline = start + seconds
    obs, _ = env.reset(seed=seed)
    while True:
        legal = np.flatnonzero(obs["action_mask"])
        obs, _, terminated, truncated, _ = env.step(int(legal[rng.integers(len(legal))]))
        steps += 1
        if terminated or truncated:
            if time.perf_counter() >= deadline:
                break
            obs, _ = env.reset()
    return steps, time.perf_counter() - start


def infogain_episodes(seconds: float, warmup: int) -> tuple[float, float]:
    """Information-gain doctor episodes/s over the bundled cases, and the warm-up's seconds."""
    env = clinic_env.raw_env()
    policies = {
        AGENTS[0]: make_policy("info-gain", env.info),
        AGENTS[1]: make_policy("persona", env.info),
        AGENTS[2]: make_policy("rubric", env.info),
    }
    cases = env.setup.cases

    def play(n: int) -> None:
        play_episode(env, policies, seed=n, options={"case_id": cases[n % len(cases)].id})

    start = time.perf_counter()
    for n in range(warmup):
        play(n)
    warm = time.perf_counter() - start
    n = warmup
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        play(n)
        n += 1
    return (n - warmup) / (time.perf_counter() - start), warm


def many_cases(n: int) -> list[Case]:
    """``n`` cases: the bundled ones, then copies of them under new ids."""
    bundled = clinic_env.load_cases()
    return [c if k < len(bundled) else c.model_copy(update={"id": f"{c.id}~{k}"})
            for k, c in ((k, bundled[k % len(bundled)]) for k in range(n))]


def mean_reset_seconds(n_cases: int, seconds: float, seed: int = 0) -> float:
    """Mean ``reset(options={"case_id": ...})`` time of an env built with ``n_cases`` cases."""
    cases = many_cases(n_cases)
    env = clinic_env.env(cases=cases)
    rng = np.random.default_rng(seed)
    ids = [cases[int(i)].id for i in rng.integers(n_cases, size=100_000)]
    resets = 0
    start = time.perf_counter()
    deadline = start + seconds
    while resets < len(ids) and time.perf_counter() < deadline:
        env.reset(seed=resets, options={"case_id": ids[resets]})
        resets += 1
    return (time.perf_counter() - start) / resets


def measure(seconds: float, warmup: int) -> dict[str, float]:
    """Every figure (see the module docstring)."""
    out: dict[str, float] = {}
    turns, _, elapsed = aec_random(tictactoe_v3.env(), seconds)
    ttt = turns / elapsed
    out["tictactoe_turns_per_s"] = ttt

    _, _, out["first_episode_s"] = aec_random(clinic_env.env(), 0.0, max_episodes=1)

    turns, nonwait, elapsed = aec_random(clinic_env.env(), seconds)
    out["aec_turns_per_s"] = turns / elapsed
    out["nonwait_turns_per_s"] = nonwait / elapsed
    out["wait_share"] = 1 - nonwait / turns
    turns, _, elapsed = aec_random(clinic_env.env(observation="numeric"), seconds)
    out["aec_numeric_turns_per_s"] = turns / elapsed

    steps, elapsed = gym_random(clinic_env.doctor_env(), seconds)
    out["doctor_steps_per_s"] = steps / elapsed
    steps, elapsed = gym_random(clinic_env.doctor_env(mode="text"), seconds)
    out["text_doctor_steps_per_s"] = steps / elapsed

    out["infogain_episodes_per_s"], out["infogain_warmup_s"] = infogain_episodes(seconds, warmup)
    out["infogain_warmup_episodes"] = warmup

    for n in RESET_CASES:
        out[f"reset_ms_{n}_cases"] = 1000 * mean_reset_seconds(n, seconds / 2)

    for key in ("aec_turns", "nonwait_turns", "aec_numeric_turns", "doctor_steps", "text_doctor_steps"):
        out[f"{key}_ratio"] = out[f"{key}_per_s"] / ttt
    out["text_doctor_slowdown"] = out["doctor_steps_per_s"] / out["text_doctor_steps_per_s"]
    out["reset_10000_over_64"] = out["reset_ms_10000_cases"] / out["reset_ms_64_cases"]
    return out


def report(r: dict[str, float]) -> str:
    """The human-readable table."""
    ttt = r["tictactoe_turns_per_s"]

    def row(label: str, value: float, unit: str, note: str = "") -> str:
        return f"{label:<34}{value:>10.1f} {unit:<14}{note}"

    lines = [
        row("tictactoe_v3 random play", ttt, "turns/s"),
        row("clinic first episode (lazy loads)", 1000 * r["first_episode_s"], "ms", "paid once per process"),
        row("clinic env() all turns", r["aec_turns_per_s"], "turns/s", f"{r['aec_turns_ratio']:.2f}x tictactoe"),
        row("clinic env() non-wait turns", r["nonwait_turns_per_s"], "turns/s",
            f"{r['nonwait_turns_ratio']:.2f}x tictactoe (target 1.0x; {r['wait_share']:.0%} of turns wait-only)"),
        row("clinic env(numeric) all turns", r["aec_numeric_turns_per_s"], "turns/s",
            f"{r['aec_numeric_turns_ratio']:.2f}x tictactoe"),
        row("doctor_env() steps", r["doctor_steps_per_s"], "steps/s",
            f"{r['doctor_steps_ratio']:.2f}x tictactoe (target 1.0x)"),
        row("doctor_env(mode='text') int steps", r["text_doctor_steps_per_s"], "steps/s",
            f"{r['text_doctor_steps_ratio']:.2f}x tictactoe; {r['text_doctor_slowdown']:.2f}x slower than"
            " structured (target <= 1.5x)"),
        row("info-gain doctor episodes", r["infogain_episodes_per_s"], "episodes/s",
            f"after a warm-up of {r['infogain_warmup_episodes']:.0f} episodes ({r['infogain_warmup_s']:.2f} s,"
            " excluded)"),
        row("reset, 64 cases", r["reset_ms_64_cases"], "ms"),
        row("reset, 10,000 cases", r["reset_ms_10000_cases"], "ms",
            f"{r['reset_10000_over_64']:.2f}x the 64-case reset (target ~1: O(1))"),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="Duration of each measurement (default 5).")
    parser.add_argument("--warmup", type=int, default=3, help="Info-gain warm-up episodes, excluded (default 3).")
    args = parser.parse_args()
    results = measure(args.seconds, args.warmup)
    print(report(results))
    print(json.dumps({k: round(v, 4) for k, v in results.items()}))


if __name__ == "__main__":
    main()
