"""Episodes/s of the tournament engine, local backend vs ``--backend ray`` with 1 and 2 workers.

The batch is CPU-bound and the same for every configuration: the information-gain doctor (with the
persona patient and the rubric examiner) on every bundled case, ``--episodes-per-case`` repeats,
run seed 0, each run through :func:`clinic_env.competition.run_tournament` into its own run folder
(so the durable results file is written as in real use).

What each figure counts:

- ``ray_init_s``: ``ray.init(num_cpus=--cpus)``, once, before any run; excluded from every rate.
- ``start_s``: from the ``run_tournament`` call to its ``on_start`` callback: building the env and
  the players (local), or starting the actors, each building its env and doctor (Ray).
- ``play_s``: from ``on_start`` to the return: playing every episode, writing every record, the
  final summary. ``eps_per_s`` = episodes / ``play_s`` (the figure the issue's target is about);
  ``e2e_eps_per_s`` = episodes / (``start_s`` + ``play_s``).
- ``driver_cpu_s``, ``actor_cpu_s``, ``busy``: CPU seconds of this process and of the actors over the
  play; ``busy`` = actor CPU / (``play_s`` x workers), near 1 when every actor had a core to itself.
  On a shared, loaded machine ``busy`` falls and with it the speed-up: read the two together.
- ``speedup_2v1`` = 2-worker ``eps_per_s`` / 1-worker ``eps_per_s`` (target >= 1.5 on 2 idle cores);
  ``ray1_vs_local``: the Ray overhead with one worker.

Every configuration must write the same records (``records_identical``), or the figures mean nothing.
With ``--repeats R`` each configuration is run R times in turn and the best ``play_s`` is kept.

Usage: ``python benchmarks/ray_rollouts.py [--episodes-per-case 8] [--repeats 1] [--cpus 2]``
(needs the ``ray`` extra). The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import clinic_env
from clinic_env.competition import run_tournament
from clinic_env.rollout_backends import RayBackend, require_ray

DOCTOR = "info-gain"


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux /proc; 0.0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _one(name: str, cases: list[clinic_env.Case], episodes_per_case: int, out: Path, workers: int | None,
         batch: int | None) -> tuple[dict[str, Any], list[str]]:
    """Run one configuration; its timings, CPU use and sorted result lines.

    CPU: this process's ``process_time`` over the play (the driver, or everything when local) and,
    with Ray, the actors' CPU seconds from when the play starts to when the last record arrives (read
    from /proc while they are alive). ``busy`` = actor CPU / (play_s x workers): near 1 when each
    actor had a core of its own, lower when they waited for one (a shared, loaded machine).
    """
    ray = require_ray()
    marks: dict[str, float] = {}
    pids: list[int] = []
    cpu: dict[str, float] = {}
    backend = RayBackend(workers=workers, batch=batch) if workers else None
    total = len(cases) * episodes_per_case
    seen = [0]

    def started(_total: int, _done: int) -> None:
        marks["start"], marks["proc0"] = time.perf_counter(), time.process_time()
        if backend is not None:
            pids.extend(ray.get([a.pid.remote() for a in backend.actors]))
            cpu["before"] = sum(_cpu_s(p) for p in pids)

    def arrived(_record: Any) -> None:
        seen[0] += 1
        if seen[0] == total and pids:
            cpu["after"] = sum(_cpu_s(p) for p in pids)

    start = time.perf_counter()
    result = run_tournament([DOCTOR], cases, out=out, episodes_per_case=episodes_per_case, seed=0, backend=backend,
                            on_start=started, on_episode=arrived)
    end = time.perf_counter()
    n = result.played
    start_s, play_s = marks["start"] - start, end - marks["start"]
    lines = sorted((out / "results.jsonl").read_text(encoding="utf-8").splitlines())
    row: dict[str, Any] = {"config": name, "episodes": n, "start_s": round(start_s, 3), "play_s": round(play_s, 3),
                           "eps_per_s": round(n / play_s, 2), "e2e_eps_per_s": round(n / (start_s + play_s), 2),
                           "driver_cpu_s": round(time.process_time() - marks["proc0"], 3)}
    if backend is not None:
        actor_cpu = cpu.get("after", 0.0) - cpu.get("before", 0.0)
        row.update(worker_deaths=backend.stats.deaths, actor_cpu_s=round(actor_cpu, 3),
                   busy=round(actor_cpu / (play_s * (workers or 1)), 3))
    return row, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes-per-case", type=int, default=8, help="repeats of every bundled case (64 cases)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per configuration; the best play_s is kept")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray")
    parser.add_argument("--batch", type=int, default=None, help="episodes per remote call (default: automatic)")
    args = parser.parse_args()

    ray = require_ray()
    cases = clinic_env.load_cases()
    configs: list[tuple[str, int | None]] = [("local", None), ("ray-1", 1), ("ray-2", 2)]
    t0 = time.perf_counter()
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, logging_level="warning")
    init_s = time.perf_counter() - t0
    best: dict[str, dict[str, Any]] = {}
    outputs: dict[str, list[str]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="ray-bench-") as tmp:
            for r in range(args.repeats):
                for name, workers in configs:
                    row, lines = _one(name, cases, args.episodes_per_case, Path(tmp) / f"{name}-{r}", workers,
                                      args.batch)
                    outputs.setdefault(name, lines)
                    if name not in best or row["play_s"] < best[name]["play_s"]:
                        best[name] = row
    finally:
        ray.shutdown()
    identical = all(lines == outputs["local"] for lines in outputs.values())
    speedup = best["ray-2"]["eps_per_s"] / best["ray-1"]["eps_per_s"]
    overhead = best["ray-1"]["eps_per_s"] / best["local"]["eps_per_s"]

    print(f"info-gain doctor, {len(cases)} cases x {args.episodes_per_case} = {best['local']['episodes']} episodes; "
          f"ray.init {init_s:.2f} s (excluded); {os.cpu_count()} CPU(s) seen; load average "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    header = (f"{'config':<8} {'start_s':>8} {'play_s':>8} {'eps/s':>8} {'e2e eps/s':>10} {'driver cpu':>11} "
              f"{'actor cpu':>10} {'busy':>6}")
    print(header)
    print("-" * len(header))
    for name, _ in configs:
        b = best[name]
        actor = f"{b['actor_cpu_s']:>10.2f} {b['busy']:>6.2f}" if "busy" in b else f"{'-':>10} {'-':>6}"
        print(f"{name:<8} {b['start_s']:>8.2f} {b['play_s']:>8.2f} {b['eps_per_s']:>8.1f} {b['e2e_eps_per_s']:>10.1f} "
              f"{b['driver_cpu_s']:>11.2f} {actor}")
    print(f"2 workers / 1 worker: {speedup:.2f}x (target >= 1.5x on 2 idle cores); 1 worker / local: {overhead:.2f}x; "
          f"records identical across configurations: {identical}")
    print(json.dumps({"benchmark": "ray_rollouts", "doctor": DOCTOR, "cases": len(cases),
                      "episodes_per_case": args.episodes_per_case, "repeats": args.repeats, "ray_cpus": args.cpus,
                      "ray_init_s": round(init_s, 3), "configs": best, "speedup_2v1": round(speedup, 3),
                      "ray1_vs_local": round(overhead, 3), "records_identical": identical,
                      "cpu_count": os.cpu_count(), "loadavg_1m": round(os.getloadavg()[0], 2),
                      "python": platform.python_version(), "ray": ray.__version__}))


if __name__ == "__main__":
    main()
