"""The four segment rewards and the rubric score (DESIGN.md §4), as pure functions.

Each function is checked against hand-computed examples in ``tests/rewards/``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence

from clinic_env.schema.case import Fact
from clinic_env.schema.icd10 import block as icd10_block
from clinic_env.schema.icd10 import category
from clinic_env.schema.rubric import RubricItem

__all__ = [
    "at_or_below",
    "diagnosis_match",
    "diagnosis_reward",
    "differential_reward",
    "evidence_share",
    "history_reward",
    "rubric_score",
    "tests_reward",
]


def history_reward(facts: Mapping[str, Fact], credit: Mapping[str, float], exclude: Iterable[str] = ()) -> float:
    """Share of the case's fact weight that the doctor elicited.

    R_hx = sum(criticality_f * credit_f) / sum(criticality_f) over the case's facts, where credit is 1
    for a full answer, 0.5 for a vague one and 0 when not elicited. Facts in ``exclude`` (the
    presenting complaint, known from the opening statement) earn nothing and are left out.

    Returns:
        A value in [0, 1]; 0 for a case without facts.
    """
    skip = set(exclude)
    total = 0.0
    got = 0.0
    for key, fact in facts.items():
        if key in skip:
            continue
        total += fact.criticality
        got += fact.criticality * min(1.0, max(0.0, credit.get(key, 0.0)))
    return got / total if total else 0.0


def _listed(codes: Sequence[str], target: str) -> bool:
    cat = category(target)
    return any(category(c) == cat for c in codes)


def differential_reward(
    listed: Sequence[str],
    gold: str,
    must_not_miss: Sequence[str],
    k: int = 5,
    extra_penalty: float = 0.05,
) -> float:
    """Score a ranked differential.

    1 if the gold diagnosis is among the first ``k`` entries, plus 0.5 x the share of the case's
    must-not-miss diagnoses (other than the gold one) listed anywhere, minus ``extra_penalty`` per
    entry beyond ``k``; clipped to [0, 1]. Entries match at the level of the ICD-10 category
    (``I21.4`` matches gold ``I21.0``): a differential names conditions, not subtypes.
    """
    hit = 1.0 if _listed(listed[:k], gold) else 0.0
    mnm = [c for c in must_not_miss if category(c) != category(gold)]
    share = sum(_listed(listed, c) for c in mnm) / len(mnm) if mnm else 0.0
    extra = max(0, len(listed) - k) * extra_penalty
    return float(min(1.0, max(0.0, hit + 0.5 * share - extra)))


def tests_reward(
    ordered: Sequence[str],
    essential: Sequence[str],
    optional: Sequence[str],
    cost_usd: float,
    budget_usd: float,
    cost_weight: float = 0.2,
    cost_cap: float = 2.0,
    metric: str = "f1",
) -> tuple[float, dict[str, float]]:
    """Weighted F1 of the tests ordered, minus a cost term.

    Recall R = (2 R_essential + R_optional) / 3 (just R_essential when the case lists no optional
    tests); precision P = share of ordered tests that are essential or optional; F1 = 2PR/(P+R).
    The reward is F1 - cost_weight * min(cost / budget, cost_cap), so it lies in
    [-cost_weight * cost_cap, 1]. A case with neither essential nor optional tests gives F1 = 1
    when nothing is ordered and 0 otherwise. ``metric="recall"`` replaces F1 by R (a naive reward
    that ordering everything maximises).

    Returns:
        The reward and its parts (``recall``, ``precision``, ``f1``, ``cost_ratio``).
    """
    done = set(ordered)
    ess, opt = set(essential), set(optional)
    cost_ratio = min(cost_usd / budget_usd, cost_cap) if budget_usd > 0 else cost_cap
    if not ess and not opt:
        f1 = 0.0 if done else 1.0
        recall = precision = f1
    else:
        r_ess = len(done & ess) / len(ess) if ess else None
        r_opt = len(done & opt) / len(opt) if opt else None
        if r_ess is None:
            recall = r_opt or 0.0
        elif r_opt is None:
            recall = r_ess
        else:
            recall = (2 * r_ess + r_opt) / 3
        precision = len(done & (ess | opt)) / len(done) if done else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    parts = {"recall": recall, "precision": precision, "f1": f1, "cost_ratio": cost_ratio}
    main = recall if metric == "recall" else f1
    return main - cost_weight * cost_ratio, parts


def at_or_below(code: str, gold: str) -> bool:
    """Whether ``code`` is ``gold`` or lies below it in the ICD-10 hierarchy.

    A 3-character gold stands for its whole category; a gold ending in ``.9`` ("unspecified") stands
    for its category too, since every sibling is a more specific form of it (I60.2, subarachnoid
    haemorrhage from the anterior communicating artery, is a subarachnoid haemorrhage, I60.9);
    any other gold covers its own extensions (M00.0 covers M00.05). WHO ICD-10 conventions
    (Volume 2, 2019: ".9" is "unspecified", ".8" "other specified").
    """
    if code == gold:
        return True
    cat = category(gold)
    if len(gold) == 3 or gold.endswith(".9"):
        return category(code) == cat
    return code.startswith(gold)


def diagnosis_match(
    predicted: str | None,
    gold: str,
    blocks: Mapping[str, str],
    must_not_miss: bool = False,
    distinct: Collection[str] = (),
) -> float:
    """How well a final code matches the gold, before the evidence factor.

    - 1.0: the gold, or a code at or below it (:func:`at_or_below`) that is consistent with the
      case, i.e. not itself listed in ``distinct`` (the case's other differential entries: a
      code the case names as a different diagnosis is not a more specific form of the gold);
    - 0.6: another code of the gold's 3-character category; 0.3: another code of its block;
    - 0.0: anything else, and any partial match when the gold is must-not-miss: confusing SAH with
      an ischaemic stroke, ectopic pregnancy with a miscarriage or torsion with epididymitis is a
      dangerous miss, not a near miss (the record flags it ``dangerous_miss``).

    Args:
        predicted: The doctor's final code (None when none was given).
        gold: The case's gold code.
        blocks: Code -> ICD-10 block (from the diagnosis catalogue; codes it lacks take their
            innermost WHO ICD-10 2019 block, :func:`clinic_env.schema.icd10.block`).
        must_not_miss: Whether the gold is a must-not-miss diagnosis.
        distinct: Codes the case lists as different diagnoses (its differential minus the gold).
    """
    if predicted is None:
        return 0.0
    if at_or_below(predicted, gold) and (predicted == gold or predicted not in distinct):
        return 1.0
    if must_not_miss:
        return 0.0
    if category(predicted) == category(gold):
        return 0.6
    # Codes outside the catalogue (text mode answers, vocabulary golds) take their WHO block.
    block = blocks.get(predicted) or icd10_block(predicted)
    if block is not None and block == (blocks.get(gold) or icd10_block(gold)):
        return 0.3
    return 0.0


def evidence_share(alternatives: Sequence[Sequence[str]], obtained: Collection[str]) -> float:
    """Share of the best confirmatory alternative that was obtained: max over alternatives of
    |alternative & obtained| / |alternative| (1.0 when the case names no evidence)."""
    if not alternatives:
        return 1.0
    return max(sum(1 for k in alt if k in obtained) / len(alt) for alt in alternatives)


def diagnosis_reward(match: float, evidence: float, floor: float = 0.0) -> float:
    """The diagnosis component: ICD-10 match x (floor + (1 - floor) x share of a confirmatory
    evidence set obtained).

    With the default ``floor`` 0, a right label with none of the evidence that confirms it (stroke
    without imaging, meningitis without a lumbar puncture, NSTEMI without troponin) earns 0 and is
    flagged ``unsupported_diagnosis``; with half of the best alternative it earns half. A training
    curriculum may set ``RewardConfig.evidence_floor`` (e.g. 0.25) so that the label alone earns a
    little: a learner then finds the label before the evidence.
    """
    share = floor + (1.0 - floor) * min(1.0, max(0.0, evidence))
    return float(min(1.0, max(0.0, match)) * share)


def rubric_score(items: Sequence[RubricItem], verdicts: Mapping[int, bool | None]) -> tuple[float, dict[str, int]]:
    """HealthBench score: points of met items (negatives included) / sum of positive points, in [0, 1].

    Args:
        items: The rubric items.
        verdicts: Item index -> True (met), False (not met) or None (judgement failed). Items with no
            verdict or a failed one are left out of both sums and counted as ``failed``.

    Returns:
        The score (0 when no positive item was judged) and counts ``met``, ``not_met``, ``failed``.
    """
    achieved = 0
    possible = 0
    counts = {"met": 0, "not_met": 0, "failed": 0}
    for i, item in enumerate(items):
        verdict = verdicts.get(i)
        if verdict is None:
            counts["failed"] += 1
            continue
        counts["met" if verdict else "not_met"] += 1
        if item.points > 0:
            possible += item.points
        if verdict:
            achieved += item.points
    score = achieved / possible if possible else 0.0
    return float(min(1.0, max(0.0, score))), counts
