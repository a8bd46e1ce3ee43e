"""The rubric engine: HealthBench-compatible scoring, rule verdicts, and the HealthBench importer.

Scoring follows HealthBench: a set of items scores ``sum(points of met items) / sum(positive
points)``, clipped to [0, 1]; negative items count when met. A failed judgement (the grader
could not decide) is counted separately and left out of both sums, never taken as "not met".
Per-tag scores apply the same formula to the items carrying each tag (``axis:*``, ``segment:*``,
``principle:*``...). The LLM grader lives in :mod:`clinic_env.rewards.grader`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clinic_env.rewards.checks import EpisodeView, evaluate_check
from clinic_env.rewards.segment import rubric_score
from clinic_env.schema.errors import DataError, Problem
from clinic_env.schema.loading import parse_model
from clinic_env.schema.rubric import RubricBank, RubricItem

__all__ = ["RubricReport", "import_healthbench", "rule_verdicts", "score_rubric"]

#: HealthBench axis names that differ from clinic-env's.
_AXIS_ALIASES = {"communication_quality": "communication"}


@dataclass
class RubricReport:
    """A graded rubric.

    Attributes:
        score: Overall HealthBench score in [0, 1].
        per_tag: Score of the items carrying each tag (tags whose items have no positive points are
            left out).
        counts: ``met``, ``not_met`` and ``failed`` judgements.
        details: One entry per item: index, id, criterion, points, verdict, explanation.
    """

    score: float
    per_tag: dict[str, float]
    counts: dict[str, int]
    details: list[dict[str, Any]] = field(default_factory=list)


def score_rubric(
    items: Sequence[RubricItem],
    verdicts: Mapping[int, bool | None],
    explanations: Mapping[int, str] | None = None,
) -> RubricReport:
    """Score ``items`` given verdicts by index (True met, False not met, None or absent failed)."""
    score, counts = rubric_score(items, verdicts)
    tags = sorted({t for item in items for t in item.tags})
    per_tag: dict[str, float] = {}
    for tag in tags:
        idx = [i for i, item in enumerate(items) if tag in item.tags]
        sub = [items[i] for i in idx]
        if not any(item.points > 0 and verdicts.get(i) is not None for i, item in zip(idx, sub, strict=True)):
            continue
        per_tag[tag], _ = rubric_score(sub, {j: verdicts.get(i) for j, i in enumerate(idx)})
    details = [
        {"index": i, "id": item.id, "criterion": item.criterion, "points": item.points,
         "verdict": verdicts.get(i), "explanation": (explanations or {}).get(i)}
        for i, item in enumerate(items)
    ]
    return RubricReport(score, per_tag, counts, details)


def rule_verdicts(items: Sequence[RubricItem], episode: EpisodeView) -> dict[int, bool | None]:
    """Verdicts of the items that have a rule check (others are absent: they need a grader)."""
    return {i: evaluate_check(item.check, episode) for i, item in enumerate(items) if item.check is not None}


def _healthbench_item(raw: Any, prompt_id: str, i: int, file: str, line: int) -> RubricItem:
    if not isinstance(raw, dict):
        raise DataError.single(file, f"line {line}: rubrics[{i}]", "expected a mapping", raw)
    tags = []
    for tag in raw.get("tags", []):
        key, _, value = str(tag).partition(":")
        if key == "axis":
            value = _AXIS_ALIASES.get(value, value)
        tags.append(f"{key}:{value}")
    data = {"id": f"{prompt_id}-{i}", "criterion": raw.get("criterion"), "points": raw.get("points"), "tags": tags}
    return parse_model(RubricItem, data, file, f"line {line}: rubrics[{i}]")


def import_healthbench(path: str | Path) -> list[RubricBank]:
    """Read HealthBench-format JSONL (``prompt_id``, ``prompt``, ``rubrics`` [{criterion, points,
    tags}]) into one rubric bank per example.

    HealthBench's ``axis:communication_quality`` becomes ``axis:communication``; other tags
    (``theme:*``, ``level:*``, ``cluster:*``) are kept. Items carry no rule check: an LLM grader
    judges them.

    Raises:
        DataError: A line is not JSON or an item is malformed (file, line and field named).
    """
    file = str(path)
    banks: list[RubricBank] = []
    problems: list[Problem] = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DataError.single(file, "", f"cannot read file: {exc}") from None
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(Problem(file, f"line {n}", f"not valid JSON: {exc.msg}"))
            continue
        if not isinstance(record, dict) or not isinstance(record.get("rubrics"), list):
            problems.append(Problem(file, f"line {n}", "expected an object with a 'rubrics' list"))
            continue
        prompt_id = str(record.get("prompt_id") or f"healthbench-{n}")
        items = []
        for i, raw in enumerate(record["rubrics"]):
            try:
                items.append(_healthbench_item(raw, prompt_id, i, file, n))
            except DataError as exc:
                problems.extend(exc.problems)
        if items:
            banks.append(RubricBank(name=prompt_id, description=_prompt_text(record), items=tuple(items)))
    if problems:
        raise DataError(problems)
    return banks


def _prompt_text(record: dict[str, Any]) -> str:
    prompt = record.get("prompt")
    if isinstance(prompt, list):
        return "\n".join(f"{m.get('role', '?')}: {m.get('content', '')}" for m in prompt if isinstance(m, dict))[:2000]
    return str(prompt or "")[:2000]
