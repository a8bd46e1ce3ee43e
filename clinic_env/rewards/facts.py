"""Fact-aware reward (after Baichuan-M3's Fact-Aware RL), adapted to the consultation.

In text mode the doctor says things about *this* patient ("your ECG shows ST elevation", "no
fever, but the troponin is raised"). Each utterance is split into atomic claims; each claim is
checked against the case:

- **rules** when it names a catalogue item: a history item is *supported* when its asserted
  presence (negation words flip it) matches the case (an item the case does not list is absent),
  a test when its asserted abnormality matches the case's result (an unlisted test is normal);
- otherwise an optional **judge** (e.g. :class:`LLMClaimJudge` wrapping the LLM grader), cached
  by claim text; without one the claim stays *unverifiable*.

    R_fact = -sum(w_k I_k) / (sum(w_k) + eps)

over the claims, I_k = 1 for refuted claims (and unverifiable ones when configured), w_k the
criticality of the fact a claim names (1 otherwise). It is gated by the task reward x (normalised
to [0, 1]) so that factuality only bites once the task is being solved:

    R = R_task + lambda(x) * R_fact,   lambda(x) = sigmoid(k (x - mu) / Delta)

(defaults mu 0.85, Delta 0.2, k 10). The episode's hallucination rate is refuted / claims.
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from clinic_env.rewards.grader import LLMGrader
from clinic_env.schema.case import Case
from clinic_env.schema.catalogue import Catalogue
from clinic_env.schema.rubric import RubricItem

__all__ = ["Claim", "FactChecker", "FactConfig", "LLMClaimJudge", "fact_gate", "fact_reward", "split_claims"]

Verdict = Literal["supported", "refuted", "unverifiable"]
Judge = Callable[[str, Case], "Verdict | None"]

_SPLIT = re.compile(r"(?<=[.!?;])\s+|\s*;\s*|,\s+(?:and|but)\s+|\s+but\s+")
_NEGATION = re.compile(
    r"\b(no|not|denies|denied|without|negative|absent|never|none|nil|normal|unremarkable|ruled out|"
    r"within (?:normal|reference) (?:limits|range)|isn't|wasn't|doesn't|hasn't|haven't)\b", re.I)


class FactConfig(BaseModel):
    """Settings of the fact-aware reward (off unless ``enabled``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    mu: float = Field(default=0.85, ge=0, le=1)
    delta: float = Field(default=0.2, gt=0)
    k: float = Field(default=10.0, gt=0)
    eps: float = Field(default=1e-6, gt=0)
    include_unverifiable: bool = False


@dataclass(frozen=True)
class Claim:
    """One atomic claim, the catalogue item it names (if any) and its verdict."""

    text: str
    verdict: Verdict
    item: str | None = None
    weight: float = 1.0


def split_claims(text: str) -> list[str]:
    """Atomic statements in an utterance: sentences and clauses, questions and fragments dropped."""
    parts = [p.strip(" ,.") for p in _SPLIT.split(text or "")]
    return [p for p in parts if len(p.split()) >= 3 and not p.endswith("?")]


def fact_reward(claims: Sequence[Claim], include_unverifiable: bool = False, eps: float = 1e-6) -> float:
    """R_fact = -sum(w_k I_k) / (sum(w_k) + eps), in [-1, 0]; 0 when there are no claims."""
    total = sum(c.weight for c in claims)
    bad = sum(c.weight for c in claims
              if c.verdict == "refuted" or (include_unverifiable and c.verdict == "unverifiable"))
    return -bad / (total + eps) if claims else 0.0


def fact_gate(x: float, mu: float = 0.85, delta: float = 0.2, k: float = 10.0) -> float:
    """lambda(x) = sigmoid(k (x - mu) / delta)."""
    z = k * (x - mu) / delta
    return 1.0 / (1.0 + math.exp(-z)) if z > -60 else 0.0


@dataclass
class FactChecker:
    """Checks claims against a case: rules first, then an optional judge (cached by claim text).

    Args:
        catalogue: The env's catalogue (to recognise items named in a claim).
        judge: Decides claims that name no catalogue item; None leaves them unverifiable.
    """

    catalogue: Catalogue
    judge: Judge | None = None
    _cache: dict[tuple[str, str], Verdict] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        from clinic_env.text.match import CatalogueMatcher  # text mode's matcher: one alias table

        self.matcher = CatalogueMatcher(self.catalogue)

    def check(self, claim: str, case: Case) -> Claim:
        """The verdict on one claim about ``case``."""
        negated = bool(_NEGATION.search(claim))
        hx = self.matcher.find("history", claim)
        if hx:
            item = hx[0].item
            fact = case.history.get(item)
            truth = fact.present if fact is not None else item == case.presenting_complaint
            verdict: Verdict = "supported" if truth != negated else "refuted"
            return Claim(claim, verdict, item, float(fact.criticality) if fact else 1.0)
        tests = self.matcher.find("test", claim)
        if tests:
            item = tests[0].item
            finding = case.result(item)
            abnormal = finding.abnormal if finding is not None else False
            return Claim(claim, "supported" if abnormal != negated else "refuted", item, 2.0 if abnormal else 1.0)
        key = (case.id, claim.strip().lower())
        if key not in self._cache:
            decided = self.judge(claim, case) if self.judge is not None else None
            self._cache[key] = decided or "unverifiable"
        return Claim(claim, self._cache[key])

    def check_texts(self, texts: Iterable[str], case: Case) -> list[Claim]:
        """Every claim in the doctor's utterances."""
        return [self.check(c, case) for text in texts for c in split_claims(text)]


def _case_summary(case: Case) -> str:
    lines = [f"{case.demographics.age:g}-year-old {case.demographics.noun(0)}; {case.chief_complaint}"]
    lines += [f"- {k}: {'present' if f.present else 'absent'}: {f.text}" for k, f in case.history.items()]
    lines += [f"- {k}: {'abnormal' if r.abnormal else 'normal'}: {r.text}" for k, r in {**case.exam, **case.tests}.items()]
    return "\n".join(lines)


class LLMClaimJudge:
    """Judges a claim with the LLM grader: met = consistent with the case facts (supported), not
    met = refuted, failed judgement = unverifiable. Safe to call from inside a running event loop
    (the call runs on a private loop in a worker thread)."""

    def __init__(self, grader: LLMGrader) -> None:
        self.grader = grader

    def __call__(self, claim: str, case: Case) -> Verdict | None:
        item = RubricItem(criterion=f"The doctor's statement about this patient is consistent with the case facts: "
                                    f"\"{claim}\"", points=1)
        result: list[Verdict | None] = []

        def work() -> None:
            grade = asyncio.run(self.grader.agrade_item(_case_summary(case), item))
            result.append(None if grade.met is None else ("supported" if grade.met else "refuted"))

        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
        return result[0] if result else None
