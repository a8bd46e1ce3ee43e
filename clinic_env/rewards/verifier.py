"""The step verifier: flags each doctor step's violations (Baichuan-M3's SPAR step penalties).

Every doctor step gets a list of violation types; its SPAR multiplier is
``gamma = min(lambda_v for v in violations)`` (1 when there are none). Rules, all per step:

- ``repeated_question``: asking an item already answered clearly (re-asking after a vague,
  withheld or contradictory answer is clarification, not repetition);
- ``repeated_test``: ordering a test already ordered;
- ``irrelevant_question``: a symptom or presenting-complaint question that bears on none of the
  diagnoses the case asks to consider (neither a feature of its differential in the catalogue nor
  in the presentation's guideline checklist nor a fact of the case); background history (past
  history, medication, allergies, social, family, obstetric) is always relevant;
- ``premature_diagnosis``: closing the history having elicited less than a share (default 0.3) of
  the case's critical facts, or giving the final diagnosis without any of the case's essential
  tests;
- ``unsafe_action``: ordering a test the case marks as contraindicated for this patient;
- ``overlong_text``: a text-mode utterance longer than ``max_text_chars``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator

from clinic_env.schema.case import Case
from clinic_env.schema.catalogue import Catalogue

__all__ = ["VIOLATION_TYPES", "StepVerifier", "VerifierConfig", "step_gamma"]

VIOLATION_TYPES = (
    "repeated_question", "repeated_test", "irrelevant_question", "premature_diagnosis",
    "unsafe_action", "overlong_text",
)
_BACKGROUND = frozenset({"pmh", "meds", "allergy", "social", "family", "obgyn"})


class VerifierConfig(BaseModel):
    """Multipliers lambda_v in (0, 1) and thresholds of the step verifier."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lambdas: dict[str, float] = Field(default_factory=lambda: {
        "repeated_question": 0.1, "repeated_test": 0.3, "irrelevant_question": 0.7,
        "premature_diagnosis": 0.3, "unsafe_action": 0.1, "overlong_text": 0.5,
    })
    premature_history_share: float = Field(default=0.3, ge=0, le=1)
    max_text_chars: int = Field(default=600, ge=1)

    @field_validator("lambdas")
    @classmethod
    def _valid(cls, value: dict[str, float]) -> dict[str, float]:
        for name, lam in value.items():
            if name not in VIOLATION_TYPES:
                raise ValueError(f"unknown violation type {name!r}; expected one of {VIOLATION_TYPES}")
            if not 0.0 < lam < 1.0:
                raise ValueError(f"lambda for {name} must be in (0, 1), got {lam}")
        return {**dict.fromkeys(VIOLATION_TYPES, 0.5), **value}


def step_gamma(violations: Iterable[str], lambdas: Mapping[str, float]) -> float:
    """SPAR multiplier of a step: the smallest lambda of its violations, 1.0 when there are none."""
    return min((lambdas[v] for v in violations), default=1.0)


class StepVerifier:
    """Checks doctor steps of one episode at a time (call :meth:`start` at each reset)."""

    def __init__(self, catalogue: Catalogue, config: VerifierConfig | None = None) -> None:
        self.cat = catalogue
        self.config = config or VerifierConfig()
        self.relevant: frozenset[str] = frozenset()
        self.case: Case | None = None

    def start(self, case: Case) -> None:
        """Prepare for an episode of ``case``: work out which questions bear on its differential."""
        self.case = case
        relevant: set[str] = set(case.history)
        for entry in case.differential:
            dx = self.cat.diagnoses.get(entry.code)
            if dx is not None:
                relevant.update(dx.features)
        pres = self.cat.presentations.get(case.presenting_complaint)
        if pres is not None:
            relevant.update(pres.history)
        relevant.update(h for h, item in self.cat.history.items() if item.category in _BACKGROUND)
        self.relevant = frozenset(relevant)

    def ask(self, history_id: str, times_asked_before: int, last_unclear: bool) -> list[str]:
        """Violations of asking ``history_id``."""
        out = []
        if times_asked_before and not last_unclear:
            out.append("repeated_question")
        if history_id not in self.relevant:
            out.append("irrelevant_question")
        return out

    def order(self, test_id: str, ordered_before: bool) -> list[str]:
        """Violations of ordering ``test_id``."""
        assert self.case is not None
        out = ["repeated_test"] if ordered_before else []
        if test_id in self.case.contraindicated_tests:
            out.append("unsafe_action")
        return out

    def close_history(self, credit: Mapping[str, float]) -> list[str]:
        """Violations of ending the history with the given disclosure credit."""
        assert self.case is not None
        critical = [k for k, f in self.case.history.items() if f.criticality == 2 and k != self.case.presenting_complaint]
        if not critical:
            return []
        share = sum(min(credit.get(k, 0.0), 1.0) for k in critical) / len(critical)
        return ["premature_diagnosis"] if share < self.config.premature_history_share else []

    def final_diagnosis(self, ordered: Iterable[str]) -> list[str]:
        """Violations of giving the final diagnosis after ordering ``ordered``."""
        assert self.case is not None
        essential = set(self.case.essential_tests)
        return ["premature_diagnosis"] if essential and not essential & set(ordered) else []

    def text(self, utterance: str | None) -> list[str]:
        """Violations of a text-mode utterance."""
        return ["overlong_text"] if utterance and len(utterance) > self.config.max_text_chars else []
