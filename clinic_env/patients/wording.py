"""Seeded varied wording: the same answer is not said the same way every time.

Pure functions over the env's generator, so a seed fixes every choice. Variation never changes
what an answer means: a filler goes *before* the case's own words, which stay as written (then
put in lay words for the persona's literacy), and a plain "no" to an item the case does not list
is reworded only when the catalogue's default answer is itself a plain "no".
"""

from __future__ import annotations

import numpy as np

from clinic_env.patients.vocabulary import lay_text
from clinic_env.schema.persona import Persona

__all__ = [
    "DEFAULT_ANXIOUS_QUESTIONS",
    "DEFAULT_INTERRUPTION_SHARE",
    "FILLERS",
    "NEGATIVES",
    "leaving_line",
    "pick",
    "vary_answer",
]

#: Share of patient turns with an anxious aside when interruptions are on and a persona does not
#: set its own rate (Baichuan-M3's default).
DEFAULT_INTERRUPTION_SHARE = 0.25

#: Anxious questions for personas that enable interruptions without writing their own.
DEFAULT_ANXIOUS_QUESTIONS = (
    "Is this something serious, doctor?",
    "Should I be worried about this?",
    "Am I going to be all right?",
    "Will I need to stay in hospital?",
    "How long will this take to get better?",
)

#: Short lead-ins by language register, said before the answer itself.
FILLERS: dict[str, tuple[str, ...]] = {
    "plain": ("Let me think.", "Well...", "Right.", "Okay."),
    "colloquial": ("Hmm.", "Oh, right.", "Well...", "Let me think, yeah.", "Erm..."),
    "formal": ("Let me consider that.", "Certainly.", "To answer your question:", "Let me see."),
    "technical": ("Let me be precise.", "To be accurate:", "Right."),
}

#: Ways of saying a plain "no" by register.
NEGATIVES: dict[str, tuple[str, ...]] = {
    "plain": ("No.", "No, not that I know of.", "No, nothing like that."),
    "colloquial": ("Nope, not really.", "No, nothing like that.", "Can't say I have, no.", "Nah."),
    "formal": ("No, I have not.", "Not to my knowledge.", "No, that does not apply to me."),
    "technical": ("No, negative.", "No, none.", "Not that I'm aware of."),
}

_LEAVING = (
    "I've had enough of this, I'm going home.",
    "I'm sorry, I can't wait any longer. I'm leaving.",
    "This is taking far too long. I'll come back another day.",
)


def pick(options: tuple[str, ...] | list[str], rng: np.random.Generator, fallback: str = "") -> str:
    """One option chosen with ``rng`` (``fallback`` when there are none)."""
    return options[int(rng.integers(len(options)))] if options else fallback


def _is_plain_no(text: str) -> bool:
    head = text.strip().lower()
    return head.startswith(("no,", "no.", "no ")) and len(head) < 45


def vary_answer(text: str, persona: Persona, rng: np.random.Generator, default: bool = False) -> str:
    """Say ``text`` in the persona's words, with seeded variation.

    Args:
        text: The case's (or the catalogue's default) answer.
        persona: Literacy, register and verbosity drive the wording.
        rng: The env's generator.
        default: ``text`` is the catalogue's default answer (the item is not in the case).

    Returns:
        The answer in lay words for the persona's literacy, sometimes reworded (a plain default
        "no") or preceded by a short filler; a talkative persona uses more fillers.
    """
    register = persona.language_register
    if default and _is_plain_no(text) and rng.random() < 0.5:
        text = pick(NEGATIVES.get(register, NEGATIVES["plain"]), rng, text)
    else:
        text = lay_text(text, persona.literacy)
    # Only talkative personas pad their answers; a terse or neutral one answers straight.
    if persona.verbosity > 0.5 and rng.random() < (persona.verbosity - 0.5) * 0.8:
        text = f"{pick(FILLERS.get(register, FILLERS['plain']), rng)} {text}"
    return text


def leaving_line(rng: np.random.Generator) -> str:
    """What a patient says when their patience runs out."""
    return pick(_LEAVING, rng)
