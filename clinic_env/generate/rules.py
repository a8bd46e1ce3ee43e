"""Coherence rules as data (``data/coherence/rules.yaml``): the tables and the pure helpers that
both the generator (to draw coherent cases) and the checker (:func:`~clinic_env.generate.coherence.check_rules`)
use, so that a rule and the mechanism it checks cannot drift apart.

- :func:`natural_durations`: ``"44 hours"`` -> ``"2 days"`` by the ``durations`` table;
- :func:`text_allowed`: whether a patient of this age and sex may say a text (``text_limits``);
- :func:`item_allowed`: whether a history item can be present for them (``history_limits``);
- :func:`lateral_mentions`: the sides a text names, by body region (``laterality``);
- :func:`brief_symptoms`: the history items a brief names, not negated (``brief_symptoms``).

Rules are validated by pydantic models when loaded; a bad file raises
:class:`~clinic_env.schema.errors.DataError` naming the file and field.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from clinic_env.schema.errors import DataError
from clinic_env.schema.loading import parse_model

__all__ = [
    "RULES_FILE", "CoherenceRules", "brief_symptoms", "conflicts", "item_allowed", "lateral_mentions", "load_rules",
    "natural_duration", "natural_durations", "text_allowed",
]

RULES_FILE = Path(__file__).resolve().parent.parent / "data" / "coherence" / "rules.yaml"
_DURATION = re.compile(r"\b(\d+) (minute|hour|day|week|month|year)s?\b")
_SIDE = r"(left|right)"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Limit(_Strict):
    """Who may have a history item or say a text."""

    sex: Literal["M", "F"] | None = None
    min_age: float = 0
    max_age: float = 200

    def allows(self, age: float, sex: str) -> bool:
        """Whether a patient of ``age`` and ``sex`` is within the limit."""
        return (self.sex is None or self.sex == sex) and self.min_age <= age <= self.max_age


class TextLimit(Limit):
    """Wording only some patients can use."""

    id: str
    pattern: str


class Conflict(_Strict):
    """Two wordings that cannot appear in the same case."""

    id: str
    a: str
    b: str


class Laterality(_Strict):
    """Side words by body region (see the data file)."""

    fixed: list[str]
    regions: dict[str, str]
    contralateral: dict[str, list[str]] = Field(default_factory=dict)


class Requirement(_Strict):
    """What a vital-sign statement needs from the recorded values."""

    temp_min: float | None = None
    temp_max: float | None = None
    or_history: str | None = None


class VitalStatement(_Strict):
    """A statement about a vital sign that the recorded value must bear out."""

    id: str
    where: Literal["brief", "script", "fact_absent"]
    pattern: str | None = None
    item: str | None = None
    requires: Requirement


class Backstory(_Strict):
    """A history answer the generator adds to explain a finding."""

    item: str
    text: str


class CardText(_Strict):
    """The examination card an implication writes, as drawn normal or abnormal."""

    normal: str
    abnormal: str


class Implication(_Strict):
    """History wording that implies a backstory and an examination card."""

    id: str
    history: str
    backstory: str
    add_backstory: Backstory
    exam: str
    exam_says: str
    exam_text: CardText


class InitialAssessment(_Strict):
    """Items a case must hold as essential (always, or when abnormal)."""

    always: list[str]
    when_abnormal: list[str]


class UnitRule(_Strict):
    """A unit the bundled cases do not use."""

    id: str
    pattern: str
    says: str


class Up(_Strict):
    unit: str
    per: float = Field(gt=1)


class DurationUnit(_Strict):
    """Allowed counts of one unit and the unit above it."""

    allowed: list[int | str]
    up: Up | None = None

    @field_validator("allowed")
    @classmethod
    def _ranges(cls, value: list[int | str]) -> list[int | str]:
        for v in value:
            if isinstance(v, str) and not re.fullmatch(r"\d+-\d+", v):
                raise ValueError(f"allowed value must be an integer or 'lo-hi', got {v!r}")
        return value

    def values(self) -> list[int]:
        """Every allowed count, ascending."""
        out: set[int] = set()
        for v in self.allowed:
            if isinstance(v, int):
                out.add(v)
            else:
                lo, hi = (int(x) for x in v.split("-"))
                out.update(range(lo, hi + 1))
        return sorted(out)


class CoherenceRules(_Strict):
    """The rules file (see ``data/coherence/rules.yaml`` for each table's meaning)."""

    version: int
    laterality: Laterality
    history_limits: dict[str, Limit]
    text_limits: list[TextLimit]
    conflicts: list[Conflict]
    brief_symptoms: dict[str, str]
    negation: str
    vital_statements: list[VitalStatement]
    initial_assessment: InitialAssessment
    implications: list[Implication]
    units: list[UnitRule]
    durations: dict[str, DurationUnit]
    durations_keep: list[str] = Field(default_factory=list)
    generic_vague: list[str] = Field(min_length=1)


@lru_cache(maxsize=4)
def load_rules(path: str | None = None) -> CoherenceRules:
    """The coherence rules (default: the shipped file). Cached.

    Raises:
        DataError: When the file cannot be read or does not match :class:`CoherenceRules`.
    """
    file = Path(path) if path else RULES_FILE
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DataError.single(file, "", f"cannot read coherence rules: {exc}") from None
    return parse_model(CoherenceRules, raw, str(file))


@lru_cache(maxsize=256)
def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


# ------------------------------------------------------------------------------------ durations
def natural_duration(n: int, unit: str, rules: CoherenceRules | None = None) -> str:
    """``n`` ``unit``s as people say it, by the ``durations`` table (``44, "hour"`` -> ``"2 days"``)."""
    table = (rules or load_rules()).durations
    spec = table.get(unit)
    if spec is None:
        return f"{n} {unit}{'' if n == 1 else 's'}"
    values = spec.values()
    if n > values[-1] and spec.up is not None:
        return natural_duration(max(1, int(n / spec.up.per + 0.5)), spec.up.unit, rules)
    if n not in values:
        n = min(values, key=lambda v: (abs(v - n), -v))
    return f"{n} {unit}{'' if n == 1 else 's'}"


def _kept(text: str, rules: CoherenceRules) -> list[tuple[int, int]]:
    return [(k.start(), k.end()) for pattern in rules.durations_keep for k in _rx(pattern).finditer(text)]


def _rewrite(m: re.Match[str], kept: list[tuple[int, int]], rules: CoherenceRules) -> str:
    if any(lo < m.end() and m.start() < hi for lo, hi in kept):
        return m.group(0)
    return natural_duration(int(m.group(1)), m.group(2), rules)


def natural_durations(text: str, rules: CoherenceRules | None = None) -> str:
    """Every ``<number> <unit>`` of ``text`` rewritten by :func:`natural_duration`, except the
    exact counts of ``durations_keep`` (gestation, culture incubation)."""
    r = rules or load_rules()
    kept = _kept(text, r)
    return _DURATION.sub(lambda m: _rewrite(m, kept, r), text)


def unnatural_durations(text: str, rules: CoherenceRules | None = None) -> list[str]:
    """The durations of ``text`` that :func:`natural_durations` would rewrite."""
    r = rules or load_rules()
    kept = _kept(text, r)
    return [m.group(0) for m in _DURATION.finditer(text) if _rewrite(m, kept, r) != m.group(0)]


# ------------------------------------------------------------------------------------ who says it
def text_allowed(text: str, age: float, sex: str, rules: CoherenceRules | None = None) -> list[str]:
    """Ids of the ``text_limits`` that ``text`` breaks for this patient (empty: allowed)."""
    return [t.id for t in (rules or load_rules()).text_limits
            if not t.allows(age, sex) and _rx(t.pattern).search(text)]


def conflicts(texts: list[str], rules: CoherenceRules | None = None) -> list[str]:
    """Ids of the ``conflicts`` whose two wordings both appear among ``texts``."""
    out = []
    for c in (rules or load_rules()).conflicts:
        a, b = _rx(c.a), _rx(c.b)
        if any(a.search(t) for t in texts) and any(b.search(t) for t in texts):
            out.append(c.id)
    return out


def item_allowed(item: str, age: float, sex: str, rules: CoherenceRules | None = None) -> bool:
    """Whether history ``item`` can be present for this patient (``history_limits``)."""
    limit = (rules or load_rules()).history_limits.get(item)
    return limit is None or limit.allows(age, sex)


# ------------------------------------------------------------------------------------ laterality
_Patterns = tuple[re.Pattern[str], list[tuple[str, re.Pattern[str]]]]
_COMPILED: dict[int, tuple[CoherenceRules, _Patterns]] = {}


def _lateral_patterns(rules: CoherenceRules) -> _Patterns:
    cached = _COMPILED.get(id(rules))
    if cached is not None and cached[0] is rules:
        return cached[1]
    lat = rules.laterality
    fixed = re.compile("|".join(f"(?:{f})" for f in lat.fixed), re.IGNORECASE)
    regions = []
    for name, words in lat.regions.items():
        # "left calf", "left-sided", "left lower lobe", "calf on the left", "on the left ... calf"
        regions.append((name, re.compile(
            rf"\b{_SIDE}[- ](?:\w+[- ]){{0,3}}?(?:{words})\b|\b(?:{words})\b[^.;,]{{0,20}}?\bon the {_SIDE}\b",
            re.IGNORECASE)))
    _COMPILED[id(rules)] = (rules, (fixed, regions))
    return fixed, regions


def lateral_mentions(text: str, rules: CoherenceRules | None = None) -> dict[str, set[str]]:
    """Region -> sides that ``text`` names there (fixed anatomy left out; contralateral regions
    already flipped to the side of the body they affect)."""
    r = rules or load_rules()
    fixed, regions = _lateral_patterns(r)
    clean = fixed.sub(" ", text)
    flip = {"left": "right", "right": "left"}
    out: dict[str, set[str]] = {}
    for name, pattern in regions:
        for m in pattern.finditer(clean):
            side = (m.group(1) or m.group(2)).lower()
            if name in r.laterality.contralateral:
                for target in r.laterality.contralateral[name]:
                    out.setdefault(target, set()).add(flip[side])
            else:
                out.setdefault(name, set()).add(side)
    return out


# ------------------------------------------------------------------------------------ the brief
def mentions(pattern: str, text: str, rules: CoherenceRules | None = None) -> bool:
    """Whether ``text`` names ``pattern`` other than in a negation ("no fever")."""
    negation = _rx((rules or load_rules()).negation)
    for m in _rx(rf"\b(?:{pattern})").finditer(text):
        if not negation.search(text[max(0, m.start() - 40):m.start()]):
            return True
    return False


def brief_symptoms(text: str, rules: CoherenceRules | None = None) -> list[str]:
    """History ids whose symptom ``text`` names, not negated (``brief_symptoms``)."""
    r = rules or load_rules()
    return [hid for hid, pattern in r.brief_symptoms.items() if mentions(pattern, text, r)]
