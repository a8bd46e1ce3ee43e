"""arun_open against the loopback server: every role played by an LLM, errors, per-role servers."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest

from clinic_env.importers import import_cases
from clinic_env.open import arun_open
from clinic_env.testing.openai_server import OpenAITestServer, Reply

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
MODEL = "llm:hosted_vllm/test-model"
UNMAPPED = "an autoimmune disorder of the neuromuscular junction"


@pytest.fixture(scope="module")
def osce() -> list[Any]:
    cases, _ = import_cases(FIXTURES / "agentclinic_osce.jsonl", "agentclinic")
    return cases


def role_of(request: dict[str, Any]) -> str:
    msgs = request["messages"]
    system = str(msgs[0]["content"]) if msgs and msgs[0]["role"] == "system" else ""
    if "DIAGNOSIS READY" in system:
        return "doctor"
    if "What you know about yourself" in system:
        return "patient"
    if "RESULTS:" in system:
        return "measurement"
    if "Same disease?" in str(msgs[-1]["content"]):
        return "moderator"
    return "examiner"


def play_roles(request: dict[str, Any]) -> str:
    """One loopback 'model' that plays every role from the request's system prompt."""
    role, msgs = role_of(request), request["messages"]
    if role == "doctor":
        script = ["When did the double vision start?", "REQUEST TEST: Acetylcholine receptor antibodies",
                  "REQUEST TEST: serum zinc level", f"DIAGNOSIS READY: {UNMAPPED}"]
        turn = sum(1 for m in msgs if m["role"] == "assistant")
        return script[min(turn, len(script) - 1)]
    if role == "patient":
        return "It started about two months ago and gets worse in the evening."
    if role == "measurement":
        return "RESULTS: Serum zinc 14 umol/L."
    if role == "moderator":
        return "Yes."
    ids = re.findall(r"^([a-z]+\.[a-z0-9_]+):", str(msgs[-1]["content"]), re.M)
    return json.dumps({i: i == "sx.diplopia" or i == "sx.fatigue" for i in ids})


def test_all_llm_episode_completes_and_is_correct(osce: list[Any]) -> None:
    with OpenAITestServer(play_roles) as srv:
        batch = asyncio.run(arun_open(osce[:1], MODEL, patient=MODEL, measurement=MODEL, moderator=MODEL,
                                      examiner=MODEL, api_base=srv.base_url, protocol="agentclinic",
                                      timeout=10, retries=0))
        requests = list(srv.requests)
    (rec,) = batch
    assert rec.end_reason == "diagnosis" and rec.mode == "open"
    assert rec.diagnosis_correct is True and rec.verdict == {"method": "moderator", "detail": "moderator said 'Yes.'"}
    assert rec.diagnosis_text == UNMAPPED and rec.diagnosis_code is None
    assert rec.coverage is not None and rec.coverage["method"] == "examiner"
    assert rec.coverage["elicited"] == ["sx.fatigue"]  # sx.diplopia is the presenting complaint
    roles = rec.usage["by_agent"]
    assert set(roles) == {"doctor", "patient", "measurement", "moderator", "examiner"}
    assert roles["doctor"]["calls"] == 4 and roles["measurement"]["calls"] == 1
    contents = [m["content"] for m in rec.messages]
    assert any("Positive (elevated titre)" in c for c in contents)  # the case's own result
    assert any("Serum zinc 14" in c for c in contents)  # the measurement LLM for what the case lacks
    patient_prompts = [r for r in requests if role_of(r) == "patient"]
    assert patient_prompts and all("myasthenia" not in json.dumps(r).lower() for r in patient_prompts)
    assert batch.usage is not None and batch.usage["calls"] == sum(int(v["calls"]) for v in roles.values())


def test_erring_server_ends_only_that_episode(osce: list[Any]) -> None:
    def reply(request: dict[str, Any]) -> str | Reply:
        if role_of(request) == "patient" and "librarian" in str(request["messages"][0]["content"]):
            return Reply(mode="error")
        return play_roles(request)

    with OpenAITestServer(reply) as srv:
        batch = asyncio.run(arun_open(osce[:2], MODEL, patient=MODEL, api_base=srv.base_url, timeout=5,
                                      retries=0, concurrency=2))
    first, second = batch
    assert first.end_reason == "llm_error" and first.truncated and first.errors
    assert first.errors[0].startswith("patient:")
    assert second.end_reason == "diagnosis" and not second.errors


def test_per_role_servers_and_scripted_defaults(osce: list[Any]) -> None:
    with OpenAITestServer(play_roles) as doc_srv, OpenAITestServer(play_roles) as other:
        batch = asyncio.run(arun_open(osce[:1], MODEL, patient=MODEL,
                                      api_base={"doctor": doc_srv.base_url, "default": other.base_url},
                                      timeout=10, retries=0))
        doc_roles = {role_of(r) for r in doc_srv.requests}
        other_roles = {role_of(r) for r in other.requests}
    assert doc_roles == {"doctor"} and other_roles == {"patient"}
    (rec,) = batch
    # No moderator: the unmapped words give verdict 'unmapped', not correct; coverage by the parser.
    assert rec.verdict is not None and rec.verdict["method"] == "unmapped" and rec.diagnosis_correct is False
    assert rec.coverage is not None and rec.coverage["method"] == "parser"


def test_scripted_batch_is_deterministic_and_grouped(osce: list[Any]) -> None:
    def run() -> list[dict[str, Any]]:
        batch = asyncio.run(arun_open(osce, "open-oracle", episodes_per_case=1, group_size=2, seed=7,
                                      concurrency=3))
        return [{k: v for k, v in r.model_dump().items() if k not in ("wall_s", "usage")} for r in batch]

    a, b = run(), run()
    assert a == b and len(a) == 2 * len(osce)
    assert all(r["diagnosis_correct"] for r in a)
    assert a[0]["group"] == a[1]["group"] and [a[0]["group_index"], a[1]["group_index"]] == [0, 1]


def test_bad_role_spec_is_a_clear_error(osce: list[Any]) -> None:
    with pytest.raises(ValueError, match="patient='oracle'"):
        asyncio.run(arun_open(osce, "open-oracle", patient="oracle"))


def test_policy_objects_records_round_trip_and_broken_policies(osce: list[Any]) -> None:
    from clinic_env.records import EpisodeRecord

    class Patient:
        def act(self, observation: dict[str, Any], agent: str) -> str:
            assert observation["task"] == "answer" and agent == "patient"
            return "It started two months ago."

    class Broken:
        async def aact(self, observation: dict[str, Any], agent: str) -> str:
            raise RuntimeError("policy bug")

    batch = asyncio.run(arun_open(osce[:1], "open-oracle", patient=Patient(), doctor_name="oracle"))
    (rec,) = batch
    assert rec.doctor == "oracle" and rec.diagnosis_correct is True
    assert any(m["name"] == "patient" for m in rec.messages or [])
    assert EpisodeRecord.model_validate_json(rec.to_json()) == rec
    (bad,) = asyncio.run(arun_open(osce[:1], Broken()))
    assert bad.end_reason == "error" and bad.mode == "open" and "policy bug" in bad.errors[0]
