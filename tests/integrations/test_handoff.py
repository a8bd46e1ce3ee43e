"""Hand-off JSONL: hand-computed advantages (docs/TRAINERS.md) and an end-to-end group export."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

import clinic_env
from clinic_env.integrations.handoff import export
from clinic_env.llm.policy import LLMPolicy
from clinic_env.records import EpisodeRecord, LLMCall, Turn
from clinic_env.rollout_async import arun
from clinic_env.testing.openai_server import OpenAITestServer


def _episode(member: int, reward: float, history: float, calls: list[tuple[float, list[str]]],
             **extra: Any) -> EpisodeRecord:
    turns = [Turn(cycle=i, agent="doctor_0", segment="history", action=f"ask:q{i}", violations=v, llm_call=i)
             for i, (_, v) in enumerate(calls)]
    doctor_calls = [LLMCall(messages=[{"role": "user", "content": f"step {i}"}], completion=f"ask q{i}",
                            segment="history", first_turn=i, n_turns=1, reward=r, prompt_token_ids=[1, 2],
                            completion_token_ids=[3], completion_logprobs=[-0.5])
                    for i, (r, _) in enumerate(calls)]
    return EpisodeRecord(case_id="c", doctor="d", seed=7, env_version="v", group="c:7", group_index=member,
                         turns=turns, totals={"reward": reward, "history": history}, doctor_calls=doctor_calls,
                         **extra)


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_hand_computed_group(tmp_path: Path) -> None:
    # The worked example of docs/TRAINERS.md: G = 2, episode A violates a repeat at its second step.
    a = _episode(0, 1.0, 0.6, [(0.2, []), (0.8, ["repeated_question"])])
    b = _episode(1, 0.0, 0.2, [(0.0, [])])
    out = tmp_path / "handoff.jsonl"
    assert export([a, b], out) == 3
    lines = _read(out)
    adv = [line["advantages"] for line in lines]
    # GRPO: R = [1, 0], mean 0.5, std 0.5 -> +-0.5 / 0.55.
    assert [x["grpo"] for x in adv] == pytest.approx([0.5 / 0.55, 0.5 / 0.55, -0.5 / 0.55])
    assert [x["no_std"] for x in adv] == pytest.approx([0.5, 0.5, -0.5])
    # SPAR on history: R = [0.6, 0.2], mean 0.4, std 0.2 (+ eps 0.05); lambda(repeated_question) = 0.1.
    assert [x["spar"] for x in adv] == pytest.approx([0.8, (0.06 - 0.4) / 0.25, -0.8])
    assert [line["gamma"] for line in lines] == pytest.approx([1.0, 0.1, 1.0])
    assert [line["done"] for line in lines] == [False, True, True]
    first = lines[0]
    assert first["group"] == "c:7" and first["episode"] == 0 and first["messages"][0]["content"] == "step 0"
    assert first["prompt_token_ids"] == [1, 2] and first["completion_logprobs"] == [-0.5] and first["reward"] == 0.2


def test_choice_of_advantages_failed_episodes_and_bad_names(tmp_path: Path) -> None:
    a = _episode(0, 1.0, 0.6, [(1.0, [])])
    b = _episode(1, 0.0, 0.2, [(0.0, [])])
    crashed = _episode(2, -5.0, 0.0, [(-5.0, [])], end_reason="llm_error", truncated=True)
    out = tmp_path / "h.jsonl"
    assert export([a.model_dump(), b, crashed], out, advantages=("grpo",)) == 2
    assert all(set(line["advantages"]) == {"grpo"} for line in _read(out))
    # Without the crashed episode the group is {1, 0}: +-0.5/0.55, unaffected by its -5.
    assert _read(out)[0]["advantages"]["grpo"] == pytest.approx(0.5 / 0.55)
    with pytest.raises(ValueError, match="unknown advantages"):
        export([a], out, advantages=("ppo",))


def test_structured_records_give_one_line_per_doctor_turn(tmp_path: Path,
                                                          small_cases: list[clinic_env.Case]) -> None:
    from clinic_env.rollout import run_batch

    records = run_batch(small_cases[:2], ["thorough"], episodes_per_case=1)
    out = tmp_path / "s.jsonl"
    n = export(records, out)
    doctor_turns = sum(1 for r in records for t in r.turns if t.agent == "doctor_0")
    assert n == doctor_turns
    line = _read(out)[0]
    assert line["messages"] is None and line["completion"] == line["actions"][0]
    # One episode per group: GRPO and no-std are 0; SPAR is 0 too except for penalised steps.
    for x in _read(out):
        assert x["advantages"]["grpo"] == x["advantages"]["no_std"] == 0
        assert (x["advantages"]["spar"] < 0) if x["gamma"] < 1 else (x["advantages"]["spar"] == 0)


def test_group_rollout_export_end_to_end(tmp_path: Path, seeded_server: OpenAITestServer,
                                         small_cases: list[clinic_env.Case]) -> None:
    policy = LLMPolicy("hosted_vllm/test", "doctor", api_base=seeded_server.base_url, seed=1, token_data=True,
                       temperature=1.0)
    batch = asyncio.run(arun(small_cases[:2], policy, api_base=seeded_server.base_url, group_size=4,
                             record_tokens=True))
    out = tmp_path / "g.jsonl"
    n = export(batch, out)
    lines = _read(out)
    assert n == len(lines) == sum(len(r.doctor_calls or ()) for r in batch)
    assert {line["group"] for line in lines} == {r.group for r in batch}
    for group in {line["group"] for line in lines}:
        rows = [x for x in lines if x["group"] == group]
        per_episode = {x["episode"]: x["advantages"]["no_std"] for x in rows}
        assert len(per_episode) == 4
        assert sum(per_episode.values()) == pytest.approx(0.0, abs=1e-9)  # R_i - mean sums to 0
        assert len({round(v, 9) for v in per_episode.values()}) > 1  # members played differently
        assert all(x["completion_token_ids"] and x["prompt_token_ids"] for x in rows)


def test_messages_can_be_left_out(tmp_path: Path) -> None:
    a = _episode(0, 1.0, 0.6, [(1.0, [])])
    out = tmp_path / "m.jsonl"
    export([a], out, include_messages=False)
    line = _read(out)[0]
    assert line["messages"] is None and line["prompt_token_ids"] == [1, 2]
