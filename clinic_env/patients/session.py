"""The patient's side of one episode: what it says, what it disclosed, what the guard blocked.

:class:`PatientSession` is created by the engine at every reset and called on every patient
answer. It keeps the engine lean: the engine renders the answer mode (``core/speech.py``) and
hands the words here, which

- fits every generic answer (vague, withheld, the catalogue's default) to the question's type and
  to the case's patient: their age, sex and informant (:mod:`~clinic_env.patients.answers`);
- adds the persona's tangential talk (structured patient) and its anxious asides to the doctor
  (Baichuan-M3's interruption mode, at the configured share), using only lines that suit the
  patient and name no test (:mod:`~clinic_env.patients.speaker`); a tangent is said at most once
  an episode, and when they are used up the patient stays on topic;
- passes every text that did not come straight from the asked fact through the
  :class:`~clinic_env.patients.leak_guard.LeakGuard` (an LLM patient's whole reply, a tangent, an
  aside) and records what it blocked;
- records which case facts each answer disclosed, and at what level (1 full, 0.5 vague).

The extra fields it returns are merged into the patient's turn in ``engine.turns``:
``fact`` (the item answered), ``mode`` (the answer mode), ``disclosed`` ({fact id: level}),
``contradiction`` (the scripted contradiction, flagged so nobody is penalised for it),
``free_text`` (an LLM patient's own words), ``tangent`` (the tangent said), ``interruption`` and
``guard`` (what the
leak guard blocked from the reply). ``session.blocks`` lists every block of the episode.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import numpy as np

from clinic_env.patients.answers import answer_source, fit_answer
from clinic_env.patients.leak_guard import LeakGuard
from clinic_env.patients.normalise import views
from clinic_env.patients.speaker import Speaker, fitting
from clinic_env.patients.terms import make_term, term_in
from clinic_env.patients.wording import DEFAULT_ANXIOUS_QUESTIONS, DEFAULT_INTERRUPTION_SHARE, pick
from clinic_env.schema.case import Case, Fact
from clinic_env.schema.catalogue import Catalogue, HistoryItem
from clinic_env.schema.persona import Persona

__all__ = ["PatientSession", "guard_for", "interruption_rate", "is_direct"]

_GUARDS: OrderedDict[int, tuple[Case, LeakGuard]] = OrderedDict()


def guard_for(case: Case, catalogue: Catalogue) -> LeakGuard:
    """The (cached) leak guard of ``case``."""
    key = id(case) ^ id(catalogue)
    hit = _GUARDS.get(key)
    if hit is not None and hit[0] is case:
        _GUARDS.move_to_end(key)
        return hit[1]
    guard = LeakGuard(case, catalogue)
    _GUARDS[key] = (case, guard)
    if len(_GUARDS) > 256:
        _GUARDS.popitem(last=False)
    return guard


def interruption_rate(persona: Persona, share: float | None = None) -> float:
    """The share of patient turns with an anxious aside.

    ``share`` (the env's ``interruption_share``) overrides every persona when given. Otherwise a
    persona's own ``interruption.rate`` applies; a persona that lists anxious questions without a
    rate gets :data:`~clinic_env.patients.wording.DEFAULT_INTERRUPTION_SHARE` (25%).
    """
    if share is not None:
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"interruption_share must be in [0, 1], got {share}")
        return share
    inter = persona.interruption
    if "rate" in inter.model_fields_set:
        return inter.rate
    return DEFAULT_INTERRUPTION_SHARE if inter.questions else 0.0


def is_direct(question: str, item: HistoryItem) -> bool:
    """Whether a doctor's own words ask about ``item`` by name (``"How much alcohol do you drink?"``
    is direct about alcohol; ``"Anything else going on at home?"`` is not). A persona that
    withholds an item discloses it when asked directly or a second time."""
    v = views(question)
    for phrase in (item.label, *item.synonyms):
        term = make_term(phrase)
        if term is not None and term.words and term_in(term, v, question, fuzzy=False):
            return True
    return False


class PatientSession:
    """Per-episode patient bookkeeping (see the module docstring).

    Args:
        case: The episode's case.
        persona: The episode's persona.
        catalogue: The catalogue (for the leak guard).
        rng: The env's generator (tangents and asides).
        interruption_share: The env's override of the persona's interruption rate.
    """

    def __init__(self, case: Case, persona: Persona, catalogue: Catalogue, rng: np.random.Generator,
                 interruption_share: float | None = None) -> None:
        self.case, self.persona, self.catalogue, self.rng = case, persona, catalogue, rng
        self.speaker = Speaker.of(case)
        self.rate = interruption_rate(persona, interruption_share)
        self.questions = fitting(persona.interruption.questions, self.speaker) or self._neutral_questions()
        self.tangents = fitting(persona.phrases.tangents, self.speaker) if persona.noise.tangential else ()
        self.tangents_said: set[str] = set()
        self.disclosed: dict[str, float] = {}
        self.blocks: list[dict[str, Any]] = []
        self._guard: LeakGuard | None = None
        # Free-text replies the doctor saw (the guard checks each new one after them), and the
        # reasons of a reply the text env replaced by the neutral answer (recorded on its turn).
        self.shown: list[str] = []
        self._replaced: list[str] = []

    def _neutral_questions(self) -> tuple[str, ...]:
        return fitting(DEFAULT_ANXIOUS_QUESTIONS, self.speaker) or DEFAULT_ANXIOUS_QUESTIONS[:1]

    @property
    def guard(self) -> LeakGuard:
        """The case's leak guard (built on first use)."""
        if self._guard is None:
            self._guard = guard_for(self.case, self.catalogue)
        return self._guard

    def _safe(self, text: str, asked: Iterable[str], source: str, cycle: int) -> str | None:
        if self.guard.is_clean(text):
            return text
        result = self.guard.check(text, asked)
        if not result.blocked:
            return text
        self.blocks.append({"cycle": cycle, "source": source, "blocked": result.blocked})
        return None

    def precheck(self, said: str, asked: Iterable[str]) -> list[str]:
        """Why the guard would block an LLM patient's reply now (empty: it passes whole); nothing
        is recorded (the text env regenerates a blocked reply once before it reaches the engine)."""
        return list(self.guard.check(said, asked, history=self.shown).blocked)

    def replaced(self, reasons: list[str], cycle: int, outcome: str) -> None:
        """Record a reply the text env did not use (``outcome``: ``regenerate`` or ``neutral``)."""
        self.blocks.append({"cycle": cycle, "source": "reply", "blocked": list(reasons), "outcome": outcome})
        if outcome == "neutral":
            self._replaced = list(reasons)

    def speak(self, hid: str, mode: str, fact: Fact | None, text: str, credit: float, contradiction: bool,
              said: str | None, asked: Iterable[str], cycle: int) -> tuple[str, dict[str, Any]]:
        """The words shown to the doctor for an answer, and the turn's extra record fields.

        Args:
            hid: The history item answered.
            mode: The answer mode.
            fact: The case's fact for ``hid`` (None when the case does not list it).
            text: The rendered answer (structured patient).
            credit: The answer's disclosure credit.
            contradiction: The scripted contradiction was used.
            said: An LLM patient's own reply, if any (it replaces ``text`` after the guard).
            asked: Ids asked so far (the guard's notion of "asked for").
            cycle: The current cycle (recorded with any block).
        """
        extra: dict[str, Any] = {"fact": hid}
        disclosed: dict[str, float] = {}
        if said is not None:
            extra["free_text"] = True
            asked = list(asked)
            result = self.guard.check(said, asked, history=self.shown)
            shown = result.text
            if result.blocked:
                extra["guard"] = result.blocked
                self.blocks.append({"cycle": cycle, "source": "reply", "blocked": result.blocked})
            elif self._replaced:
                extra["guard"] = self._replaced
            self._replaced = []
            self.shown.append(shown)
            disclosed = {h: 1.0 for h in result.disclosed}
            if fact is not None and credit > 0 and shown == said:
                disclosed[hid] = max(disclosed.get(hid, 0.0), credit)
            elif fact is not None and credit > 0 and hid in result.disclosed:
                disclosed[hid] = credit
        else:
            item = self.catalogue.history[hid]
            shown = fit_answer(text, answer_source(mode, fact), item, self.persona, self.speaker, self.rng)
            if fact is not None and credit > 0:
                disclosed[hid] = credit
            tangent = self._tangent(asked, cycle)
            if tangent is not None:
                shown = f"{shown} {tangent}"
                extra["tangent"] = tangent
        if contradiction:
            extra["contradiction"] = True
        if disclosed:
            extra["disclosed"] = disclosed
            for h, level in disclosed.items():
                self.disclosed[h] = max(self.disclosed.get(h, 0.0), level)
        extra["mode"] = mode
        return shown, extra

    def _tangent(self, asked: Iterable[str], cycle: int) -> str | None:
        """A tangent not said before this episode, drawn at the persona's tangential rate."""
        unused = tuple(t for t in self.tangents if t not in self.tangents_said)
        if not unused or self.rng.random() >= self.persona.noise.tangential:
            return None
        tangent = pick(unused, self.rng)
        self.tangents_said.add(tangent)  # a blocked tangent is spent too: it is never tried again
        return tangent if self._safe(tangent, asked, "tangent", cycle) is not None else None

    def interruption(self, asked: Iterable[str], cycle: int) -> str | None:
        """An anxious aside to the doctor, drawn at the interruption rate (None most turns). An
        aside that would hint at the diagnosis ("Am I having a heart attack?" in an MI case) is
        replaced by a neutral one. Only questions that suit the patient (age, sex, informant) and
        name no test are asked."""
        if not self.rate or self.rng.random() >= self.rate:
            return None
        question = pick(self.questions, self.rng)
        if self._safe(question, asked, "interruption", cycle) is None:
            question = self._neutral_questions()[0]
        return question
