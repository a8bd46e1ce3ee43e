"""Open mode (AgentClinic's protocol) against the loopback server: calls per episode, doctor prompt
size and rollout throughput, next to AgentClinic's own protocol figures.

Every role is an LLM (doctor, patient, examiner, measurement reader, moderator), all played by
:mod:`clinic_env.testing.open_roles` in a separate server process (so that the client side has the
interpreter to itself), each call answered after the same fixed latency (default 100 ms). The cases
are AgentClinic OSCE records (``tests/fixtures/agentclinic_osce.jsonl``) imported as they are.

1. **Protocol figures** (one pass at concurrency 1, the server logging every request): LLM calls
   per episode, per role; doctor prompt tokens per call in all, the static prefix every doctor call
   shares (the longest common prefix of all doctor prompts: what a server's prefix cache holds for
   every call), the part beyond it, and the part new since the same episode's previous doctor call.
   Tokens are tiktoken ``cl100k_base`` (litellm's bundled copy, offline), else whitespace words.
2. **AgentClinic's figures, from its protocol** (``agentclinic.py`` of SamuelSchmidgall/AgentClinic):
   each doctor turn is one doctor call plus one patient or measurement call, and the diagnosis turn
   one moderator call, so an episode of T doctor turns costs 2T calls (at most 40 with its default
   20 turns); every doctor call re-sends its system prompt (136 words of fixed text around the
   ``Objective_for_Doctor``, with the turn count inside it, so no prefix stays the same across
   calls) and the whole dialogue so far. Applied to the dialogues of pass 1 this gives AgentClinic's
   calls and words per doctor call for the same consultations; issue 10's side-by-side measurement
   of AgentClinic itself reported 16 calls per episode and ~240 words per doctor call.
3. **Throughput**: episodes/s at concurrency 1, 16 and 64 and the speed-up of 64 over 1 (best of
   ``--repeats`` runs each; every run is printed). The episode counts are multiples of the
   concurrency (the cases cycled), so that no run ends on a half-empty wave of episodes.

Targets (issue 10): all-LLM calls per episode <= 20; doctor prompt beyond the cached prefix <= 400
tokens; speed-up at 64 >= 40x.

Usage: ``python benchmarks/llm_open.py [--latency-ms 100] [--quick]``; the last line is one JSON object.
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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "agentclinic_osce.jsonl"
MODEL = "llm:hosted_vllm/open-bench"
#: AgentClinic's doctor call: words of fixed text in its system prompt and user prompt (agentclinic.py,
#: DoctorAgent.system_prompt: 92 + 26 words, inference_doctor's wrapper: 18 words).
AGENTCLINIC_FIXED_WORDS = 136
#: Issue 10's measurement of AgentClinic itself (same loopback latency).
AGENTCLINIC_REPORTED = {"calls_per_episode": 16, "words_per_doctor_call": 240}


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(latency_ms: float, log: Path | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """The role-playing loopback server in its own process; returns it and its api_base."""
    port = free_port()
    cmd = [sys.executable, "-m", "clinic_env.testing.open_roles", "--port", str(port), "--latency-ms", str(latency_ms)]
    proc = subprocess.Popen([*cmd, *(["--log", str(log)] if log else [])], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.readline()  # "serving ..." once it listens
    return proc, f"http://127.0.0.1:{port}/v1"


def token_counter() -> tuple[Callable[[str], int], str]:
    """cl100k_base token counts (tiktoken with litellm's bundled encodings), else words."""
    try:
        import litellm

        cache = Path(litellm.__file__).parent / "litellm_core_utils" / "tokenizers"
        os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(cache))
        import tiktoken

        enc = tiktoken.get_encoding("cl100k_base")
        return (lambda text: len(enc.encode(text, disallowed_special=()))), "cl100k_base tokens"
    except Exception:  # no tiktoken or no cached encoding: words are the honest fallback
        return (lambda text: len(text.split())), "words"


def _content(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content or "")


def render(messages: Sequence[dict[str, Any]]) -> str:
    """A chat prompt as one string (one role header per message, as chat templates do)."""
    return "".join(f"<|{m.get('role', '')}|>\n{_content(m)}\n" for m in messages)


def _common_prefix(a: str, b: str) -> str:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return a[:i]


def prompt_figures(log: Path, count: Callable[[str], int]) -> dict[str, Any]:
    """Doctor prompt sizes from the server's request log (see the module docstring)."""
    requests = [json.loads(line)["messages"] for line in log.read_text(encoding="utf-8").splitlines() if line]
    doctor = [m for m in requests if "DIAGNOSIS READY" in _content(next((x for x in m if x.get("role") == "system"), {}))]
    texts = [render(m) for m in doctor]
    prefix = texts[0] if texts else ""
    for text in texts[1:]:
        prefix = _common_prefix(prefix, text)
    static = count(prefix)
    seen: dict[str, int] = {}  # rendered earlier doctor conversation -> its tokens
    totals, beyond, new, ac_words = [], [], [], []
    for msgs, text in zip(doctor, texts, strict=True):
        total = count(text)
        totals.append(total)
        beyond.append(total - static)
        # The same episode's previous doctor call is this call's messages minus the latest exchange.
        cached = max((seen[render(msgs[:j])] + count(_content(msgs[j])) for j in range(len(msgs) - 1, 0, -1)
                      if render(msgs[:j]) in seen), default=static)
        new.append(total - cached)
        seen[text] = total
        ac_words.append(AGENTCLINIC_FIXED_WORDS + sum(len(_content(m).split()) for m in msgs if m.get("role") != "system"))

    def mean(xs: list[int]) -> float:
        return round(sum(xs) / len(xs), 1) if xs else 0.0

    return {"doctor_calls": len(doctor), "prompt_tokens_mean": mean(totals), "static_prefix_tokens": static,
            "beyond_prefix_mean": mean(beyond), "beyond_prefix_max": max(beyond, default=0),
            "new_per_call_mean": mean(new), "words_per_call_mean": mean([len(t.split()) for t in texts]),
            "agentclinic_words_per_call_same_dialogues": mean(ac_words)}


def play(api_base: str, cases: list[Any], episodes_per_case: int, concurrency: int) -> Any:
    """One all-LLM open-mode batch (a case listed twice is played twice, on its own seed)."""
    from clinic_env.open import arun_open

    return asyncio.run(arun_open(cases, MODEL, patient=MODEL, examiner=MODEL, measurement=MODEL, moderator=MODEL,
                                 protocol="agentclinic", episodes_per_case=episodes_per_case, concurrency=concurrency,
                                 api_base=api_base, timeout=30, retries=1))


def protocol_pass(cases: list[Any], latency_ms: float, count: Callable[[str], int]) -> dict[str, Any]:
    """Pass 1 and 2: calls per episode per role and prompt sizes, ours and AgentClinic's."""
    with tempfile.TemporaryDirectory(prefix="clinic-open-bench-") as tmp:
        log = Path(tmp) / "requests.jsonl"
        proc, api_base = start_server(latency_ms, log)
        try:
            batch = play(api_base, cases, 1, 1)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        prompts = prompt_figures(log, count)
    episodes = len(batch)
    by_role: dict[str, int] = {}
    for record in batch:
        for role, row in ((record.get("usage") or {}).get("by_agent") or {}).items():
            by_role[role] = by_role.get(role, 0) + int(row.get("calls") or 0)
    calls = sum(int((r.get("usage") or {}).get("calls") or 0) for r in batch)
    doctor_turns = sum(float(r.get("doctor_turns") or 0) for r in batch) / max(episodes, 1)
    return {"episodes": episodes, "failed": sum(1 for r in batch if r.get("errors")),
            "calls_per_episode": round(calls / max(episodes, 1), 2),
            "calls_per_episode_by_role": {k: round(v / max(episodes, 1), 2) for k, v in sorted(by_role.items())},
            "doctor_turns": round(doctor_turns, 2), "agentclinic_calls_same_turns": round(2 * doctor_turns, 2),
            **prompts}


def throughput(cases: list[Any], latency_ms: float, plan: dict[int, int], repeats: int) -> list[dict[str, Any]]:
    """Episodes/s per concurrency (best of ``repeats``)."""
    proc, api_base = start_server(latency_ms)
    rows = []
    try:
        play(api_base, cases[:2], 1, 2)  # warm-up: imports, connections
        for concurrency, episodes in sorted(plan.items()):
            # Exactly ``episodes`` (a multiple of the concurrency: no half-empty last wave).
            chosen = (cases * -(-episodes // len(cases)))[:episodes]
            runs = []
            for _ in range(repeats):
                start = time.perf_counter()
                batch = play(api_base, chosen, 1, concurrency)
                wall = time.perf_counter() - start
                calls = sum(int((r.get("usage") or {}).get("calls") or 0) for r in batch)
                runs.append({"concurrency": concurrency, "episodes": len(batch), "calls": calls, "wall_s": round(wall, 3),
                             "episodes_per_s": round(len(batch) / wall, 3), "failed": sum(1 for r in batch if r.get("errors"))})
            print(f"concurrency {concurrency:3d}: episodes/s per run " + ", ".join(f"{r['episodes_per_s']:.3f}" for r in runs),
                  flush=True)
            rows.append(max(runs, key=lambda r: r["episodes_per_s"]))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return rows


def main() -> None:
    """Run both passes, print the tables, and the summary JSON last."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--repeats", type=int, default=2, help="runs per concurrency (the best is kept)")
    parser.add_argument("--quick", action="store_true", help="CI size: 20 ms latency, fewer episodes, one run each")
    args = parser.parse_args()
    from clinic_env.importers import import_cases

    cases, _ = import_cases(FIXTURE, "agentclinic")
    latency = 20.0 if args.quick else args.latency_ms
    plan = {1: 4, 16: 32, 64: 64} if args.quick else {1: 10, 16: 64, 64: 256}
    repeats = 1 if args.quick else args.repeats
    count, unit = token_counter()
    proto = protocol_pass(cases, latency, count)
    rows = throughput(cases, latency, plan, repeats)
    by = {r["concurrency"]: r for r in rows}
    speedup = round(by[64]["episodes_per_s"] / by[1]["episodes_per_s"], 2)
    print(f"\nOpen mode, all roles LLM, loopback latency {latency:g} ms, {len(cases)} AgentClinic OSCE cases; {unit}")
    print(f"{'figure':52s} {'clinic-env':>12s} {'AgentClinic':>12s} {'target':>8s}")
    rows_out = [
        ("LLM calls per episode", proto["calls_per_episode"], proto["agentclinic_calls_same_turns"], "<= 20"),
        ("  (AgentClinic as measured in issue 10)", "", AGENTCLINIC_REPORTED["calls_per_episode"], ""),
        ("doctor turns per episode", proto["doctor_turns"], proto["doctor_turns"], ""),
        (f"doctor prompt per call ({unit})", proto["prompt_tokens_mean"], "", ""),
        ("doctor prompt per call (words)", proto["words_per_call_mean"],
         proto["agentclinic_words_per_call_same_dialogues"], ""),
        ("  (AgentClinic words/call as measured in issue 10)", "", AGENTCLINIC_REPORTED["words_per_doctor_call"], ""),
        (f"static prefix shared by all doctor calls ({unit})", proto["static_prefix_tokens"], 0, ""),
        (f"doctor prompt beyond the static prefix, mean ({unit})", proto["beyond_prefix_mean"], "", "<= 400"),
        (f"doctor prompt beyond the static prefix, max ({unit})", proto["beyond_prefix_max"], "", ""),
        (f"new since the episode's previous doctor call ({unit})", proto["new_per_call_mean"], "", ""),
    ]
    for label, ours, theirs, target in rows_out:
        print(f"{label:52s} {ours!s:>12s} {theirs!s:>12s} {target:>8s}")
    print("calls per episode by role: " + ", ".join(f"{k} {v}" for k, v in proto["calls_per_episode_by_role"].items()))
    for r in rows:
        print(f"concurrency {r['concurrency']:3d}: {r['episodes_per_s']:8.3f} episodes/s ({r['episodes']} episodes, "
              f"{r['calls']} calls, {r['wall_s']} s, {r['failed']} failed)")
    print(f"speed-up 64 vs 1: {speedup}x (target >= 40x)")
    summary = {
        "latency_ms": latency, "token_unit": unit, "cases": len(cases),
        "calls_per_episode": proto["calls_per_episode"], "calls_per_episode_by_role": proto["calls_per_episode_by_role"],
        "doctor_turns": proto["doctor_turns"], "doctor_prompt_tokens": proto["prompt_tokens_mean"],
        "doctor_static_prefix_tokens": proto["static_prefix_tokens"],
        "doctor_prompt_beyond_prefix_tokens": proto["beyond_prefix_mean"],
        "doctor_prompt_beyond_prefix_max": proto["beyond_prefix_max"],
        "doctor_prompt_new_per_call_tokens": proto["new_per_call_mean"],
        "agentclinic": {"calls_per_episode_same_turns": proto["agentclinic_calls_same_turns"],
                        "words_per_doctor_call_same_dialogues": proto["agentclinic_words_per_call_same_dialogues"],
                        "reported": AGENTCLINIC_REPORTED},
        "episodes_per_s": {str(r["concurrency"]): r["episodes_per_s"] for r in rows},
        "speedup_64_vs_1": speedup,
        "failed": proto["failed"] + sum(r["failed"] for r in rows),
        "targets_met": {"calls_per_episode<=20": proto["calls_per_episode"] <= 20,
                        "beyond_prefix<=400": proto["beyond_prefix_mean"] <= 400, "speedup>=40": speedup >= 40},
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
