"""Token-level data: the loopback server returns vLLM's fields when asked, the client keeps them,
and token-recording rollouts store each doctor call with its prompt, completion and tokens."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import clinic_env
from clinic_env.llm.client import ChatClient, Completion, token_fields
from clinic_env.llm.policy import LLMPolicy
from clinic_env.records import EpisodeRecord
from clinic_env.rollout_async import arun
from clinic_env.testing.openai_server import (
    OpenAITestServer,
    toy_logprob,
    toy_prompt,
    toy_token_id,
    toy_tokens,
)
from clinic_env.testing.scripted import clinic_reply

MODEL = "hosted_vllm/test"
MESSAGES = [{"role": "system", "content": "You are a test."}, {"role": "user", "content": "Say hi."}]


def _complete(server: OpenAITestServer, **params: Any) -> Completion:
    client = ChatClient(MODEL, server.base_url, retries=0)

    async def go() -> Completion:
        try:
            return await client.complete(MESSAGES, **params)
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_server_returns_token_fields_only_when_asked() -> None:
    with OpenAITestServer(["hello there, doctor"]) as srv:
        plain = _complete(srv)
        full = _complete(srv, logprobs=True, return_token_ids=True)
        as_ids = _complete(srv, logprobs=True, return_tokens_as_token_ids=True)
    assert plain.prompt_token_ids is None and plain.token_ids == () and plain.logprobs == ()
    tokens = toy_tokens("hello there, doctor")
    assert full.prompt_token_ids == tuple(toy_token_id(t) for t in toy_tokens(toy_prompt(MESSAGES)))
    assert full.token_ids == (tuple(toy_token_id(t) for t in tokens),)
    assert full.logprobs == (tuple(toy_logprob(i, t) for i, t in enumerate(tokens)),)
    # Without token_ids, "token_id:N" tokens stand in for them.
    assert as_ids.token_ids == full.token_ids and as_ids.prompt_token_ids is None


def test_token_fields_reads_vllm_shapes() -> None:
    body = {"prompt_token_ids": [1, 2, 3]}
    choice = {"token_ids": [7, 8], "logprobs": {"content": [{"token": "a", "logprob": -0.5},
                                                           {"token": "b", "logprob": -1}]}}
    assert token_fields(body, choice) == ((1, 2, 3), (7, 8), (-0.5, -1.0))
    ids = {"logprobs": {"content": [{"token": "token_id:12", "logprob": -0.1}]}}
    assert token_fields({}, ids) == (None, (12,), (-0.1,))
    # Malformed fields count as absent.
    bad = {"token_ids": ["x"], "logprobs": {"content": [{"token": "a", "logprob": "high"}]}}
    assert token_fields({"prompt_token_ids": "1 2"}, bad) == (None, None, None)


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                     max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(body=st.dictionaries(st.sampled_from(["prompt_token_ids", "x"]), _json, max_size=2),
       choice=st.dictionaries(st.sampled_from(["token_ids", "logprobs", "prompt_token_ids"]), _json, max_size=3))
def test_token_fields_never_raises(body: dict[str, Any], choice: dict[str, Any]) -> None:
    prompt, ids, logprobs = token_fields(body, choice)
    for seq, kind in ((prompt, int), (ids, int), (logprobs, float)):
        assert seq is None or all(isinstance(v, kind) for v in seq)


def test_record_tokens_keeps_every_doctor_call(small_cases: list[clinic_env.Case]) -> None:
    with OpenAITestServer(clinic_reply) as srv:
        batch = asyncio.run(arun(small_cases[:1], f"llm:{MODEL}", api_base=srv.base_url, group_size=2,
                                 record_tokens=True))
        plain = asyncio.run(arun(small_cases[:1], f"llm:{MODEL}", api_base=srv.base_url))
    record = batch[0]
    calls = record.doctor_calls
    assert calls and plain[0].doctor_calls is None
    doctor_turns = [t for t in record.turns if t.agent == "doctor_0"]
    assert all(t.llm_call is not None for t in doctor_turns)
    assert sum(c.n_turns for c in calls) == len(doctor_turns)
    # The doctor's reward is split over its calls without loss.
    assert abs(sum(c.reward for c in calls) - record.totals["reward"]) < 1e-9
    for call in calls:
        tokens = toy_tokens(call.completion)
        assert call.completion_token_ids == [toy_token_id(t) for t in tokens]
        assert call.completion_logprobs == [toy_logprob(i, t) for i, t in enumerate(tokens)]
        assert call.prompt_token_ids == [toy_token_id(t) for t in toy_tokens(toy_prompt(call.messages))]
        assert call.messages[0]["role"] == "system"
        json.loads(call.completion)
    assert calls[0].segment == "history" and calls[-1].segment == "diagnosis"
    # The record survives a JSON round trip.
    again = EpisodeRecord.model_validate_json(record.to_json())
    assert again.doctor_calls == calls


def test_reasked_reply_is_a_call_without_turns(small_cases: list[clinic_env.Case]) -> None:
    def first_garbage(req: dict[str, Any]) -> str:
        user = req["messages"][-1]["content"]
        if "You are the doctor" in req["messages"][0]["content"] and "cycle=0/" in user and "Note" not in user:
            return "I am not sure what to do."
        return clinic_reply(req)

    with OpenAITestServer(first_garbage) as srv:
        policy = LLMPolicy(MODEL, "doctor", api_base=srv.base_url, token_data=True)
        batch = asyncio.run(arun(small_cases[:1], policy, api_base=srv.base_url, record_tokens=True))
    calls = batch[0].doctor_calls
    assert calls is not None
    assert calls[0].reask and calls[0].n_turns == 0 and calls[0].reward < 0
    assert calls[1].reask is None and calls[1].n_turns == 1 and calls[1].first_turn == calls[0].first_turn
    assert calls[0].completion_token_ids == [toy_token_id(t) for t in toy_tokens("I am not sure what to do.")]
