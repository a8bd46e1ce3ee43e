"""LLM policies for the text-mode envs: any litellm provider, or a self-hosted OpenAI-compatible server.

:class:`LLMPolicy` plays one role (doctor, patient or examiner) from the ``"messages"`` of a
text-mode observation and returns the model's reply as text; the env parses it. It sends the
role's JSON schema as ``response_format`` (``structured_output=True``), samples with the given
temperature / seed / n (with ``n > 1`` the env tries the candidates in order and keeps the first
that parses), and counts token usage and latency into the episode being played (see
:func:`clinic_env.llm.client.track_usage`; :func:`clinic_env.rollout.arun` records it).

The LLM patient's replies pass through the leak guard inside the env. The LLM examiner grades
every pending rubric item of a segment in one call by default (the env's ``grading="batch"``;
reply ``{"grades": [{"id", "verdict"}]}``, ~4 calls per episode); with ``grading="per_item"`` (on
the env, and here for the reply schema) it grades the one item at the head of its queue per call
(HealthBench grader prompt, ``criteria_met``).
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

from clinic_env.llm.client import ChatClient, Completion
from clinic_env.text.render import GRADINGS, response_format
from clinic_env.text.schema import legal_doctor_schema

__all__ = ["ROLES", "LLMPolicy", "sampling_offset"]

ROLES = ("doctor", "patient", "examiner")
_ROLE_INDEX = {r: i for i, r in enumerate(ROLES)}
_MAX_TOKENS = {"doctor": 256, "patient": 200, "examiner": 400}
# A batch grade is ~14 tokens per rubric item: room for 60 items.
_BATCH_EXAMINER_TOKENS = 1024

#: Per-episode offset added to the policy's seed, so that the G rollouts of a group differ.
_SAMPLING_OFFSET: contextvars.ContextVar[int] = contextvars.ContextVar("clinic_env_sampling_offset", default=0)


def sampling_offset(offset: int) -> contextvars.Token[int]:
    """Set the seed offset of the calls made by the current task (the rollout sets it per episode)."""
    return _SAMPLING_OFFSET.set(offset)


class LLMPolicy:
    """An LLM playing one role of the text-mode env.

    Args:
        model: litellm model string (``openai/gpt-4o-mini``, ``anthropic/claude-...``,
            ``hosted_vllm/NAME`` for a vLLM server) or a served model name with ``api_base``.
        role: ``doctor``, ``patient`` or ``examiner`` (picks the reply schema).
        api_base: Server URL, e.g. ``http://127.0.0.1:8000/v1``.
        api_key: Key; by default read from ``api_key_env`` or the provider's usual variable.
        api_key_env: Environment variable with the key (e.g. ``OPENAI_API_KEY``).
        temperature: Sampling temperature.
        seed: Sampling seed (offset per episode by the rollout); None sends none.
        n: Candidates per call.
        max_tokens: Longest reply (default per role).
        timeout: Seconds per attempt.
        retries: Retries after a failed attempt (exponential backoff from ``backoff`` seconds).
        backoff: First retry delay in seconds.
        concurrency: Most calls in flight at once for this policy.
        structured_output: Send the role's JSON schema as ``response_format``.
        transport: ``auto``, ``http`` or ``litellm`` (see :mod:`clinic_env.llm.client`).
        extra_body: Extra request fields (e.g. vLLM's ``{"top_k": 20}``).
        client: A :class:`ChatClient` to share between policies (then the connection settings
            above are ignored).
        info: The env's :class:`~clinic_env.envs.setup.EnvInfo`. With it, a doctor's schema lists
            only the actions and ids legal now (from the observation's mask), so servers with
            grammar-constrained decoding can only produce legal replies.
        grading: The examiner's reply schema: ``"batch"`` (all pending items in one reply, the
            text envs' default) or ``"per_item"`` (HealthBench ``criteria_met``); set the env's
            ``grading`` to match.
        token_data: Ask for token-level data (``logprobs: true`` and vLLM's ``return_token_ids:
            true``) so that rollouts can hand prompt/completion token ids and logprobs to a trainer.
            Servers that reject unknown fields (OpenAI's own API) answer 400: leave it off there.
    """

    text_policy = True

    def __init__(self, model: str, role: str = "doctor", *, api_base: str | None = None, api_key: str | None = None,
                 api_key_env: str | None = None, temperature: float = 0.0, seed: int | None = None, n: int = 1,
                 max_tokens: int | None = None, timeout: float = 60.0, retries: int = 2, backoff: float = 0.5,
                 concurrency: int = 64, structured_output: bool = True, transport: str = "auto",
                 extra_body: dict[str, Any] | None = None, client: ChatClient | None = None,
                 info: Any = None, token_data: bool = False, grading: str = "batch") -> None:
        if role not in _ROLE_INDEX:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        if grading not in GRADINGS:
            raise ValueError(f"grading must be one of {GRADINGS}, got {grading!r}")
        self.grading = grading
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self.role, self.temperature, self.seed, self.n = role, temperature, seed, n
        batch = role == "examiner" and grading == "batch"
        self.max_tokens = max_tokens or (_BATCH_EXAMINER_TOKENS if batch else _MAX_TOKENS[role])
        self.structured_output = structured_output
        self.info = info
        self.extra_body = dict(extra_body or {})
        self.token_data = token_data
        self.client = client or ChatClient(model, api_base, api_key, api_key_env, timeout, retries, backoff,
                                           concurrency, transport)
        self.last: Completion | None = None

    @property
    def model(self) -> str:
        """The model string."""
        return self.client.model

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.model!r}, role={self.role!r}, transport={self.client.transport!r})"

    def reset(self, seed: int | None = None) -> None:
        """Nothing to forget: the policy is stateless between calls (the messages carry the history)."""

    def params(self, mask: Any = None) -> dict[str, Any]:
        """The sampling parameters of the next call (``mask``: the doctor's action mask, see ``info``)."""
        params: dict[str, Any] = {"temperature": self.temperature, "max_tokens": self.max_tokens}
        if self.n > 1:
            params["n"] = self.n
        if self.seed is not None:
            params["seed"] = self.seed + _SAMPLING_OFFSET.get()
        if self.structured_output and self.role == "doctor" and self.info is not None and mask is not None:
            schema = legal_doctor_schema(self.info.table, mask)
            params["response_format"] = {"type": "json_schema",
                                         "json_schema": {"name": "doctor_action", "schema": schema, "strict": True}}
        elif self.structured_output:
            params["response_format"] = response_format(_ROLE_INDEX[self.role], self.grading)
        if self.token_data:
            params["logprobs"] = True
            params["return_token_ids"] = True
        params.update(self.extra_body)
        return params

    async def aact_text(self, messages: list[dict[str, str]], agent: str = "", mask: Any = None) -> str | list[str]:
        """The reply to chat ``messages`` (a list of candidates when ``n > 1``).

        Raises:
            clinic_env.llm.client.LLMCallError: When the server gives no usable answer after retries.
        """
        out = await self.client.complete(list(messages), agent=agent or self.role, **self.params(mask))
        self.last = out
        return list(out.texts) if self.n > 1 else out.text

    async def aact(self, observation: dict[str, Any], agent: str) -> str | list[str]:
        """The reply to a text-mode observation (its ``"messages"``)."""
        return await self.aact_text(observation["messages"], agent, observation.get("action_mask"))

    def act_text(self, messages: list[dict[str, str]], agent: str = "", mask: Any = None) -> str | list[str]:
        """Blocking form of :meth:`aact_text` (not from inside a running event loop)."""
        async def once() -> str | list[str]:
            try:
                return await self.aact_text(messages, agent, mask)
            finally:
                await self.client.aclose()

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(once())
        raise RuntimeError("act()/act_text() block; inside an event loop use `await policy.aact(...)`")

    def act(self, observation: dict[str, Any], agent: str) -> str | list[str]:
        """Blocking form of :meth:`aact`."""
        return self.act_text(observation["messages"], agent, observation.get("action_mask"))
