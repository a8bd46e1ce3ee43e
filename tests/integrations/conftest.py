"""Shared helpers for the trainer-integration tests: a loopback server whose doctor varies with the seed."""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from collections.abc import Iterator
from typing import Any

import pytest

from clinic_env.testing.openai_server import OpenAITestServer
from clinic_env.testing.scripted import clinic_reply


def seeded_reply(request: dict[str, Any]) -> str:
    """The scripted clinic, whose doctor asks ``seed % 4`` questions and orders ``seed % 3`` tests:
    group members (seeds offset per member) play differently, so group rewards differ."""
    seed = int(request.get("seed") or 0)
    return clinic_reply(request, questions=seed % 4, tests=seed % 3)


@pytest.fixture(scope="module")
def seeded_server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(seeded_reply) as srv:
        yield srv
