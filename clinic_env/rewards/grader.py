"""An LLM rubric grader through litellm, HealthBench style: one criterion per call.

Each call shows the grader the consultation transcript and ONE rubric item and asks for JSON
``{"explanation": str, "criteria_met": bool}``. Calls run concurrently under a bounded semaphore;
a call that times out, fails or returns something unparseable is retried with exponential
backoff, and after the last try the item is recorded as a *failed* judgement (verdict None) with
the reason, never as "not met". Verdicts are cached by (model, transcript, criterion).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from clinic_env.schema.rubric import RubricItem

__all__ = ["GRADE_SCHEMA", "Grade", "LLMGrader", "complete", "parse_grade"]

GRADE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"explanation": {"type": "string"}, "criteria_met": {"type": "boolean"}},
    "required": ["explanation", "criteria_met"],
    "additionalProperties": False,
}

_PROMPT = """You are an OSCE examiner grading a doctor in a simulated clinical consultation.
Judge ONE rubric criterion against the conversation below.

<conversation>
{conversation}
</conversation>

<criterion points="{points}">
{criterion}
</criterion>

Decide whether the doctor's conduct meets the criterion. If the points are negative, the criterion
describes an undesirable behaviour: answer criteria_met = true when that behaviour occurred.
Reply with a JSON object only: {{"explanation": "<one or two sentences>", "criteria_met": true or false}}"""

_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


@dataclass(frozen=True)
class Grade:
    """One judgement: ``met`` is None when grading failed (``explanation`` then says why)."""

    met: bool | None
    explanation: str
    attempts: int = 1


def parse_grade(reply: str | None) -> Grade:
    """Parse a grader reply (tolerant of code fences and text around the JSON).

    Raises:
        ValueError: No JSON object with a boolean ``criteria_met`` could be found.
    """
    if not reply or not reply.strip():
        raise ValueError("empty reply")
    match = _JSON_OBJECT.search(reply)
    if match is None:
        raise ValueError(f"no JSON object in reply: {reply[:80]!r}")
    try:
        data = json.loads(match.group(0))
    except json.JSONDecodeError as exc:
        raise ValueError(f"malformed JSON in reply: {exc.msg}") from None
    met = data.get("criteria_met") if isinstance(data, dict) else None
    if isinstance(met, str) and met.strip().lower() in ("true", "false"):
        met = met.strip().lower() == "true"
    if not isinstance(met, bool):
        raise ValueError(f"criteria_met is not a boolean: {met!r}")
    return Grade(met, str(data.get("explanation", "")))


async def complete(model: str, prompt: str, api_base: str | None = None, api_key: str | None = None,
                   timeout: float = 30.0, temperature: float = 0.0,
                   response_format: dict[str, Any] | None = None) -> str:
    """One litellm chat completion of a single user message; returns the reply text.

    Retries are the caller's (counted, with backoff): the provider client's own are switched off.
    A local server (``api_base``) gets a placeholder key when none is given.
    """
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    kwargs: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": prompt}],
                              "temperature": temperature, "timeout": timeout, "max_retries": 0}
    if api_base:
        kwargs["api_base"] = api_base
        kwargs["api_key"] = api_key or "sk-local-no-key"
    elif api_key:
        kwargs["api_key"] = api_key
    if response_format is not None:
        kwargs["response_format"] = response_format
    response = await asyncio.wait_for(litellm.acompletion(**kwargs), timeout=timeout + 5)
    return str(response.choices[0].message.content or "")


@dataclass
class LLMGrader:
    """Grades rubric items with any litellm model (a local vLLM server, a hosted API...).

    Args:
        model: litellm model string, e.g. ``hosted_vllm/Qwen3-8B-AWQ`` or ``openai/gpt-4.1``.
        api_base: Server URL (``http://127.0.0.1:8000/v1`` for a local server).
        api_key: Key; defaults to the provider's environment variable, or a placeholder for local
            servers that need none.
        timeout: Seconds per call.
        retries: Extra tries after a failure.
        backoff: First retry delay in seconds (doubles each try).
        concurrency: Most calls in flight.
        structured: Send the JSON schema as ``response_format`` (servers with structured outputs).
        temperature: Sampling temperature (0 for reproducible grading).
    """

    model: str
    api_base: str | None = None
    api_key: str | None = None
    timeout: float = 30.0
    retries: int = 2
    backoff: float = 0.5
    concurrency: int = 8
    structured: bool = True
    temperature: float = 0.0
    _cache: dict[str, Grade] = field(default_factory=dict, repr=False)

    async def _call(self, prompt: str) -> str:
        fmt = {"type": "json_schema", "json_schema": {"name": "rubric_grade", "schema": GRADE_SCHEMA}}
        return await complete(self.model, prompt, self.api_base, self.api_key, self.timeout, self.temperature,
                              fmt if self.structured else None)

    async def agrade_item(self, conversation: str, item: RubricItem, semaphore: asyncio.Semaphore | None = None) -> Grade:
        """Grade one item; retried, then a failed judgement (``met`` None) if it never parses."""
        key = hashlib.sha256(f"{self.model}\n{conversation}\n{item.points}\n{item.criterion}".encode()).hexdigest()
        if key in self._cache:
            return self._cache[key]
        prompt = _PROMPT.format(conversation=conversation, criterion=item.criterion, points=item.points)
        sem = semaphore or asyncio.Semaphore(1)
        error = "no attempt"
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                async with sem:
                    reply = await self._call(prompt)
                grade = parse_grade(reply)
                grade = Grade(grade.met, grade.explanation, attempt + 1)
                self._cache[key] = grade
                return grade
            except Exception as exc:  # network errors, timeouts, provider errors, bad JSON: all retried
                error = f"{type(exc).__name__}: {str(exc)[:200]}"
        return Grade(None, f"grader failed after {self.retries + 1} attempts: {error}", self.retries + 1)

    async def agrade(self, conversation: str, items: Sequence[RubricItem],
                     indices: Sequence[int] | None = None) -> dict[int, Grade]:
        """Grade several items concurrently (default: all); returns index -> :class:`Grade`."""
        chosen = list(range(len(items))) if indices is None else list(indices)
        semaphore = asyncio.Semaphore(self.concurrency)
        grades = await asyncio.gather(*(self.agrade_item(conversation, items[i], semaphore) for i in chosen))
        return dict(zip(chosen, grades, strict=True))

    def grade(self, conversation: str, items: Sequence[RubricItem], indices: Sequence[int] | None = None) -> dict[int, Grade]:
        """Synchronous :meth:`agrade` (not from inside a running event loop)."""
        return asyncio.run(self.agrade(conversation, items, indices))
