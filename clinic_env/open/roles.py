"""Scripted stand-ins for open mode's roles, so that an episode runs with no LLM at all.

- :func:`asked_items`: the history items a doctor's words ask about, by confident parser mapping
  only (questions to the patient, never requests about the conversation; the text parser's
  confident reading plus the catalogue phrases a question names). The leak guard's ``asked`` set
  and the scripted history coverage both come from it.
- :class:`CasePatient` (``patient="case"``): answers from the case's facts for the items asked;
  when the case records none of them, "not that I know of"; words that map to nothing get a
  request to rephrase. It never volunteers a fact that was not asked.
- :func:`resolve_test` / :func:`case_result` (``measurement="case"``): a requested name is matched
  to a case-specific item (:meth:`Case.lookup_item`), a catalogue test or exam (the matcher's
  phrases), or a finding whose own words contain every word of the request. A catalogue item gets
  the case's result, else the knowledge-base consistent result (the engine's unlisted-result path)
  or "not available" for imported cases; a name that matches nothing is "not available".
- Two scripted doctors that bound what a real doctor should score (:data:`SCRIPTED_DOCTORS`):
  :class:`OpenOracleDoctor` (``doctor="open-oracle"``) reads the case being played (an upper bound
  and a pipeline check, never a baseline to compare against): asks the catalogue question of each
  case fact in words, requests the essential tests by name, and names the gold in words.
  :class:`OpenRandomDoctor` (``doctor="open-random"``) reads nothing of the case: it asks a few
  random catalogue questions, requests a few random tests by name and names a random catalogue
  diagnosis (the chance level; seeded per episode).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from clinic_env.schema.case import NOT_AVAILABLE, Case, Finding
from clinic_env.schema.catalogue import Catalogue
from clinic_env.text.match import CatalogueMatcher, tokens
from clinic_env.text.sense import match_question, read

__all__ = ["SCRIPTED_DOCTORS", "CasePatient", "OpenOracleDoctor", "OpenRandomDoctor", "TestResult", "asked_items", "case_result", "resolve_test",
           "whole_exam"]

REPHRASE = "Sorry, doctor, I'm not sure what you mean. Could you ask me that another way?"
UNKNOWN = "Not that I know of."
_SENT = re.compile(r"(?<=[?.!;])\s+|\n+")
_WHOLE_EXAM = re.compile(r"(?:(?:a|the|full|general|complete|clinical)\s+)*(?:physical\s+)?exam(?:ination)?s?"
                         r"(?:\s+findings)?", re.I)


def whole_exam(name: str) -> bool:
    """Whether a requested name asks for the physical examination as a whole (every exam finding)."""
    return bool(_WHOLE_EXAM.fullmatch(name.strip()))


def asked_items(matcher: CatalogueMatcher, text: str) -> list[str]:
    """History item ids that ``text`` asks about, confidently; in order, each once.

    Sentence by sentence: nothing from a sentence about the conversation itself ("stay in
    character") or one that is not a question or request (:func:`clinic_env.text.sense.read`); from
    a question, the item :func:`~clinic_env.text.sense.match_question` takes with confidence plus
    the items its catalogue phrases name ("any fever or weight loss?" asks about both)."""
    found: list[str] = []
    for sentence in _SENT.split(text):
        if not sentence.strip():
            continue
        reading = read(sentence)
        if reading.meta is not None or not reading.question:
            continue
        taken = match_question(matcher, sentence)
        if taken.item is not None:
            found.append(taken.item)
        found += [m.item for m in matcher.find("history", sentence)]
    return list(dict.fromkeys(found))


class CasePatient:
    """The scripted patient ``case`` for one case (see the module docstring)."""

    def __init__(self, case: Case) -> None:
        self.case = case

    def answer(self, items: list[str]) -> str:
        """The reply to a question about ``items`` (from :func:`asked_items`)."""
        if not items:
            return REPHRASE
        known = [self.case.history[h].text for h in items if h in self.case.history]
        return " ".join(dict.fromkeys(known)) if known else UNKNOWN


@dataclass(frozen=True)
class TestResult:
    """A requested item: its id (catalogue id, ``src.*``, or None when unknown), display name, the
    finding, and whether the case itself lists it."""

    item: str | None
    name: str
    finding: Finding
    listed: bool


def resolve_test(case: Case, catalogue: Catalogue, matcher: CatalogueMatcher, name: str) -> tuple[str, str] | None:
    """``(item id, display name)`` for a requested name, or None when it names nothing known."""
    extra = case.lookup_item(name)
    if extra is not None:
        return extra[0], extra[1].name
    hits = matcher.find("test", name)
    if hits:
        tid = hits[0].item
        return tid, catalogue.tests[tid].label
    words = {t for t in tokens(name) if len(t) > 2}
    if words:
        for tid, finding in [*case.exam.items(), *case.tests.items()]:
            if words <= set(tokens(finding.text)):
                return tid, catalogue.tests[tid].label if tid in catalogue.tests else tid
    return None


def case_result(case: Case, catalogue: Catalogue, matcher: CatalogueMatcher, name: str) -> TestResult:
    """The scripted measurement's answer to ``name`` (see the module docstring)."""
    found = resolve_test(case, catalogue, matcher, name)
    if found is None:
        return TestResult(None, name, NOT_AVAILABLE, False)
    item, label = found
    if item in case.extra_items:
        src = case.extra_items[item]
        return TestResult(item, label, Finding(text=src.text, abnormal=src.abnormal), True)
    listed = case.result(item)
    if listed is not None:
        return TestResult(item, label, listed, True)
    unlisted = case.unlisted_finding()
    if unlisted is not None:
        return TestResult(item, label, unlisted, False)
    from clinic_env.generate.profile import unlisted_result

    return TestResult(item, label, unlisted_result(case, item, catalogue), False)


class _PlannedDoctor:
    """A scripted doctor that draws its lines at the first turn of an episode and says them in turn
    (jumping to its diagnosis when the env says it is the last turn)."""

    plan: list[str]

    def _make_plan(self) -> list[str]:
        raise NotImplementedError

    def act(self, observation: dict[str, Any], agent: str = "doctor") -> str | None:
        """The next line of the plan (the diagnosis when the env says it is the last turn)."""
        if observation is None:
            return None
        if not self.plan:
            self.plan = self._make_plan()
        last = observation.get("messages", ())[-1:] if isinstance(observation, dict) else ()
        text = str(last[0].get("content", "")) if last else ""
        if "last turn" in text and len(self.plan) > 1:
            self.plan = self.plan[-1:]
        return self.plan.pop(0) if len(self.plan) > 1 else self.plan[0]

    async def aact(self, observation: dict[str, Any], agent: str = "doctor") -> str | None:
        """As :meth:`act`."""
        return self.act(observation, agent)


class OpenOracleDoctor(_PlannedDoctor):
    """The oracle doctor ``open-oracle`` (see the module docstring).

    Args:
        env: The open env it plays in (read at ``reset`` for the case being played).
        questions: Most questions to ask before requesting tests.
    """

    def __init__(self, env: Any, questions: int = 8) -> None:
        self.env = env
        self.questions = questions
        self.plan: list[str] = []

    def reset(self, seed: int | None = None) -> None:
        """Forget the plan (it is made at the first turn of an episode)."""
        self.plan = []

    def _make_plan(self) -> list[str]:
        env = self.env.unwrapped if hasattr(self.env, "unwrapped") else self.env
        case: Case = env.case
        cat: Catalogue = env.catalogue
        budget = max(1, env.max_doctor_turns - 1)
        lines = []
        for hid in case.history:
            if hid == case.presenting_complaint or hid not in cat.history:
                continue
            lines.append(cat.history[hid].question)
        tests = []
        for tid in case.essential_tests:
            item = cat.tests.get(tid)
            tests.append(f"REQUEST TEST: {item.label if item else tid}")
        n_tests = min(len(tests), max(0, budget - 1))
        n_questions = min(self.questions, len(lines), max(0, budget - n_tests))
        gold = cat.diagnoses.get(case.gold_diagnosis)
        name = case.gold_text or (gold.label if gold else case.gold_diagnosis)
        return [*lines[:n_questions], *tests[:n_tests], f"DIAGNOSIS READY: {name}"]


class OpenRandomDoctor(_PlannedDoctor):
    """The chance-level doctor ``open-random`` (see the module docstring).

    Args:
        env: The open env it plays in (only its catalogue and turn budget are read).
        seed: Default seed; :meth:`reset` with the episode's seed makes each episode reproducible.
    """

    def __init__(self, env: Any, seed: int = 0) -> None:
        self.env = env
        self.rng = np.random.default_rng(seed)
        self.plan: list[str] = []

    def reset(self, seed: int | None = None) -> None:
        """Forget the plan and reseed (the plan is drawn at the first turn of an episode)."""
        self.plan = []
        if seed is not None:
            self.rng = np.random.default_rng(seed)

    def _make_plan(self) -> list[str]:
        env = self.env.unwrapped if hasattr(self.env, "unwrapped") else self.env
        cat: Catalogue = env.catalogue
        budget = max(1, int(env.max_doctor_turns) - 1)
        questions = [cat.history[h].question for h in cat.history_ids]
        tests = [f"REQUEST TEST: {cat.tests[t].label}" for t in cat.test_ids]
        n_questions = int(self.rng.integers(2, 9))
        n_tests = int(self.rng.integers(0, 4))
        n_questions = min(n_questions, budget)
        n_tests = min(n_tests, max(0, budget - n_questions))
        picked_q = [questions[int(i)] for i in self.rng.choice(len(questions), n_questions, replace=False)]
        picked_t = [tests[int(i)] for i in self.rng.choice(len(tests), n_tests, replace=False)] if n_tests else []
        code = cat.diagnosis_codes[int(self.rng.integers(len(cat.diagnosis_codes)))]
        return [*picked_q, *picked_t, f"DIAGNOSIS READY: {cat.diagnoses[code].label}"]


#: The scripted doctors by name: the upper and the lower bound of open mode.
SCRIPTED_DOCTORS: dict[str, type[OpenOracleDoctor] | type[OpenRandomDoctor]] = {
    "open-random": OpenRandomDoctor, "open-oracle": OpenOracleDoctor}
