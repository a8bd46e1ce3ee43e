"""Parse the LLM examiner's replies: one rubric item (HealthBench ``criteria_met``) or a batch.

By default the examiner grades every pending rubric item of a segment in one call (the prompt
numbers them ``[1]``, ``[2]``...). :func:`parse_grades` reads the reply tolerantly, in linear time:

- JSON ``{"grades": [{"id": "1", "verdict": "met"}, ...]}`` (the schema sent as ``response_format``),
  a bare list of such entries, entries with ``criteria_met`` true/false instead of ``verdict``, or
  a mapping ``{"1": "met", "2": false, ...}``;
- plain lines such as ``1: met``, ``[2] not met``, ``3 - abstain``, ``item 4: yes``.

Verdicts are ``met``, ``not_met`` or ``abstain`` (true/yes/false/no/unsure and a few spellings are
folded). Ids outside ``1..n`` are ignored; an id graded twice keeps its first verdict.
"""

from __future__ import annotations

import re
from typing import Any

from clinic_env.text.jsonscan import extract_json

__all__ = ["parse_grades", "parse_verdict", "verdict_word"]

_WORDS = {
    "met": "met", "true": "met", "yes": "met", "y": "met", "pass": "met", "passed": "met", "1": "met",
    "not_met": "not_met", "notmet": "not_met", "unmet": "not_met", "false": "not_met", "no": "not_met",
    "n": "not_met", "fail": "not_met", "failed": "not_met", "0": "not_met",
    "abstain": "abstain", "unsure": "abstain", "unknown": "abstain", "n/a": "abstain", "na": "abstain",
    "cannot_tell": "abstain", "uncertain": "abstain",
}
_LINE = re.compile(r"^\W{0,4}(?:item|criterion|rubric|r|#)?\s*\[?(\d{1,3})\]?\s*[:.)\-=]*\s*"
                   r"(not[ _-]?met|met|true|false|yes|no|abstain|unsure|n/?a|pass(?:ed)?|fail(?:ed)?)\b",
                   re.I | re.M)
_MAX_LINES_CHARS = 16000


def verdict_word(value: Any) -> str | None:
    """``met`` / ``not_met`` / ``abstain`` for a JSON value or word, else None."""
    if isinstance(value, bool):
        return "met" if value else "not_met"
    if isinstance(value, str):
        key = value.strip().lower().replace(" ", "_").replace("-", "_")
        return _WORDS.get(key)
    return None


def _entry(entry: Any) -> tuple[str, str] | None:
    if not isinstance(entry, dict):
        return None
    ident = entry.get("id", entry.get("item", entry.get("index")))
    verdict = verdict_word(entry.get("verdict", entry.get("criteria_met", entry.get("met"))))
    if ident is None or verdict is None:
        return None
    return str(ident).strip().strip("[]#").lstrip("rR"), verdict


def _from_json(value: Any) -> list[tuple[str, str]]:
    if isinstance(value, dict) and isinstance(value.get("grades"), (list, dict)):
        value = value["grades"]
    out: list[tuple[str, str]] = []
    if isinstance(value, list):
        for entry in value[:512]:
            got = _entry(entry)
            if got is not None:
                out.append(got)
    elif isinstance(value, dict):
        for key, val in list(value.items())[:512]:
            verdict = verdict_word(val) if not isinstance(val, dict) else _entry({"id": key, **val})
            if isinstance(verdict, tuple):
                out.append(verdict)
            elif verdict is not None:
                out.append((str(key).strip().strip("[]#").lstrip("rR"), verdict))
    return out


def parse_grades(reply: Any, n: int) -> dict[int, str]:
    """Verdicts by item number (1-based, at most ``n``) found in a batch grader's reply; empty
    when it holds none. A reply in the per-item form (``criteria_met``) grades item 1 only."""
    if not isinstance(reply, str) or not reply.strip() or n < 1:
        return {}
    value = extract_json(reply)
    pairs: list[tuple[str, str]] = []
    if isinstance(value, dict) and "criteria_met" in value and "grades" not in value:
        single = verdict_word(value.get("criteria_met"))
        pairs = [("1", single)] if single else []
    elif value is not None:
        pairs = _from_json(value)
    if not pairs:
        pairs = [(m.group(1), verdict_word(m.group(2)) or "") for m in _LINE.finditer(reply[:_MAX_LINES_CHARS])]
    grades: dict[int, str] = {}
    for ident, verdict in pairs:
        if ident.isdigit() and 1 <= int(ident) <= n and verdict and int(ident) not in grades:
            grades[int(ident)] = verdict
    return grades


def parse_verdict(reply: Any) -> bool | None:
    """``criteria_met`` from a HealthBench-style grader reply (JSON, or a clear yes/no), else None."""
    if not isinstance(reply, str) or not reply.strip():
        return None
    value = extract_json(reply)
    if isinstance(value, dict):
        met = value.get("criteria_met")
        if isinstance(met, bool):
            return met
        if isinstance(met, str) and met.strip().lower() in ("true", "false", "yes", "no"):
            return met.strip().lower() in ("true", "yes")
    m = re.search(r"criteria_met\W{1,8}(true|false)", reply[:_MAX_LINES_CHARS], re.I)
    if m:
        return m.group(1).lower() == "true"
    words = reply.strip().lower()
    if re.fullmatch(r"(yes|met|true)[.!]?", words):
        return True
    if re.fullmatch(r"(no|not met|false)[.!]?", words):
        return False
    return None
