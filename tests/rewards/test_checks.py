"""Rule checks of rubric items."""

from __future__ import annotations

import pytest

from clinic_env.rewards.checks import EpisodeView, evaluate_check
from clinic_env.schema.rubric import Check

EP = EpisodeView(
    asked={"hx.onset", "hx.radiation", "allergy.drug"},
    ordered={"ecg.12lead", "lab.troponin"},
    cost_usd=45.0,
    differential=("I21.4", "I71.0", "I26.9"),
    final_dx="I21.4",
)


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        ({"asked": "hx.onset"}, True),
        ({"not_asked": "hx.onset"}, False),
        ({"asked_all": ["hx.onset", "sx.fever"]}, False),
        ({"asked_any": ["hx.onset", "sx.fever"]}, True),
        ({"ordered": "img.ctpa"}, False),
        ({"not_ordered": "img.ctpa"}, True),
        ({"ordered_all": ["ecg.12lead", "lab.troponin"]}, True),
        ({"ordered_count_gt": 2}, False),
        ({"asked_count_gt": 2}, True),
        ({"cost_gt": 40}, True),
        ({"differential_includes": "I21.*"}, True),
        ({"differential_includes": "I21"}, True),
        ({"differential_includes": "I21.0"}, False),
        ({"differential_size_gt": 3}, False),
        ({"final_dx_in": ["I21.*", "I20.0"]}, True),
        ({"final_dx_in": ["I26"]}, False),
        ({"all_of": [{"asked": "hx.onset"}, {"ordered": "ecg.12lead"}]}, True),
        ({"any_of": [{"asked": "sx.fever"}, {"ordered": "img.cxr"}]}, False),
        ({"not": {"ordered": "img.cxr"}}, True),
    ],
)
def test_check_operators(check: dict[str, object], expected: bool) -> None:
    assert evaluate_check(Check.model_validate(check), EP) is expected


def test_check_needs_exactly_one_operator() -> None:
    with pytest.raises(ValueError, match="exactly one operator"):
        Check.model_validate({"asked": "hx.onset", "ordered": "lab.cbc"})
    with pytest.raises(ValueError, match="exactly one operator"):
        Check.model_validate({})


def test_check_rejects_bad_icd_patterns() -> None:
    with pytest.raises(ValueError, match="ICD-10"):
        Check.model_validate({"differential_includes": "heart attack"})


def test_referenced_ids_are_collected_recursively() -> None:
    check = Check.model_validate({"all_of": [{"asked": "hx.onset"}, {"not": {"ordered_any": ["lab.cbc", "img.cxr"]}}]})
    assert check.referenced_ids() == ({"hx.onset"}, {"lab.cbc", "img.cxr"})
