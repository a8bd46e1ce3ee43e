"""Deterministic scripted replies for the loopback test server (:mod:`clinic_env.testing.openai_server`).

Each script is a pure function of the request, so concurrent episodes get the same replies as
sequential ones. :func:`clinic_reply` recognises the role from the system message and answers as

- **doctor**: reads the machine-readable ``Status:`` line of the text-mode prompt and asks the
  first ``questions`` history items of the listing, ends the history, lists one diagnosis,
  commits, orders the first ``tests`` tests, ends the tests and gives the listed diagnosis:
  a fixed ``questions + tests + 5`` calls per episode. The listing is the lean prompt's
  suggested items in the user message (the first one not asked or ordered yet is taken), or the full
  listing of the system message (``list_items=True``: the n-th one is taken);
- **patient**: ``{"mode": "truthful", "text": ...}``;
- **examiner**: every numbered item ``met`` for the batch grader (``{"grades": [...]}``), or
  ``{"explanation": ..., "criteria_met": true}`` for the per-item grader.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

__all__ = ["SCRIPTS", "clinic_reply", "doctor_reply", "make_doctor_script"]

_STATUS = re.compile(r"Status: segment=(\w+); cycle=\d+/\d+; questions_asked=(\d+); differential=(\d+); tests_ordered=(\d+)")
_ITEM = re.compile(r"^- ([a-z]+(?:\.[a-z0-9_]+)+): ", re.M)
_CODE = re.compile(r"^- ([A-Z]\d{2}(?:\.\d{1,2})?): ", re.M)
_RUBRIC_ID = re.compile(r"^\[(\d+)\] \(", re.M)
_DONE = re.compile(r"^Already (?:asked|ordered): (.*)\.$", re.M)


_LISTINGS: dict[str, tuple[list[str], list[str]]] = {}


def _listing(system: str) -> tuple[list[str], list[str]]:
    """The ids and codes listed in a system message (cached: there is one per segment)."""
    hit = _LISTINGS.get(system)
    if hit is None:
        if len(_LISTINGS) > 64:
            _LISTINGS.clear()
        hit = _LISTINGS[system] = (_ITEM.findall(system), _CODE.findall(system))
    return hit


def _messages(request: dict[str, Any]) -> tuple[str, str]:
    msgs = request.get("messages") or []
    system = next((str(m.get("content", "")) for m in msgs if m.get("role") == "system"), "")
    user = next((str(m.get("content", "")) for m in reversed(msgs) if m.get("role") == "user"), "")
    return system, user


def doctor_reply(request: dict[str, Any], questions: int = 3, tests: int = 2) -> str:
    """The scripted doctor's JSON action for a text-mode doctor prompt (see the module docstring)."""
    system, user = _messages(request)
    m = _STATUS.search(user)
    if not m:
        return json.dumps({"action": "end_segment", "item": "", "text": ""})
    segment, asked, listed, ordered = m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4))
    items, codes = _listing(system)
    if not items and not codes:  # lean prompt: suggested legal items in the user message
        done = _DONE.search(user)
        seen = set(done.group(1).split(", ")) if done else set()
        items, codes = [x for x in _ITEM.findall(user) if x not in seen], _CODE.findall(user)
        asked = ordered = 0
    if segment == "history":
        if int(m.group(2)) < questions and asked < len(items):
            return json.dumps({"action": "ask", "item": items[asked], "text": f"Can I ask about {items[asked]}?"})
        return json.dumps({"action": "end_segment", "item": "", "text": "Thank you."})
    if segment == "tests":
        if int(m.group(4)) < tests and ordered < len(items):
            return json.dumps({"action": "order", "item": items[ordered], "text": ""})
        return json.dumps({"action": "end_segment", "item": "", "text": ""})
    code = codes[0] if codes else ""
    if segment == "differential" and listed >= 1:
        return json.dumps({"action": "commit_differential", "item": "", "text": ""})
    return json.dumps({"action": "dx", "item": code, "text": ""})


def make_doctor_script(questions: int = 3, tests: int = 2) -> Callable[[dict[str, Any]], str]:
    """A :func:`clinic_reply` whose doctor asks ``questions`` questions and orders ``tests`` tests."""
    def reply(request: dict[str, Any]) -> str:
        return clinic_reply(request, questions, tests)

    return reply


def clinic_reply(request: dict[str, Any], questions: int = 3, tests: int = 2) -> str:
    """Answer as the doctor, the patient or the examiner, whichever the system message addresses."""
    system, _ = _messages(request)
    if "role-playing a patient" in system:
        return json.dumps({"mode": "truthful", "text": "Yes, it started yesterday and it is getting worse."})
    if system.startswith("You grade numbered rubric items"):
        _, user = _messages(request)
        ids = _RUBRIC_ID.findall(user)
        return json.dumps({"grades": [{"id": i, "verdict": "met"} for i in ids]})
    if "rubric item" in system:
        return json.dumps({"explanation": "The doctor did this.", "criteria_met": True})
    return doctor_reply(request, questions, tests)


SCRIPTS: dict[str, Callable[[dict[str, Any]], str]] = {
    "doctor": clinic_reply,
    "echo": lambda request: _messages(request)[1][-200:] or "ok",
    "garbage": lambda request: "lorem ipsum dolor sit amet",
}
