"""Hand-off export rate: records/s and lines/s of :func:`clinic_env.integrations.handoff.export`.

Plays a small batch of token-recording group rollouts against the in-process loopback server
(scripted doctor whose play varies with the sampling seed, G members per case and seed), then
exports copies of that batch (``--records`` records in all, groups kept distinct) with all three
advantages, ``--repeats`` times. Prints each run, then ONE JSON line with the best
``records_per_s``, ``lines_per_s`` and ``mb_per_s`` (the file's size over the time).
``--no-messages`` leaves the chat messages out of the lines (most of the file's bytes).

Usage: ``python benchmarks/handoff_export.py [--records 2000] [--group-size 4] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import clinic_env
from clinic_env.integrations.handoff import export
from clinic_env.llm.policy import LLMPolicy
from clinic_env.records import EpisodeRecord
from clinic_env.rollout_async import arun
from clinic_env.testing.openai_server import OpenAITestServer
from clinic_env.testing.scripted import clinic_reply


def _reply(request: dict[str, Any]) -> str:
    seed = int(request.get("seed") or 0)
    return clinic_reply(request, questions=seed % 4, tests=seed % 3)


def sample_batch(cases: int, group_size: int) -> list[EpisodeRecord]:
    """Token-recording group rollouts of the first ``cases`` bundled cases."""
    library = clinic_env.load_cases()[:cases]
    with OpenAITestServer(_reply) as srv:
        policy = LLMPolicy("hosted_vllm/bench", "doctor", api_base=srv.base_url, seed=1, token_data=True)
        return list(asyncio.run(arun(library, policy, api_base=srv.base_url, group_size=group_size,
                                     record_tokens=True)))


def main(argv: list[str] | None = None) -> None:
    """Measure and print (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--cases", type=int, default=4)
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-messages", action="store_true", help="leave the chat messages out (token ids only)")
    args = parser.parse_args(argv)
    if args.records < 1 or args.cases < 1 or args.group_size < 1 or args.repeats < 1:
        parser.error("--records, --cases, --group-size and --repeats must be >= 1")
    base = sample_batch(args.cases, args.group_size)
    records = []
    for i in range(args.records):
        rec = base[i % len(base)].model_copy()
        rec.group = f"{rec.group}#{i // len(base)}"  # each copy of the batch is its own set of groups
        records.append(rec)
    calls = sum(len(r.doctor_calls or ()) for r in records)
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "handoff.jsonl"
        for run in range(args.repeats):
            start = time.perf_counter()
            lines = export(records, out, include_messages=not args.no_messages)
            secs = time.perf_counter() - start
            size = out.stat().st_size / 1e6
            row = {"run": run, "records": len(records), "lines": lines, "seconds": round(secs, 3),
                   "records_per_s": round(len(records) / secs, 1), "lines_per_s": round(lines / secs, 1),
                   "mb_per_s": round(size / secs, 2)}
            print(row)
            if row["records_per_s"] > best.get("records_per_s", 0.0):
                best = row
    assert lines == calls
    print(json.dumps({"records_per_s": best["records_per_s"], "lines_per_s": best["lines_per_s"],
                      "mb_per_s": best["mb_per_s"], "records": len(records), "lines": lines,
                      "group_size": args.group_size, "messages": not args.no_messages}))


if __name__ == "__main__":
    main()
