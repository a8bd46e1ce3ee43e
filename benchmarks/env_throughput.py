"""Random-play throughput of clinic-env, each figure a ratio against PettingZoo's tictactoe_v3.

tictactoe_v3 is measured in the same process, by the same mask-aware random loop the AEC figures
use (``last()`` every turn, a uniformly random legal action, ``reset()`` when an episode ends).
Every env is built by its public constructor before its clock starts, as tictactoe's is, and
played from its first ``reset()``.

Warm-up, all of it stated: first ``cold_pass_s``, one random episode of every bundled case in a
fresh process. It pays what is done once per process or once per case and then cached for the
process (loading the speech, vocabulary and synonym data; each case's leak guard and speaker
lines), so the rates below are steady-state ones that do not depend on which env is measured
first. ``infogain`` also excludes its own ``--warmup`` episodes (timed and shown). Nothing else
runs before any clock starts.

Figures (each rate measured for ``--seconds``; with ``--repeats R``, the best of R rounds, each
round measuring every rate in turn, tictactoe included; reset times are the least of R runs):

- ``aec_turns``: all agent turns/s of ``clinic_env.env()`` (hybrid: vector, transcript, mask).
- ``nonwait_turns``: the turns of that same run in which the acting agent had more than ``wait``
  legal, per second of the run (target >= 1.0x tictactoe turns/s; every tictactoe turn is a move).
- ``aec_numeric_turns``: all agent turns/s of ``clinic_env.env(observation="numeric")``.
- ``doctor_steps``: steps/s of ``clinic_env.doctor_env()``, mask-aware random (target >= 1.0x).
- ``text_doctor_steps``: steps/s of ``clinic_env.doctor_env(mode="text")`` stepped with the same
  integer actions (target: ``text_doctor_slowdown`` = doctor / text doctor <= 1.5).
- ``infogain_episodes``: episodes/s of the information-gain doctor with the persona patient and the
  rubric examiner over the bundled cases.
- ``reset_ms``: mean ``reset(options={"case_id": ...})`` time of an AEC env built with 64 and with
  10,000 cases (copies of the bundled cases under new ids, in both), on the same schedule: 64 case
  ids drawn at random, each reset once (``..._first_visit``: per-case work such as matching the
  principles is done then and cached), then reset again at random for ``--seconds / 2``. The
  first reset, which indexes the cases by id, is included. O(1) reset: both ratios ~1.

Usage: ``python benchmarks/env_throughput.py [--seconds 5] [--repeats 1] [--warmup 3]``
(``make bench``). The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
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


def aec_random(env: Any, seconds: float, seed: int = 0, max_episodes: int | None = None,
               options: dict[str, Any] | None = None) -> tuple[int, int, float]:
    """Mask-aware random play of an AEC env for ``seconds`` (or ``max_episodes`` episodes).

    Returns:
        All agent turns, the turns whose acting agent had more than ``wait`` legal, elapsed seconds.
    """
    rng = np.random.default_rng(seed)
    turns = nonwait = episodes = 0
    start = time.perf_counter()
    deadline = start + seconds
    env.reset(seed=seed, options=options)
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
    """``n`` copies of the bundled cases under new ids (new objects, for 64 cases as for 10,000:
    nothing cached for a bundled case by the earlier figures carries over to its copies)."""
    bundled = clinic_env.load_cases()
    return [bundled[k % len(bundled)].model_copy(update={"id": f"copy-{k}"}) for k in range(n)]


def reset_ms(n_cases: int, seconds: float, seed: int = 0, visits: int = 64) -> tuple[float, float]:
    """Mean reset milliseconds of an AEC env built with ``n_cases`` cases (schedule: module docstring).

    Returns:
        The mean over the first visits of ``visits`` random cases, and over the repeat visits.
    """
    cases = many_cases(n_cases)
    env = clinic_env.env(cases=cases)
    rng = np.random.default_rng(seed)
    ids = [cases[int(i)].id for i in rng.choice(n_cases, size=min(visits, n_cases), replace=False)]
    start = time.perf_counter()
    for k, case_id in enumerate(ids):
        env.reset(seed=k, options={"case_id": case_id})
    first = (time.perf_counter() - start) / len(ids)
    resets = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        env.reset(seed=resets, options={"case_id": ids[int(rng.integers(len(ids)))]})
        resets += 1
    return 1000 * first, 1000 * (time.perf_counter() - start) / max(resets, 1)


def cold_pass() -> float:
    """Seconds for one random episode of every bundled case, in this process's first clinic env."""
    env = clinic_env.env()
    start = time.perf_counter()
    for k, case in enumerate(env.unwrapped.setup.cases):
        aec_random(env, 0.0, seed=k, max_episodes=1, options={"case_id": case.id})
    return time.perf_counter() - start


#: Each rate: a function of the seconds to run, returning (count, ..., elapsed seconds).
RATES: dict[str, Callable[[float], tuple[Any, ...]]] = {
    "tictactoe_turns_per_s": lambda s: aec_random(tictactoe_v3.env(), s),
    "aec_turns_per_s": lambda s: aec_random(clinic_env.env(), s),
    "aec_numeric_turns_per_s": lambda s: aec_random(clinic_env.env(observation="numeric"), s),
    "doctor_steps_per_s": lambda s: gym_random(clinic_env.doctor_env(), s),
    "text_doctor_steps_per_s": lambda s: gym_random(clinic_env.doctor_env(mode="text"), s),
}


def measure(seconds: float, warmup: int, repeats: int = 1) -> dict[str, float]:
    """Every figure (see the module docstring); each one the best of ``repeats`` rounds."""
    out: dict[str, float] = {"cold_pass_s": cold_pass()}
    for round_ in range(repeats):
        for key, run in RATES.items():
            counts = run(seconds)
            rate = counts[0] / counts[-1]
            if rate > out.get(key, 0.0):
                out[key] = rate
                if key == "aec_turns_per_s":
                    out["nonwait_turns_per_s"] = counts[1] / counts[-1]
                    out["wait_share"] = 1 - counts[1] / counts[0]
        eps, warm = infogain_episodes(seconds, warmup)
        out["infogain_episodes_per_s"] = max(eps, out.get("infogain_episodes_per_s", 0.0))
        if round_ == 0:
            out["infogain_warmup_s"] = warm
    out["infogain_warmup_episodes"] = warmup
    for n in RESET_CASES:
        times = [reset_ms(n, seconds / 2) for _ in range(repeats)]
        out[f"reset_ms_{n}_cases_first_visit"] = min(t[0] for t in times)
        out[f"reset_ms_{n}_cases"] = min(t[1] for t in times)
    ttt = out["tictactoe_turns_per_s"]
    for key in ("aec_turns", "nonwait_turns", "aec_numeric_turns", "doctor_steps", "text_doctor_steps"):
        out[f"{key}_ratio"] = out[f"{key}_per_s"] / ttt
    out["text_doctor_slowdown"] = out["doctor_steps_per_s"] / out["text_doctor_steps_per_s"]
    out["reset_10000_over_64"] = out["reset_ms_10000_cases"] / out["reset_ms_64_cases"]
    out["reset_first_visit_10000_over_64"] = (out["reset_ms_10000_cases_first_visit"]
                                              / out["reset_ms_64_cases_first_visit"])
    return out


def report(r: dict[str, float]) -> str:
    """The human-readable table."""

    def row(label: str, value: float, unit: str, note: str = "") -> str:
        return f"{label:<38}{value:>10.1f} {unit:<11}{note}"

    return "\n".join([
        row("cold pass (1 episode of each case)", r["cold_pass_s"], "s",
            "once per process: data loading, per-case caches; not in any rate"),
        row("tictactoe_v3 random play", r["tictactoe_turns_per_s"], "turns/s"),
        row("clinic env() all turns", r["aec_turns_per_s"], "turns/s", f"{r['aec_turns_ratio']:.2f}x tictactoe"),
        row("clinic env() non-wait turns", r["nonwait_turns_per_s"], "turns/s",
            f"{r['nonwait_turns_ratio']:.2f}x tictactoe (target 1.0x); {r['wait_share']:.0%} of turns wait-only"),
        row("clinic env(observation='numeric')", r["aec_numeric_turns_per_s"], "turns/s",
            f"{r['aec_numeric_turns_ratio']:.2f}x tictactoe"),
        row("doctor_env() steps", r["doctor_steps_per_s"], "steps/s",
            f"{r['doctor_steps_ratio']:.2f}x tictactoe (target 1.0x)"),
        row("doctor_env(mode='text'), int actions", r["text_doctor_steps_per_s"], "steps/s",
            f"{r['text_doctor_steps_ratio']:.2f}x tictactoe; structured / text = "
            f"{r['text_doctor_slowdown']:.2f} (target <= 1.5)"),
        row("info-gain doctor episodes", r["infogain_episodes_per_s"], "episodes/s",
            f"after a warm-up of {r['infogain_warmup_episodes']:.0f} episodes ({r['infogain_warmup_s']:.2f} s, "
            "excluded)"),
        row("reset, 64 cases, first visit", r["reset_ms_64_cases_first_visit"], "ms"),
        row("reset, 10,000 cases, first visit", r["reset_ms_10000_cases_first_visit"], "ms",
            f"{r['reset_first_visit_10000_over_64']:.2f}x the 64-case figure (O(1): ~1)"),
        row("reset, 64 cases, repeat visit", r["reset_ms_64_cases"], "ms"),
        row("reset, 10,000 cases, repeat visit", r["reset_ms_10000_cases"], "ms",
            f"{r['reset_10000_over_64']:.2f}x the 64-case figure (O(1): ~1)"),
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="Duration of each rate measurement (default 5).")
    parser.add_argument("--repeats", type=int, default=1, help="Rounds of rate measurements; best kept (default 1).")
    parser.add_argument("--warmup", type=int, default=3, help="Info-gain warm-up episodes, excluded (default 3).")
    args = parser.parse_args()
    if args.seconds <= 0 or args.repeats < 1 or args.warmup < 0:
        parser.error("--seconds must be > 0, --repeats >= 1 and --warmup >= 0")
    results = measure(args.seconds, args.warmup, args.repeats)
    print(report(results))
    print(json.dumps({k: round(v, 4) for k, v in results.items()}))


if __name__ == "__main__":
    main()
