"""Generic answers that fit the question and the patient (pure functions over the env's generator).

A structured patient's answer comes from one of five sources (:func:`answer_source`): the case's
own words about the item (``fact``, said as written), the scripted ``contradiction``, the
catalogue's ``default`` answer (the case does not list the item, or the patient denies it), a
``vague`` answer or a ``withhold`` line. The last three are generic, so they are chosen here to
fit

- the question's type (:mod:`~clinic_env.patients.question_types`): a vague answer to "Does
  light hurt your eyes?" is a vague yes/no, not "A while, I think";
- the patient (:mod:`~clinic_env.patients.speaker`): their age and sex and who is speaking.

:func:`fit_answer` is idempotent: a text that already fits is returned unchanged without drawing
from the generator, so the engine's renderer and the patient session can both apply it.
"""

from __future__ import annotations

import numpy as np

from clinic_env.patients.question_types import question_type, vague_lines
from clinic_env.patients.speaker import (
    Speaker,
    fitting,
    line_fits,
    load_rules,
    pronouns,
    proxy_default,
    speaks_as_patient,
)
from clinic_env.schema.case import Fact
from clinic_env.schema.catalogue import HistoryItem
from clinic_env.schema.persona import Persona

__all__ = ["FALLBACK_VAGUE", "FALLBACK_WITHHOLD", "answer_source", "fit_answer", "item_answers",
           "vague_answer", "withheld_answer"]

FALLBACK_WITHHOLD = "I'd rather not say."
FALLBACK_VAGUE = "I'm not sure."
#: Share of vague answers drawn from the persona's own fitting lines (the rest from the table).
OWN_VAGUE_SHARE = 2 / 3


def answer_source(mode: str, fact: Fact | None) -> str:
    """Where the words of an answer in ``mode`` come from: ``fact``, ``contradiction``,
    ``default``, ``vague`` or ``withhold``."""
    if mode == "withhold":
        return "withhold"
    if fact is None:
        return "vague" if mode == "vague" else "default"
    if mode == "vague":
        return "fact" if fact.vague else "vague"
    if mode == "deny" and fact.present:
        return "default"
    if mode == "contradict" and fact.contradiction:
        return "contradiction"
    return "fact"


def item_answers(item: HistoryItem, who: Speaker) -> tuple[str, ...]:
    """The answers about ``item`` that replace its default for ``who`` (empty: the default fits)."""
    for case in load_rules().items.get(item.id, ()):
        if case.when.holds(who):
            return tuple(pronouns(t, who) for t in (case.proxy if who.proxy else case.self_))
    return ()


def _pick(options: tuple[str, ...], rng: np.random.Generator) -> str:
    return options[int(rng.integers(len(options)))]


def _vague_pools(item: HistoryItem, persona: Persona, who: Speaker | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    lines = vague_lines(item, persona.phrases.vague)
    own = tuple(line for line in lines if line in persona.phrases.vague)
    table = lines[len(own):]
    if who is not None:
        own, table = fitting(own, who), fitting(table, who)
    return own, table


def vague_answer(item: HistoryItem, persona: Persona, who: Speaker | None, rng: np.random.Generator) -> str:
    """A vague answer to ``item`` of its question type: mostly the persona's own fitting line,
    otherwise one of the table's (only lines that suit ``who`` when given)."""
    own, table = _vague_pools(item, persona, who)
    if own and (not table or rng.random() < OWN_VAGUE_SHARE):
        return _pick(own, rng)
    return _pick(table, rng) if table else FALLBACK_VAGUE


def withheld_answer(persona: Persona, who: Speaker | None, rng: np.random.Generator) -> str:
    """One of the persona's withholding lines (only those that suit ``who`` when given)."""
    lines = persona.phrases.withhold if who is None else fitting(persona.phrases.withhold, who)
    return _pick(lines, rng) if lines else FALLBACK_WITHHOLD


def fit_answer(text: str, source: str, item: HistoryItem, persona: Persona, who: Speaker,
               rng: np.random.Generator) -> str:
    """``text`` if it fits the question and ``who``, else a generic answer that does.

    Args:
        text: The rendered answer.
        source: Where its words came from (:func:`answer_source`); the case's own words
            (``fact``, ``contradiction``) are always kept.
        item: The item asked.
        persona: Supplies vague and withholding lines.
        who: The speaker the answer must suit.
        rng: The env's generator (drawn from only when ``text`` is replaced).
    """
    if source in ("fact", "contradiction"):
        return text
    if source == "withhold":
        return text if line_fits(text, who) else withheld_answer(persona, who, rng)
    replacements = item_answers(item, who)
    if replacements:
        return text if text in replacements else _pick(replacements, rng)
    if source == "vague":
        own, table = _vague_pools(item, persona, who)
        return text if text in own + table or text == FALLBACK_VAGUE else vague_answer(item, persona, who, rng)
    if not line_fits(text, who):
        text = item.default_answer
    if who.proxy and speaks_as_patient(text):
        return proxy_default(text, item, question_type(item), who, rng)
    return text
