"""The rubric, differential and budget of a generated case (pure functions of the drawn case)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from clinic_env.generate.knowledge import Condition
from clinic_env.schema.case import DifferentialEntry
from clinic_env.schema.catalogue import Catalogue
from clinic_env.schema.rubric import RubricItem

__all__ = ["budget", "differential", "rubric", "short_label"]

_SIZE = {1: 4, 2: 5, 3: 6}


def differential(cond: Condition, cat: Catalogue, age: float, sex: str, presenting: str, difficulty: int,
                 rng: np.random.Generator) -> tuple[DifferentialEntry, ...]:
    """The gold diagnosis plus the condition's alternatives that fit the patient, must-not-miss
    ones first; harder cases list more. Topped up from the presenting complaint's catalogue work-up
    when fewer than four fit."""
    def fits(code: str) -> bool:
        dx = cat.diagnoses.get(code)
        return dx is not None and code != cond.code and dx.plausible_for(age, sex)

    pool = [c for c in dict.fromkeys(cond.differential) if fits(c)]
    pres = cat.presentations.get(presenting)
    extra = [c for c in (pres.differential if pres else ()) if fits(c) and c not in pool]
    mnm = [c for c in pool if cat.diagnoses[c].must_not_miss]
    rest = [c for c in pool if c not in mnm]
    if difficulty > 1 and len(rest) > 1:
        rest = [rest[i] for i in rng.permutation(len(rest))]
    chosen = (mnm + rest + extra)[: _SIZE[difficulty] - 1]
    codes = [cond.code, *chosen]
    return tuple(DifferentialEntry(code=c, must_not_miss=cat.diagnoses[c].must_not_miss) for c in codes)


def budget(tests: Sequence[str], cat: Catalogue) -> float:
    """A guideline work-up cost: essential plus optional tests, plus 30%, rounded to $10 (min $50)."""
    total = sum(cat.tests[t].cost_usd for t in tests)
    return float(max(50, round(total * 1.3 / 10) * 10))


def _label(text: str) -> str:
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def short_label(label: str) -> str:
    """A diagnosis label as a clinician says it: the parenthesised common name when there is one
    (``Tubal pregnancy (ectopic pregnancy)`` -> ``ectopic pregnancy``), else the part before the
    first comma (``Acute appendicitis, other and unspecified`` -> ``acute appendicitis``)."""
    inner = re.findall(r"\(([^()]*)\)", label)
    if inner and re.fullmatch(r"[A-Za-z][A-Za-z' -]{3,}", inner[-1]) and not inner[-1].isupper():
        return _label(inner[-1])
    head = re.sub(r"\s*[(\[].*$", "", label.split(",")[0]).strip()
    return _label(head or label)


def rubric(cond: Condition, cat: Catalogue, history: Mapping[str, object], presenting: str,
           essential: Sequence[str], diff: Sequence[DifferentialEntry], listed: set[str]) -> tuple[RubricItem, ...]:
    """Case rubric items: key questions, essential tests, must-not-miss differentials, the final
    diagnosis, and a negative item for a harmful or wasteful test (or shotgun ordering)."""
    items: list[dict[str, object]] = []
    keys = [h for h in cond.key_questions if h in history and h != presenting]
    if not keys:
        ranked = sorted((h for h, e in cond.history.items() if e.crit == 2 and h in history and h != presenting),
                        key=lambda h: -cond.history[h].p)
        keys = ranked
    for i, hid in enumerate(keys[:3]):
        items.append({"criterion": f"Asks about {_label(cat.history[hid].label)}", "points": 3 if i == 0 else 2,
                      "tags": ["axis:completeness", "segment:history"], "check": {"asked": hid}})
    tests = [t for t in essential if t != "exam.vitals"] or list(essential)
    for tid in tests[:3]:
        verb = "Performs" if cat.tests[tid].category == "exam" else "Orders"
        items.append({"criterion": f"{verb} {_label(cat.tests[tid].label)}", "points": 5,
                      "tags": ["axis:accuracy", "segment:tests"], "check": {"ordered": tid}})
    gold_label = cond.title
    items.append({"criterion": f"Includes {_label(gold_label)} in the differential", "points": 3,
                  "tags": ["axis:accuracy", "segment:differential"], "check": {"differential_includes": cond.code}})
    for entry in [d for d in diff if d.must_not_miss and d.code != cond.code][:2]:
        items.append({"criterion": f"Considers the must-not-miss {short_label(cat.diagnoses[entry.code].label)}",
                      "points": 2, "tags": ["axis:completeness", "segment:differential"],
                      "check": {"differential_includes": entry.code}})
    items.append({"criterion": f"Final diagnosis is {_label(gold_label)}", "points": 6,
                  "tags": ["axis:accuracy", "segment:diagnosis"], "check": {"final_dx_in": [cond.code]}})
    avoid = [(t, why) for t, why in {**cond.avoid, **cond.contraindicated}.items() if t in cat.tests]
    for tid, why in avoid[:2]:
        items.append({"criterion": f"Orders {_label(cat.tests[tid].label)} ({why})", "points": -4,
                      "tags": ["axis:accuracy", "segment:tests"], "check": {"ordered": tid}})
    if not avoid:
        limit = max(8, len(listed))
        items.append({"criterion": f"Orders more than {limit} investigations (shotgun testing)", "points": -3,
                      "tags": ["axis:accuracy", "segment:tests"], "check": {"ordered_count_gt": limit}})
    return tuple(RubricItem.model_validate(item) for item in items)
