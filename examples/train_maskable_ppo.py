"""A doctor that learns: sb3-contrib MaskablePPO on clinic/Doctor-v0, scored against the built-in doctors.

    make install-rl                                    # CPU torch + sb3-contrib in .venv-rl
    .venv-rl/bin/python examples/train_maskable_ppo.py                   # 10 min, generated-v1 train -> test
    .venv-rl/bin/python examples/train_maskable_ppo.py --minutes 3 --split bundled-v1
    .venv-rl/bin/python examples/train_maskable_ppo.py --env lite --minutes 5

**Training.** ``MaskablePPO("MultiInputPolicy", env)`` with sb3-contrib's default hyperparameters
(one env, ``n_steps=2048``, ``batch_size=64``, ``n_epochs=10``, ``lr=3e-4``, ``gamma=0.99``,
``ent_coef=0``, a 64-64 MLP) on ``gym.make("clinic/Doctor-v0", cases=splits.load(SPLIT, "train"))``
until ``--minutes`` of wall clock or ``--timesteps`` env steps, whichever comes first (PPO
collects whole rollouts, so ``--timesteps`` is rounded up to a multiple of ``n_steps``). The env's
observation is numeric (``Dict(observation=Box, action_mask=MultiBinary)``) and its
``action_masks()`` feeds the masks. Torch runs on one thread (``--threads``): the network is tiny
and the env is Python, and two threads on two shared cores ran ~5x slower. ``--tuned`` changes
the three hyperparameters of :data:`TUNED` (documented there; on generated-v1 in 10 minutes it
doubled the test reward, +0.32 -> +0.65, with one seed); the default path is vanilla. ``--env lite``
trains on ``clinic/Doctor-lite-v0`` (10 bundled cases, reduced catalogue, budgets), whose train
and test cases are the same (as ``bundled-v1``'s): it measures memorisation, not generalisation.
Results and commands of the reference runs: ``docs/results/maskable_ppo.md``.

**Evaluation.** ``--eval-episodes`` episodes (default 200) on the test part (``SPLIT:test``, or the
lite cases), the same for every doctor: episode ``i`` is ``reset(seed=EVAL_SEED + i,
options={"case_id": c_i})`` of one doctor env, so the case, the persona and the patient's and
examiner's seeds are identical for every doctor (checked: the script stops if any doctor's episode
``i`` had another case or persona). The trained policy acts deterministically with its masks;
the built-in ``random``, ``thorough`` and ``info-gain`` doctors (policies over the multi-agent
observation) are driven through the same doctor env: each step they see the engine's doctor
observation and mask (what ``clinic_env.env()`` would give them) and their multi-agent action
``a`` is the doctor env's action ``a - 1``. With the noise-free ``cooperative`` persona this
reproduces ``rollout.play_episode`` on ``raw_env`` exactly (same reward, diagnosis and cycles in
60 of 60 episodes tried); it is not used here because it seeds the patient with ``seed + 2``
while the doctor env draws the patient's seed from its own generator, so with noisy personas its
episodes would not be the trained doctor's.

**Outputs** in ``--out`` (default ``runs/ppo-<timestamp>``): ``curve.png`` (mean training episode
reward, and the share of training episodes ended with a diagnosis, against timesteps, with the
evaluated doctors as reference lines), ``eval.md`` and ``eval.json`` (mean total reward with a
bootstrap 95% CI, exact-diagnosis rate, mean cost, doctor turns, share finished, the paired
difference to random and the mean reward components), ``episodes.jsonl`` (one line per evaluation
episode), ``curve.json`` and ``model.zip``. The last line on stdout is one JSON object (``env``,
``timesteps``, ``minutes``, ``ppo_mean``, ``ppo_ci95``, ``random_mean``, ``random_ci95``,
``thorough_mean``, ``info_gain_mean``, ``beats_random``: PPO's CI lies wholly above random's, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import gymnasium as gym
import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from sb3_contrib import MaskablePPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.monitor import Monitor

import clinic_env  # noqa: F401  (registers the clinic/Doctor-* ids with gymnasium)
from clinic_env import splits
from clinic_env.core.engine import AGENTS, DOCTOR
from clinic_env.policies import make_policy

ENV_IDS = {"full": "clinic/Doctor-v0", "lite": "clinic/Doctor-lite-v0"}
BASELINES = ("random", "thorough", "info-gain")
#: Seed of evaluation episode 0 (episode i uses EVAL_SEED + i); independent of the training seed.
EVAL_SEED = 1_000_000

#: ``--tuned``: the hyperparameters changed from sb3-contrib's defaults, and why.
TUNED: dict[str, Any] = {
    # Shorter rollouts: 4x more policy updates in the same wall clock (episodes are 20-80 steps).
    "n_steps": 512,
    # Bigger minibatches: fewer, cheaper gradient steps per update on 2 CPU cores.
    "batch_size": 128,
    # A little entropy keeps the policy from collapsing onto the first finishing script it finds.
    "ent_coef": 0.01,
}


# ----------------------------------------------------------------------------- environments
def make_env(env: str, split: str, part: str) -> gym.Env[Any, Any]:
    """The doctor env of ``env`` (``full`` or ``lite``) on ``split``'s ``part`` (full only)."""
    if env == "lite":
        return gym.make(ENV_IDS["lite"])
    return gym.make(ENV_IDS["full"], cases=list(splits.load(split, part)))


def case_ids(env: gym.Env[Any, Any]) -> list[str]:
    return [c.id for c in env.unwrapped.setup.cases]  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------- statistics
def bootstrap_ci(values: np.ndarray, seed: int = 0, n: int = 10_000) -> tuple[float, float]:
    """Percentile bootstrap 95% CI of the mean."""
    values = np.asarray(values, float)
    if len(values) < 2:
        m = float(values.mean()) if len(values) else float("nan")
        return m, m
    rng = np.random.default_rng(seed)
    means = values[rng.integers(len(values), size=(n, len(values)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


# ----------------------------------------------------------------------------- evaluation
class Doctor(Protocol):
    """A doctor the evaluation can drive through the doctor env."""

    def reset(self, seed: int) -> None: ...

    def act(self, env: gym.Env[Any, Any], obs: dict[str, np.ndarray]) -> int: ...


class PPODoctor:
    """The trained policy, deterministic, with the env's masks."""

    def __init__(self, model: MaskablePPO) -> None:
        self.model = model

    def reset(self, seed: int) -> None:
        pass

    def act(self, env: gym.Env[Any, Any], obs: dict[str, np.ndarray]) -> int:
        masks = env.unwrapped.action_masks()  # type: ignore[attr-defined]
        action, _ = self.model.predict(obs, action_masks=masks, deterministic=True)
        return int(action)


class BuiltinDoctor:
    """A built-in doctor policy (multi-agent action table) driven through the doctor env.

    It sees what the AEC env would give it on the doctor's turn: the engine's doctor observation and
    the doctor's full mask. The doctor env drops the multi-agent action 0 (``wait``, never legal on
    the doctor's turn there), so multi-agent action ``a`` is doctor-env action ``a - 1``.
    """

    def __init__(self, name: str, env: gym.Env[Any, Any]) -> None:
        self.name = name
        self.policy = make_policy(name, env.unwrapped.info)  # type: ignore[attr-defined]

    def reset(self, seed: int) -> None:
        self.policy.reset(seed + 1)  # the doctor's seed in rollout.play_episode

    def act(self, env: gym.Env[Any, Any], obs: dict[str, np.ndarray]) -> int:
        eng = env.unwrapped.engine  # type: ignore[attr-defined]
        mask = eng.masks[DOCTOR]
        assert not mask[0], "the doctor env hands over only turns where the doctor must act"
        full = int(self.policy.act({"observation": eng.observe(DOCTOR), "action_mask": mask.copy()}, AGENTS[DOCTOR]))
        return full - 1


@dataclass
class Episode:
    """One evaluation episode of one doctor."""

    doctor: str
    index: int
    seed: int
    case_id: str
    persona: str
    reward: float
    exact_dx: bool
    final_dx: str | None
    gold_dx: str
    cost_usd: float
    turns: int
    cycles: int
    end_reason: str | None
    illegal: int
    components: dict[str, float] = field(default_factory=dict)


def play(env: gym.Env[Any, Any], doctor: Doctor, name: str, index: int, seed: int, case_id: str) -> Episode:
    obs, info = env.reset(seed=seed, options={"case_id": case_id})
    persona = str(info["persona"])
    doctor.reset(seed)
    comps: dict[str, float] = {}
    total, turns, illegal = 0.0, 0, 0
    while True:
        obs, reward, terminated, truncated, info = env.step(doctor.act(env, obs))
        total += float(reward)
        turns += 1
        illegal += bool(info["illegal_action"])
        for key, value in info.items():
            if key.startswith("reward/") and value:
                comps[key[7:]] = comps.get(key[7:], 0.0) + float(value)
        if terminated or truncated:
            break
    eng = env.unwrapped.engine  # type: ignore[attr-defined]
    gold = eng.case.gold_diagnosis
    return Episode(name, index, seed, case_id, persona, total, eng.final_dx == gold, eng.final_dx, gold,
                   float(eng.cost), turns, int(eng.cycle), eng.end_reason, illegal, comps)


def evaluation_plan(ids: list[str], episodes: int, seed: int) -> list[tuple[int, str]]:
    """(seed, case id) of every evaluation episode: the cases in a fixed shuffled order, cycled."""
    order = np.random.default_rng(seed).permutation(len(ids))
    return [(seed + i, ids[order[i % len(ids)]]) for i in range(episodes)]


def evaluate(env: gym.Env[Any, Any], doctors: dict[str, Doctor], plan: list[tuple[int, str]],
             progress: Callable[[str], None]) -> dict[str, list[Episode]]:
    out: dict[str, list[Episode]] = {}
    for name, doctor in doctors.items():
        out[name] = []
        for i, (seed, cid) in enumerate(plan):
            out[name].append(play(env, doctor, name, i, seed, cid))
            progress(name)
    ref = [(e.seed, e.case_id, e.persona) for e in next(iter(out.values()))]
    for name, eps in out.items():
        if [(e.seed, e.case_id, e.persona) for e in eps] != ref:
            raise RuntimeError(f"{name}'s evaluation episodes differ from the others' (seed, case, persona)")
    return out


def summarise(eps: list[Episode], reference: list[Episode] | None) -> dict[str, Any]:
    r = np.array([e.reward for e in eps])
    comps = sorted({k for e in eps for k in e.components})
    row: dict[str, Any] = {
        "episodes": len(eps),
        "mean": float(r.mean()),
        "ci95": list(bootstrap_ci(r)),
        "exact_dx": float(np.mean([e.exact_dx for e in eps])),
        "finished": float(np.mean([e.end_reason == "final_diagnosis" for e in eps])),
        "cost_usd": float(np.mean([e.cost_usd for e in eps])),
        "turns": float(np.mean([e.turns for e in eps])),
        "cycles": float(np.mean([e.cycles for e in eps])),
        "illegal": float(np.mean([e.illegal for e in eps])),
        "end_reasons": {k: sum(e.end_reason == k for e in eps) for k in sorted({str(e.end_reason) for e in eps})},
        "components": {k: float(np.mean([e.components.get(k, 0.0) for e in eps])) for k in comps},
    }
    if reference is not None:
        d = r - np.array([e.reward for e in reference])
        row["minus_random"] = float(d.mean())
        row["minus_random_ci95"] = list(bootstrap_ci(d))
    return row


# ----------------------------------------------------------------------------- training
class Budget(BaseCallback):
    """SB3 callback: a rich progress bar, the training episodes' returns, and a wall-clock stop."""

    def __init__(self, seconds: float, timesteps: int, progress: Progress, task: TaskID) -> None:
        super().__init__()
        self.seconds, self.timesteps = seconds, timesteps
        self.progress, self.task = progress, task
        self.curve: list[dict[str, float]] = []
        self.recent: deque[tuple[float, bool]] = deque(maxlen=100)
        self.t0 = 0.0

    def _on_training_start(self) -> None:
        self.t0 = time.perf_counter()

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            ep = info.get("episode")
            if ep is not None:
                # reward/incomplete < 0 on the last step: no final diagnosis (max_cycles, patient left).
                finished = float(info.get("reward/incomplete", 0.0)) == 0.0
                self.curve.append({"timesteps": self.num_timesteps, "reward": float(ep["r"]),
                                   "length": int(ep["l"]), "finished": finished})
                self.recent.append((float(ep["r"]), finished))
        elapsed = time.perf_counter() - self.t0
        if self.n_calls % 256 == 0:
            self._show(elapsed)
        return elapsed < self.seconds

    def _show(self, elapsed: float) -> None:
        frac = max(elapsed / self.seconds, self.num_timesteps / self.timesteps)
        mean = np.mean([r for r, _ in self.recent]) if self.recent else float("nan")
        fin = np.mean([f for _, f in self.recent]) if self.recent else float("nan")
        self.progress.update(self.task, completed=min(frac, 1.0) * 1000,
                             info=f"{self.num_timesteps:>8,} steps  {self.num_timesteps / max(elapsed, 1e-9):5.0f}/s  "
                                  f"{len(self.curve):>6,} episodes  reward(100) {mean:+.2f}  finished {fin:4.0%}")

    def _on_training_end(self) -> None:
        self._show(time.perf_counter() - self.t0)


def train(args: argparse.Namespace, console: Console) -> tuple[MaskablePPO, list[dict[str, float]], float, int]:
    """Train until the budget is spent; returns the model, the training episodes, seconds, and the train cases."""
    train_env = make_env(args.env, args.split, "train")
    n_cases = len(case_ids(train_env))
    env = Monitor(train_env)
    kwargs: dict[str, Any] = dict(TUNED) if args.tuned else {}
    model = MaskablePPO("MultiInputPolicy", env, seed=args.seed, verbose=0, device="cpu", **kwargs)
    seconds = args.minutes * 60.0
    timesteps = args.timesteps or 10**9
    columns = (TextColumn("[bold]train"), BarColumn(), TimeElapsedColumn(), TextColumn("{task.fields[info]}"))
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("train", total=1000, info="")
        cb = Budget(seconds, timesteps, progress, task)
        t0 = time.perf_counter()
        model.learn(total_timesteps=timesteps, callback=cb)
        elapsed = time.perf_counter() - t0
    return model, cb.curve, elapsed, n_cases


# ----------------------------------------------------------------------------- outputs
def plot(path: Path, curve: list[dict[str, float]], rows: dict[str, dict[str, Any]], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(8, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1.3]})
    steps = np.array([c["timesteps"] for c in curve], float)
    rewards = np.array([c["reward"] for c in curve], float)
    finished = np.array([c["finished"] for c in curve], float)
    if len(curve):
        w = max(1, min(100, len(curve) // 10))
        kernel = np.ones(w) / w
        every = max(1, len(curve) // 4000)  # at most ~4,000 dots keeps the PNG small
        ax.plot(steps[::every], rewards[::every], ".", ms=1.5, alpha=0.15, color="tab:blue")
        if len(curve) >= w:
            ax.plot(steps[w - 1 :], np.convolve(rewards, kernel, "valid"), color="tab:blue",
                    label=f"PPO training episodes (mean of {w})")
            ax2.plot(steps[w - 1 :], np.convolve(finished, kernel, "valid"), color="tab:blue")
    colours = {"ppo": "tab:blue", "random": "tab:gray", "thorough": "tab:green", "info-gain": "tab:orange"}
    for name, row in rows.items():
        lo, hi = row["ci95"]
        ls = "-" if name == "ppo" else "--"
        ax.axhline(row["mean"], color=colours.get(name, "k"), ls=ls, lw=1.2,
                   label=f"{name} eval {row['mean']:+.2f} [{lo:+.2f}, {hi:+.2f}]")
        ax.axhspan(lo, hi, color=colours.get(name, "k"), alpha=0.08)
        ax2.axhline(row["finished"], color=colours.get(name, "k"), ls=ls, lw=1.0)
    ax.set_ylabel("episode reward")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    ax2.set_ylabel("share ending\nwith a diagnosis", fontsize=8)
    ax2.set_xlabel("timesteps (doctor actions)")
    ax2.set_ylim(-0.05, 1.05)
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def markdown(summary: dict[str, Any], rows: dict[str, dict[str, Any]]) -> str:
    s = summary
    lines = [
        f"# MaskablePPO on {s['env_id']} ({'tuned' if s['tuned'] else 'vanilla'} hyperparameters)",
        "",
        f"- command: `{s['command']}`",
        f"- train: {s['train_cases']} ({s['n_train_cases']} cases); {s['timesteps']:,} timesteps, "
        f"{s['train_episodes']:,} episodes in {s['minutes']:.1f} min ({s['fps']:.0f} steps/s); seed {s['seed']}",
        f"- evaluation: {s['eval_cases']} ({s['n_eval_cases']} cases), {s['eval_episodes']} episodes per doctor, "
        f"identical set-ups (episode i: seed {EVAL_SEED} + i, same case and persona for every doctor); "
        f"PPO deterministic with masks; {s['eval_minutes']:.1f} min",
        f"- PPO beats random (non-overlapping 95% CIs): **{s['beats_random']}**",
        "",
        "| doctor | mean reward | 95% CI | minus random (paired) [95% CI] | exact dx | finished | cost $ | turns | cycles |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        diff = "" if "minus_random" not in r else f"{r['minus_random']:+.3f} [{r['minus_random_ci95'][0]:+.3f}, {r['minus_random_ci95'][1]:+.3f}]"
        lines.append(f"| {name} | {r['mean']:+.3f} | [{r['ci95'][0]:+.3f}, {r['ci95'][1]:+.3f}] | {diff} | "
                     f"{r['exact_dx']:.1%} | {r['finished']:.0%} | {r['cost_usd']:.0f} | {r['turns']:.1f} | {r['cycles']:.1f} |")
    comps = sorted({k for r in rows.values() for k in r["components"]})
    lines += ["", "Mean reward components (unweighted values, summed over the episode):", "",
              "| doctor | " + " | ".join(comps) + " | end reasons |", "|---|" + "---:|" * len(comps) + "---|"]
    for name, r in rows.items():
        ends = ", ".join(f"{k} {v}" for k, v in r["end_reasons"].items())
        lines.append(f"| {name} | " + " | ".join(f"{r['components'].get(k, 0.0):+.3f}" for k in comps) + f" | {ends} |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    doc = __doc__ or ""
    p = argparse.ArgumentParser(description=doc.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", choices=sorted(ENV_IDS), default="full",
                   help="full: clinic/Doctor-v0 on --split; lite: clinic/Doctor-lite-v0 on its own cases (train = test)")
    p.add_argument("--split", default="generated-v1", help="split for --env full (train part to train, test part to evaluate)")
    p.add_argument("--minutes", type=float, default=10.0, help="wall-clock training budget")
    p.add_argument("--timesteps", type=int, default=None, help="stop after this many env steps (default: the budget)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-episodes", type=int, default=200)
    p.add_argument("--tuned", action="store_true", help=f"override these MaskablePPO defaults: {TUNED}")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: the 64-64 MLP is too small to gain from more, and on 2 shared "
                        "cores torch's default of one thread per core ran ~5x slower here)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default runs/ppo-<timestamp>)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    console = Console(stderr=True)
    out: Path = args.out or Path("runs") / f"ppo-{datetime.now():%Y%m%d-%H%M%S}"
    out.mkdir(parents=True, exist_ok=True)
    env_id = ENV_IDS[args.env]
    console.print(f"[bold]{env_id}[/]  split {args.split if args.env == 'full' else 'lite cases'}  "
                  f"{'tuned' if args.tuned else 'vanilla'} MaskablePPO  budget {args.minutes:g} min"
                  f"{f' / {args.timesteps:,} steps' if args.timesteps else ''}  -> {out}")

    model, curve, train_s, n_train = train(args, console)
    model.save(out / "model.zip")

    eval_env = make_env(args.env, args.split, "test")
    plan = evaluation_plan(case_ids(eval_env), args.eval_episodes, EVAL_SEED)
    doctors: dict[str, Doctor] = {"ppo": PPODoctor(model)}
    doctors.update({name: BuiltinDoctor(name, eval_env) for name in BASELINES})
    t0 = time.perf_counter()
    columns = (TextColumn("[bold]eval {task.description:>9}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console) as progress:
        tasks = {name: progress.add_task(name, total=len(plan)) for name in doctors}
        results = evaluate(eval_env, doctors, plan, lambda name: progress.advance(tasks[name]))
    eval_s = time.perf_counter() - t0

    rows = {name: summarise(eps, results["random"] if name != "random" else None) for name, eps in results.items()}
    timesteps = int(model.num_timesteps)
    train_cases = "Doctor-lite-v0 cases" if args.env == "lite" else f"{args.split}:train"
    summary: dict[str, Any] = {
        "command": " ".join(["python", "examples/train_maskable_ppo.py", *(argv if argv is not None else sys.argv[1:])]),
        "env": args.env, "env_id": env_id, "split": None if args.env == "lite" else args.split,
        "train_cases": train_cases, "n_train_cases": n_train,
        "eval_cases": "Doctor-lite-v0 cases" if args.env == "lite" else f"{args.split}:test",
        "n_eval_cases": len(case_ids(eval_env)), "tuned": args.tuned, "hyperparameters": TUNED if args.tuned else "defaults",
        "seed": args.seed, "timesteps": timesteps, "train_episodes": len(curve), "minutes": train_s / 60.0,
        "fps": timesteps / max(train_s, 1e-9), "eval_episodes": len(plan), "eval_minutes": eval_s / 60.0,
        "torch_threads": torch.get_num_threads(),
    }
    ppo, rnd = rows["ppo"], rows["random"]
    summary["beats_random"] = bool(ppo["ci95"][0] > rnd["ci95"][1])
    (out / "eval.json").write_text(json.dumps({"summary": summary, "doctors": rows}, indent=2))
    with (out / "episodes.jsonl").open("w") as fh:
        for eps in results.values():
            for e in eps:
                fh.write(json.dumps(asdict(e)) + "\n")
    (out / "curve.json").write_text(json.dumps(curve))
    (out / "eval.md").write_text(markdown(summary, rows))
    title = (f"MaskablePPO ({'tuned' if args.tuned else 'vanilla'}) on {env_id}, train {train_cases}, "
             f"{timesteps:,} steps in {train_s / 60:.1f} min\n"
             f"eval {summary['eval_cases']}: {len(plan)} episodes, mean reward with bootstrap 95% CIs")
    plot(out / "curve.png", curve, rows, title)
    console.print((out / "eval.md").read_text(), soft_wrap=True, markup=False, highlight=False)

    line = {
        "env": env_id, "split": summary["split"], "tuned": args.tuned, "seed": args.seed, "timesteps": timesteps,
        "minutes": round(train_s / 60.0, 2), "eval_episodes": len(plan),
        **{f"{k.replace('-', '_')}_{field_}": (round(v, 4) if isinstance(v, float) else [round(x, 4) for x in v])
           for k, r in rows.items() for field_, v in (("mean", r["mean"]), ("ci95", r["ci95"]), ("exact_dx", r["exact_dx"]),
                                                      ("finished", r["finished"]))},
        "ppo_cost_usd": round(ppo["cost_usd"], 1), "ppo_turns": round(ppo["turns"], 1),
        "beats_random": summary["beats_random"], "out": str(out),
    }
    print(json.dumps(line), flush=True)
    return line


if __name__ == "__main__":
    main()
