"""The verifiers environment (environments/clinic_env_verifiers): it loads through verifiers' own
loader, and its ``run`` plays episodes against the loopback server.

verifiers runs an agent through a harness program in a runtime (a uv-managed script in a
subprocess, Docker or a Prime sandbox), which cannot be set up offline; the episodes here are
driven through an in-process agent that keeps verifiers' interaction contract (``turn(message)``
-> ``vf.Segment``; rewards on ``trace``), each reply coming from the loopback server.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from clinic_env.llm.client import ChatClient
from clinic_env.testing.openai_server import OpenAITestServer

_HAVE = importlib.util.find_spec("verifiers") is not None and importlib.util.find_spec("clinic_env_verifiers") is not None
if not _HAVE and os.environ.get("CLINIC_ENV_REQUIRE_TRAINERS") != "1":
    pytest.skip("verifiers / clinic_env_verifiers not installed (make test-trainers)", allow_module_level=True)

import verifiers.v1 as vf  # noqa: E402
from clinic_env_verifiers import ClinicEnv, ClinicEnvConfig, ClinicTaskset  # noqa: E402

ID = "clinic-env-verifiers"


class _Trace:
    def __init__(self) -> None:
        self.rewards: dict[str, tuple[float, float]] = {}
        self.info: dict[str, Any] = {}

    def record_reward(self, name: str, value: float, weight: float = 1.0) -> None:
        self.rewards[name] = (float(value), float(weight))


class _Interaction:
    """verifiers' Interaction contract over a chat conversation with the loopback server."""

    def __init__(self, client: ChatClient, task: Any) -> None:
        self.client, self.trace = client, _Trace()
        self.messages = [{"role": "system", "content": task.data.system_prompt},
                         {"role": "user", "content": task.data.prompt}]
        self.turns = 0

    async def turn(self, message: str | None = None) -> vf.Segment:
        if message is not None:
            self.messages.append({"role": "user", "content": message})
        # The scripted doctor reads the system listing and the latest Status line.
        system = next(m["content"] for m in reversed(self.messages) if m["content"].startswith("You are the doctor"))
        out = await self.client.complete([{"role": "system", "content": system}, self.messages[-1]])
        self.messages.append({"role": "assistant", "content": out.text})
        self.turns += 1
        return vf.Segment(messages=[], root_reply=out.text)


class _Agent:
    def __init__(self, client: ChatClient) -> None:
        self.client = client
        self.interactions: list[_Interaction] = []

    @asynccontextmanager
    async def interaction(self, task: Any) -> AsyncIterator[_Interaction]:
        it = _Interaction(self.client, task)
        self.interactions.append(it)
        yield it


class _Agents:
    def __init__(self, doctor: _Agent) -> None:
        self.doctor = doctor


def test_loads_through_verifiers() -> None:
    env = vf.load_environment(ClinicEnvConfig(taskset={"id": ID, "split": "bundled-v1:test", "seeds": [0, 1]}))
    assert isinstance(env, ClinicEnv) and isinstance(env.taskset, ClinicTaskset)
    tasks = list(env.taskset.take(4))
    assert [t.data.info["seed"] for t in tasks] == [0, 1, 0, 1]
    assert tasks[0].data.info["case_id"] == tasks[1].data.info["case_id"]
    assert "Status: segment=history" in str(tasks[0].data.prompt)
    assert str(tasks[0].data.system_prompt).startswith("You are the doctor")


def test_evaluates_episodes_against_the_loopback_server() -> None:
    env = vf.load_environment(ClinicEnvConfig(taskset={"id": ID, "split": "bundled-v1:test"}))
    tasks = list(env.taskset.take(3))
    from clinic_env.testing.scripted import clinic_reply

    with OpenAITestServer(clinic_reply) as srv:
        client = ChatClient("hosted_vllm/test", srv.base_url, retries=0)
        agent = _Agent(client)

        async def go() -> None:
            try:
                for task in tasks:
                    await env.run(task, _Agents(agent))
            finally:
                await client.aclose()

        asyncio.run(go())
    assert len(agent.interactions) == 3
    for it in agent.interactions:
        reward, weight = it.trace.rewards["clinic_reward"]
        assert weight == 1.0 and reward != 0
        assert {n for n, (_, w) in it.trace.rewards.items() if w == 0} == {
            "history", "differential", "tests", "diagnosis", "rubric"}
        assert it.trace.info["end_reason"] == "final_diagnosis" and it.trace.info["final_diagnosis"]
        assert it.turns >= 5  # history, end, differential, commit, tests, diagnosis
