"""The consultation engine: state, legality, transitions and rewards of one episode.

The AEC env, the native Parallel env and the single-agent wrapper are thin shells around
:class:`Consultation`, so they cannot drift apart. A cycle is doctor -> patient -> examiner; the
legal actions of a cycle are fixed when it begins, which makes applying the three actions in turn
(AEC) or together (Parallel) equivalent. Speech alternates: a question asked in one cycle is
answered in the next, while the doctor waits.

Validity rules the engine keeps (DESIGN.md §4): outcome rewards are paid when the episode ends, so
nothing the doctor receives before its final diagnosis depends on the gold; a consultation cut
short without a diagnosis scores as a failed one; answered questions and resulted tests are masked
unless ``allow_repeats``; a test the case does not list returns a result consistent with the gold
(:mod:`clinic_env.generate.profile`); samples need their procedure; bedside initial assessments are
legal from the first cycle and timed by cycle number.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from clinic_env.core.actions import (
    COMMIT_DIFFERENTIAL,
    END_SEGMENT,
    PATIENT_MODES,
    VERDICTS,
    WAIT,
    ActionTable,
)
from clinic_env.core.layout import ObservationLayout
from clinic_env.core.speech import render_answer
from clinic_env.core.text import sanitise
from clinic_env.core.transcript import Transcript
from clinic_env.patients.session import PatientSession, is_direct
from clinic_env.rewards.checks import EpisodeView, evaluate_check
from clinic_env.rewards.config import RewardConfig
from clinic_env.rewards.registry import COMPONENTS
from clinic_env.rewards.segment import (
    diagnosis_match,
    diagnosis_reward,
    differential_reward,
    evidence_share,
    history_reward,
    rubric_score,
    tests_reward,
)
from clinic_env.rewards.verifier import StepVerifier, step_gamma
from clinic_env.schema.case import Case, Finding
from clinic_env.schema.catalogue import Catalogue
from clinic_env.schema.persona import Persona
from clinic_env.schema.rubric import RubricItem

if TYPE_CHECKING:
    from clinic_env.rewards.facts import Judge

__all__ = ["AGENTS", "DOCTOR", "EXAMINER", "PATIENT", "SEGMENTS", "Budgets", "Consultation", "action_index"]

AGENTS = ("doctor_0", "patient_0", "examiner_0")
DOCTOR, PATIENT, EXAMINER = 0, 1, 2
SEGMENTS = ("history", "differential", "tests", "diagnosis")
HISTORY, DIFFERENTIAL, TESTS, DIAGNOSIS = 0, 1, 2, 3
_LITERACY = {"low": 0.0, "medium": 0.5, "high": 1.0}
_VIEWER = ("doctor", "patient", "examiner")
_OUTCOMES = tuple(name for name, c in COMPONENTS.items() if c.paid == "end")
# The flat infos' reward keys, built once: flat_info copies the zero template every step.
_REWARD_KEYS = {name: f"reward/{name}" for name in COMPONENTS}
_FLAT_ZERO: dict[str, object] = dict.fromkeys(_REWARD_KEYS.values(), 0.0)


@dataclass(frozen=True)
class Budgets:
    """Segment budgets (a curriculum option): the most distinct questions, differential entries and
    tests the doctor may use; when one is spent the segment's items are masked and only closing
    the segment (or, in the differential, committing) stays legal. None: no budget."""

    questions: int | None = None
    differential: int | None = None
    tests: int | None = None

    def __post_init__(self) -> None:
        for name in ("questions", "differential", "tests"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"budget {name!r} must be a positive integer or None, got {value!r}")


def action_index(action: object) -> int:
    """The integer action in ``action``, or -1 when it is not an integer.

    Accepted: Python ints (not bools), NumPy integer scalars, integral finite floats and one-element
    integer or float arrays holding such a value. Rejected (returned as -1, then treated as an
    illegal no-op): strings, bools, None, non-finite or fractional numbers and anything else, so that
    ``"3"``, ``True`` and ``1.7`` are never silently coerced and ``inf`` never raises.
    """
    if type(action) is int:  # the common case first (a bool is not an int here)
        return action
    if isinstance(action, np.ndarray):
        if action.size != 1 or action.dtype.kind not in "iuf":
            return -1
        action = action.reshape(()).item()
    if isinstance(action, (bool, np.bool_)):
        return -1
    if isinstance(action, (int, np.integer)):
        return int(action)
    if isinstance(action, (float, np.floating)):
        value = float(action)
        return int(value) if math.isfinite(value) and value.is_integer() else -1
    return -1


class Consultation:
    """One consultation's state machine (reused across episodes by calling :meth:`reset`)."""

    def __init__(
        self,
        catalogue: Catalogue,
        config: RewardConfig,
        general_rubric: Sequence[RubricItem] = (),
        max_cycles: int = 150,
        dynamic_items: Callable[[str], Sequence[RubricItem]] | None = None,
        case_items: Callable[[Case], Sequence[RubricItem]] | None = None,
        interruption_share: float | None = None,
        allow_repeats: bool = False,
        budgets: Budgets | None = None,
        results: Callable[[Case, str, Catalogue], Finding] | None = None,
    ) -> None:
        self.cat = catalogue
        self.table = ActionTable.from_catalogue(catalogue)
        self.layout = ObservationLayout(len(catalogue.history_ids), len(catalogue.test_ids), len(catalogue.diagnosis_codes))
        self.config = config
        self.general_rubric = tuple(general_rubric)
        self.max_cycles = max_cycles
        self.verifier = StepVerifier(catalogue, config.violations)
        # Dynamic rubric items (rewards/evolution.py) for a case id; rule-checked at episode end.
        self.dynamic_items = dynamic_items
        # Fact-aware reward: judge for claims naming no catalogue item (rewards/facts.py).
        self.fact_judge: Judge | None = None
        self.fact_checker: object | None = None
        # Extra core items for a case (the global principles that apply to it).
        self.case_items = case_items
        # Share of patient turns with an anxious aside (None: each persona's own rate).
        self.interruption_share = interruption_share
        self.allow_repeats = allow_repeats
        self.budgets = budgets or Budgets()
        self.differential_max = min(config.differential_max, self.budgets.differential or config.differential_max)
        self._results = results
        self._hx_index = {h: i for i, h in enumerate(catalogue.history_ids)}
        self._test_index = {t: i for i, t in enumerate(catalogue.test_ids)}
        self._blocks = {c: d.block for c, d in catalogue.diagnoses.items()}
        n, t = self.table.n, self.table
        tests = [catalogue.tests[tid] for tid in catalogue.test_ids]
        # Initial assessments (vital signs, ECG, SpO2, glucose, pregnancy test, GCS) are legal from the
        # first cycle; samples are legal once one of their procedures was done.
        self._initial = np.array([item.initial_assessment for item in tests], bool)
        self._requires = [tuple(self._test_index[r] for r in item.requires if r in self._test_index) for item in tests]
        self._unlocks: dict[int, list[int]] = {}
        for i, reqs in enumerate(self._requires):
            for r in reqs:
                self._unlocks.setdefault(r, []).append(i)
        self._wait_mask = np.zeros(n, np.int8)
        self._wait_mask[WAIT] = 1
        self._answer_mask = np.zeros(n, np.int8)
        self._answer_mask[t.answer0 : t.answer0 + len(PATIENT_MODES) - 1] = 1
        self._answer_mask_contra = self._answer_mask.copy()
        self._answer_mask_contra[t.answer("contradict")] = 1
        # A persona withholds only until asked twice or directly: then withholding is not legal.
        self._answer_masks_asked: tuple[np.ndarray, np.ndarray] = (self._answer_mask.copy(),
                                                                   self._answer_mask_contra.copy())
        for m in self._answer_masks_asked:
            m[t.answer("withhold")] = 0
        self._verdict_mask = np.zeros(n, np.int8)
        self._verdict_mask[t.verdict0 : t.verdict0 + len(VERDICTS)] = 1
        self._doctor_mask = np.zeros(n, np.int8)
        self.masks: list[np.ndarray] = [self._wait_mask] * 3
        self.case: Case | None = None

    # ----------------------------------------------------------------------------- episode set-up
    def reset(self, case: Case, persona: Persona, rng: np.random.Generator) -> None:
        """Start a new episode of ``case`` with ``persona``, drawing noise from ``rng``."""
        lay = self.layout
        self.case, self.persona, self.rng = case, persona, rng
        self.segment = HISTORY
        self.cycle = 0
        self.asked: dict[str, int] = {}
        self.answered: set[str] = set()
        self.credit: dict[str, float] = {}
        self.heard: dict[str, float] = {}
        self.contradiction_used = False
        self.pending: str | None = None
        self.said: dict[int, str] = {}
        self.pending_direct = False
        self.patient = PatientSession(case, persona, self.cat, rng, self.interruption_share)
        self.ordered: list[str] = []
        self.order_cycle: dict[str, int] = {}
        self.violations: list[list[str]] = []
        self._repeats = 0
        self._view: EpisodeView | None = None
        self.dynamic_met: list[str | None] = []
        self.claims: list[object] = []
        self.step_violations: list[str] = []
        self.flags: list[str] = []
        self.cost = 0.0
        self.differential: list[str] = []
        self.final_dx: str | None = None
        self.rubric = (*case.rubric, *self.general_rubric, *(self.case_items(case) if self.case_items else ()))
        self.queue: deque[int] = deque()
        self.verdicts: dict[int, bool | None] = {}
        # Verdicts given ahead for queued items (a batch grader's one reply for a segment): played
        # as soon as the item reaches the head of the queue, without another examiner turn.
        self.pregraded: dict[int, str] = {}
        self.segment_scores: dict[str, float] = {}
        self.terminated = self.truncated = False
        self.end_reason: str | None = None
        self.turns: list[dict[str, object]] = []
        self.transcript = Transcript()
        self.verifier.start(case)
        gold = case.gold_diagnosis
        dx = self.cat.diagnoses.get(gold)
        self.gold_must_not_miss = gold in case.must_not_miss or bool(dx and dx.must_not_miss)
        # An emergency patient does not walk out: running out of patience is a safety event instead.
        self.emergency = case.setting == "emergency department" and self.gold_must_not_miss
        self.patience_exhausted = False
        n_h, n_t = lay.n_history, lay.n_tests
        self._ask_ok = np.ones(n_h, np.int8)
        self._done = np.zeros(n_t, bool)
        pub = np.zeros(lay.size, np.float32)
        pub[lay.AGE] = min(case.demographics.age / 100.0, 1.0)
        if case.demographics.sex_stated:  # sex not stated in the source: both slots stay 0
            pub[lay.SEX + (case.demographics.sex == "F")] = 1.0
        if case.presenting_complaint in self._hx_index:  # a case-specific (src.*) complaint has no slot
            pub[lay.hx_yes + self._hx_index[case.presenting_complaint]] = 1.0
        self.pub: np.ndarray = pub
        self._case_present = np.zeros(n_h, np.float32)
        for key, fact in case.history.items():
            if fact.present:
                self._case_present[self._hx_index[key]] = 1.0
        noise = persona.noise
        self._persona_vec = np.array(
            [noise.vague, noise.withholding, noise.contradiction, noise.tangential, persona.anxiety,
             persona.trust, persona.verbosity, _LITERACY[persona.literacy]], np.float32)
        self._enter_segment(HISTORY)
        demo = case.demographics
        self.transcript.add("all", f"[{case.setting}] {demo.age:g}-year-old {demo.noun(0)}"
                            if demo.age >= 16 else f"[{case.setting}] child aged {demo.age:g} years, with a {case.informant}")
        self.transcript.add("all", f"Patient: {sanitise(case.opening_statement)}")
        self.begin_cycle()

    # ----------------------------------------------------------------------------- legality
    def _orderable(self, i: int) -> bool:
        if self._done[i] and not self.allow_repeats:
            return False
        reqs = self._requires[i]
        return not reqs or any(self._done[r] for r in reqs)

    def _tests_left(self) -> bool:
        b = self.budgets.tests
        return b is None or len(self.ordered) < b

    def _questions_left(self) -> bool:
        b = self.budgets.questions
        return b is None or len(self.asked) < b

    def _enter_segment(self, segment: int) -> None:
        lay, t, m = self.layout, self.table, self._doctor_mask
        self.pub[lay.SEGMENT : lay.SEGMENT + 4] = 0.0
        self.segment = segment
        m[:] = 0
        if segment in (HISTORY, TESTS):
            m[END_SEGMENT] = 1
            if segment == HISTORY and self._questions_left():
                m[t.ask0 : t.order0] = self._ask_ok
            if self._tests_left():
                for i in range(lay.n_tests):
                    if (segment == TESTS or self._initial[i]) and self._orderable(i):
                        m[t.order0 + i] = 1
        elif segment in (DIFFERENTIAL, DIAGNOSIS):
            m[t.dx0 : t.answer0] = 1
        if segment <= DIAGNOSIS:
            self.pub[lay.SEGMENT + segment] = 1.0

    def begin_cycle(self) -> None:
        """Fix every agent's legal actions for the cycle about to start."""
        doctor_waits = self.pending is not None or self.final_dx is not None
        self.masks = [
            self._wait_mask if doctor_waits else self._doctor_mask,
            self._patient_mask() if self.pending is not None else self._wait_mask,
            self._verdict_mask if self.queue else self._wait_mask,
        ]
        self.pub[self.layout.PENDING] = 1.0 if self.pending is not None else 0.0

    def idle(self, agent: int) -> bool:
        """Whether ``agent`` can only wait this cycle."""
        mask = self.masks[agent]
        return mask is self._wait_mask or (bool(mask[WAIT]) and int(mask.sum()) == 1)

    def _patient_mask(self) -> np.ndarray:
        assert self.case is not None and self.pending is not None
        fact = self.case.history.get(self.pending)
        usable = fact is not None and fact.contradiction and not self.contradiction_used
        if self.pending_direct or self.asked.get(self.pending, 0) > 1:
            return self._answer_masks_asked[bool(usable)]
        return self._answer_mask_contra if usable else self._answer_mask

    # ----------------------------------------------------------------------------- acting
    def act(self, agent: int, action: object, text: str | None = None) -> tuple[dict[str, float], bool]:
        """Apply ``agent``'s action; ``text`` is what the agent said in text mode (the doctor's own
        wording of the question, the LLM patient's reply), recorded and shown instead of the
        rendered line.

        Returns:
            The reward components the action earned its agent, and whether it was illegal (an
            action outside the cycle's mask, or not an integer: see :func:`action_index`, is a
            penalised no-op).
        """
        if text is None:
            text = self.said.pop(agent, None)
        else:
            self.said.pop(agent, None)
        if agent == DOCTOR:
            self.step_violations = []
        a = action_index(action)
        mask = self.masks[agent]
        if not 0 <= a < mask.shape[0] or not mask[a]:
            self._log(agent, self._name(a), None, {"illegal": -self.config.illegal_penalty})
            return {"illegal": -self.config.illegal_penalty}, True
        if a == WAIT:
            return {}, False
        if agent == DOCTOR:
            return self._doctor(a, text), False
        if agent == PATIENT:
            self._answer(PATIENT_MODES[a - self.table.answer0], text)
        else:
            self._verdict(VERDICTS[a - self.table.verdict0])
        return {}, False

    def say(self, agent: int, text: str | None) -> None:
        """Words ``agent``'s next :meth:`act` carries when it gets none itself (text-mode envs
        reuse the structured envs' ``step`` and set the words here first); used once."""
        if text:
            self.said[agent] = text
        else:
            self.said.pop(agent, None)

    def _name(self, a: int) -> str:
        return self.table.names[a] if 0 <= a < self.table.n else f"<invalid {a}>"

    def _log(self, agent: int, action: str, text: str | None, components: dict[str, float],
             violations: list[str] | None = None, segment: str | None = None) -> None:
        # A step belongs to the segment it was taken in (a closing step to the segment it closes).
        turn: dict[str, object] = {"cycle": self.cycle, "agent": AGENTS[agent],
                                   "segment": segment or SEGMENTS[min(self.segment, 3)],
                                   "action": action, "text": text, "reward_components": components}
        if violations is not None:
            turn["violations"] = violations
        self.turns.append(turn)

    def result(self, test_id: str) -> Finding:
        """The result ``test_id`` gives in this case: the case's own, else one consistent with the gold."""
        assert self.case is not None
        found = self.case.result(test_id)
        if found is not None or (found := self.case.unlisted_finding()) is not None:
            return found
        if self._results is not None:
            return self._results(self.case, test_id, self.cat)
        from clinic_env.generate.profile import unlisted_result

        return unlisted_result(self.case, test_id, self.cat)

    def _doctor(self, a: int, said: str | None = None) -> dict[str, float]:
        t, lay, cat = self.table, self.layout, self.cat
        assert self.case is not None
        comps = {"step": -self.config.step_cost}
        name = t.names[a]
        segment = SEGMENTS[min(self.segment, 3)]
        text: str | None = None
        violations = self.verifier.text(said)
        m = self._doctor_mask
        if a in (END_SEGMENT, COMMIT_DIFFERENTIAL):
            if self.segment == HISTORY:
                violations += self.verifier.close_history(self.credit)
            self._close_segment()
            text = f"(ends the {SEGMENTS[self.segment - 1]} segment)"
        elif a < t.order0:
            hid = t.history_ids[a - t.ask0]
            i = a - t.ask0
            unclear = bool(self.pub[lay.hx_vague + i] or self.pub[lay.hx_withheld + i])
            violations += self.verifier.ask(hid, self.asked.get(hid, 0), unclear)
            self.pending = hid
            self.pending_direct = bool(said) and is_direct(said or "", cat.history[hid])
            self.asked[hid] = self.asked.get(hid, 0) + 1
            if not self.allow_repeats:
                m[a] = 0  # until answered unclearly (see _answer)
            if not self._questions_left():
                m[t.ask0 : t.order0] = 0
            text = sanitise(said) if said else cat.history[hid].question
            self.transcript.add("all", f"Doctor: {text}")
        elif a < t.dx0:
            i = a - t.order0
            tid = t.test_ids[i]
            item = cat.tests[tid]
            violations += self.verifier.order(tid, bool(self._done[i]))
            self.ordered.append(tid)
            self.order_cycle.setdefault(tid, self.cycle)
            self.cost += item.cost_usd
            finding = self.result(tid)
            text = sanitise(finding.text)
            self._done[i] = True
            grades = (lay.test_normal, lay.test_mild, lay.test_marked)
            for g in grades:
                self.pub[g + i] = 0.0
            self.pub[grades[finding.level] + i] = 1.0
            self.pub[lay.COST] = min(self.cost / self.case.budget_usd, self.config.cost_cap) / self.config.cost_cap
            if not self.allow_repeats:
                m[a] = 0
            for j in self._unlocks.get(i, ()):
                if (self.segment == TESTS or self._initial[j]) and self._orderable(j):
                    m[t.order0 + j] = 1
            if not self._tests_left():
                m[t.order0 : t.dx0] = 0
            self.transcript.add("all", f"Result - {item.label}: {text}")
        else:
            code = t.diagnosis_codes[a - t.dx0]
            label = cat.diagnoses[code].label
            if self.segment == DIFFERENTIAL:
                self.differential.append(code)
                self.pub[lay.dx_listed + a - t.dx0] = 1.0
                self.pub[lay.DIFF_SIZE] = len(self.differential) / self.differential_max
                m[a] = 0
                m[COMMIT_DIFFERENTIAL] = 1
                if len(self.differential) >= self.differential_max:
                    m[t.dx0 : t.answer0] = 0
                text = f"Differential #{len(self.differential)}: {label} ({code})"
            else:
                violations += self.verifier.final_diagnosis(self.ordered)
                self.final_dx = code
                self.pub[lay.GRADING] = 1.0
                self._score(DIAGNOSIS)
                self._queue_items(("diagnosis", None))
                self.segment = DIAGNOSIS + 1
                text = f"Final diagnosis: {label} ({code})"
            self.transcript.add("all", f"Doctor: {text}")
        if violations and self.config.violation_cost:
            lam = self.config.violations.lambdas
            comps["violation"] = -self.config.violation_cost * sum(1.0 - lam[v] for v in violations)
        if said and a >= t.order0:
            self.transcript.add("all", f"Doctor: {sanitise(said)}")
        self.violations.append(violations)
        self._repeats += violations.count("repeated_question") + violations.count("repeated_test")
        self._view = None  # the doctor's action changed what rule checks see
        self.step_violations = violations
        self._log(DOCTOR, name, text, comps, violations, segment)
        if said:
            self.turns[-1]["said"] = said
        return comps

    def step_gammas(self) -> list[float]:
        """SPAR multiplier of each doctor step so far."""
        lam = self.config.violations.lambdas
        return [step_gamma(v, lam) for v in self.violations]

    def _close_segment(self) -> None:
        seg = self.segment
        self._score(seg)
        self._queue_items((SEGMENTS[seg],))
        self._enter_segment(seg + 1)

    def _queue_items(self, segments: tuple[str | None, ...]) -> None:
        self.queue.extend(i for i, item in enumerate(self.rubric) if item.segment in segments)

    def evidence(self) -> set[str]:
        """Items obtained so far: history items the patient answered, tests and exams done."""
        return self.answered | set(self.ordered)

    def _score(self, seg: int) -> float:
        """Score segment ``seg`` as it stands and remember it (paid at episode end)."""
        case, cfg = self.case, self.config
        assert case is not None
        if seg == HISTORY:
            score = history_reward(case.history, self.credit, exclude=(case.presenting_complaint,))
        elif seg == DIFFERENTIAL:
            score = differential_reward(self.differential, case.gold_diagnosis, case.must_not_miss,
                                        cfg.differential_k, cfg.differential_extra_penalty)
        elif seg == TESTS:
            score, _ = tests_reward(self.ordered, case.essential_tests, case.optional_tests, self.cost,
                                    case.budget_usd, cfg.cost_weight, cfg.cost_cap, cfg.tests_metric)
        else:
            gold = case.gold_diagnosis
            distinct = {d.code for d in case.differential} - {gold}
            match = diagnosis_match(self.final_dx, gold, self._blocks, self.gold_must_not_miss, distinct)
            share = evidence_share(case.confirmatory_evidence(), self.evidence())
            score = diagnosis_reward(match, share, cfg.evidence_floor)
            if match > 0 and share == 0:
                self.flags.append("unsupported_diagnosis")
            if self.gold_must_not_miss and match < 1:
                self.flags.append("dangerous_miss")
            self.segment_scores["evidence"] = share
        self.segment_scores[SEGMENTS[seg]] = score
        return score

    def _answer(self, mode: str, said: str | None = None) -> None:
        hid, lay = self.pending, self.layout
        assert hid is not None and self.case is not None
        fact = self.case.history.get(hid)
        ans = render_answer(mode, self.cat.history[hid], fact, self.persona, self.rng, self.heard.get(hid))
        i = self._hx_index[hid]
        self.credit[hid] = max(self.credit.get(hid, 0.0), ans.credit)
        self.heard[hid] = ans.heard
        withheld = mode == "withhold"
        if not withheld:
            self.answered.add(hid)
        state = 3 if withheld else 2 if ans.unclear else 0 if ans.heard >= 1.0 else 1
        for k, off in enumerate((lay.hx_yes, lay.hx_no, lay.hx_vague, lay.hx_withheld)):
            self.pub[off + i] = 1.0 if k == state else 0.0
        # One clarification of an unclear answer stays legal (withheld items need asking twice).
        self._ask_ok[i] = 1 if self.allow_repeats or (ans.unclear and self.asked.get(hid, 0) < 2) else 0
        if self.segment == HISTORY and self._questions_left():
            self._doctor_mask[self.table.ask0 + i] = self._ask_ok[i]
        self.contradiction_used |= ans.contradiction
        # The patient session adds tangents, runs every non-scripted text (an LLM reply included)
        # through the leak guard and records what was disclosed.
        shown, extra = self.patient.speak(hid, mode, fact, ans.text, ans.credit, ans.contradiction,
                                          said if said else None, self.asked, self.cycle)
        text = sanitise(shown)
        self.transcript.add("all", f"Patient: {text}")
        aside = self.patient.interruption(self.asked, self.cycle)
        if aside is not None:
            extra["interruption"] = aside
            self.transcript.add("doctor", f"Patient (to the doctor): {sanitise(aside)}")
        self.pending = None
        self.pending_direct = False
        self._log(PATIENT, f"answer:{mode}", text, {})
        self.turns[-1].update(extra)

    def _verdict(self, verdict: str) -> None:
        i = self.queue.popleft()
        self._record_verdict(i, verdict)
        # Items graded ahead by the same examiner reply follow at once, in queue order.
        while self.queue and self.queue[0] in self.pregraded:
            j = self.queue.popleft()
            self._record_verdict(j, self.pregraded.pop(j))

    def _record_verdict(self, i: int, verdict: str) -> None:
        self.pregraded.pop(i, None)
        self.verdicts[i] = None if verdict == "abstain" else verdict == "met"
        self.transcript.add("examiner", f"Examiner: [{verdict}] {self.rubric[i].criterion}")
        self._log(EXAMINER, f"verdict:{verdict}", self.rubric[i].criterion, {})

    def pregrade(self, verdicts: dict[int, str]) -> None:
        """Give verdicts (``met``/``not_met``/``abstain``) ahead for queued rubric items (by rubric
        index): each is recorded right after the examiner's next verdict reaches it, so one batch
        reply grades a whole segment in one examiner turn. Items not queued are ignored."""
        queued = set(self.queue)
        self.pregraded.update({i: v for i, v in verdicts.items() if i in queued and v in VERDICTS})

    def end_cycle(self) -> dict[str, float]:
        """Close the cycle: check termination and truncation; returns the components the doctor
        earns now (the outcome components when the episode ends, a safety event)."""
        self.cycle += 1
        comps: dict[str, float] = {}
        patience = self.persona.patience
        out_of_patience = patience is not None and self.cycle >= patience and self.final_dx is None
        if self.final_dx is not None and not self.queue:
            self.terminated, self.end_reason = True, "final_diagnosis"
        elif out_of_patience and not self.emergency:
            # The patient walks out: a real end of the episode (terminated), not a time limit.
            self.terminated, self.end_reason = True, "patient_left"
            self.transcript.add("all", "Patient: I've had enough of this, I'm going home.")
        elif self.cycle >= self.max_cycles:
            self.truncated, self.end_reason = True, "max_cycles"
        if out_of_patience and self.emergency and not self.patience_exhausted and not (self.terminated or self.truncated):
            # Someone with a STEMI or a subarachnoid bleed does not go home: a safety event instead.
            self.patience_exhausted = True
            self.flags.append("patience_exhausted")
            comps["safety"] = -1.0
            self.transcript.add("all", "Patient: Please, I feel awful - is anyone going to do something?")
        if self.terminated or self.truncated:
            comps.update(self._outcomes())
            self.masks = [self._wait_mask] * 3
        else:
            self.begin_cycle()
        self.pub[self.layout.PROGRESS] = min(self.cycle / self.max_cycles, 1.0)
        return comps

    def _outcomes(self) -> dict[str, float]:
        """Every outcome component, paid once when the episode ends. A consultation cut short is
        scored as a failed one: the segment in progress as it stands, unreached segments and the
        missing diagnosis 0, ``incomplete`` -1 and unjudged rubric items judged by rule or failed."""
        cut_short = self.final_dx is None
        if cut_short and self.segment < DIAGNOSIS and SEGMENTS[self.segment] not in self.segment_scores:
            self._score(self.segment)
        for name in SEGMENTS:
            self.segment_scores.setdefault(name, 0.0)
        if cut_short:
            self.segment_scores["incomplete"] = -1.0
            if self.gold_must_not_miss and "dangerous_miss" not in self.flags:
                self.flags.append("dangerous_miss")
        self.segment_scores["rubric"] = self.rubric_result(final=True)[0]
        if self.dynamic_items is not None:
            self._dynamic_score()
        if self.config.fact.enabled:
            self._fact_score()
        return {k: self.segment_scores[k] for k in _OUTCOMES if k in self.segment_scores}

    def _fact_score(self) -> float:
        """Gated fact-aware reward over the doctor's own words (rewards/facts.py)."""
        from clinic_env.rewards.facts import FactChecker, fact_gate, fact_reward

        if self.fact_checker is None:
            self.fact_checker = FactChecker(self.cat, self.fact_judge)
        assert self.case is not None and isinstance(self.fact_checker, FactChecker)
        said = [str(t["said"]) for t in self.turns if t["agent"] == AGENTS[DOCTOR] and t.get("said")]
        self.claims = list(self.fact_checker.check_texts(said, self.case))
        fc, w = self.config.fact, self.config.weights
        parts = ("history", "differential", "tests", "diagnosis", "rubric")
        total = sum(w[k] for k in parts)
        x = sum(w[k] * self.segment_scores.get(k, 0.0) for k in parts) / total if total else 0.0
        score = fact_gate(min(max(x, 0.0), 1.0), fc.mu, fc.delta, fc.k) * fact_reward(
            self.claims, fc.include_unverifiable, fc.eps)  # type: ignore[arg-type]
        self.segment_scores["fact"] = score
        return score

    def _dynamic_score(self) -> float:
        """sum(points of met dynamic items) / 10 (see rewards/evolution.py)."""
        assert self.dynamic_items is not None and self.case is not None
        view = self.episode_view()
        met = [item for item in self.dynamic_items(self.case.id) if item.check is not None and evaluate_check(item.check, view)]
        self.dynamic_met = [item.id for item in met]
        score = sum(item.points for item in met) / 10.0
        self.segment_scores["dynamic_rubric"] = score
        return score

    # ----------------------------------------------------------------------------- views
    def episode_view(self) -> EpisodeView:
        """The facts rule checks look at (built once per doctor action: only the doctor's actions
        change them, and the examiner reads them every grading cycle)."""
        view = self._view
        if view is None:
            view = self._view = EpisodeView(self.asked.keys(), set(self.ordered), self.cost, tuple(self.differential),
                                            self.final_dx, self._repeats, self.order_cycle)
        return view

    def rule_verdict(self, i: int) -> bool | None:
        """The rule check's verdict on rubric item ``i`` (None when it has no check)."""
        check = self.rubric[i].check
        return None if check is None else evaluate_check(check, self.episode_view())

    def rubric_result(self, final: bool = False) -> tuple[float, dict[str, int]]:
        """HealthBench score and counts over the verdicts given so far. With ``final`` on an episode
        that was cut short, items the examiner never reached are judged by their rule check, or
        counted as not met when they have none (a failed consultation does not earn them)."""
        if not final or self.final_dx is not None:
            return rubric_score(self.rubric, self.verdicts)
        verdicts = dict(self.verdicts)
        for i in range(len(self.rubric)):
            if i not in verdicts:
                rule = self.rule_verdict(i)
                verdicts[i] = bool(rule)
        return rubric_score(self.rubric, verdicts)

    def observe(self, agent: int) -> np.ndarray:
        """The observation vector of ``agent`` (a fresh array)."""
        lay = self.layout
        v: np.ndarray = self.pub.copy()
        v[lay.ROLE + agent] = 1.0
        if agent == PATIENT:
            assert self.case is not None
            v[lay.case_present : lay.pending_flags] = self._case_present
            v[lay.persona : lay.persona + 8] = self._persona_vec
            if self.pending is not None:
                hid = self.pending
                v[lay.pending_item + self._hx_index[hid]] = 1.0
                fact = self.case.history.get(hid)
                v[lay.pending_flags] = 1.0 if fact else 0.0
                v[lay.pending_flags + 1] = min(self.asked.get(hid, 0) / 3.0, 1.0)
                v[lay.pending_flags + 2] = 1.0 if fact and fact.contradiction and not self.contradiction_used else 0.0
                v[lay.pending_flags + 3] = 1.0 if self.cat.history[hid].sensitive else 0.0
        elif agent == EXAMINER and self.queue:
            i = self.queue[0]
            item, rule = self.rubric[i], self.rule_verdict(i)
            e = lay.examiner
            v[e] = 0.0 if rule is None else 1.0
            v[e + 1] = 1.0 if rule else 0.0
            v[e + 2] = (item.points + 10) / 20.0
            seg = item.segment
            v[e + 3 + (SEGMENTS.index(seg) if seg else 4)] = 1.0
            v[e + 8] = len(self.queue) / max(len(self.rubric), 1)
        return v

    def observe_doctor(self) -> np.ndarray:
        """The doctor's own numeric view (:attr:`ObservationLayout.doctor_index`)."""
        view: np.ndarray = self.pub[self.layout.doctor_index]
        return view

    def step_info(self, components: dict[str, float], illegal: bool) -> dict[str, object]:
        """The full ``infos`` entry of an agent (``infos="full"``; end-of-episode fields when over)."""
        info: dict[str, object] = {"reward_components": components, "illegal_action": illegal,
                                   "segment": SEGMENTS[min(self.segment, 3)], "cycle": self.cycle}
        if self.terminated or self.truncated:
            info["end_reason"] = self.end_reason
            info["segment_scores"] = dict(self.segment_scores)
            info["flags"] = list(self.flags)
        return info

    def flat_info(self, components: dict[str, float], illegal: bool, violations: int = 0) -> dict[str, object]:
        """The flat ``infos`` entry (the default): the same scalar keys at reset and at every step,
        ``reward/<component>`` for every registered component, ``n_violations``, ``illegal_action``,
        ``segment`` (0-3) and ``cycle``."""
        info = dict(_FLAT_ZERO)
        for name, value in components.items():
            key = _REWARD_KEYS.get(name)
            if key is not None:
                info[key] = float(value)
        info["n_violations"] = int(violations)
        info["illegal_action"] = bool(illegal)
        info["segment"] = min(self.segment, 3)
        info["cycle"] = self.cycle
        return info

    def render_text(self) -> str:
        """The full transcript and a status line (what ``render_mode="ansi"`` returns)."""
        status = (f"[cycle {self.cycle}/{self.max_cycles} | segment {SEGMENTS[min(self.segment, 3)]}"
                  f" | cost ${self.cost:.0f}]")
        return f"{self.transcript.full()}\n{status}"

    def view_text(self, agent: int, sanitised: bool = False) -> str:
        """The transcript ``agent`` may read (``sanitised``: as :func:`~clinic_env.core.text.sanitise`
        returns it, each line sanitised once rather than the whole text at every turn)."""
        viewer = _VIEWER[agent]
        return self.transcript.clean_view(viewer) if sanitised else self.transcript.view(viewer)
