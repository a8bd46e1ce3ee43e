"""An async agent loop over the text-mode doctor env, for verl / OpenRLHF-style trainers.

:class:`ClinicAgentLoop` is the trainer-neutral core: ``await reset(case_id, seed)`` returns the
doctor's first chat messages and ``await step(reply)`` plays the model's reply (the built-in
patient and examiner answer in between) and returns the next messages, the reward and ``done``.
It records every call, so :meth:`ClinicAgentLoop.record` hands the episode to
:func:`clinic_env.integrations.handoff.export` for SPAR / GRPO / no-std advantages.

:func:`run_group` plays G episodes of one case and seed concurrently against any async
``generate(messages, member) -> str | Completion`` (e.g. :func:`openai_generate` on a vLLM server),
which is how verl's ``AgentLoopBase.run`` or OpenRLHF's agent executor drive it: see
docs/TRAINERS.md for the two config snippets. :class:`OpenRLHFAgent` maps the loop onto
OpenRLHF's ``AgentInstanceBase`` shape (``reset(states)`` / ``step(states)`` with observation
text, rewards, scores, environment feedback and done). Neither framework is imported here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

from clinic_env.core.engine import SEGMENTS
from clinic_env.envs.aec import ConsultationEnv
from clinic_env.envs.text import TextDoctorEnv
from clinic_env.llm.client import ChatClient, Completion
from clinic_env.records import EpisodeRecord, LLMCall
from clinic_env.rollout import episode_record
from clinic_env.rollout_async import _link_turns, _shared_kwargs
from clinic_env.schema.case import Case
from clinic_env.schema.loading import load_cases

__all__ = ["ClinicAgentLoop", "Generate", "OpenRLHFAgent", "openai_generate", "run_group"]

#: An async policy: ``generate(messages, member)`` -> the reply text, or a Completion with token data.
Generate = Callable[[list[dict[str, str]], int], Awaitable["str | Completion"]]


class ClinicAgentLoop:
    """One text-mode consultation driven step by step (see the module docstring).

    Args:
        cases: The cases (objects, a path, or None for the bundled library).
        env_kwargs: Extra :class:`~clinic_env.envs.text.TextDoctorEnv` arguments (persona,
            max_cycles, reward_config, ...).
        shared: Already-loaded env arguments (from another loop) to build faster.
    """

    def __init__(self, cases: Sequence[Case] | str | None = None, env_kwargs: dict[str, Any] | None = None,
                 shared: dict[str, Any] | None = None) -> None:
        if shared is None:
            library = load_cases(cases) if cases is None or isinstance(cases, str) else list(cases)
            shared = _shared_kwargs(library, env_kwargs or {})
        self.shared = shared
        self.env = TextDoctorEnv(**shared)
        self.calls: list[LLMCall] = []
        self.total = 0.0
        self.seed = 0
        self.done = True

    async def reset(self, case_id: str | None = None, seed: int = 0) -> dict[str, Any]:
        """Start an episode; returns ``{"messages", "case_id", "done": False}``."""
        options = {"case_id": case_id} if case_id is not None else None
        obs, info = self.env.reset(seed=seed, options=options)
        self.calls, self.total, self.seed, self.done = [], 0.0, seed, False
        return {"messages": list(obs["messages"]), "case_id": info["case_id"], "done": False}

    async def step(self, reply: str | Completion) -> dict[str, Any]:
        """Play the doctor's reply; returns ``{"messages", "reward", "done", "info"}``.

        Raises:
            RuntimeError: The episode has ended (call :meth:`reset`).
        """
        if self.done:
            raise RuntimeError("step() after the episode ended; call reset()")
        done_c = reply if isinstance(reply, Completion) else None
        text = done_c.text if done_c is not None else str(reply)
        eng = self.env.engine
        messages, first, segment = self.env.messages(), len(eng.turns), SEGMENTS[min(eng.segment, 3)]
        obs, reward, terminated, truncated, info = self.env.step(text)
        ids = done_c.token_ids[0] if done_c is not None and done_c.token_ids else None
        lps = done_c.logprobs[0] if done_c is not None and done_c.logprobs else None
        prompt = done_c.prompt_token_ids if done_c is not None else None
        self.calls.append(LLMCall(
            messages=messages, completion=text, segment=segment, first_turn=first, reask=info.get("reask"),
            reward=float(reward), prompt_token_ids=list(prompt) if prompt is not None else None,
            completion_token_ids=list(ids) if ids is not None else None,
            completion_logprobs=list(lps) if lps is not None else None))
        self.total += float(reward)
        self.done = bool(terminated or truncated)
        small = {k: info[k] for k in ("segment", "reask", "actions", "end_reason") if k in info}
        return {"messages": list(obs["messages"]), "reward": float(reward), "done": self.done, "info": small}

    def record(self, doctor: str = "agent-loop", member: int = 0) -> EpisodeRecord:
        """The episode's record, with ``doctor_calls`` (for the hand-off export)."""
        env = cast(ConsultationEnv, self.env)  # episode_record reads engine and setup only
        case = self.env.engine.case
        assert case is not None
        rec = episode_record(env, self.seed, doctor, {"doctor_0": self.total, "patient_0": 0.0, "examiner_0": 0.0}, [])
        rec.update(group=f"{case.id}:{self.seed}", group_index=member)
        calls = [c.model_copy() for c in self.calls]
        _link_turns(rec, calls)
        rec.doctor_calls = calls
        return rec


async def run_group(generate: Generate, case_id: str, seed: int = 0, group_size: int = 4, *,
                    cases: Sequence[Case] | str | None = None, env_kwargs: dict[str, Any] | None = None,
                    max_steps: int = 200) -> list[EpisodeRecord]:
    """Play ``group_size`` episodes of one case and seed concurrently; returns their records.

    Args:
        generate: The policy (see :data:`Generate`); ``member`` lets it vary its sampling seed.
        case_id: The case.
        seed: The episode seed (same persona and patient noise for every member).
        group_size: G.
        cases, env_kwargs: As :class:`ClinicAgentLoop`.
        max_steps: A safety cap on doctor replies per episode (the env truncates well before).
    """
    first = ClinicAgentLoop(cases, env_kwargs)
    loops = [first] + [ClinicAgentLoop(shared=first.shared) for _ in range(group_size - 1)]

    async def play(member: int, loop: ClinicAgentLoop) -> EpisodeRecord:
        out = await loop.reset(case_id, seed)
        for _ in range(max_steps):
            if out["done"]:
                break
            out = await loop.step(await generate(out["messages"], member))
        return loop.record(member=member)

    return list(await asyncio.gather(*(play(m, lp) for m, lp in enumerate(loops))))


def openai_generate(client: ChatClient, temperature: float = 1.0, seed: int = 0, max_tokens: int = 256,
                    token_data: bool = True) -> Generate:
    """A :data:`Generate` over an OpenAI-compatible server (member m samples with seed ``seed + m``)."""
    async def generate(messages: list[dict[str, str]], member: int) -> str | Completion:
        params: dict[str, Any] = {"temperature": temperature, "seed": seed + member, "max_tokens": max_tokens}
        if token_data:
            params.update(logprobs=True, return_token_ids=True)
        return await client.complete(messages, agent="doctor_0", **params)

    return generate


class OpenRLHFAgent:
    """OpenRLHF's agent-instance shape over :class:`ClinicAgentLoop`.

    ``states["label"]`` carries ``{"case_id": ..., "seed": ...}`` as JSON (the dataset's label
    column). ``render(messages)`` turns chat messages into the text appended to the context (give
    it the tokenizer's chat template); by default each message becomes ``<|role|>\\ncontent\\n``.
    """

    def __init__(self, loop: ClinicAgentLoop | None = None,
                 render: Callable[[list[dict[str, str]]], str] | None = None) -> None:
        self.loop = loop or ClinicAgentLoop()
        self.render = render or (lambda ms: "".join(f"<|{m['role']}|>\n{m['content']}\n" for m in ms)
                                 + "<|assistant|>\n")

    async def reset(self, states: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Start the episode named by ``states["label"]``; returns ``{"observation": text}``."""
        label = json.loads(states.get("label") or "{}")
        out = await self.loop.reset(label.get("case_id"), int(label.get("seed", 0)))
        return {"observation": self.render(out["messages"])}

    async def step(self, states: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Play ``states["action_text"]``; returns rewards, scores, environment feedback and done."""
        out = await self.loop.step(str(states.get("action_text", "")))
        feedback = "" if out["done"] else self.render(out["messages"][-1:])
        return {"rewards": out["reward"], "scores": self.loop.total, "environment_feedback": feedback,
                "done": out["done"], "sampling_params": states.get("sampling_params"),
                "extra_logs": {"segment": out["info"].get("segment"), "reask": bool(out["info"].get("reask"))}}
