"""The verl/OpenRLHF-style agent loop: a group of episodes end to end against the loopback server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

import clinic_env
from clinic_env.integrations.handoff import export
from clinic_env.integrations.verl import ClinicAgentLoop, OpenRLHFAgent, openai_generate, run_group
from clinic_env.llm.client import ChatClient
from clinic_env.testing.openai_server import OpenAITestServer
from clinic_env.testing.scripted import clinic_reply


def test_run_group_end_to_end(tmp_path: Path, seeded_server: OpenAITestServer,
                              small_cases: list[clinic_env.Case]) -> None:
    case = small_cases[0]
    client = ChatClient("hosted_vllm/test", seeded_server.base_url, retries=0)

    async def go() -> list[clinic_env.EpisodeRecord]:
        try:
            return await run_group(openai_generate(client, seed=1), case.id, seed=3, group_size=4,
                                   cases=small_cases)
        finally:
            await client.aclose()

    records = asyncio.run(go())
    assert [r.group_index for r in records] == [0, 1, 2, 3]
    assert {r.group for r in records} == {f"{case.id}:3"}
    for r in records:
        assert r.terminated and r.end_reason == "final_diagnosis"
        calls = r.doctor_calls or []
        assert calls and all(c.completion_token_ids and c.prompt_token_ids for c in calls)
        assert sum(c.reward for c in calls) == pytest.approx(r.totals["reward"])
        assert sum(c.n_turns for c in calls) == sum(1 for t in r.turns if t.agent == "doctor_0")
    # Members sample with different seeds, so they play (and score) differently.
    assert len({round(r.totals["reward"], 9) for r in records}) > 1
    out = tmp_path / "verl.jsonl"
    assert export(records, out) == sum(len(r.doctor_calls or ()) for r in records)
    grpo = {json.loads(x)["episode"]: json.loads(x)["advantages"]["grpo"] for x in out.read_text().splitlines()}
    assert max(grpo.values()) > 0 > min(grpo.values())


def test_step_after_end_and_openrlhf_shape(small_cases: list[clinic_env.Case]) -> None:
    case = small_cases[1]
    agent = OpenRLHFAgent(ClinicAgentLoop(small_cases))

    async def go() -> list[dict[str, object]]:
        first = await agent.reset({"label": json.dumps({"case_id": case.id, "seed": 0})})
        assert "<|system|>" in str(first["observation"]) and str(first["observation"]).endswith("<|assistant|>\n")
        outs = []
        messages = agent.loop.env.messages()
        for _ in range(100):
            reply = clinic_reply({"messages": messages})
            out = await agent.step({"action_text": reply})
            outs.append(out)
            if out["done"]:
                break
            messages = agent.loop.env.messages()
        with pytest.raises(RuntimeError, match="reset"):
            await agent.loop.step("anything")
        return outs

    outs = asyncio.run(go())
    assert outs[-1]["done"] and outs[-1]["environment_feedback"] == ""
    assert all(not o["done"] and o["environment_feedback"] for o in outs[:-1])
    assert outs[-1]["scores"] == pytest.approx(sum(float(o["rewards"]) for o in outs))  # type: ignore[arg-type]
