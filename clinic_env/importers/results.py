"""Whether an imported examination finding or test result is abnormal.

Read in this order, each step deciding only when it can:

1. Vital signs by their numbers against age-banded limits (:func:`clinic_env.generate.coherence.vital_flags`).
2. Analyte values against the reference ranges in ``data/negation/result_wording.yaml``.
3. The source's wording: an override phrase ("normal for age", "no abnormalities") makes it normal;
   an abnormal word that the ConText rules (:mod:`clinic_env.importers.negation`) do not negate makes
   it abnormal ("positive Dix-Hallpike", "free mediastinal air"; not "no murmurs"); a weak word
   ("seen", "present", "shows") only when no normal wording stands beside it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from clinic_env.generate.coherence import vital_flags
from clinic_env.importers.negation import negated_words, tokenise

__all__ = ["Analyte", "ResultWording", "analyte_abnormal", "load_wording", "result_abnormal"]

#: Muscle strength graded below 5/5 (MRC scale).
_WEAK_STRENGTH = re.compile(r"(?<![\d/])[0-4][+-]?/5\b")
_WORDING = Path(__file__).resolve().parent.parent / "data" / "negation" / "result_wording.yaml"


@dataclass(frozen=True)
class Analyte:
    """A reference range: a name pattern, limits, and whether counts may be written per microlitre."""

    pattern: re.Pattern[str]
    low: float
    high: float
    per_thousand: float


@dataclass(frozen=True)
class ResultWording:
    """Abnormal, weak and normal phrases (as token tuples), overrides and analytes."""

    abnormal: tuple[tuple[str, ...], ...]
    weak: tuple[tuple[str, ...], ...]
    normal: tuple[tuple[str, ...], ...]
    overrides: tuple[str, ...]
    analytes: tuple[Analyte, ...]


def _phrases(values: object) -> tuple[tuple[str, ...], ...]:
    items = values if isinstance(values, list) else []
    return tuple(sorted({tuple(tokenise(str(v))) for v in items if tokenise(str(v))}, key=len, reverse=True))


@lru_cache(maxsize=1)
def load_wording() -> ResultWording:
    """The bundled wording and reference ranges (``result_wording.yaml``)."""
    data = yaml.safe_load(_WORDING.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{_WORDING}: expected a mapping")
    analytes = tuple(
        Analyte(re.compile(rf"\b(?:{a['name']})\b[^0-9]{{0,25}}?(\d[\d,]*(?:\.\d+)?)", re.IGNORECASE),
                float(a["low"]), float(a["high"]), float(a.get("per_thousand", 1)))
        for a in data.get("analytes") or [])
    return ResultWording(_phrases(data.get("abnormal")), _phrases(data.get("weak_abnormal")),
                         _phrases(data.get("normal")), tuple(str(o).lower() for o in data.get("normal_overrides") or []),
                         analytes)


def analyte_abnormal(text: str) -> bool | None:
    """True if a known analyte's value lies outside its range, False if all lie inside, None if none."""
    verdict: bool | None = None
    for analyte in load_wording().analytes:
        for m in analyte.pattern.finditer(text):
            value = float(m.group(1).replace(",", ""))
            if analyte.per_thousand != 1.0 and value > analyte.high * 20:  # written per microlitre
                value /= analyte.per_thousand
            out = not analyte.low <= value <= analyte.high
            verdict = out if verdict is None else verdict or out
    return verdict


def _affirmed(tokens: list[str], negated: set[int], phrases: tuple[tuple[str, ...], ...]) -> bool:
    for phrase in phrases:
        n = len(phrase)
        for i in range(len(tokens) - n + 1):
            if tuple(tokens[i : i + n]) == phrase and not any(i + k in negated for k in range(n)):
                return True
    return False


def _present(tokens: list[str], phrases: tuple[tuple[str, ...], ...]) -> bool:
    return any(tuple(tokens[i : i + len(p)]) == p for p in phrases for i in range(len(tokens) - len(p) + 1))


def result_abnormal(text: str, age: float = 40.0) -> bool:
    """Whether a finding or result is abnormal (see the module docstring for the order)."""
    flags = vital_flags(text, age)
    if flags is not None and re.search(r"\b(?:HR|BP|RR|SpO2)\b|°C|mmHg|bpm", text):
        return bool(flags)
    if analyte_abnormal(text):
        return True
    wording = load_wording()
    abnormal = normal = False
    # Clause by clause, so "Rubella IgM: positive; others: negative" is abnormal.
    for clause in re.split(r"[;\n]|(?<=[a-z)])\.\s", text):
        low = clause.lower()
        if any(o in low for o in wording.overrides):
            normal = True
            continue
        tokens, negated = negated_words(clause)
        if _affirmed(tokens, negated, wording.abnormal):
            abnormal = True
        elif _present(tokens, wording.normal) or negated:
            normal = True
        elif _affirmed(tokens, negated, wording.weak):
            abnormal = True
    return abnormal or (not normal and _WEAK_STRENGTH.search(text) is not None)
