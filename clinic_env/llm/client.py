"""Chat-completion calls with timeouts, retries with backoff, a concurrency bound and usage records.

Two transports share one interface (:meth:`ChatClient.complete`):

- ``litellm``: ``litellm.acompletion`` — any provider litellm knows (``openai/...``,
  ``anthropic/...``, ``hosted_vllm/...``), keys from the provider's usual environment variables;
- ``http``: a lean keep-alive HTTP/1.1 client (:mod:`clinic_env.llm.http`) for OpenAI-compatible
  servers (vLLM, SGLang, the loopback test server). litellm spends ~2-5 ms of CPU per call on
  logging and cost bookkeeping, which caps a rollout process at a few hundred calls/s; this path
  spends a small fraction of a millisecond.

``transport="auto"`` (the default) uses ``http`` when an ``api_base`` is given and the model is a
self-hosted OpenAI-compatible one (no provider prefix, ``hosted_vllm/``, ``openai/``, ``sglang/``),
and litellm otherwise. Failed calls (timeouts, connection errors, HTTP 5xx/429, bodies that are
not a chat completion, broken HTTP of any kind) are retried ``retries`` times with exponential
backoff, then raise :class:`LLMCallError` with a redacted message; the rollout ends that episode as
truncated (``llm_error``) and records the error. Each attempt has one total deadline (``timeout``)
and a bounded body (:mod:`clinic_env.llm.http`). When many calls in a row have failed the client
fails the next ones at once for a while (``fail_fast_after``), so a dead server ends a batch fast.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import json
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from clinic_env.llm.http import HTTPPool, deadline
from clinic_env.llm.redact import redact, redact_url, register_credentials

__all__ = ["CallRecord", "ChatClient", "Completion", "LLMCallError", "Usage", "current_usage", "token_fields",
           "track_calls", "track_usage"]

_SELF_HOSTED = ("hosted_vllm/", "openai/", "sglang/")
_OPENAI_PARAMS = frozenset({
    "temperature", "max_tokens", "max_completion_tokens", "n", "seed", "response_format", "top_p", "stop",
    "logprobs", "top_logprobs", "presence_penalty", "frequency_penalty", "tools", "tool_choice", "user",
    "extra_body", "logit_bias",
})


class LLMCallError(RuntimeError):
    """An LLM call failed after every retry (the message says why and after how many attempts)."""


@dataclass
class Usage:
    """Token usage and latency of the calls made while it was current (see :func:`track_usage`)."""

    calls: int = 0
    failed_attempts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    by_agent: dict[str, dict[str, float]] = field(default_factory=dict)

    def add(self, agent: str, completion: Completion) -> None:
        """Count one successful call made for ``agent``."""
        self.calls += 1
        self.prompt_tokens += completion.prompt_tokens
        self.completion_tokens += completion.completion_tokens
        self.latency_s += completion.latency_s
        row = self.by_agent.setdefault(agent, {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "latency_s": 0.0})
        row["calls"] += 1
        row["prompt_tokens"] += completion.prompt_tokens
        row["completion_tokens"] += completion.completion_tokens
        row["latency_s"] += completion.latency_s

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (for episode records)."""
        return {
            "calls": self.calls, "failed_attempts": self.failed_attempts, "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens, "latency_s": round(self.latency_s, 4),
            "mean_latency_ms": round(1000 * self.latency_s / self.calls, 2) if self.calls else None,
            "by_agent": {k: {kk: round(v, 4) for kk, v in row.items()} for k, row in self.by_agent.items()},
        }


_USAGE: contextvars.ContextVar[Usage | None] = contextvars.ContextVar("clinic_env_llm_usage", default=None)


def track_usage(usage: Usage) -> contextvars.Token[Usage | None]:
    """Make ``usage`` collect the calls of the current task (asyncio tasks copy the context)."""
    return _USAGE.set(usage)


def current_usage() -> Usage | None:
    """The usage record of the current task, if any."""
    return _USAGE.get()


#: One recorded call: (agent, the messages sent, the completion).
CallRecord = tuple[str, list[dict[str, str]], "Completion"]
_CALLS: contextvars.ContextVar[list[CallRecord] | None] = contextvars.ContextVar("clinic_env_llm_calls", default=None)


def track_calls(sink: list[CallRecord] | None) -> contextvars.Token[list[CallRecord] | None]:
    """Append every successful call of the current task to ``sink`` (None stops recording).

    Rollouts that hand episodes to a trainer use it to keep each doctor call's prompt, completion
    and token data (:func:`clinic_env.rollout_async.arun` with ``record_tokens=True``).
    """
    return _CALLS.set(sink)


@dataclass(frozen=True)
class Completion:
    """One call's result: the choices' texts, token counts and wall-clock latency.

    Token-level fields are filled when the server returns them (vLLM with ``return_token_ids``
    and ``logprobs``; see :func:`token_fields`): ``prompt_token_ids`` of the rendered prompt and,
    per choice, the completion's ``token_ids`` and sampled-token ``logprobs`` (None for a choice
    without them). Trainers' ``rollout_func`` hooks need exactly these.
    """

    texts: tuple[str, ...]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    attempts: int = 1
    prompt_token_ids: tuple[int, ...] | None = None
    token_ids: tuple[tuple[int, ...] | None, ...] = ()
    logprobs: tuple[tuple[float, ...] | None, ...] = ()

    @property
    def text(self) -> str:
        """The first choice's text."""
        return self.texts[0] if self.texts else ""


def _int_list(value: Any) -> tuple[int, ...] | None:
    if isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return tuple(value)
    return None


def token_fields(body: dict[str, Any], choice: dict[str, Any]) -> tuple[tuple[int, ...] | None,
                                                                         tuple[int, ...] | None,
                                                                         tuple[float, ...] | None]:
    """``(prompt_token_ids, completion token ids, completion logprobs)`` of one choice, where present.

    vLLM (>= 0.10.2) answers ``return_token_ids: true`` with ``prompt_token_ids`` at the top level
    and ``token_ids`` on each choice; ``logprobs: true`` gives ``choice.logprobs.content[i].logprob``
    (OpenAI's shape). With ``return_tokens_as_token_ids`` each ``token`` reads ``"token_id:N"``,
    which stands in for missing ``token_ids``. Malformed fields count as absent.
    """
    prompt = _int_list(body.get("prompt_token_ids")) or _int_list(choice.get("prompt_token_ids"))
    ids = _int_list(choice.get("token_ids"))
    logprobs: tuple[float, ...] | None = None
    lp = choice.get("logprobs")
    content = lp.get("content") if isinstance(lp, dict) else None
    if isinstance(content, list) and all(isinstance(t, dict) for t in content):
        values = [t.get("logprob") for t in content]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            logprobs = tuple(float(v) for v in values)
        if ids is None:
            tokens = [str(t.get("token", "")) for t in content]
            if tokens and all(t.startswith("token_id:") and t[9:].isdigit() for t in tokens):
                ids = tuple(int(t[9:]) for t in tokens)
    return prompt, ids, logprobs


class _Retryable(Exception):
    pass


def _parse_body(body: Any) -> Completion:
    if not isinstance(body, dict) or not isinstance(body.get("choices"), list) or not body["choices"]:
        raise _Retryable(f"not a chat completion: {str(body)[:120]!r}")
    texts = []
    prompt_ids: tuple[int, ...] | None = None
    ids: list[tuple[int, ...] | None] = []
    logprobs: list[tuple[float, ...] | None] = []
    for choice in body["choices"]:
        msg = choice.get("message") if isinstance(choice, dict) else None
        content = msg.get("content") if isinstance(msg, dict) else None
        texts.append(content if isinstance(content, str) else "")
        p, t, lp = token_fields(body, choice) if isinstance(choice, dict) else (None, None, None)
        prompt_ids = prompt_ids or p
        ids.append(t)
        logprobs.append(lp)
    usage = body.get("usage") or {}
    tokens = any(x is not None for x in ids + logprobs)
    return Completion(tuple(texts), int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0),
                      prompt_token_ids=prompt_ids, token_ids=tuple(ids) if tokens else (),
                      logprobs=tuple(logprobs) if tokens else ())


class ChatClient:
    """Calls one model; safe to share between many concurrent episodes.

    Args:
        model: A litellm model string (``hosted_vllm/NAME``, ``openai/gpt-4o-mini``, ...) or a
            served model name.
        api_base: Server URL (``http://127.0.0.1:8000/v1``); None for the provider's default.
        api_key: The key; None reads ``api_key_env`` (or the provider's usual variable via litellm).
        api_key_env: Environment variable holding the key.
        timeout: Seconds per attempt, in all: connecting, the headers and the whole body (a
            server that drips bytes cannot stretch it).
        retries: Extra attempts after a failed one.
        backoff: First retry delay in seconds (doubles each time, with jitter).
        concurrency: Most calls in flight at once (a semaphore shared by every user of the client).
        transport: ``auto``, ``http`` or ``litellm`` (see the module docstring).
        fail_fast_after: After this many calls in a row have failed (every retry spent), the server
            counts as down: further calls fail at once, without being sent, for ``fail_fast_s``
            seconds, then are tried again (default ``max(8, concurrency)``; 0 never fails fast).
            A batch against a dead server then ends in about one call's retries, not one per episode.
        fail_fast_s: How long calls fail at once after that.

    Every failure (a timeout, a refused or reset connection, broken HTTP, a body over the size
    bound, an answer that is not a chat completion) is retried and then raised as
    :class:`LLMCallError`, whose message is redacted (:mod:`clinic_env.llm.redact`): nothing else
    escapes :meth:`complete` but cancellation.
    """

    def __init__(self, model: str, api_base: str | None = None, api_key: str | None = None,
                 api_key_env: str | None = None, timeout: float = 60.0, retries: int = 2, backoff: float = 0.5,
                 concurrency: int = 64, transport: str = "auto", fail_fast_after: int | None = None,
                 fail_fast_s: float = 10.0) -> None:
        if transport not in ("auto", "http", "litellm"):
            raise ValueError(f"transport must be auto, http or litellm, got {transport!r}")
        if concurrency < 1 or retries < 0 or timeout <= 0:
            raise ValueError(f"need concurrency >= 1, retries >= 0, timeout > 0; got {concurrency}, {retries}, {timeout}")
        self.model, self.api_base, self.timeout = model, api_base.rstrip("/") if api_base else None, timeout
        self.api_key = api_key or (os.environ.get(api_key_env) if api_key_env else None)
        self.retries, self.backoff, self.concurrency = retries, backoff, concurrency
        self.fail_fast_after = max(8, concurrency) if fail_fast_after is None else fail_fast_after
        self.fail_fast_s = fail_fast_s
        self._failed_in_row = 0
        self._fail_fast_until = 0.0
        self._last_error = ""
        register_credentials(self.api_base, self.api_key)
        if transport == "auto":
            hosted = "/" not in model or model.startswith(_SELF_HOSTED)
            transport = "http" if self.api_base and hosted else "litellm"
        self.transport = transport
        if transport == "http":
            HTTPPool(self.api_base or "")  # a malformed api_base is a usage error now, not a failed call later
        self._sems: dict[int, asyncio.Semaphore] = {}
        self._sessions: dict[int, HTTPPool] = {}
        self._rng = random.Random(0)

    @property
    def served_name(self) -> str:
        """The model name sent to an OpenAI-compatible server (the provider prefix removed)."""
        for prefix in _SELF_HOSTED:
            if self.model.startswith(prefix):
                return self.model[len(prefix):]
        return self.model

    def _loop_state(self) -> tuple[asyncio.Semaphore, int]:
        loop = asyncio.get_running_loop()
        key = id(loop)
        sem = self._sems.get(key)
        if sem is None:
            sem = self._sems[key] = asyncio.Semaphore(self.concurrency)
        return sem, key

    def _pool(self, key: int) -> HTTPPool:
        pool = self._sessions.get(key)
        if pool is None or pool.closed:
            pool = self._sessions[key] = HTTPPool(self.api_base or "")
        return pool

    async def aclose(self) -> None:
        """Close this event loop's connections (call before the loop ends)."""
        key = id(asyncio.get_running_loop())
        pool = self._sessions.pop(key, None)
        self._sems.pop(key, None)
        if pool is not None:
            await pool.close()

    async def _http(self, key: int, messages: list[dict[str, str]], params: dict[str, Any]) -> Completion:
        body = json.dumps({"model": self.served_name, "messages": messages, **params}).encode()
        try:
            status, raw = await self._pool(key).post_json("/chat/completions", body, self.timeout, self.api_key)
        except (TimeoutError, asyncio.TimeoutError) as exc:  # first: TimeoutError is an OSError
            raise _Retryable(f"timed out after {self.timeout:g} s (no complete answer)") from exc
        except OSError as exc:  # refused, reset, and every malformed answer (HTTPProtocolError)
            raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
        if status >= 500 or status == 429:
            raise _Retryable(f"HTTP {status}: {raw[:200]!r}")
        if status >= 400:
            raise LLMCallError(redact(f"HTTP {status} from {redact_url(self.api_base or '')}: {raw[:300]!r}"))
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, or nested past the parser's depth
            raise _Retryable(f"response is not JSON: {raw[:80]!r}") from exc
        try:
            return _parse_body(data)
        except _Retryable:
            raise
        except (TypeError, ValueError, AttributeError, KeyError, IndexError, OverflowError, RecursionError) as exc:
            raise _Retryable(f"not a chat completion ({type(exc).__name__}: {str(exc)[:80]})") from exc

    async def _litellm(self, messages: list[dict[str, str]], params: dict[str, Any]) -> Completion:
        import litellm
        from litellm import exceptions as lx  # litellm's top level re-exports these implicitly

        params = dict(params)
        litellm.suppress_debug_info = True
        # Fields outside the OpenAI schema (vLLM's structured_outputs, ignore_eos...) travel in extra_body.
        extra = {k: params.pop(k) for k in list(params) if k not in _OPENAI_PARAMS}
        if extra:
            params["extra_body"] = {**params.get("extra_body", {}), **extra}
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages, "timeout": self.timeout, **params}
        if self.api_base:
            kwargs["api_base"] = self.api_base
        if self.api_key:
            kwargs["api_key"] = self.api_key
        elif self.api_base and self.transport == "litellm" and self.model.startswith(_SELF_HOSTED):
            kwargs["api_key"] = "EMPTY"  # self-hosted servers need none, but the OpenAI client wants one
        try:
            # litellm's timeout bounds each read; the deadline bounds the whole call (a drip cannot stretch it).
            resp = await deadline(litellm.acompletion(**kwargs), self.timeout)
        except (TimeoutError, asyncio.TimeoutError) as exc:
            raise _Retryable(f"timed out after {self.timeout:g} s (no complete answer)") from exc
        except (lx.BadRequestError, lx.AuthenticationError, lx.NotFoundError) as exc:
            raise LLMCallError(f"{type(exc).__name__}: {str(exc)[:300]}") from exc
        except (lx.Timeout, lx.APIConnectionError, lx.InternalServerError, lx.RateLimitError,
                lx.ServiceUnavailableError, lx.APIError) as exc:
            raise _Retryable(f"{type(exc).__name__}: {str(exc)[:300]}") from exc
        except (json.JSONDecodeError, ValueError, TypeError, KeyError) as exc:
            raise _Retryable(f"unreadable response: {type(exc).__name__}: {str(exc)[:200]}") from exc
        except LLMCallError:
            raise
        except Exception as exc:  # whatever else the provider library raises: a failed attempt
            raise _Retryable(f"{type(exc).__name__}: {str(exc)[:200]}") from exc
        texts = tuple((c.message.content or "") if getattr(c, "message", None) else "" for c in resp.choices)
        usage = getattr(resp, "usage", None)
        return Completion(texts, int(getattr(usage, "prompt_tokens", 0) or 0),
                          int(getattr(usage, "completion_tokens", 0) or 0))

    async def complete(self, messages: list[dict[str, str]], agent: str = "", **params: Any) -> Completion:
        """One chat completion (``params``: temperature, seed, n, max_tokens, response_format, ...).

        Raises:
            LLMCallError: After ``retries`` retries, at once for a 4xx answer other than 429, or
                without sending while the server counts as down (see ``fail_fast_after``).
        """
        if self._fail_fast_until and time.monotonic() < self._fail_fast_until:
            raise LLMCallError(f"{self.model}: not sent, the server is failing ({self._failed_in_row} calls in a row): "
                               f"{self._last_error}")
        try:
            return await self._complete(messages, agent, params)
        except LLMCallError as exc:
            self._failed_in_row += 1
            self._last_error = str(exc).rsplit("attempt(s): ", 1)[-1][:300]
            if self.fail_fast_after and self._failed_in_row >= self.fail_fast_after:
                self._fail_fast_until = time.monotonic() + self.fail_fast_s
            raise

    async def _complete(self, messages: list[dict[str, str]], agent: str, params: dict[str, Any]) -> Completion:
        sem, key = self._loop_state()
        usage = _USAGE.get()
        last = ""
        for attempt in range(self.retries + 1):
            async with sem:
                start = time.perf_counter()
                try:
                    if self.transport == "http":
                        out = await self._http(key, messages, params)
                    else:
                        out = await self._litellm(messages, params)
                except LLMCallError as exc:
                    raise LLMCallError(redact(str(exc))) from None
                except Exception as exc:  # _Retryable, and anything unforeseen: a failed attempt
                    last = str(exc) if isinstance(exc, _Retryable) else f"{type(exc).__name__}: {exc}"
                    if usage is not None:
                        usage.failed_attempts += 1
                else:
                    self._failed_in_row, self._fail_fast_until = 0, 0.0
                    done = dataclasses.replace(out, latency_s=time.perf_counter() - start, attempts=attempt + 1)
                    if usage is not None:
                        usage.add(agent or "llm", done)
                    sink = _CALLS.get()
                    if sink is not None:
                        sink.append((agent or "llm", list(messages), done))
                    return done
            if attempt < self.retries:
                await asyncio.sleep(self.backoff * (2**attempt) * (0.5 + self._rng.random()))
        raise LLMCallError(redact(f"{self.model}: no usable answer after {self.retries + 1} attempt(s): {last[:400]}"))

