"""Who is speaking, and which generic lines fit them (rules in ``data/speech/applicability.yaml``).

The structured patient's generic words (a persona's tangents, anxious asides, vague and withheld
answers, the catalogue's default answers) are written once for every case, so each must be
checked against the case's patient before it is said: their age, their sex and the informant (the
patient, or a parent or relative answering for them). The rules are data; the functions here are
pure:

- :func:`line_fits`: whether a line's words suit the speaker ("my mum thinks it's teething" only
  for a toddler; "Am I going to be all right?" only from the patient themself).
- the ``items`` table (read by :func:`clinic_env.patients.answers.item_answers`): the answer
  that replaces a catalogue default which does not suit the patient (a man asked about his
  periods, a parent asked whether a baby smokes).
- :func:`proxy_default`: a default answer in the patient's own first person, said instead in a
  parent's or relative's words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field

from clinic_env.schema.case import Case, Sex
from clinic_env.schema.catalogue import HistoryItem

__all__ = [
    "Condition",
    "Speaker",
    "SpeechRules",
    "fitting",
    "line_fits",
    "load_rules",
    "pronouns",
    "proxy_default",
    "speaks_as_patient",
]

_FILE = Path(__file__).resolve().parent.parent / "data" / "speech" / "applicability.yaml"
Informant = Literal["patient", "parent", "relative"]


@dataclass(frozen=True)
class Speaker:
    """The patient a line must fit.

    Attributes:
        age: The patient's age in years.
        sex: ``M``, ``F`` or ``U`` (not stated in the source: no condition on a sex holds, and
            proxy lines speak of "the baby" / "the child" with neutral pronouns).
        informant: Who answers: ``patient``, ``parent`` or ``relative``.
    """

    age: float
    sex: Sex
    informant: Informant = "patient"

    @classmethod
    def of(cls, case: Case) -> Speaker:
        """The speaker of ``case``."""
        return cls(case.demographics.age, case.demographics.sex, case.informant)

    @property
    def proxy(self) -> bool:
        """A parent or relative answers for the patient."""
        return self.informant != "patient"


class Condition(BaseModel):
    """Who a line or an answer fits; every field given must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sex: Literal["M", "F"] | None = None
    age_min: float | None = Field(default=None, ge=0, description="Inclusive, in years.")
    age_max: float | None = Field(default=None, gt=0, description="Exclusive, in years.")
    informant: tuple[Informant, ...] | None = None

    def holds(self, who: Speaker) -> bool:
        """Whether ``who`` meets the condition."""
        return ((self.sex is None or who.sex == self.sex)
                and (self.age_min is None or who.age >= self.age_min)
                and (self.age_max is None or who.age < self.age_max)
                and (self.informant is None or who.informant in self.informant))


class LineRule(BaseModel):
    """A line containing ``words`` fits only a speaker meeting one of ``when``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    words: str
    when: tuple[Condition, ...] = Field(min_length=1)

    def pattern(self) -> re.Pattern[str]:
        return re.compile(self.words, re.IGNORECASE)


class ItemCase(BaseModel):
    """What a patient meeting ``when`` says instead of the item's default answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    when: Condition
    self_: tuple[str, ...] = Field(alias="self", min_length=1)
    proxy: tuple[str, ...] = Field(min_length=1)


class ItemRule(BaseModel):
    """Answers for ``ids`` that depend on the patient."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ids: tuple[str, ...] = Field(min_length=1)
    cases: tuple[ItemCase, ...] = Field(min_length=1)


class ProxyRules(BaseModel):
    """How a parent or relative says a default answer written in the patient's first person."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    neutral: tuple[str, ...] = ()
    first_person: str
    answers: dict[str, tuple[str, ...]]


class SpeechRules(BaseModel):
    """The applicability table (``data/speech/applicability.yaml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int
    lines: tuple[LineRule, ...]
    never: tuple[str, ...] = ()
    items: tuple[ItemRule, ...]
    proxy: ProxyRules


@dataclass(frozen=True)
class _Compiled:
    rules: SpeechRules
    lines: tuple[tuple[re.Pattern[str], tuple[Condition, ...]], ...]
    never: tuple[re.Pattern[str], ...]
    items: dict[str, tuple[ItemCase, ...]]
    neutral: re.Pattern[str] | None
    first_person: re.Pattern[str]


@lru_cache(maxsize=4)
def load_rules(path: str | None = None) -> _Compiled:
    """The applicability rules (the bundled file unless ``path``), validated and compiled.

    Raises:
        pydantic.ValidationError: The file does not match :class:`SpeechRules` (the message
            names the field).
        re.error: A ``words`` pattern is not a valid regular expression.
    """
    file = Path(path) if path else _FILE
    rules = SpeechRules.model_validate(yaml.safe_load(file.read_text(encoding="utf-8")))
    items: dict[str, list[ItemCase]] = {}
    for rule in rules.items:
        for hid in rule.ids:
            items.setdefault(hid, []).extend(rule.cases)
    neutral = "|".join(re.escape(p) for p in sorted(rules.proxy.neutral, key=len, reverse=True))
    return _Compiled(
        rules=rules,
        lines=tuple((r.pattern(), r.when) for r in rules.lines),
        never=tuple(re.compile(p, re.IGNORECASE) for p in rules.never),
        items={h: tuple(c) for h, c in items.items()},
        neutral=re.compile(neutral, re.IGNORECASE) if neutral else None,
        first_person=re.compile(rules.proxy.first_person, re.IGNORECASE),
    )


def _norm(text: str) -> str:
    return text.replace("\u2019", "'")


@lru_cache(maxsize=65536)
def line_fits(text: str, who: Speaker) -> bool:
    """Whether ``text`` suits ``who``: it names nothing from the ``never`` list (tests and
    results) and passes every line rule whose words it contains. Pure (the rules are loaded
    once), so cached: it runs on every answer."""
    text = _norm(text)
    compiled = load_rules()
    if any(p.search(text) for p in compiled.never):
        return False
    return all(any(c.holds(who) for c in when) for pat, when in compiled.lines if pat.search(text))


def fitting(lines: tuple[str, ...] | list[str], who: Speaker) -> tuple[str, ...]:
    """The lines of ``lines`` that suit ``who``, in order."""
    return tuple(line for line in lines if line_fits(line, who))


def pronouns(text: str, who: Speaker) -> str:
    """Fill ``{he}``, ``{He}``, ``{his}``, ``{His}``, ``{him}`` and ``{person}`` for ``who`` (a patient
    whose sex the source does not state: "the baby" / "the child", "their", "them")."""
    male = who.sex == "M"
    young = who.age < 18
    if who.sex == "U":
        noun = "baby" if who.age < 1 else "child" if young else "patient"
        return text.format(he=f"the {noun}", He=f"The {noun}", his="their", His="Their", him="them",
                           person=noun if young else "person")
    words = {
        "he": "he" if male else "she", "He": "He" if male else "She", "his": "his" if male else "her",
        "His": "His" if male else "Her", "him": "him" if male else "her",
        "person": ("boy" if male else "girl") if young else ("man" if male else "woman"),
    }
    return text.format(**words)


def _choose(options: tuple[str, ...], who: Speaker, rng: np.random.Generator) -> str:
    return pronouns(options[int(rng.integers(len(options)))], who)


def speaks_as_patient(text: str) -> bool:
    """Whether ``text`` uses the first person about the patient (once the informant's own
    ``neutral`` phrases such as "that I know of" are taken out)."""
    compiled = load_rules()
    text = _norm(text)
    if compiled.neutral is not None:
        text = compiled.neutral.sub(" ", text)
    return compiled.first_person.search(text) is not None


def proxy_default(text: str, item: HistoryItem, question_type: str, who: Speaker,
                  rng: np.random.Generator) -> str:
    """A default answer as a parent or relative says it.

    Args:
        text: The default answer as varied for the persona.
        item: The item asked (its catalogue default gives the answer's polarity).
        question_type: The item's question type (``data/speech/question_types.yaml``).
        who: The speaker; a patient speaking for themself keeps ``text``.
        rng: The env's generator.

    Returns:
        ``text`` when it fits the informant, else a wording from the table's ``answers``: by
        polarity (``no``/``yes``/``other``) for yes/no items, by question type otherwise.
    """
    if not who.proxy or not speaks_as_patient(text):
        return text
    answers = load_rules().rules.proxy.answers
    head = item.default_answer.strip().lower()
    if question_type in ("yesno",) or question_type not in answers:
        if re.match(r"(no|not|nothing|nobody|never|none|neither)\b", head):
            key = "no"
        elif head.startswith("yes"):
            key = "yes"
        else:
            key = "other"
    else:
        key = question_type
    return _choose(answers[key], who, rng)
