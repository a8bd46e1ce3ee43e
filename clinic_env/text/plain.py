"""Plain English from a person in the doctor's seat (``clinic-env play``, the teaching page).

:class:`PlainReader` turns one typed line into a :class:`Plan`: a command (``help``, ``hint``,
``status``, ``quit``), the closing action of the segment (``done``, ``next``, ``ready for
tests``), words to the patient (``say: ...``, or a statement such as "I think this is your heart;
if it gets worse, call 999"), or structured actions found by the tolerant
:class:`~clinic_env.text.parse.DoctorParser` (questions, examinations and tests by common name,
diagnoses by name or ICD-10 code). When the words name nothing usable now it says why (the item
belongs to another segment, was already asked, needs a procedure first) or offers the closest
legal items by :meth:`~clinic_env.text.match.CatalogueMatcher.ranked`, numbered, so typing the
number chooses one. Pure: the reader keeps no episode state; the caller passes the mask, the
segment, what was asked and ordered, and the options it offered last.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from clinic_env.core.actions import COMMIT_DIFFERENTIAL, END_SEGMENT, ActionTable
from clinic_env.core.engine import DIAGNOSIS, DIFFERENTIAL, HISTORY, SEGMENTS, TESTS
from clinic_env.schema.catalogue import Catalogue
from clinic_env.text.parse import DoctorParser, matcher_for

__all__ = ["COMMANDS", "PlainReader", "Plan", "describe_action"]

#: Command words and what they mean.
COMMANDS = {"help": "help", "?": "help", "h": "help", "commands": "help", "hint": "hint", "status": "status",
            "where am i": "status", "quit": "quit", "exit": "quit", "q": "quit", "bye": "quit", "stop": "quit"}
_CLOSE = re.compile(
    r"(done|next|finished|finish|end|continue|move on|next segment|next step|that'?s (all|it|everything)|"
    r"no more( questions| tests)?|nothing (else|more)|(i'?m )?ready( to move on)?( for)?( the)? ?"
    r"(tests?|investigations?|differential|diagnosis|examination)?|commit( the)?( list| differential)?|"
    r"end (the )?(history|tests|segment))")
#: The lowest :meth:`~clinic_env.text.match.CatalogueMatcher.ranked` score worth offering.
_OFFER = 0.55
_SAY = re.compile(r"^\s*(?:say|tell the patient|explain to the patient)\s*[:,\-]?\s+(.+)$", re.I | re.S)
_QUOTED = re.compile(r'^\s*["\u201c\u2018\'](.+)["\u201d\u2019\']\s*$', re.S)
_SPEECH = re.compile(
    r"^(hello|hi|good (morning|afternoon|evening)|my name|i'?m dr|i am dr|thank|thanks|sorry|don'?t worry|"
    r"it'?s (likely|probably|important|possible)|it (looks|sounds|seems)|this (is|looks|sounds|could|might)|"
    r"i think|i'?m (going|worried|concerned|afraid|sorry)|i am (going|worried|concerned)|i will|i'?ll|we'?ll|"
    r"we (will|need|should|are going|can)|you (should|need|must|will|may|might|can|'?ll)|if |please|"
    r"let me explain|come back|call |return |seek |ok|okay|right,|so,)", re.I)
_REQUEST = re.compile(r"\b(order|check|request|send|examine|listen|measure|take|do (a|an|some)|get (a|an|some)|"
                      r"scan|test|x-?ray|ask( you)? about)\b", re.I)


@dataclass(frozen=True)
class Plan:
    """What one typed line asks for.

    Attributes:
        command: ``help``, ``hint``, ``status`` or ``quit``; None for anything else.
        actions: ``(action index, words)`` to play in order (the words are the doctor's own for a
            question, or the whole line for a diagnosis given in a sentence).
        speech: Words to the patient that go with no action (recorded with the next one).
        notes: Things to tell the person that are not errors (e.g. which code a name was taken as).
        error: Why nothing happens; None when the line was used.
        options: Action indices offered (type 1..n to choose); with ``error``.
    """

    command: str | None = None
    actions: tuple[tuple[int, str | None], ...] = ()
    speech: str | None = None
    notes: tuple[str, ...] = ()
    error: str | None = None
    options: tuple[int, ...] = ()

    @property
    def understood(self) -> bool:
        """Whether the line was used (a command, actions or speech)."""
        return self.error is None


def describe_action(index: int, table: ActionTable, cat: Catalogue) -> str:
    """A person's name for an action: the question's label, the test's label and cost, the
    diagnosis's label and code, or what a control action does."""
    name = table.names[index]
    if name == "end_segment":
        return "finish this segment"
    if name == "commit_differential":
        return "commit the differential"
    kind, _, item = name.partition(":")
    if kind == "ask":
        return f"{cat.history[item].label} ({cat.history[item].question})"
    if kind == "order":
        t = cat.tests[item]
        return f"{t.label} (${t.cost_usd:,.0f})"
    if kind == "dx":
        return f"{cat.diagnoses[item].label} ({item})"
    return name


def _kind_word(kind: str) -> str:
    return {"history": "a question", "test": "an examination or test", "diagnosis": "a diagnosis"}[kind]


class PlainReader:
    """Reads typed lines for one catalogue and action table (see the module docstring).

    Args:
        catalogue: The env's catalogue.
        table: The env's action table.
        n_options: How many closest items to offer when the words name nothing.
    """

    def __init__(self, catalogue: Catalogue, table: ActionTable, n_options: int = 5) -> None:
        self.cat, self.table, self.n_options = catalogue, table, n_options
        self.parser = DoctorParser(catalogue, table)
        self.matcher = matcher_for(catalogue)

    def _index(self, kind: str, item: str) -> int:
        t = self.table
        return t.ask(item) if kind == "history" else t.order(item) if kind == "test" else t.dx(item)

    def _legal(self, kind: str, mask: np.ndarray) -> list[str]:
        t = self.table
        ids: Sequence[str] = {"history": t.history_ids, "test": t.test_ids, "diagnosis": t.diagnosis_codes}[kind]
        return [x for x in ids if mask[self._index(kind, x)]]

    def read(self, text: str, mask: np.ndarray, segment: int, asked: Collection[str] = (),
             ordered: Collection[str] = (), offered: Sequence[int] = ()) -> Plan:
        """The :class:`Plan` for ``text`` given the doctor's ``mask`` and ``segment`` (never raises).

        Args:
            text: What was typed.
            mask: The doctor's action mask now.
            segment: The segment index (0-3).
            asked: History ids asked so far.
            ordered: Test ids ordered so far.
            offered: The options offered by the last plan (a number chooses one of them).
        """
        words = text.strip()
        low = re.sub(r"[\s.!]+$", "", words.lower())
        if not low:
            return Plan(error="Type a question, an examination or test, a diagnosis, or 'help'.")
        if low in COMMANDS:
            return Plan(command=COMMANDS[low])
        if low.isdigit() and offered:
            n = int(low)
            if 1 <= n <= len(offered) and mask[offered[n - 1]]:
                return Plan(actions=((offered[n - 1], None),))
            return Plan(error=f"Choose a number from 1 to {len(offered)}, or type words.", options=tuple(offered))
        if _CLOSE.fullmatch(low):
            return self._close(mask, segment)
        said = _SAY.match(words) or _QUOTED.match(words)
        if said:
            return Plan(speech=said.group(1).strip())
        statement = "?" not in words and bool(_SPEECH.match(words)) and not _REQUEST.search(words)
        if statement and segment in (HISTORY, TESTS):
            return Plan(speech=words)
        if segment == HISTORY:
            exam = self._exam_in_history(words, mask)
            if exam is not None:
                return exam
        result = self.parser.parse(words, mask, segment)
        if result.ok:
            return self._actions(words, [(a.index, a.said) for a in result.actions], segment)
        if statement or ("?" not in words and len(words.split()) >= 6 and not _REQUEST.search(words)):
            return Plan(speech=words)
        return self._explain(words, mask, segment, asked, ordered)

    # ------------------------------------------------------------------------------------------ parts
    def _close(self, mask: np.ndarray, segment: int) -> Plan:
        if segment == DIFFERENTIAL:
            if mask[COMMIT_DIFFERENTIAL]:
                return Plan(actions=((COMMIT_DIFFERENTIAL, None),))
            return Plan(error="Name at least one diagnosis for your differential before moving on "
                              "(e.g. 'pneumonia' or an ICD-10 code such as J18.9).")
        if segment == DIAGNOSIS:
            return Plan(error="The consultation ends with your final diagnosis: name one (e.g. 'pneumonia' or J18.9).")
        if mask[END_SEGMENT]:
            return Plan(actions=((END_SEGMENT, None),))
        return Plan(error="Nothing to close now.")

    def _exam_in_history(self, words: str, mask: np.ndarray) -> Plan | None:
        """An examination or test named in the history segment (and no question): ordered if it is
        a bedside assessment allowed now, otherwise explained."""
        tests = self.matcher.find("test", words)
        if not tests or self.matcher.find("history", words):
            return None
        legal = [m for m in tests if mask[self.table.order(m.item)]]
        if legal:
            return self._actions(words, [(self.table.order(m.item), None) for m in legal], HISTORY)
        names = ", ".join(self.cat.tests[m.item].label for m in tests[:3])
        bedside = [self.cat.tests[x].label for x in self._legal("test", mask)][:6]
        return Plan(error=f"{names}: examinations and tests come in the tests segment, after the differential. "
                          "Type 'done' to finish the history."
                          + (f" Bedside checks you can do now: {'; '.join(bedside)}." if bedside else ""))

    def _actions(self, words: str, pairs: list[tuple[int, str | None]], segment: int) -> Plan:
        t = self.table
        if segment in (DIFFERENTIAL, DIAGNOSIS):
            dx = [(i, s) for i, s in pairs if t.dx0 <= i < t.answer0]
            pairs = dx or pairs
            # A diagnosis given in a sentence ("I think this is a heart attack, we'll treat it now")
            # keeps the sentence as the doctor's words, so communication can be judged.
            sentence = words if _SPEECH.match(words) else None
            pairs = [(i, sentence if n == 0 else None) for n, (i, _) in enumerate(pairs)]
            if segment == DIAGNOSIS and len(pairs) > 1:
                return Plan(error="Your final diagnosis is one diagnosis: choose one of these (type its number).",
                            options=tuple(i for i, _ in pairs[: self.n_options]))
        return Plan(actions=tuple(pairs))

    def _explain(self, words: str, mask: np.ndarray, segment: int, asked: Collection[str],
                 ordered: Collection[str]) -> Plan:
        """Why ``words`` give no legal action now, or the closest legal items."""
        kind = {HISTORY: "history", TESTS: "test"}.get(segment, "diagnosis")
        seg = SEGMENTS[min(segment, DIAGNOSIS)]
        found = {k: self.matcher.find(k, words) for k in ("history", "test", "diagnosis")}
        for m in found[kind]:
            if kind == "history" and m.item in asked:
                return Plan(error=f"You have already asked about {self.cat.history[m.item].label.lower()} "
                                  "(the answer is above).")
            if kind == "test" and m.item in ordered:
                return Plan(error=f"{self.cat.tests[m.item].label} is already done (the result is above).")
            if kind == "test" and self.cat.tests[m.item].requires:
                need = " or ".join(self.cat.tests[r].label for r in self.cat.tests[m.item].requires)
                return Plan(error=f"{self.cat.tests[m.item].label} needs a sample: do the {need} first.")
        where = {"history": "in the history segment (it is over now)",
                 "test": "in the tests segment (after the differential)" if segment < TESTS else
                         "in the tests segment (it is over now)",
                 "diagnosis": "in the differential and the final diagnosis, after the history and tests"}
        for other in ("history", "test", "diagnosis"):
            if other != kind and found[other] and not found[kind]:
                if other == "test" and segment == HISTORY:
                    continue  # handled by _exam_in_history
                item = found[other][0].item
                label = (self.cat.history[item].label if other == "history" else
                         self.cat.tests[item].label if other == "test" else self.cat.diagnoses[item].label)
                return Plan(error=f"'{label}' is {_kind_word(other)}: those come {where[other]}. "
                                  f"You are in the {seg} segment.")
        legal = self._legal(kind, mask)
        if segment == HISTORY:
            ranked = [(self.table.ask(x), s) for x, s in self.matcher.ranked("history", words, legal, self.n_options)]
            tests = self.matcher.ranked("test", words, None, 1)
            if tests and (not ranked or tests[0][1] > ranked[0][1]) and tests[0][1] >= _OFFER:
                item = tests[0][0]
                if mask[self.table.order(item)]:
                    ranked.insert(0, (self.table.order(item), tests[0][1]))
                else:
                    return Plan(error=f"Did you mean {self.cat.tests[item].label}? Examinations and tests come in "
                                      "the tests segment, after the differential; type 'done' to finish the history.")
        else:
            ranked = [(self._index(kind, x), s) for x, s in self.matcher.ranked(kind, words, legal, self.n_options)]
        options = tuple(i for i, s in ranked[: self.n_options] if s >= _OFFER)
        if not options:
            return Plan(error=f"I could not match '{words}' to {_kind_word(kind)}. Rephrase it, or type 'help'.")
        return Plan(error=f"I could not match '{words}' to {_kind_word(kind)}. Closest (type a number to "
                          "choose one, or rephrase):", options=options)
