"""Text turns: what the text-mode envs do with an agent's reply before the engine sees it.

:class:`TextTurns` holds one episode's text state next to a :class:`Consultation` engine:

- ``messages(agent)``: the agent's chat messages (with a note when it is being re-asked);
- ``resolve(agent, reply)``: turn a reply into one engine action, a re-ask, or a penalised no-op.

**Replies that cannot be used** (empty, over-long, not JSON and naming nothing legal): the first
time, the turn is re-asked (nothing happens in the episode; the agent's next messages say why);
the second time in a row, the doctor's and the patient's turns are a penalised no-op (the engine's
illegal-action penalty) and the examiner's an ``abstain`` (a failed judgement, left out of the
rubric score). **Several actions in one doctor reply** ("order troponin and an ECG") are applied
in turn: the first now, the rest queued and applied at the doctor's next turns while still legal.
**The LLM patient's** reply is handed to the engine as the patient's words, and the engine's
patient session passes every such text through the leak guard
(:class:`clinic_env.patients.leak_guard.LeakGuard`): a reply that discloses what was not asked is
replaced, and the turn records what was blocked. Integers pass through as structured actions. Every reply is logged in ``events`` for the episode record.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from clinic_env.core.actions import WAIT, ActionTable
from clinic_env.core.engine import DOCTOR, EXAMINER, HISTORY, PATIENT, TESTS, Consultation
from clinic_env.core.text import sanitise
from clinic_env.patients.conversation import NEUTRAL_ANSWER, REGENERATE_NOTE
from clinic_env.text.parse import (
    DEFAULT_MAX_CHARS,
    DoctorParser,
    ParsedAction,
    parse_patient_reply,
    parse_verdict,
)
from clinic_env.text.render import GRADINGS, Messages, messages_for
from clinic_env.text.sense import read
from clinic_env.text.verdicts import parse_grades

__all__ = ["Resolution", "TextTurns"]

_LOG_CHARS = 500


@dataclass(frozen=True)
class Resolution:
    """What to do with a reply: apply ``index`` (with ``said`` as the words spoken), or re-ask."""

    index: int
    said: str | None = None
    reask: str | None = None


class TextTurns:
    """One episode's text state for an engine (see the module docstring).

    Args:
        engine: The consultation engine the env drives.
        table: Its action table.
        max_chars: Longest reply accepted from any agent.
        list_items: Whether the doctor's system message lists the segment's catalogue items (default:
            lean prompts with a few suggested items, see :mod:`clinic_env.text.render`).
        grading: ``"batch"`` (the examiner grades every pending rubric item in one call) or
            ``"per_item"`` (one item per call, the HealthBench grader prompt).
    """

    def __init__(self, engine: Consultation, table: ActionTable, max_chars: int = DEFAULT_MAX_CHARS,
                 list_items: bool = False, grading: str = "batch") -> None:
        if grading not in GRADINGS:
            raise ValueError(f"grading must be one of {GRADINGS}, got {grading!r}")
        self.engine, self.table, self.max_chars, self.list_items = engine, table, max_chars, list_items
        self.grading = grading
        self.parser = DoctorParser(engine.cat, table, max_chars)
        self.reset()

    def reset(self) -> None:
        """Forget the last episode's notes, queue and events."""
        self.notes: list[str | None] = [None, None, None]
        self.queue: deque[ParsedAction] = deque()
        self.events: list[dict[str, Any]] = []

    # ------------------------------------------------------------------------------------------ views
    def idle(self, agent: int) -> bool:
        """Whether ``agent`` can only wait this cycle."""
        return self.engine.idle(agent)

    def messages(self, agent: int) -> Messages:
        """The agent's chat messages now (empty when it can only wait)."""
        if self.idle(agent) or self.engine.terminated or self.engine.truncated:
            return []
        return messages_for(self.engine, agent, self.notes[agent], self.list_items, self.grading)

    # ------------------------------------------------------------------------------------------ replies
    def _log(self, agent: int, reply: Any, **fields: Any) -> None:
        text = reply if isinstance(reply, str) else repr(reply)
        self.events.append({"cycle": self.engine.cycle, "agent": ("doctor_0", "patient_0", "examiner_0")[agent],
                            "reply": text[:_LOG_CHARS], **fields})

    def _failed(self, agent: int, reply: Any, reason: str) -> Resolution:
        """Re-ask once; the second failure in a row is a no-op (doctor, patient) or abstain (examiner)."""
        if self.notes[agent] is None:
            self.notes[agent] = reason
            self._log(agent, reply, error=reason, outcome="reask")
            return Resolution(-1, None, reask=reason)
        self.notes[agent] = None
        if agent == EXAMINER:
            self._log(agent, reply, error=reason, outcome="abstain")
            return Resolution(self.table.verdict("abstain"))
        self._log(agent, reply, error=reason, outcome="no-op")
        return Resolution(-1)

    def next_queued(self) -> ParsedAction | None:
        """The doctor's next queued action that is legal now (illegal ones are dropped and logged)."""
        mask = self.engine.masks[DOCTOR]
        while self.queue:
            action = self.queue.popleft()
            if mask[action.index]:
                return action
            self._log(DOCTOR, action.name, outcome="dropped", error="queued action no longer legal")
        return None

    def resolve(self, agent: int, reply: Any) -> Resolution:
        """Decide what ``reply`` (a string, a list of candidate strings, or an int) does for ``agent``."""
        if isinstance(reply, (int, np.integer)) and not isinstance(reply, bool):
            return Resolution(int(reply))
        if self.idle(agent):
            return Resolution(WAIT)
        candidates: Sequence[Any] = reply if isinstance(reply, (list, tuple)) and reply else [reply]
        if agent == DOCTOR:
            return self._doctor(candidates)
        if agent == PATIENT:
            return self._patient(candidates)
        return self._examiner(candidates)

    def _doctor(self, candidates: Sequence[Any]) -> Resolution:
        eng = self.engine
        result = None
        for reply in candidates:
            result = self.parser.parse(reply, eng.masks[DOCTOR], eng.segment)
            if result.ok:
                break
        assert result is not None
        if not result.ok:
            answered = self._case_item(candidates[0])
            if answered is not None:
                return answered
            return self._failed(DOCTOR, candidates[0], result.error or "no action recognised")
        first, *rest = result.actions
        if all(self._unlisted_order(a) for a in result.actions):
            # "Order the CT angiogram": the catalogue's CT angiography is not in this imported case,
            # but the case's own CT angiogram is; the case's result wins over "not available".
            answered = self._case_item(candidates[0])
            if answered is not None:
                return answered
        self.notes[DOCTOR] = None
        self.queue = deque(rest)
        self._log(DOCTOR, reply, parsed=[a.name for a in result.actions], source=result.source)
        return Resolution(first.index, first.said)

    def _unlisted_order(self, action: ParsedAction) -> bool:
        """Whether ``action`` orders a catalogue test the (imported) case does not list."""
        case = self.engine.case
        if case is None or not case.extra_items or not action.name.startswith("order:"):
            return False
        return case.result(action.name.split(":", 1)[1]) is None and case.unlisted_finding() is not None

    def _case_item(self, reply: Any) -> Resolution | None:
        """A request for an imported case's own item by name ("order the CT angiogram"), which no
        catalogue action covers: answered from :meth:`Case.lookup_item` as a result line in the
        transcript (history items in the history segment, examinations and tests in the tests
        segment), logged as ``case_item``, and costing a step like a re-ask (no engine action)."""
        eng = self.engine
        if not isinstance(reply, str) or not reply.strip() or len(reply) > self.max_chars:
            return None
        reading = read(reply)
        if reading.meta is not None:
            return None  # a request about the conversation ("in code words") names no item
        found = eng.case.lookup_item(reply) if eng.case is not None else None
        if found is None:
            return None
        key, item = found
        if item.kind == "history" and not (reading.question and reading.addressed):
            return None  # a case fact only answers a clinical question to the patient
        if eng.segment != (HISTORY if item.kind == "history" else TESTS):
            return None
        self.notes[DOCTOR] = None
        eng.transcript.add("all", f"Doctor: {sanitise(reply.strip())}")
        label = "Patient" if item.kind == "history" else f"Result - {item.name} (as reported in the source case)"
        eng.transcript.add("all", f"{label}: {sanitise(item.text)}")
        self._log(DOCTOR, reply, outcome="case_item", item=key)
        return Resolution(-1, None, reask=f"answered from the case's own item {item.name!r}")

    def _patient(self, candidates: Sequence[Any]) -> Resolution:
        mask = self.engine.masks[PATIENT]
        contra = bool(mask[self.table.answer("contradict")])
        parsed = None
        for reply in candidates:
            if isinstance(reply, str) and len(reply) > self.max_chars:
                continue
            parsed = parse_patient_reply(reply, contra)
            if parsed is not None:
                break
        if parsed is None:
            first = candidates[0]
            too_long = isinstance(first, str) and len(first) > self.max_chars
            return self._failed(PATIENT, first, "the reply was over-long" if too_long else "the reply was empty")
        mode, text = parsed
        # The leak guard first: a reply it would block is regenerated once (the note says only
        # that the reply was not used), and a second blocked reply becomes the neutral answer.
        session = self.engine.patient
        reasons = session.precheck(text, self.engine.asked) if text else []
        if reasons:
            outcome = "regenerate" if self.notes[PATIENT] is None else "neutral"
            session.replaced(reasons, self.engine.cycle, outcome)
            self._log(PATIENT, reply, parsed=[f"answer:{mode}"], outcome=outcome, guard=reasons)
            if outcome == "regenerate":
                self.notes[PATIENT] = REGENERATE_NOTE
                return Resolution(-1, None, reask=REGENERATE_NOTE)
            text = NEUTRAL_ANSWER
        self.notes[PATIENT] = None
        if not reasons:
            self._log(PATIENT, reply, parsed=[f"answer:{mode}"])
        return Resolution(self.table.answer(mode), text)

    def _examiner(self, candidates: Sequence[Any]) -> Resolution:
        if self.grading == "batch" and len(self.engine.queue) > 1:
            return self._examiner_batch(candidates)
        for reply in candidates:
            if isinstance(reply, str) and len(reply) > self.max_chars:
                continue
            met = parse_verdict(reply)
            if met is None and self.grading == "batch":
                met = {"met": True, "not_met": False}.get(parse_grades(reply, 1).get(1, ""))
            if met is not None:
                self.notes[EXAMINER] = None
                verdict = "met" if met else "not_met"
                self._log(EXAMINER, reply, parsed=[f"verdict:{verdict}"])
                return Resolution(self.table.verdict(verdict))
        return self._failed(EXAMINER, candidates[0], "no criteria_met true/false was found in the reply")

    def _examiner_batch(self, candidates: Sequence[Any]) -> Resolution:
        """One reply grades the numbered pending items: the first item's verdict is played now and
        the others are given ahead (:meth:`Consultation.pregrade`), so they are recorded in the same
        turn. Items the reply leaves out are asked again in the next call; a second unusable reply
        in a row abstains on every pending item not graded yet."""
        eng = self.engine
        queue = list(eng.queue)
        for reply in candidates:
            if isinstance(reply, str) and len(reply) > self.max_chars:
                continue
            grades = parse_grades(reply, len(queue))
            if not grades:
                continue
            self._log(EXAMINER, reply, parsed=[f"verdict:{grades[n]}" for n in sorted(grades)])
            eng.pregrade({queue[n - 1]: v for n, v in grades.items() if n > 1})
            if 1 not in grades and self.notes[EXAMINER] is None:
                missing = [str(n) for n in range(1, len(queue) + 1) if n not in grades]
                self.notes[EXAMINER] = f"item(s) {', '.join(missing[:12])} were not graded"
                return Resolution(-1, None, reask=self.notes[EXAMINER])
            self.notes[EXAMINER] = None
            return Resolution(self.table.verdict(grades.get(1, "abstain")))
        failed = self._failed(EXAMINER, candidates[0], "no verdicts (id: met / not_met / abstain) were found in the reply")
        if failed.reask is None:
            eng.pregrade({i: "abstain" for i in queue[1:] if i not in eng.pregraded})
        return failed
