"""LLMPolicy for the three roles and async rollouts against the loopback server (no API key)."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest

import clinic_env
from clinic_env.llm import LLMPolicy
from clinic_env.rollout import RolloutBatch, arun, run_batch
from clinic_env.testing.openai_server import OpenAITestServer, Reply
from clinic_env.testing.scripted import SCRIPTS, clinic_reply

MODEL = "hosted_vllm/test"


@pytest.fixture(scope="module")
def server() -> OpenAITestServer:
    with OpenAITestServer(SCRIPTS["doctor"]) as srv:
        yield srv


def _strip(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in ("usage", "wall_s")}


def test_policy_params_roles_and_sync_act(server: OpenAITestServer) -> None:
    policy = LLMPolicy(MODEL, "examiner", api_base=server.base_url, seed=11, temperature=0.7, n=2)
    params = policy.params()
    assert params["seed"] == 11 and params["n"] == 2 and params["temperature"] == 0.7
    assert params["response_format"]["json_schema"]["name"] == "rubric_grades" and params["max_tokens"] == 1024
    per_item = LLMPolicy(MODEL, "examiner", api_base=server.base_url, seed=11, temperature=0.7, n=2, grading="per_item")
    assert per_item.params()["response_format"]["json_schema"]["name"] == "rubric_grade"
    out = per_item.act_text([{"role": "system", "content": "rubric item"}, {"role": "user", "content": "x"}])
    assert isinstance(out, list) and json.loads(out[0])["criteria_met"] is True
    with pytest.raises(ValueError, match="grading"):
        LLMPolicy(MODEL, "examiner", grading="all")
    assert "guided_json" not in server.requests[-1]  # removed from vLLM: never sent
    with pytest.raises(ValueError, match="role"):
        LLMPolicy(MODEL, "nurse")


def test_doctor_schema_lists_only_legal_actions(server: OpenAITestServer) -> None:
    env = clinic_env.raw_env(mode="text", case="card-nstemi")
    env.reset(seed=0)
    policy = LLMPolicy(MODEL, "doctor", api_base=server.base_url, info=env.info)
    schema = policy.params(env.engine.masks[0])["response_format"]["json_schema"]["schema"]
    # History: questions, the bedside initial assessments (ECG, vital signs...) and closing.
    assert schema["properties"]["action"]["enum"] == ["ask", "order", "end_segment"]
    assert "hx.onset" in schema["properties"]["item"]["enum"]
    assert "ecg.12lead" in schema["properties"]["item"]["enum"]
    assert "lab.troponin" not in schema["properties"]["item"]["enum"]


def test_arun_groups_usage_and_determinism(server: OpenAITestServer, small_cases: list[clinic_env.Case]) -> None:
    cases = small_cases[:3]
    kwargs = {"patient": f"llm:{MODEL}", "examiner": f"llm:{MODEL}", "api_base": server.base_url, "group_size": 2,
              "timeout": 10, "env_kwargs": {"persona": "cooperative"}}
    batch = asyncio.run(arun(cases, f"llm:{MODEL}", concurrency=6, **kwargs))
    assert isinstance(batch, RolloutBatch) and len(batch) == 6
    assert [r["group_index"] for r in batch] == [0, 1] * 3
    assert batch[0]["group"] == batch[1]["group"] and batch[0]["seed"] == batch[1]["seed"]
    for r in batch:
        assert r["end_reason"] == "final_diagnosis" and not r["errors"]
        u = r["usage"]
        assert u["calls"] == sum(row["calls"] for row in u["by_agent"].values())
        assert set(u["by_agent"]) == {"doctor_0", "patient_0", "examiner_0"}
        assert u["by_agent"]["doctor_0"]["calls"] == 10  # 3 questions + 2 tests + 5 control actions
        assert u["prompt_tokens"] > 0 and u["latency_s"] > 0
        # the examiner grades all pending rubric items of a segment in one call (<= 4 per episode)
        verdicts = [t for t in r["turns"] if t["agent"] == "examiner_0"]
        assert u["by_agent"]["examiner_0"]["calls"] <= 4 and len(verdicts) > u["by_agent"]["examiner_0"]["calls"]
        assert u["calls"] <= 20  # all-LLM text episode (was ~53 with per-item grading)
    assert batch.spec_decode is not None and batch.spec_decode["drafts"] > 0  # read from /metrics
    sequential = asyncio.run(arun(cases, f"llm:{MODEL}", concurrency=1, **kwargs))
    assert [_strip(r) for r in sequential] == [_strip(r) for r in batch]


def test_arun_server_that_stops_answering_truncates_affected_episodes(small_cases: list[clinic_env.Case]) -> None:
    with OpenAITestServer(SCRIPTS["doctor"], fail_after=25, fail_mode="timeout", hang_seconds=2.0) as srv:
        batch = asyncio.run(arun(small_cases[:4], f"llm:{MODEL}", api_base=srv.base_url, concurrency=4, timeout=0.3,
                                 retries=1, env_kwargs={"persona": "cooperative"}))
    assert len(batch) == 4
    failed = [r for r in batch if r["end_reason"] == "llm_error"]
    assert failed and all(r["truncated"] and not r["terminated"] for r in failed)
    assert all("timed out" in r["errors"][0] and r["errors"][0].startswith("doctor_0") for r in failed)
    assert all("totals" in r and "reward" in r["totals"] for r in batch)


def test_arun_garbage_content_is_reasked_then_noop(small_cases: list[clinic_env.Case]) -> None:
    def mostly_garbage(req: dict[str, Any]) -> str | Reply:
        system = req["messages"][0]["content"]
        if "You are the doctor" in system and "Status: segment=history; cycle=0/" in req["messages"][1]["content"]:
            return "I am not sure what to do."
        return clinic_reply(req)

    with OpenAITestServer(mostly_garbage) as srv:
        batch = asyncio.run(arun(small_cases[:1], f"llm:{MODEL}", api_base=srv.base_url, concurrency=1,
                                 env_kwargs={"persona": "cooperative"}))
    events = [e for e in batch[0]["text_events"] if e.get("outcome")]
    assert [e["outcome"] for e in events[:2]] == ["reask", "no-op"]
    illegal = [t for t in batch[0]["turns"] if "illegal" in t["reward_components"]]
    assert len(illegal) == 1 and batch[0]["end_reason"] == "final_diagnosis"


def test_arun_with_structured_doctor_matches_sync_rollout(small_cases: list[clinic_env.Case]) -> None:
    cases = small_cases[:2]
    batch = asyncio.run(arun(cases, "thorough", concurrency=2))
    sync = run_batch(cases, ["thorough"])
    assert [r["totals"] for r in batch] == [r["totals"] for r in sync]
    assert [r["turns"] for r in batch] == [r["turns"] for r in sync]


def test_vllm_policy_uses_structured_outputs_and_reads_metrics(server: OpenAITestServer) -> None:
    from clinic_env.llm import VLLMPolicy

    policy = VLLMPolicy("tiny", server.base_url, "patient", seed=1)
    params = policy.params()
    assert "response_format" not in params and "guided_json" not in params
    regex = params["structured_outputs"]["regex"]
    assert re.fullmatch(regex, '{"mode":"vague","text":"Not sure, doctor."}')
    assert not re.fullmatch(regex, '{ "mode":"vague","text":"x"}') and not re.fullmatch(regex, '{"mode":"odd","text":""}')
    assert VLLMPolicy("tiny", server.base_url, compact_json=False).params()["structured_outputs"]["json"]
    assert policy.model == "hosted_vllm/tiny" and policy.client.transport == "http"
    policy.act_text([{"role": "system", "content": "role-playing a patient"}, {"role": "user", "content": "?"}])
    assert "regex" in server.requests[-1]["structured_outputs"]
    assert policy.spec_decode().present
    batch = asyncio.run(arun(clinic_env.load_cases()[:1], "vllm:tiny",
                             api_base=server.base_url, env_kwargs={"persona": "cooperative"}))
    assert batch[0]["end_reason"] == "final_diagnosis"


def test_doctor_env_with_llm_patient_and_examiner() -> None:
    with OpenAITestServer(SCRIPTS["doctor"]) as srv:
        patient = LLMPolicy(MODEL, "patient", api_base=srv.base_url, timeout=5)
        examiner = LLMPolicy(MODEL, "examiner", api_base=srv.base_url, timeout=5)
        env = clinic_env.doctor_env(mode="text", case="card-nstemi", patient=patient, examiner=examiner)
        env.reset(seed=0)
        obs, *_ = env.step("When did it start?")
        assert "Patient: Yes, it started yesterday" in obs["transcript"]
        for reply in ("end_segment", "I21.4", "commit_differential", "troponin", "end_segment"):
            env.step(reply)
        _, _, term, _, info = env.step("I21.4")
        assert term and info["end_reason"] == "final_diagnosis"
        assert all(v is True for v in env.engine.verdicts.values())  # graded by the LLM examiner
    with OpenAITestServer(["x"], mode="down") as dead:
        patient = LLMPolicy(MODEL, "patient", api_base=dead.base_url, timeout=0.5, retries=1, backoff=0.01)
        env = clinic_env.doctor_env(mode="text", case="card-nstemi", patient=patient)
        env.reset(seed=0)
        _, _, term, trunc, info = env.step("When did it start?")
        assert trunc and not term and info["end_reason"] == "llm_error" and "patient_0" in info["errors"][0]


def test_per_item_grading_is_kept_as_an_option(server: OpenAITestServer, small_cases: list[clinic_env.Case]) -> None:
    kwargs = {"patient": f"llm:{MODEL}", "api_base": server.base_url, "timeout": 10}
    examiner = LLMPolicy(MODEL, "examiner", api_base=server.base_url, timeout=10, grading="per_item")
    batch = asyncio.run(arun(small_cases[:1], f"llm:{MODEL}", examiner=examiner, concurrency=1,
                             env_kwargs={"persona": "cooperative", "grading": "per_item"}, **kwargs))
    r = batch[0]
    verdicts = [t for t in r["turns"] if t["agent"] == "examiner_0"]
    assert r["end_reason"] == "final_diagnosis" and len(verdicts) == r["usage"]["by_agent"]["examiner_0"]["calls"] > 4
