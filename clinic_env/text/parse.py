"""The tolerant parser: turn an LLM's reply into legal structured actions, or say why not.

``DoctorParser.parse(reply, mask, segment)`` never raises. It accepts, in order of preference:

1. JSON (bare, in a code fence, or embedded in prose): one object ``{"action", "item", "text"}``,
   a list of them, or ``{"actions": [...]}``. ``action`` may be a verb (``ask``, ``order``,
   ``dx``, ``end_segment``, ``commit_differential`` and common synonyms) or a full action name
   (``ask:hx.onset``); ``item`` an id, an ICD-10 code or free words; when ``item`` names nothing,
   ``text`` is searched.
2. Action names written out anywhere (``order:lab.troponin``, ``dx:I21.4``, ``end_segment``).
3. Free text, matched to the catalogue of the current segment: "order troponin and an ECG" gives
   two orders, "When did it start? Does it spread?" two questions (one item per sentence),
   "I think this is pulmonary embolism (I26.9)" one diagnosis; phrases such as "no more
   questions" or "move on" close the segment.

Only actions legal in the current mask are returned, in the order written. A reply that is empty,
longer than ``max_chars``, or yields no legal action gets ``error`` set to a short reason, which
the text envs show the model when they re-ask (once; then the turn is a penalised no-op).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from clinic_env.core.actions import COMMIT_DIFFERENTIAL, END_SEGMENT, PATIENT_MODES, ActionTable
from clinic_env.core.engine import DIAGNOSIS, DIFFERENTIAL, HISTORY, SEGMENTS, TESTS
from clinic_env.schema.catalogue import Catalogue
from clinic_env.text.jsonscan import extract_json
from clinic_env.text.match import CatalogueMatcher
from clinic_env.text.sense import match_question, read
from clinic_env.text.verdicts import parse_grades, parse_verdict

__all__ = ["DEFAULT_MAX_CHARS", "DoctorParser", "ParseResult", "ParsedAction", "extract_json", "matcher_for",
           "parse_grades", "parse_patient_reply", "parse_verdict"]

#: Replies longer than this are rejected as over-long (re-asked) rather than searched.
DEFAULT_MAX_CHARS = 4000
_MAX_ACTIONS = 8
# Sentences of one reply that are read, the longest sentence read as a question, and the most
# characters searched for item names: a longer reply is cut, so the parse stays bounded.
_MAX_SENTENCES = 24
_MAX_QUESTION_CHARS = 400
_MAX_SEARCH_CHARS = 4000

_VERBS = {
    "ask": "ask", "question": "ask", "ask_question": "ask", "history": "ask", "inquire": "ask", "enquire": "ask",
    "order": "order", "test": "order", "order_test": "order", "investigate": "order", "examine": "order",
    "request": "order", "exam": "order", "dx": "dx", "diagnose": "dx", "diagnosis": "dx", "differential": "dx",
    "add_differential": "dx", "add_diagnosis": "dx", "final_diagnosis": "dx", "end_segment": "end",
    "end": "end", "next": "end", "done": "end", "finish": "end", "end_history": "end", "end_tests": "end",
    "commit_differential": "commit", "commit": "commit", "submit_differential": "commit",
}
_KIND = {"ask": "history", "order": "test", "dx": "diagnosis"}
_NAME = re.compile(r"\b(ask|order|dx):([A-Za-z0-9_.\-]+)")
_CONTROL = re.compile(r"\b(end[_ ]segment|commit[_ ]differential)\b", re.I)
_CLOSE = re.compile(
    r"\b(no (more|further) (questions|tests|investigations)|that'?s all|move on|moving on|end (the )?"
    r"(history|segment|tests)|finish(ed)? (the )?(history|tests)|nothing (more|else) to (ask|order)|"
    r"(commit|finali[sz]e|lock in) (the |my )?(differential|list))\b", re.I)
_SENTENCE = re.compile(r"(?<=[?.!;\n])\s+|\s+(?:and|also|then)\s+(?=(?:do|does|did|have|has|is|are|any|how|what|when|where|why|can|could)\b)", re.I)


@dataclass(frozen=True)
class ParsedAction:
    """One structured action: its index in the env's action table, its name, and the words said."""

    index: int
    name: str
    said: str | None = None


@dataclass(frozen=True)
class ParseResult:
    """The outcome of parsing one reply: legal actions in order, or an ``error`` reason."""

    actions: tuple[ParsedAction, ...] = ()
    error: str | None = None
    source: str = "text"

    @property
    def ok(self) -> bool:
        """Whether at least one legal action was found."""
        return bool(self.actions) and self.error is None


# Building a matcher takes ~30 ms; envs sharing a catalogue share one (cached by identity).
_MATCHERS: dict[int, tuple[Catalogue, CatalogueMatcher]] = {}


def matcher_for(catalogue: Catalogue) -> CatalogueMatcher:
    """The (cached) :class:`CatalogueMatcher` of ``catalogue``."""
    hit = _MATCHERS.get(id(catalogue))
    if hit is not None and hit[0] is catalogue:
        return hit[1]
    if len(_MATCHERS) > 32:
        _MATCHERS.clear()
    matcher = CatalogueMatcher(catalogue)
    _MATCHERS[id(catalogue)] = (catalogue, matcher)
    return matcher


class DoctorParser:
    """Parses doctor replies for one catalogue and action table (see the module docstring).

    Args:
        catalogue: The env's catalogue.
        table: The env's action table.
        max_chars: Longest reply accepted.
    """

    def __init__(self, catalogue: Catalogue, table: ActionTable, max_chars: int = DEFAULT_MAX_CHARS) -> None:
        self.cat, self.table, self.max_chars = catalogue, table, max_chars
        self.matcher = matcher_for(catalogue)
        self.refusals: list[str] = []

    # ------------------------------------------------------------------------------------------ helpers
    def _index(self, kind: str, item: str) -> int:
        t = self.table
        if kind == "history":
            return t.ask(item)
        if kind == "test":
            return t.order(item)
        return t.dx(item)

    def _legal(self, index: int, mask: np.ndarray) -> bool:
        return 0 <= index < mask.shape[0] and bool(mask[index])

    def _resolve(self, kind: str, item: str, said: str, mask: np.ndarray) -> list[int]:
        """Indices for ``item`` (an id or words) of ``kind``; falls back to searching ``said``."""
        exact = self.matcher.exact(kind, item) if item else None
        if exact is not None:
            return [self._index(kind, exact)]
        for text, question in ((item, False), (said, True)):
            if text:
                found = self._find(kind, text, mask, question)
                if found:
                    return found
        return []

    def _find(self, kind: str, text: str, mask: np.ndarray | None, question: bool = True) -> list[int]:
        return [i for i, _ in self._find_said(kind, text, mask, question)]

    def _find_said(self, kind: str, text: str, mask: np.ndarray | None,
                   question: bool = True) -> list[tuple[int, str | None]]:
        """Items of ``kind`` named in ``text`` (legal ones only unless ``mask`` is None); for history,
        one item per sentence, paired with that sentence (the doctor's words for the question).

        With ``question`` (free text), a history item is taken only from a sentence that reads as a
        confident clinical question (:func:`~clinic_env.text.sense.match_question`); a sentence
        about the conversation itself (role-play, code words, formats) names nothing of any kind.
        Without it (the ``item`` field of a JSON action, which names an item by design), alias
        phrases and then the word overlap are used as names.
        """
        legal = self._legal_ids(kind, mask) if mask is not None else None
        text = text[:_MAX_SEARCH_CHARS]
        sentences = [s.strip() for s in _SENTENCE.split(text)[:_MAX_SENTENCES] if s and s.strip()]
        if question:
            sentences = [s for s in sentences if self._readable(s)]
        if kind != "history":
            found = self.matcher.find(kind, " . ".join(sentences) if question else text, legal)
            return [(self._index(kind, m.item), None) for m in found]
        out: list[tuple[int, str | None]] = []
        for sentence in sentences if question else [text]:
            item = self._question(sentence, legal) if question else self._name(sentence, legal)
            if item is not None and all(self._index(kind, item) != i for i, _ in out):
                out.append((self._index(kind, item), sentence.strip()))
        return out

    def _readable(self, sentence: str) -> bool:
        """Whether a sentence may name items: not over-long, not about the conversation itself."""
        if len(sentence) > _MAX_QUESTION_CHARS:
            self.refusals.append(f"a sentence of {len(sentence)} characters is too long to be one question")
            return False
        meta = read(sentence).meta
        if meta is not None:
            self.refusals.append(f"'{' '.join(meta)}' is a request about the conversation, not a question")
            return False
        return True

    def _question(self, sentence: str, legal: list[str] | None) -> str | None:
        """The item a sentence confidently asks about; an illegal item found (already asked) is kept
        rather than replaced by a legal guess, unless a shared phrase resolves to a legal item."""
        found = match_question(self.matcher, sentence, None)
        if found.item is not None and legal is not None and found.item not in legal:
            again = match_question(self.matcher, sentence, legal)
            if again.item is not None and again.reason == "phrase":
                return again.item
        if found.item is None:
            self.refusals.append(f"'{_clip(sentence)}': {found.reason}")
        return found.item

    def _name(self, words: str, legal: list[str] | None) -> str | None:
        hits = self.matcher.find("history", words, legal)
        return hits[0].item if hits else self.matcher.best("history", words, legal)

    def _legal_ids(self, kind: str, mask: np.ndarray) -> list[str]:
        t = self.table
        if kind == "history":
            return [h for i, h in enumerate(t.history_ids) if mask[t.ask0 + i]]
        if kind == "test":
            return [x for i, x in enumerate(t.test_ids) if mask[t.order0 + i]]
        return [c for i, c in enumerate(t.diagnosis_codes) if mask[t.dx0 + i]]

    @staticmethod
    def _kind_for(segment: int) -> str:
        return {HISTORY: "history", TESTS: "test"}.get(segment, "diagnosis")

    def _close(self, segment: int) -> int:
        return COMMIT_DIFFERENTIAL if segment == DIFFERENTIAL else END_SEGMENT

    # ------------------------------------------------------------------------------------------ parsing
    def _from_json(self, value: Any, mask: np.ndarray, segment: int) -> list[tuple[int, str | None]]:
        entries = value.get("actions", [value]) if isinstance(value, dict) else value
        out: list[tuple[int, str | None]] = []
        for entry in entries[:_MAX_ACTIONS] if isinstance(entries, list) else []:
            if not isinstance(entry, dict):
                continue
            verb = str(entry.get("action", "") or "").strip()
            item = entry.get("item", "")
            items = [str(x) for x in item] if isinstance(item, list) else [str(item or "")]
            said = str(entry.get("text", "") or "").strip() or None
            named = _NAME.fullmatch(verb)
            if named:
                verb, items = named.group(1), [named.group(2)]
            key = _VERBS.get(verb.lower().replace(" ", "_").replace("-", "_"))
            if key is None and not verb:
                key = {HISTORY: "ask", TESTS: "order"}.get(segment, "dx")
            if key in ("end", "commit"):
                out.append((END_SEGMENT if key == "end" else COMMIT_DIFFERENTIAL, said))
                if not self._legal(out[-1][0], mask):
                    out[-1] = (self._close(segment), said)
            elif key in _KIND:
                for it in items:
                    out.extend((i, said) for i in self._resolve(_KIND[key], it.strip(), said or "", mask))
        return out

    def _from_text(self, reply: str, mask: np.ndarray, segment: int) -> list[tuple[int, str | None]]:
        out: list[tuple[int, str | None]] = []
        for m in _NAME.finditer(reply):
            kind = _KIND[m.group(1)]
            exact = self.matcher.exact(kind, m.group(2))
            if exact is not None:
                out.append((self._index(kind, exact), None))
        for m in _CONTROL.finditer(reply):
            out.append((END_SEGMENT if m.group(1).lower().startswith("end") else COMMIT_DIFFERENTIAL, None))
        if out:
            return out
        kind = self._kind_for(segment)
        out = self._find_said(kind, reply, mask) if segment <= DIAGNOSIS else []
        if not out and _CLOSE.search(reply):
            out.append((self._close(segment), None))
        if not out:
            # Name what was asked for in the wrong segment, so the re-ask can say why it failed.
            for other in ("test", "history", "diagnosis"):
                if other != kind:
                    out = self._find_said(other, reply, None)[:1]
                    if out:
                        break
        return out

    def parse(self, reply: Any, mask: np.ndarray, segment: int) -> ParseResult:
        """Parse ``reply`` given the doctor's action ``mask`` and the ``segment`` index (never raises)."""
        if not isinstance(reply, str):
            return ParseResult(error=f"the reply is not text (got {type(reply).__name__})")
        text = reply.strip()
        if not text:
            return ParseResult(error="the reply was empty")
        if len(text) > self.max_chars:
            return ParseResult(error=f"the reply was over-long ({len(text)} characters; at most {self.max_chars})")
        self.refusals = []
        value = extract_json(text)
        source = "json" if value is not None else "text"
        pairs = self._from_json(value, mask, segment) if value is not None else []
        if not pairs:
            pairs = self._from_text(text, mask, segment)
            source = "text" if pairs or value is None else "json"
        legal: list[ParsedAction] = []
        seen: set[int] = set()
        illegal: list[str] = []
        for index, said in pairs:
            name = self.table.names[index] if 0 <= index < self.table.n else str(index)
            if index in seen:
                continue
            seen.add(index)
            if self._legal(index, mask):
                legal.append(ParsedAction(index, name, said))
            else:
                illegal.append(name)
        if legal:
            return ParseResult(tuple(legal[:_MAX_ACTIONS]), None, source)
        seg = SEGMENTS[min(segment, DIAGNOSIS)]
        if illegal:
            return ParseResult(error=f"{', '.join(illegal[:3])} is not allowed now (segment: {seg})", source=source)
        why = f" ({'; '.join(self.refusals[:2])})" if self.refusals else ""
        return ParseResult(error=f"no action for the {seg} segment was recognised in the reply{why}", source=source)


def _clip(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def parse_patient_reply(reply: Any, contradiction_allowed: bool = False) -> tuple[str, str] | None:
    """``(mode, text)`` from a patient's reply (JSON ``{"mode", "text"}`` or plain words), or None
    when it is empty or not text. An unknown or disallowed mode becomes ``truthful``."""
    if not isinstance(reply, str) or not reply.strip():
        return None
    value = extract_json(reply)
    if isinstance(value, dict) and isinstance(value.get("text"), str):
        mode = str(value.get("mode", "truthful")).strip().lower()
        text = value["text"].strip()
        if not text:
            return None
    else:
        mode, text = "truthful", reply.strip()
    if mode not in PATIENT_MODES or (mode == "contradict" and not contradiction_allowed):
        mode = "truthful"
    return mode, text
