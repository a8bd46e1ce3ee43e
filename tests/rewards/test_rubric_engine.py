"""HealthBench-compatible rubric scoring, per-tag scores and the HealthBench importer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clinic_env.rewards.checks import EpisodeView
from clinic_env.rewards.rubric import import_healthbench, rule_verdicts, score_rubric
from clinic_env.schema import DataError
from clinic_env.schema.rubric import Check, RubricItem


def _item(points: int, *tags: str, check: dict[str, object] | None = None) -> RubricItem:
    return RubricItem(criterion="criterion", points=points, tags=tags, check=Check.model_validate(check) if check else None)


def test_per_tag_scores_by_hand() -> None:
    items = [
        _item(4, "axis:completeness", "segment:history"),
        _item(2, "axis:completeness", "segment:tests"),
        _item(-3, "axis:accuracy", "segment:tests"),
        _item(5, "axis:accuracy"),
        _item(3, "axis:communication"),
    ]
    verdicts = {0: True, 1: False, 2: True, 3: True, 4: None}
    report = score_rubric(items, verdicts, {0: "asked it"})
    assert report.score == pytest.approx((4 - 3 + 5) / (4 + 2 + 5))
    assert report.per_tag["axis:completeness"] == pytest.approx(4 / 6)
    assert report.per_tag["axis:accuracy"] == pytest.approx((5 - 3) / 5)
    assert report.per_tag["segment:tests"] == 0.0  # (0 - 3) / 2, clipped
    assert "axis:communication" not in report.per_tag  # its only item failed
    assert report.counts == {"met": 3, "not_met": 1, "failed": 1}
    assert report.details[0]["explanation"] == "asked it" and report.details[4]["verdict"] is None


def test_rule_verdicts_only_for_checked_items() -> None:
    items = [_item(2, "axis:completeness", check={"asked": "hx.onset"}), _item(3, "axis:communication")]
    ep = EpisodeView({"hx.onset"}, set(), 0.0, (), None)
    assert rule_verdicts(items, ep) == {0: True}


def test_import_healthbench(tmp_path: Path) -> None:
    rows = [
        {"prompt_id": "p1", "prompt": [{"role": "user", "content": "I have chest pain"}],
         "rubrics": [{"criterion": "Advises calling emergency services", "points": 8, "tags": ["level:example", "axis:completeness"]},
                     {"criterion": "Uses jargon without explanation", "points": -3, "tags": ["axis:communication_quality"]}]},
        {"prompt_id": "p2", "prompt": "text", "rubrics": [{"criterion": "Asks the duration", "points": 2, "tags": []}]},
    ]
    path = tmp_path / "hb.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    banks = import_healthbench(path)
    assert [b.name for b in banks] == ["p1", "p2"]
    assert banks[0].items[1].tags == ("axis:communication",) and banks[0].items[1].points == -3
    assert banks[0].items[0].id == "p1-0" and "chest pain" in banks[0].description


def test_import_healthbench_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt_id": "a", "rubrics": [{"criterion": "x y z", "points": 20}]}\nnot json\n')
    with pytest.raises(DataError) as err:
        import_healthbench(path)
    text = str(err.value)
    assert "line 1: rubrics[0].points" in text and "line 2" in text and str(path) in text
