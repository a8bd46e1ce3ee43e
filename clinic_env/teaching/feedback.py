"""Feedback a student learns from, built from a finished (or quit) consultation.

:class:`Feedback` holds the gold diagnosis and the evidence that confirms it (which of it the
student obtained); the essential questions (the case's critical facts and the rubric's history
items) asked and missed, with what the patient would have said; the essential tests ordered and
missed, with the result they would have given, and the tests the case did not need, with their
cost; every rubric item met or missed with its reason (the rule that decided it, or that it needs
an examiner); the timing of time-critical actions; dangerous misses and unsupported diagnoses; the
total cost; and the same case played by the ``thorough`` and ``info-gain`` doctors with the same
seed, side by side. :meth:`Feedback.markdown` and :meth:`Feedback.html` (one self-contained,
escaped page) render it; :meth:`Feedback.save` writes both.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from clinic_env.core.engine import AGENTS
from clinic_env.records import EpisodeRecord
from clinic_env.rewards.checks import EpisodeView, evaluate_check
from clinic_env.rewards.segment import at_or_below
from clinic_env.schema.case import Case
from clinic_env.schema.catalogue import Catalogue
from clinic_env.schema.rubric import Check, RubricItem
from clinic_env.teaching import render

if TYPE_CHECKING:
    from clinic_env.envs.aec import ConsultationEnv
    from clinic_env.teaching.session import PlaySession

__all__ = ["COMPARED_DOCTORS", "DoctorRow", "Feedback", "ItemCheck", "RubricResult", "TimedAction",
           "compare_doctors", "describe_check"]

#: Segment scores shown with the total.
_SHOWN = ("history", "differential", "tests", "diagnosis", "rubric")
#: The scripted doctors the student is compared with.
COMPARED_DOCTORS = ("thorough", "info-gain")


@dataclass(frozen=True)
class ItemCheck:
    """A question, test or piece of evidence: whether the student got it, and a detail (the
    answer or result they got or would have got, a cost, a reason)."""

    id: str
    label: str
    done: bool
    detail: str = ""


@dataclass(frozen=True)
class RubricResult:
    """One rubric item: met, not met, or not judged (None), and why."""

    criterion: str
    points: int
    met: bool | None
    reason: str
    segment: str | None
    judged_by: Literal["rule", "examiner", "none"]


@dataclass(frozen=True)
class TimedAction:
    """A time-critical action: when it happened (cycle) and by when it should have."""

    item: str
    label: str
    cycle: int | None
    within: int | None
    met: bool


@dataclass(frozen=True)
class DoctorRow:
    """One doctor's consultation of the case, for the side-by-side table."""

    doctor: str
    score: float | None
    final_diagnosis: str | None
    diagnosis_label: str
    correct: bool
    questions: int
    tests: tuple[str, ...]
    cost_usd: float


def describe_check(check: Check, cat: Catalogue) -> str:
    """A rule check in words, items named by their labels (``ordered High-sensitivity troponin``)."""
    op, arg = check.operator

    def name(item: str) -> str:
        entry = cat.history.get(item) or cat.tests.get(item)
        return entry.label if entry is not None else item

    if op in ("asked", "not_asked", "ordered", "not_ordered"):
        return f"{op.replace('_', ' ')}: {name(arg)}"
    if op == "ordered_within":
        return f"ordered {name(arg.item)} by cycle {arg.cycle}"
    if op in ("asked_all", "asked_any", "ordered_all", "ordered_any"):
        verb, how = op.split("_")
        return f"{verb} {'all' if how == 'all' else 'any'} of: {', '.join(name(a) for a in arg)}"
    if op in ("all_of", "any_of"):
        return f"{op.replace('_', ' ')}: (" + "; ".join(describe_check(c, cat) for c in arg) + ")"
    if op == "not":
        return f"not ({describe_check(arg, cat)})"
    if op == "final_dx_in":
        return f"final diagnosis in {', '.join(arg)}"
    return f"{op.replace('_', ' ')}: {arg}"


def _timed(check: Check) -> list[tuple[str, int]]:
    op, arg = check.operator
    if op == "ordered_within":
        return [(arg.item, arg.cycle)]
    if op in ("all_of", "any_of"):
        return [t for c in arg for t in _timed(c)]
    return _timed(arg) if op == "not" else []


def _view(record: EpisodeRecord) -> EpisodeView:
    doctor = [t for t in record.turns if t.agent == AGENTS[0]]
    asked = {t.action[4:] for t in doctor if t.action.startswith("ask:")}
    repeats = sum((t.violations or []).count(v) for t in doctor for v in ("repeated_question", "repeated_test"))
    return EpisodeView(asked, set(record.tests_ordered), record.cost_usd, tuple(record.differential),
                       record.final_diagnosis, repeats, dict(record.order_cycles))


def compare_doctors(make_env: Callable[[], ConsultationEnv], seed: int, options: dict[str, str],
                    doctors: Sequence[str] = COMPARED_DOCTORS) -> list[EpisodeRecord]:
    """Play the case with each scripted doctor in an env built like the student's, with the same
    seed (the same persona and patient noise): :func:`clinic_env.rollout.play_episode`."""
    from clinic_env.policies import make_policy
    from clinic_env.rollout import play_episode

    out = []
    for name in doctors:
        env = make_env()
        policies = {AGENTS[0]: make_policy(name, env.info), AGENTS[1]: make_policy("persona", env.info),
                    AGENTS[2]: make_policy("rubric", env.info)}
        out.append(play_episode(env, policies, seed, options, doctor_name=name))
    return out


@dataclass(frozen=True)
class Feedback:
    """What a student did and missed in one consultation (see the module docstring)."""

    case_id: str
    chief_complaint: str
    seed: int
    persona: str | None
    finished: bool
    end_reason: str | None
    gold: str
    gold_label: str
    final_diagnosis: str | None
    final_label: str
    diagnosis_correct: bool
    differential: tuple[str, ...]
    must_not_miss_missing: tuple[ItemCheck, ...]
    evidence: tuple[ItemCheck, ...]
    questions: tuple[ItemCheck, ...]
    tests: tuple[ItemCheck, ...]
    unnecessary: tuple[ItemCheck, ...]
    rubric: tuple[RubricResult, ...]
    timing: tuple[TimedAction, ...]
    flags: tuple[str, ...]
    cost_usd: float
    budget_usd: float
    score: float | None
    said: tuple[str, ...]
    comparison: tuple[DoctorRow, ...]
    components: dict[str, float]

    # -------------------------------------------------------------------------------------- building
    @classmethod
    def from_session(cls, session: PlaySession, compare: bool = True) -> Feedback:
        """The feedback of a session (finished or quit); ``compare`` plays the scripted doctors."""
        eng = session.engine
        verdicts = {i: eng.verdicts.get(i) for i in range(len(eng.rubric)) if i in eng.verdicts}
        others = compare_doctors(session.make_env, session.seed, session.options) if compare else []
        return cls.from_record(session.record, session.case, session.env.info.catalogue, eng.rubric,
                               verdicts, others, said=session.spoken)

    @classmethod
    def from_record(cls, record: EpisodeRecord, case: Case, catalogue: Catalogue,
                    rubric: Sequence[RubricItem] | None = None, verdicts: dict[int, bool | None] | None = None,
                    comparison: Sequence[EpisodeRecord] = (), said: Sequence[str] | None = None) -> Feedback:
        """The feedback of an episode record of ``case``.

        Args:
            record: The student's record (finished or quit).
            case: Its case.
            catalogue: The env's catalogue.
            rubric: The rubric items in play (default: the case's own).
            verdicts: The examiner's verdict per rubric index (None: abstained); default: from the
                record's examiner turns, matched by criterion.
            comparison: Records of other doctors on the same case and seed.
            said: The student's words to the patient (default: the words of its turns that are
                not questions).
        """
        cat = catalogue
        items = tuple(rubric) if rubric is not None else case.rubric
        if verdicts is None:
            verdicts = _verdicts_from_turns(record, items)
        view = _view(record)
        answered = {t.fact: (t.text or "") for t in record.turns
                    if t.agent == AGENTS[1] and t.fact and t.mode != "withhold"}
        obtained = set(answered) | set(record.tests_ordered)
        finished = record.final_diagnosis is not None and not record.truncated
        gold = case.gold_diagnosis
        final = record.final_diagnosis
        distinct = {d.code for d in case.differential} - {gold}
        correct = final is not None and at_or_below(final, gold) and (final == gold or final not in distinct)

        def label_of(item: str) -> str:
            entry = cat.history.get(item) or cat.tests.get(item)
            return entry.label if entry is not None else cat.diagnoses[item].label if item in cat.diagnoses else item

        # The confirmatory alternative closest to complete is the one to show.
        alternatives = case.confirmatory_evidence()
        best = max(alternatives, key=lambda alt: sum(i in obtained for i in alt) / len(alt)) if alternatives else ()
        evidence = tuple(ItemCheck(i, label_of(i), i in obtained, _result_text(case, i, answered)) for i in best)
        # Essential questions: critical facts and the rubric's history items ("any of" items as one).
        wanted: dict[str, tuple[str, ...]] = {k: (k,) for k, f in case.history.items()
                                              if f.criticality == 2 and k != case.presenting_complaint}
        for item in items:
            if item.check is not None and item.points > 0 and item.segment == "history":
                op, arg = item.check.operator
                if op == "asked" or op == "asked_all":
                    for a in ((arg,) if op == "asked" else arg):
                        wanted.setdefault(a, (a,))
                elif op == "asked_any" and not any(a in wanted for a in arg):
                    wanted.setdefault("any:" + ",".join(arg), tuple(arg))
        modes = {t.fact: t.mode for t in record.turns if t.agent == AGENTS[1] and t.fact}
        questions = tuple(_question(key, group, view.asked, answered, modes, case, label_of)
                          for key, group in wanted.items() if all(g in cat.history for g in group))
        tests = tuple(ItemCheck(t, label_of(t), t in view.ordered,
                                ("" if t in view.ordered else f"result: {_result_text(case, t, answered)}"))
                      for t in case.essential_tests)
        needed = {*case.essential_tests, *case.optional_tests, *(i for alt in alternatives for i in alt)}
        unnecessary = tuple(
            ItemCheck(t, label_of(t), True, f"${cat.tests[t].cost_usd:,.0f}"
                      + (f"; contraindicated: {case.contraindicated_tests[t]}" if t in case.contraindicated_tests else ""))
            for t in dict.fromkeys(record.tests_ordered) if t not in needed and t in cat.tests)
        results = tuple(_rubric_result(i, item, verdicts, view, cat, finished) for i, item in enumerate(items))
        timing = _timing(items, record, cat)
        mnm = tuple(ItemCheck(c, cat.diagnoses[c].label if c in cat.diagnoses else c, False,
                              "must-not-miss; not in your differential")
                    for c in case.must_not_miss if c not in record.differential)
        if said is None:
            said = [t.said for t in record.turns if t.agent == AGENTS[0] and t.said and not t.action.startswith("ask:")]
        rows = tuple(_row(r, gold, distinct, cat) for r in (record, *comparison))
        return cls(
            case_id=case.id, chief_complaint=case.chief_complaint, seed=record.seed, persona=record.persona,
            finished=finished, end_reason=record.end_reason, gold=gold, gold_label=label_of(gold),
            final_diagnosis=final, final_label=label_of(final) if final else "none given",
            diagnosis_correct=correct, differential=tuple(record.differential), must_not_miss_missing=mnm,
            evidence=evidence, questions=questions, tests=tests, unnecessary=unnecessary, rubric=results,
            timing=timing, flags=tuple(record.flags), cost_usd=record.cost_usd, budget_usd=case.budget_usd,
            score=record.totals.get("reward") if finished else None, said=tuple(said), comparison=rows,
            components={k: record.totals.get(k, 0.0) for k in _SHOWN} if finished else {})

    # -------------------------------------------------------------------------------------- views
    @property
    def missed_questions(self) -> tuple[ItemCheck, ...]:
        """Essential questions not asked."""
        return tuple(q for q in self.questions if not q.done)

    @property
    def missed_tests(self) -> tuple[ItemCheck, ...]:
        """Essential tests not ordered."""
        return tuple(t for t in self.tests if not t.done)

    @property
    def dangerous(self) -> tuple[str, ...]:
        """Dangerous misses and unsupported diagnoses, in words."""
        out = []
        if "dangerous_miss" in self.flags:
            out.append(f"Dangerous miss: {self.gold_label} ({self.gold}) is a must-not-miss diagnosis and was not "
                       "your final diagnosis.")
        if "unsupported_diagnosis" in self.flags:
            out.append("Unsupported diagnosis: the label was right but none of the evidence that confirms it was "
                       "obtained.")
        if "patience_exhausted" in self.flags:
            out.append("The patient ran out of patience waiting for a diagnosis.")
        return tuple(out)

    def markdown(self) -> str:
        """The feedback as Markdown."""
        return render.markdown(self)

    def html(self) -> str:
        """The feedback as one self-contained HTML page (every text escaped, no external resources)."""
        return render.html(self)

    def save(self, folder: str | Path) -> tuple[Path, Path]:
        """Write ``feedback.md`` and ``feedback.html`` into ``folder``; returns their paths."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        md, page = out / "feedback.md", out / "feedback.html"
        md.write_text(self.markdown(), encoding="utf-8")
        page.write_text(self.html(), encoding="utf-8")
        return md, page


def _result_text(case: Case, item: str, answered: dict[str, str]) -> str:
    if item in answered:
        return answered[item]
    found = case.result(item)
    if found is not None:
        return found.text
    fact = case.history.get(item)
    return fact.text if fact is not None else "(not listed in the case)"


def _question(key: str, group: tuple[str, ...], asked: Collection[str], answered: dict[str, str],
              modes: dict[str, str | None], case: Case, label_of: Callable[[str], str]) -> ItemCheck:
    """One essential question (or an "any of" group): asked or not, with the answer got or missed."""
    if len(group) > 1:
        hit = [g for g in group if g in asked]
        label = "one of: " + ", ".join(label_of(g) for g in group)
        return ItemCheck(key, label, bool(hit), f"asked: {label_of(hit[0])}" if hit else "")
    if key in asked:
        vague = " (an unclear answer: ask again to clarify)" if modes.get(key) in ("vague", "withhold") else ""
        return ItemCheck(key, label_of(key), True, answered.get(key, "") + vague)
    fact = case.history.get(key)
    return ItemCheck(key, label_of(key), False, f"the patient would have said: {fact.text}" if fact else "")


def _verdicts_from_turns(record: EpisodeRecord, items: Sequence[RubricItem]) -> dict[int, bool | None]:
    out: dict[int, bool | None] = {}
    for turn in record.turns:
        if turn.agent != AGENTS[2] or not turn.action.startswith("verdict:"):
            continue
        verdict = turn.action.split(":", 1)[1]
        for i, item in enumerate(items):
            if i not in out and item.criterion == turn.text:
                out[i] = None if verdict == "abstain" else verdict == "met"
                break
    return out


def _rubric_result(i: int, item: RubricItem, verdicts: dict[int, bool | None], view: EpisodeView,
                   cat: Catalogue, finished: bool) -> RubricResult:
    if item.check is not None:
        met = verdicts[i] if verdicts.get(i) is not None else evaluate_check(item.check, view)
        return RubricResult(item.criterion, item.points, met, f"rule: {describe_check(item.check, cat)}",
                            item.segment, "rule")
    if verdicts.get(i) is not None:
        return RubricResult(item.criterion, item.points, verdicts[i], "judged by the examiner", item.segment, "examiner")
    reason = ("needs an examiner: no rule can check it (an LLM examiner judges it from your words)"
              if finished or i in verdicts else "not judged: the consultation ended before it was graded")
    return RubricResult(item.criterion, item.points, None, reason, item.segment, "none")


def _timing(items: Sequence[RubricItem], record: EpisodeRecord, cat: Catalogue) -> tuple[TimedAction, ...]:
    out: dict[str, TimedAction] = {}
    for item in items:
        if item.check is not None and item.points > 0:
            for tid, within in _timed(item.check):
                cycle = record.order_cycles.get(tid)
                label = cat.tests[tid].label if tid in cat.tests else tid
                out[tid] = TimedAction(tid, label, cycle, within, cycle is not None and cycle <= within)
    for tid, cycle in record.order_cycles.items():
        if tid not in out and tid in cat.tests and cat.tests[tid].initial_assessment:
            out[tid] = TimedAction(tid, cat.tests[tid].label, cycle, None, True)
    return tuple(out.values())


def _row(record: EpisodeRecord, gold: str, distinct: set[str], cat: Catalogue) -> DoctorRow:
    final = record.final_diagnosis
    ok = final is not None and at_or_below(final, gold) and (final == gold or final not in distinct)
    finished = final is not None and not record.truncated
    return DoctorRow(record.doctor, record.totals.get("reward") if finished else None, final,
                     cat.diagnoses[final].label if final and final in cat.diagnoses else "none given", ok,
                     record.questions, tuple(record.tests_ordered), record.cost_usd)
