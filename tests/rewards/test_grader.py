"""The LLM rubric grader against a real loopback OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from clinic_env.rewards.grader import LLMGrader, parse_grade
from clinic_env.schema.rubric import RubricItem
from clinic_env.testing.openai_server import OpenAITestServer, Reply

ITEMS = [
    RubricItem(criterion="Asks about drug allergies", points=3, tags=("axis:completeness",)),
    RubricItem(criterion="Orders a CT head without indication", points=-4, tags=("axis:accuracy",)),
    RubricItem(criterion="Explains the diagnosis in plain language", points=2, tags=("axis:communication",)),
]
CONVERSATION = "Doctor: Do you have any allergies to medicines?\nPatient: Penicillin gives me a rash."


def _judge(request: dict[str, Any]) -> str:
    prompt = request["messages"][-1]["content"]
    met = "allergies" in prompt.split("<criterion")[1] and "allergies" in prompt.split("<criterion")[0]
    return "Sure. ```json\n" + json.dumps({"explanation": "checked the transcript", "criteria_met": met}) + "\n```"


def test_parse_grade_is_tolerant_but_strict_on_the_verdict() -> None:
    assert parse_grade('{"explanation": "x", "criteria_met": true}').met is True
    assert parse_grade('text {"criteria_met": "false", "explanation": ""} text').met is False
    for bad in ("", "no json here", '{"criteria_met": "maybe"}', "{broken"):
        with pytest.raises(ValueError):
            parse_grade(bad)


def test_grades_one_criterion_per_call() -> None:
    with OpenAITestServer(_judge) as srv:
        grader = LLMGrader(model="openai/test-model", api_base=srv.base_url, retries=1, backoff=0.01)
        grades = grader.grade(CONVERSATION, ITEMS)
        assert srv.calls == 3
        assert [grades[i].met for i in range(3)] == [True, False, False]
        assert all(len(r["messages"]) == 1 for r in srv.requests)
        assert all(r["response_format"]["type"] == "json_schema" for r in srv.requests)
        assert grader.grade(CONVERSATION, ITEMS)[0].met is True
        assert srv.calls == 3  # cached


def test_garbage_is_retried_then_recorded_as_failed() -> None:
    with OpenAITestServer(["I think so!"]) as srv:
        grader = LLMGrader(model="openai/test-model", api_base=srv.base_url, retries=2, backoff=0.01)
        grade = grader.grade(CONVERSATION, ITEMS[:1])[0]
        assert grade.met is None and grade.attempts == 3
        assert "failed after 3 attempts" in grade.explanation
        assert srv.calls == 3


def test_server_errors_recover_on_retry() -> None:
    replies = iter([Reply(mode="error"), Reply(mode="garbage")])

    def flaky(request: dict[str, Any]) -> Reply | str:
        nxt = next(replies, None)
        return nxt if nxt is not None else json.dumps({"explanation": "ok", "criteria_met": True})

    with OpenAITestServer(flaky) as srv:
        grader = LLMGrader(model="openai/test-model", api_base=srv.base_url, retries=3, backoff=0.01, timeout=5)
        grade = grader.grade(CONVERSATION, ITEMS[:1])[0]
        assert grade.met is True and grade.attempts == 3


def test_timeouts_become_failed_judgements() -> None:
    with OpenAITestServer(["x"], mode="timeout", hang_seconds=3) as srv:
        grader = LLMGrader(model="openai/test-model", api_base=srv.base_url, retries=0, timeout=0.5)
        grade = grader.grade(CONVERSATION, ITEMS[:1])[0]
        assert grade.met is None
        assert "timeout" in grade.explanation.lower() or "timed out" in grade.explanation.lower()


def test_concurrency_is_bounded() -> None:
    grader = LLMGrader(model="unused", concurrency=2)
    active = peak = 0

    async def fake_call(prompt: str) -> str:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.01)
        active -= 1
        return '{"explanation": "", "criteria_met": true}'

    grader._call = fake_call  # type: ignore[method-assign]
    items = [RubricItem(criterion=f"criterion number {i}", points=1) for i in range(10)]
    grades = grader.grade("conversation", items)
    assert len(grades) == 10 and peak == 2
