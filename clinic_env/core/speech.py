"""How the structured patient's answer mode becomes words and disclosure (pure functions).

The words come from the case (what the patient says about an item) or the catalogue (the default
answer for an item the case does not list), put into the persona's lay vocabulary and varied with
the env's generator (:mod:`clinic_env.patients.wording`). The structured patient can only ever say
something about the item it was asked. Generic words (vague and withheld answers, defaults) fit
the question's type and, given a ``speaker``, the patient's age, sex and informant
(:mod:`clinic_env.patients.answers`); the patient session applies the same fitting to every
answer, so the engine need not pass one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from clinic_env.patients.answers import answer_source, fit_answer, vague_answer, withheld_answer
from clinic_env.patients.speaker import Speaker
from clinic_env.patients.vocabulary import lay_text
from clinic_env.patients.wording import vary_answer
from clinic_env.schema.case import Fact
from clinic_env.schema.catalogue import HistoryItem
from clinic_env.schema.persona import Persona

__all__ = ["Answer", "render_answer"]


@dataclass(frozen=True)
class Answer:
    """A rendered answer.

    Attributes:
        text: What the patient says.
        credit: Disclosure credit for the history reward (1 full, 0.5 vague, 0 none).
        heard: What the doctor hears as a value: 1 yes, 0.5 vague yes, 0 no / nothing.
        unclear: The answer was vague, withheld or contradicted an earlier one.
        contradiction: The scripted contradiction was used (flagged in the ground truth).
    """

    text: str
    credit: float
    heard: float
    unclear: bool
    contradiction: bool = False


def render_answer(
    mode: str,
    item: HistoryItem,
    fact: Fact | None,
    persona: Persona,
    rng: np.random.Generator,
    previously_heard: float | None,
    speaker: Speaker | None = None,
) -> Answer:
    """Turn an answer mode into the patient's words.

    Args:
        mode: ``truthful``, ``vague``, ``withhold``, ``deny`` or ``contradict``.
        item: The catalogue item asked about.
        fact: The case's fact for it, or None when the case does not list it (the patient then
            gives the catalogue's default answer: the finding is absent).
        persona: Supplies the wording of vague and withheld answers, the literacy level of the
            vocabulary and the register and verbosity of the variation.
        rng: The env's generator (phrase choice and variation).
        previously_heard: What the doctor heard last time for this item, if asked before.
        speaker: The patient the words must suit (age, sex, informant); None skips that check.
    """
    answer = _render(mode, item, fact, persona, rng, previously_heard, speaker)
    if speaker is None:
        return answer
    text = fit_answer(answer.text, answer_source(mode, fact), item, persona, speaker, rng)
    return answer if text == answer.text else replace(answer, text=text)


def _render(mode: str, item: HistoryItem, fact: Fact | None, persona: Persona, rng: np.random.Generator,
            previously_heard: float | None, speaker: Speaker | None) -> Answer:
    if mode == "withhold":
        return Answer(withheld_answer(persona, speaker, rng), 0.0, 0.0, True)
    if fact is None:
        if mode == "vague":
            return Answer(vague_answer(item, persona, speaker, rng), 0.0, 0.0, True)
        return Answer(vary_answer(item.default_answer, persona, rng, default=True), 0.0, 0.0, False)
    truth = 1.0 if fact.present else 0.0
    if mode == "truthful":
        return Answer(vary_answer(fact.text, persona, rng), 1.0, truth, False)
    if mode == "vague":
        text = lay_text(fact.vague, persona.literacy) if fact.vague else vague_answer(item, persona, speaker, rng)
        return Answer(text, 0.5, 0.5 * truth, True)
    if mode == "deny":
        if fact.present:
            return Answer(vary_answer(item.default_answer, persona, rng, default=True), 0.0, 0.0, False)
        return Answer(vary_answer(fact.text, persona, rng), 1.0, 0.0, False)
    if mode == "contradict" and fact.contradiction:
        heard = 1.0 - truth
        clash = previously_heard is not None and previously_heard != heard
        # The doctor is credited for asking: the inconsistency is the persona's, not theirs.
        return Answer(lay_text(fact.contradiction, persona.literacy), 1.0, heard, clash, contradiction=True)
    return Answer(vary_answer(fact.text, persona, rng), 1.0, truth, False)
