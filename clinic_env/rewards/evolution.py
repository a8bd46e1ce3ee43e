"""Dynamic Rubric Evolution (Baichuan-M3's Mine-Verify-Inject), as data plus pure functions.

A rubric bank is the core items (each case's rubric and the general banks, fixed) plus **dynamic
items** that this module admits and retires. After every batch of episode records:

1. **Mine**: miners look at the episodes and propose candidate items for failure modes the rubric
   does not yet catch. Rule miners (structured mode): shotgun questioning, shotgun ordering,
   hedged differential, repetition, early closure; an LLM miner proposes items from transcripts
   (text mode; :mod:`clinic_env.rewards.llm_miner`).
2. **Verify**: a candidate type is admitted when its violation rate among the *top-quartile*
   episodes (by current reward: the ones a policy is being pushed towards) is at least
   ``admit_rate`` by the lower bound of a 95% Wilson interval: high reward won by gaming.
3. **Inject**: admitted items are scoped to the case they were seen in (thresholds depend on the
   case), up to ``max_per_case`` dynamic items per case. Items whose violation rate stays below
   ``retire_rate`` for ``retire_after`` rounds are retired.

Every change bumps the bank's version and is logged with its evidence (JSONL). With a review
file, candidates that pass verification wait for a human ``accept``/``reject`` instead.

Dynamic items are rule items; the env checks them at the end of each episode and reports
``dynamic_rubric = sum(points of met items) / 10`` as a reward component (weight
``weights["dynamic_rubric"]``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from clinic_env.records import RecordLike
from clinic_env.rewards.checks import EpisodeView, evaluate_check
from clinic_env.schema.case import Case
from clinic_env.schema.errors import DataError
from clinic_env.schema.loading import parse_model, read_documents
from clinic_env.schema.rubric import Check, RubricItem

__all__ = [
    "RULE_MINERS",
    "Candidate",
    "DynamicBank",
    "DynamicItem",
    "EvolutionConfig",
    "episode_view",
    "evolve_step",
    "mine",
    "top_episodes",
    "wilson_lower",
]

POINT_SCALE = 10.0  # dynamic_rubric component = sum(points of met items) / POINT_SCALE


class DynamicItem(BaseModel):
    """An admitted dynamic rubric item, scoped to one case (or ``*`` for every case)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    case_id: str
    miner: str
    item: RubricItem
    admitted_round: int = Field(ge=0)
    quiet_rounds: int = Field(default=0, ge=0)
    evidence: dict[str, Any] = Field(default_factory=dict)


class DynamicBank(BaseModel):
    """A versioned set of dynamic items; saved as YAML (``kind: dynamic_rubric``)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["dynamic_rubric"] = "dynamic_rubric"
    version: int = Field(default=0, ge=0)
    round: int = Field(default=0, ge=0)
    items: list[DynamicItem] = Field(default_factory=list)
    retired: list[DynamicItem] = Field(default_factory=list)
    rejected: list[str] = Field(default_factory=list, description="Item ids a reviewer rejected.")

    def items_for(self, case_id: str) -> list[RubricItem]:
        """The dynamic rubric items that apply to ``case_id``."""
        return [d.item for d in self.items if d.case_id in (case_id, "*")]

    @property
    def label(self) -> str:
        """Version label recorded in episode records."""
        return f"dynamic@v{self.version}"

    def save(self, path: str | Path) -> None:
        """Write the bank as YAML."""
        Path(path).write_text(yaml.safe_dump(self.model_dump(mode="json", exclude_none=True), sort_keys=False,
                                             allow_unicode=True), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> DynamicBank:
        """Read a bank written by :meth:`save`; a missing file gives an empty bank."""
        p = Path(path)
        if not p.exists():
            return cls()
        return parse_model(cls, read_documents(p)[0], str(p))


class EvolutionConfig(BaseModel):
    """Thresholds of the admission test, retirement and caps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    top_quantile: float = Field(default=0.75, ge=0, lt=1, description="Episodes above this reward quantile are 'top'.")
    admit_rate: float = Field(default=0.3, gt=0, le=1, description="Wilson lower bound the violation rate must reach.")
    retire_rate: float = Field(default=0.05, ge=0, le=1, description="Violation rate under which an item is quiet.")
    retire_after: int = Field(default=3, ge=1, description="Quiet rounds before retirement.")
    max_per_case: int = Field(default=4, ge=1, description="Most dynamic items per case.")
    min_episodes: int = Field(default=4, ge=1, description="Fewest top episodes an admission may rest on.")


@dataclass
class Candidate:
    """A proposed item and, per episode record it was tested on, whether the episode violates it."""

    miner: str
    case_id: str
    item: RubricItem
    violated: dict[int, bool] = field(default_factory=dict)


def episode_view(record: RecordLike) -> EpisodeView:
    """Rebuild what rule checks look at from an episode record."""
    asked = {t["action"][4:] for t in record.get("turns", ()) if str(t.get("action", "")).startswith("ask:")}
    repeats = sum(
        sum(v in ("repeated_question", "repeated_test") for v in t.get("violations", ()))
        for t in record.get("turns", ())
    )
    return EpisodeView(asked, set(record.get("tests_ordered", ())), float(record.get("cost_usd", 0.0)),
                       tuple(record.get("differential", ())), record.get("final_diagnosis"), repeats)


def _item(criterion: str, points: int, segment: str, check: dict[str, Any], axis: str = "context_awareness") -> RubricItem:
    return RubricItem(criterion=criterion, points=points, tags=(f"axis:{axis}", f"segment:{segment}", "dynamic:mined"),
                      check=Check.model_validate(check))


def _shotgun_questioning(case: Case) -> RubricItem:
    limit = 2 * len(case.history)
    return _item(f"Asks more than {limit} distinct questions (shotgun questioning instead of a focused history)",
                 -8, "history", {"asked_count_gt": limit})


def _shotgun_ordering(case: Case) -> RubricItem:
    limit = len(set(case.essential_tests) | set(case.optional_tests)) + 4
    return _item(f"Orders more than {limit} distinct tests (shotgun ordering)", -8, "tests", {"ordered_count_gt": limit})


def _hedged_differential(case: Case) -> RubricItem:
    return _item("Lists more than 7 diagnoses in the differential (hedging instead of ranking)", -5, "differential",
                 {"differential_size_gt": 7}, axis="accuracy")


def _repetition(case: Case) -> RubricItem:
    return _item("Repeats questions already answered or tests already done more than twice", -5, "history",
                 {"repeats_gt": 2}, axis="communication")


def _early_closure(case: Case) -> RubricItem | None:
    if not case.essential_tests:
        return None
    return _item("Commits to a final diagnosis without any of the essential investigations (early closure)", -6,
                 "diagnosis", {"all_of": [{"diagnosed": True}, {"not": {"ordered_any": list(case.essential_tests)}}]},
                 axis="accuracy")


#: Rule miners: name -> builds the candidate item for a case (None when it cannot apply).
RULE_MINERS: dict[str, Callable[[Case], RubricItem | None]] = {
    "shotgun_questioning": _shotgun_questioning,
    "shotgun_ordering": _shotgun_ordering,
    "hedged_differential": _hedged_differential,
    "repetition": _repetition,
    "early_closure": _early_closure,
}


def mine(records: Sequence[RecordLike], cases: dict[str, Case],
         miners: Iterable[str] = tuple(RULE_MINERS)) -> list[Candidate]:
    """Run the rule miners over a batch: one candidate per (miner, case) with per-episode verdicts."""
    out: list[Candidate] = []
    views = [episode_view(r) for r in records]
    for name in miners:
        build = RULE_MINERS[name]
        for case_id, case in cases.items():
            item = build(case)
            if item is None or item.check is None:
                continue
            verdicts = {i: evaluate_check(item.check, views[i]) for i, r in enumerate(records)
                        if r.get("case_id") == case_id and not r.get("errors")}
            if verdicts:
                out.append(Candidate(name, case_id, item, verdicts))
    return out


def wilson_lower(k: int, n: int, z: float = 1.96) -> float:
    """Lower bound of the Wilson score interval for k successes in n trials (0 when n = 0)."""
    if n == 0:
        return 0.0
    p = k / n
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - margin) / (1 + z * z / n))


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def top_episodes(records: Sequence[RecordLike], quantile: float = 0.75) -> tuple[set[int], float]:
    """Indices of the error-free records whose total reward is at or above the quantile, and the cut."""
    rewards = {i: float(r.get("totals", {}).get("reward", 0.0)) for i, r in enumerate(records) if not r.get("errors")}
    cut = _quantile(list(rewards.values()), quantile) if rewards else 0.0
    return {i for i, r in rewards.items() if r >= cut}, cut


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60]


def evolve_step(
    bank: DynamicBank,
    records: Sequence[RecordLike],
    cases: dict[str, Case],
    config: EvolutionConfig | None = None,
    candidates: Sequence[Candidate] | None = None,
    review: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """One Mine-Verify-Inject round: update ``bank`` in place and return the change-log entries.

    Args:
        bank: The bank to update.
        records: The batch's episode records (scored under the current bank).
        cases: The cases by id.
        config: Thresholds (default :class:`EvolutionConfig`).
        candidates: Pre-mined candidates (default: :func:`mine` with every rule miner).
        review: Optional human decisions, item id -> ``accept``/``reject``/``pending``. With a
            review mapping, verified candidates are only admitted once accepted; new ones are
            added to it as ``pending``.
    """
    cfg = config or EvolutionConfig()
    bank.round += 1
    log: list[dict[str, Any]] = []
    top, cut = top_episodes(records, cfg.top_quantile)
    cands = list(candidates) if candidates is not None else mine(records, cases)
    existing = {(d.miner, d.case_id) for d in bank.items} | {(d.miner, d.case_id) for d in bank.retired}

    by_miner: dict[str, list[Candidate]] = {}
    for cand in cands:
        by_miner.setdefault(cand.miner, []).append(cand)
    for miner, group in by_miner.items():
        flags = [v for c in group for i, v in c.violated.items() if i in top]
        k, n = sum(flags), len(flags)
        lower = wilson_lower(k, n)
        if n < cfg.min_episodes or lower < cfg.admit_rate:
            continue
        for cand in group:
            top_hits = [i for i, v in cand.violated.items() if v and i in top]
            if not top_hits or (miner, cand.case_id) in existing:
                continue
            item_id = f"dyn-{_slug(miner)}-{_slug(cand.case_id) or 'all'}"
            if item_id in bank.rejected:
                continue
            if review is not None and review.get(item_id) != "accept":
                if review.get(item_id) == "reject":
                    bank.rejected.append(item_id)
                else:
                    review.setdefault(item_id, "pending")
                continue
            if sum(d.case_id == cand.case_id for d in bank.items) >= cfg.max_per_case:
                log.append({"round": bank.round, "action": "skipped_cap", "id": item_id, "case_id": cand.case_id})
                continue
            evidence = {"miner_violation_rate_top": k / n, "wilson_lower": round(lower, 4), "top_episodes": n,
                        "reward_cut": cut, "episodes": [records[i].get("seed") for i in top_hits][:10]}
            item = cand.item.model_copy(update={"id": item_id})
            bank.items.append(DynamicItem(id=item_id, case_id=cand.case_id, miner=miner, item=item,
                                          admitted_round=bank.round, evidence=evidence))
            log.append({"round": bank.round, "action": "admit", "id": item_id, "miner": miner, "case_id": cand.case_id,
                        "criterion": item.criterion, "points": item.points, "evidence": evidence})
    log += _retire(bank, records, cfg)
    if any(entry["action"] in ("admit", "retire") for entry in log):
        bank.version += 1
    for entry in log:
        entry["bank_version"] = bank.version
    return log


def _retire(bank: DynamicBank, records: Sequence[RecordLike], cfg: EvolutionConfig) -> list[dict[str, Any]]:
    log: list[dict[str, Any]] = []
    views = {i: episode_view(r) for i, r in enumerate(records) if not r.get("errors")}
    keep: list[DynamicItem] = []
    for dyn in bank.items:
        seen = [evaluate_check(dyn.item.check, v) for i, v in views.items()
                if dyn.item.check is not None and dyn.case_id in (records[i].get("case_id"), "*")]
        if dyn.admitted_round == bank.round or not seen:
            keep.append(dyn)
            continue
        rate = sum(seen) / len(seen)
        dyn.quiet_rounds = dyn.quiet_rounds + 1 if rate < cfg.retire_rate else 0
        if dyn.quiet_rounds >= cfg.retire_after:
            bank.retired.append(dyn)
            log.append({"round": bank.round, "action": "retire", "id": dyn.id, "case_id": dyn.case_id,
                        "evidence": {"violation_rate": rate, "episodes": len(seen), "quiet_rounds": dyn.quiet_rounds}})
        else:
            keep.append(dyn)
    bank.items = keep
    return log


def append_log(entries: Iterable[dict[str, Any]], path: str | Path) -> None:
    """Append change-log entries to a JSONL file."""
    with Path(path).open("a", encoding="utf-8") as fh:
        for entry in entries:
            fh.write(json.dumps(entry, ensure_ascii=False) + "\n")


def load_review(path: str | Path) -> dict[str, str]:
    """Read a review file (item id -> accept/reject/pending); a missing file is empty."""
    p = Path(path)
    if not p.exists():
        return {}
    data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    decisions = data.get("decisions", {}) if isinstance(data, dict) else None
    if not isinstance(decisions, dict):
        raise DataError.single(p, "decisions", "expected a mapping of item id -> accept/reject/pending", data)
    bad = {k: v for k, v in decisions.items() if v not in ("accept", "reject", "pending")}
    if bad:
        raise DataError.single(p, "decisions", "each decision must be accept, reject or pending", bad)
    return {str(k): str(v) for k, v in decisions.items()}


def save_review(review: dict[str, str], path: str | Path) -> None:
    """Write a review file for a human to edit (set each pending id to accept or reject)."""
    Path(path).write_text(yaml.safe_dump({"decisions": dict(sorted(review.items()))}), encoding="utf-8")
