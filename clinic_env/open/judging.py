"""The end of an open-mode episode: verdict, coverage, rubric, rewards and the record fields.

:class:`JudgingMixin` is the part of :class:`~clinic_env.envs.open.OpenConsultationEnv` that runs
once the doctor has named a diagnosis (or run out of turns): the ICD-10 verdict or the moderator,
the examiner's coverage and rubric calls when an LLM plays it, then the reward components of
:func:`clinic_env.open.grading.open_components` and the episode's record fields. Kept apart from
the turn-taking code so that each stays readable; it has no state of its own (the attributes it
uses are declared below and set by the env's ``reset``).
"""

from __future__ import annotations

from typing import Any

from clinic_env.envs.setup import EnvSetup
from clinic_env.open.grading import (
    Verdict,
    icd10_verdict,
    needs_judge,
    open_components,
    parse_coverage,
    parse_yes_no,
    rubric_result,
)
from clinic_env.records import totals_from
from clinic_env.rewards.config import RewardConfig
from clinic_env.schema.case import Case
from clinic_env.schema.catalogue import Catalogue
from clinic_env.schema.rubric import RubricItem
from clinic_env.schema.vocabulary import map_diagnosis

__all__ = ["JudgingMixin"]


class JudgingMixin:
    """Verdict, coverage, rubric, rewards and record fields of an open-mode episode."""

    case: Case | None
    catalogue: Catalogue
    config: RewardConfig
    setup: EnvSetup
    persona: Any
    protocol: str
    roles: dict[str, str]
    agents: list[str]
    agent_selection: str
    rewards: dict[str, float]
    terminations: dict[str, bool]
    transcript: list[dict[str, Any]]
    asked: list[str]
    ordered: list[str]
    _order_turn: dict[str, int]
    guard_log: list[dict[str, Any]]
    doctor_turns: int
    diagnosis_text: str | None
    diagnosis_code: str | None
    verdict: Verdict | None
    coverage: dict[str, Any]
    end_reason: str | None
    errors: list[str]
    components: dict[str, float]
    parts: dict[str, float]
    rubric_counts: dict[str, int]
    _judged: dict[int, bool]
    _elicited: tuple[list[str], str]
    _diagnosed: bool
    _reask: str | None

    def _select(self, agent: str, task: str) -> None:
        raise NotImplementedError

    def _log(self, role: str, name: str, content: str) -> None:
        raise NotImplementedError

    def fact_texts(self) -> dict[str, str]:
        """The case's facts the coverage task judges (the presenting complaint left out)."""
        assert self.case is not None
        return {h: f.text for h, f in self.case.history.items() if h != self.case.presenting_complaint}

    def _judge(self) -> None:
        assert self.case is not None and self.diagnosis_text is not None
        verdict, code, detail = icd10_verdict(self.diagnosis_text, self.case, self.catalogue)
        self.diagnosis_code = code
        gold_maps = self.case.gold_text is None or map_diagnosis(self.case.gold_text,
                                                                  self.case.demographics.age_band).mapped
        if verdict is not None and gold_maps:
            self.verdict = verdict
            self._after_verdict(diagnosed=True)
        elif self.roles["moderator"] == "agent":
            self._select("examiner", "moderator")
        else:
            self.verdict = Verdict("unmapped", False, 0.0, code, detail)
            self._after_verdict(diagnosed=True)

    def _moderator(self, text: str) -> None:
        said = parse_yes_no(text)
        if said is None and self._reask is None:
            self._reask = "(Please answer with one word: Yes or No.)"
            return
        yes = bool(said)
        self._log("moderator", "examiner", text[:500])
        self.verdict = Verdict("moderator", yes, 1.0 if yes else 0.0, self.diagnosis_code,
                               f"moderator said {text[:200]!r}" + (" (unreadable: counted as No)" if said is None else ""))
        self._after_verdict(diagnosed=True)

    def _after_verdict(self, diagnosed: bool) -> None:
        self._diagnosed = diagnosed
        if self.roles["examiner"] == "agent":
            self._select("examiner", "coverage")
        else:
            self._finish([h for h in self.asked if h in self.fact_texts()], "parser")

    def _coverage(self, text: str) -> None:
        ids = list(self.fact_texts())
        found = parse_coverage(text, ids)
        if found is None:
            self._elicited = ([h for h in self.asked if h in ids], "parser (examiner reply unreadable)")
        else:
            self._elicited = ([h for h in ids if h in found], "examiner")
        if self.judge_items():
            self._select("examiner", "grade")
        else:
            self._finish(*self._elicited)

    def rubric_items(self) -> tuple[RubricItem, ...]:
        """The rubric of the episode: the case's items and the general banks given."""
        assert self.case is not None
        return (*self.case.rubric, *self.setup.general_rubric)

    def judge_items(self) -> dict[str, str]:
        """Rubric items only an LLM can judge (no rule check, not about the differential), by key ``rN``."""
        return {f"r{i}": item.criterion for i, item in enumerate(self.rubric_items()) if needs_judge(item)}

    def _grade(self, text: str) -> None:
        found = parse_coverage(text, list(self.judge_items()))
        if found is not None:
            self._judged = {int(k[1:]): k in found for k in self.judge_items()}
        self._finish(*self._elicited)

    def _finish(self, elicited: list[str], method: str) -> None:
        assert self.case is not None and self.verdict is not None
        v = self.verdict
        comps, parts = open_components(self.case, self.catalogue, self.config, elicited=elicited,
                                       ordered=self.ordered, match=v.match if self._diagnosed else 0.0,
                                       correct=v.correct, diagnosed=self._diagnosed)
        # A moderator's Yes to words with no code counts as the gold for the rubric's final-diagnosis checks.
        final = (v.code or (self.case.gold_diagnosis if v.correct else None)) if self._diagnosed else None
        score, counts = rubric_result(self.rubric_items(), self.asked, self.ordered, self._order_turn,
                                      parts["cost_usd"], final, self._judged)
        comps["rubric"] = score
        self.rubric_counts = counts
        self.parts = parts
        self.coverage = {"elicited": elicited, "share": parts["coverage"], "method": method,
                         "facts": len(self.fact_texts())}
        for key, value in comps.items():
            self.components[key] = self.components.get(key, 0.0) + value
        self.rewards["doctor"] += self.config.scalar(comps)
        self.end_reason = "diagnosis" if self._diagnosed else "turn_limit"
        self.terminations = dict.fromkeys(self.agents, True)
        self.agent_selection = "doctor"


    def record_fields(self, brief: bool = False) -> dict[str, Any]:
        """The open-mode fields of the episode record (see docs/OPEN_MODE.md)."""
        assert self.case is not None
        v = self.verdict
        flags = []
        if v is not None and self.case.gold_diagnosis in self.case.must_not_miss and not v.correct:
            flags.append("dangerous_miss")
        if v is not None and v.match > 0 and self.parts.get("evidence", 1.0) == 0:
            flags.append("unsupported_diagnosis")
        out: dict[str, Any] = {
            "mode": "open", "protocol": self.protocol, "end_reason": self.end_reason,
            "diagnosis_text": self.diagnosis_text, "diagnosis_code": self.diagnosis_code,
            "diagnosis_correct": bool(v.correct) if v is not None else False,
            "verdict": {"method": v.method, "detail": v.detail} if v is not None else None,
            "doctor_turns": self.doctor_turns, "coverage": dict(self.coverage),
        }
        if brief:
            return out
        total = sum(self.config.weight(k) * x for k, x in self.components.items())
        out.update(
            case_id=self.case.id, specialty=self.case.specialty, persona=getattr(self.persona, "id", None),
            gold_diagnosis=self.case.gold_diagnosis or None, final_diagnosis=self.diagnosis_code,
            messages=[dict(e) for e in self.transcript], guard=[dict(g) for g in self.guard_log],
            totals=totals_from(total, self.components), flags=flags, evidence=self.parts.get("evidence"),
            tests_ordered=list(self.ordered), cost_usd=float(self.parts.get("cost_usd", 0.0)),
            questions=sum(1 for e in self.transcript[1:] if e["role"] == "patient"),
            terminated=self.end_reason in ("diagnosis", "turn_limit"),
            truncated=self.end_reason in ("llm_error", "error"), errors=list(self.errors),
            catalogue=self.catalogue.fingerprint(), rubric_counts=dict(self.rubric_counts),
            order_cycles={k: 2 * t for k, t in self._order_turn.items()},
        )
        return out

