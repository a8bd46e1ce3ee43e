"""Each reward formula against hand-computed examples (DESIGN.md §4)."""

from __future__ import annotations

import pytest

from clinic_env.rewards.segment import (
    at_or_below,
    diagnosis_match,
    diagnosis_reward,
    differential_reward,
    evidence_share,
    history_reward,
    rubric_score,
    tests_reward,
)
from clinic_env.schema.case import Fact
from clinic_env.schema.rubric import RubricItem


def _fact(crit: int) -> Fact:
    return Fact(text="x", present=True, criticality=crit)  # type: ignore[arg-type]


def test_history_reward_weights_critical_facts_double() -> None:
    facts = {"a": _fact(2), "b": _fact(2), "c": _fact(1), "d": _fact(1), "pc": _fact(2)}
    # a full (2), b vague (0.5 * 2 = 1), c full (1), d missed; pc excluded: (2 + 1 + 1) / 6
    credit = {"a": 1.0, "b": 0.5, "c": 1.0, "pc": 1.0}
    assert history_reward(facts, credit, exclude=("pc",)) == pytest.approx(4 / 6)


def test_history_reward_ignores_questions_outside_the_case() -> None:
    facts = {"a": _fact(1)}
    assert history_reward(facts, {"zzz": 1.0}) == 0.0
    assert history_reward({}, {"a": 1.0}) == 0.0


def test_differential_gold_in_top_k_and_must_not_miss() -> None:
    # gold I21.0 at rank 2 -> 1; must-not-miss besides gold: I71.0, I26.9; one listed -> +0.25; clip 1
    assert differential_reward(["I20.0", "I21.4", "I26.9"], "I21.0", ["I21.0", "I71.0", "I26.9"]) == 1.0
    # gold missing: 0.5 * 1/2 = 0.25
    assert differential_reward(["I20.0", "I26.9"], "I21.0", ["I71.0", "I26.9"]) == pytest.approx(0.25)


def test_differential_penalises_entries_beyond_k() -> None:
    listed = ["K35.8", "N83.5", "O00.1", "N73.9", "N20.1", "K57.3", "A09", "N10"]  # 8 entries, k=5
    # gold K35.8 hit = 1, no must-not-miss besides gold, 3 extra * 0.05 = 0.15
    assert differential_reward(listed, "K35.8", ["K35.8"], k=5) == pytest.approx(0.85)
    # gold at rank 6: not in top 5 -> 0 + 0 - 0.15 -> clipped to 0
    assert differential_reward([*listed[1:6], "K35.8", *listed[6:]], "K35.8", []) == 0.0


def test_tests_reward_weighted_f1_minus_cost() -> None:
    # essential e1, e2; optional o1; ordered e1, o1, x -> R_ess 0.5, R_opt 1, R = (1 + 1) / 3 = 2/3
    # P = 2/3; F1 = 2/3; cost 300 of budget 600 -> 0.2 * 0.5 = 0.1
    reward, parts = tests_reward(["e1", "o1", "x"], ["e1", "e2"], ["o1"], 300.0, 600.0)
    assert parts["recall"] == pytest.approx(2 / 3)
    assert parts["precision"] == pytest.approx(2 / 3)
    assert reward == pytest.approx(2 / 3 - 0.1)


def test_tests_reward_bounds_and_edge_cases() -> None:
    reward, parts = tests_reward([], ["e1"], [], 0.0, 100.0)
    assert reward == 0.0 and parts["f1"] == 0.0
    reward, _ = tests_reward(["x"], ["e1"], [], 10_000.0, 100.0, cost_weight=0.2, cost_cap=2.0)
    assert reward == pytest.approx(-0.4)
    assert tests_reward([], [], [], 0.0, 100.0)[0] == 1.0
    assert tests_reward(["x"], [], [], 0.0, 100.0)[0] == 0.0


def test_diagnosis_match_is_hierarchical() -> None:
    blocks = {"I21.0": "I20-I25", "I21.4": "I20-I25", "I20.0": "I20-I25", "I26.9": "I26-I28"}
    assert diagnosis_match("I21.0", "I21.0", blocks) == 1.0
    assert diagnosis_match("I21.4", "I21.0", blocks) == 0.6
    assert diagnosis_match("I20.0", "I21.0", blocks) == 0.3
    assert diagnosis_match("I26.9", "I21.0", blocks) == 0.0
    assert diagnosis_match(None, "I21.0", blocks) == 0.0


def test_more_specific_descendants_earn_full_credit() -> None:
    blocks = {"I60.2": "I60-I69", "I60.9": "I60-I69", "I60.7": "I60-I69", "M00.0": "M00-M03", "M00.05": "M00-M03"}
    assert at_or_below("I60.2", "I60.9")  # ".9" (unspecified) stands for the category
    assert diagnosis_match("I60.2", "I60.9", blocks) == 1.0
    assert diagnosis_match("I60.2", "I60", blocks) == 1.0
    assert diagnosis_match("M00.05", "M00.0", blocks) == 1.0
    assert not at_or_below("I60.9", "I60.2")  # the less specific code is not below the gold
    assert diagnosis_match("I60.9", "I60.2", blocks) == 0.6
    # A code the case lists as a different diagnosis is not a more specific form of the gold.
    assert diagnosis_match("I60.7", "I60.9", blocks, distinct={"I60.7"}) == 0.6


def test_must_not_miss_gold_earns_no_partial_credit() -> None:
    blocks = {"I60.9": "I60-I69", "I63.9": "I60-I69", "I60.2": "I60-I69", "O00.9": "O00-O08", "O03.9": "O00-O08"}
    assert diagnosis_match("I63.9", "I60.9", blocks) == 0.3  # same block: a near miss in general
    assert diagnosis_match("I63.9", "I60.9", blocks, must_not_miss=True) == 0.0  # SAH called a stroke
    assert diagnosis_match("O03.9", "O00.9", blocks, must_not_miss=True) == 0.0  # ectopic called a miscarriage
    assert diagnosis_match("I60.2", "I60.9", blocks, must_not_miss=True) == 1.0  # more specific is still right


def test_diagnosis_credit_is_scaled_by_confirmatory_evidence() -> None:
    alternatives = [["lab.troponin", "ecg.12lead"], ["img.angiogram"]]
    assert evidence_share(alternatives, set()) == 0.0
    assert evidence_share(alternatives, {"ecg.12lead"}) == 0.5
    assert evidence_share(alternatives, {"ecg.12lead", "lab.troponin"}) == 1.0
    assert evidence_share(alternatives, {"img.angiogram"}) == 1.0
    assert evidence_share([], set()) == 1.0  # no evidence named: nothing to scale by
    assert diagnosis_reward(1.0, 0.5) == 0.5
    assert diagnosis_reward(0.6, 1.0) == 0.6
    assert diagnosis_reward(1.0, 0.0) == 0.0
    # Curriculum option: a floor for the label alone (0.25 + 0.75 x 0.5 = 0.625).
    assert diagnosis_reward(1.0, 0.0, floor=0.25) == 0.25
    assert diagnosis_reward(1.0, 0.5, floor=0.25) == pytest.approx(0.625)
    assert diagnosis_reward(0.0, 1.0, floor=0.25) == 0.0


def _item(points: int) -> RubricItem:
    return RubricItem(criterion="criterion", points=points, tags=("axis:accuracy",))


def test_rubric_score_healthbench_style() -> None:
    items = [_item(5), _item(3), _item(2), _item(-4), _item(4)]
    # met 5, not met 3, met 2, met -4 (bad behaviour happened), failed judgement on the 4-pointer
    verdicts = {0: True, 1: False, 2: True, 3: True, 4: None}
    score, counts = rubric_score(items, verdicts)
    assert score == pytest.approx((5 + 2 - 4) / (5 + 3 + 2))
    assert counts == {"met": 3, "not_met": 1, "failed": 1}


def test_rubric_score_is_clipped() -> None:
    items = [_item(2), _item(-8)]
    assert rubric_score(items, {0: True, 1: True})[0] == 0.0
    assert rubric_score(items, {})[0] == 0.0
