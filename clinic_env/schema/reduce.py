"""A reduced catalogue built from a case set (the ``catalogue="cases"`` curriculum option).

The full catalogue gives the doctor ~750 actions; a learner on a handful of cases needs only the
items those cases use. :func:`reduce_catalogue` keeps:

- history: every item a case lists a fact for (and its presenting complaint), every item a rubric
  check of the case, the general rubric or a principle that applies to it names, and the guideline
  checklist of its presenting complaint (``presentations.yaml``);
- tests: every exam finding and test result a case lists, its essential, optional, contraindicated
  and confirmatory items, the procedures those need (``requires``), the initial assessments
  (vital signs, ECG, SpO2, glucose, pregnancy test, GCS) and the tests rubric checks name;
- diagnoses: every gold and differential code of the cases, with likelihood features limited to
  the items kept.

Rubric items whose checks name an item outside the reduced catalogue are dropped by the env
(:func:`items_within`), so every principle that still applies is valid against it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from clinic_env.schema.case import Case
from clinic_env.schema.catalogue import Catalogue
from clinic_env.schema.rubric import RubricItem

__all__ = ["items_within", "reduce_catalogue"]


def _rubric_ids(items: Iterable[RubricItem]) -> tuple[set[str], set[str]]:
    hx: set[str] = set()
    tests: set[str] = set()
    for item in items:
        if item.check is not None:
            h, t = item.check.referenced_ids()
            hx |= h
            tests |= t
    return hx, tests


def reduce_catalogue(cat: Catalogue, cases: Sequence[Case], rubric: Iterable[RubricItem] = ()) -> Catalogue:
    """The part of ``cat`` that ``cases`` (and the rubric items applied to them) use."""
    hx, tests = _rubric_ids(rubric)
    hx = {h for h in hx if h in cat.history}
    tests = {t for t in tests if t in cat.tests}
    codes: set[str] = set()
    for case in cases:
        hx |= set(case.history) | {case.presenting_complaint}
        h, t = _rubric_ids(case.rubric)
        hx |= h
        tests |= t | set(case.exam) | set(case.tests) | set(case.essential_tests) | set(case.optional_tests)
        tests |= set(case.contraindicated_tests)
        for alt in case.confirmatory:
            hx |= {k for k in alt if k in cat.history}
            tests |= {k for k in alt if k in cat.tests}
        pres = cat.presentations.get(case.presenting_complaint)
        if pres is not None:
            hx |= set(pres.history)
            tests |= set(pres.tests)
        codes |= {case.gold_diagnosis} - {""} | {d.code for d in case.differential}
    tests |= {tid for tid, item in cat.tests.items() if item.initial_assessment}
    tests |= {req for tid in list(tests) for req in cat.tests[tid].requires}
    history = {k: v for k, v in cat.history.items() if k in hx}
    test_items = {k: v for k, v in cat.tests.items() if k in tests}
    keep = set(history) | set(test_items)
    diagnoses = {
        code: dx.model_copy(update={"features": {k: p for k, p in dx.features.items() if k in keep}})
        for code, dx in cat.diagnoses.items() if code in codes
    }
    presentations = {
        sym: pres.model_copy(update={
            "history": tuple(h for h in pres.history if h in history) or (sym,),
            "tests": tuple(t for t in pres.tests if t in test_items) or tuple(sorted(test_items))[:1],
            "differential": tuple(c for c in pres.differential if c in diagnoses) or tuple(sorted(diagnoses))[:1],
        })
        for sym, pres in cat.presentations.items() if sym in history
    }
    return Catalogue.build(history, test_items, diagnoses, presentations)


def items_within(items: Iterable[RubricItem], cat: Catalogue) -> tuple[RubricItem, ...]:
    """The rubric items whose checks name only items of ``cat`` (the others cannot be met or failed
    meaningfully in an env built on it)."""
    out = []
    for item in items:
        if item.check is not None:
            h, t = item.check.referenced_ids()
            if not h <= cat.history.keys() or not t <= cat.tests.keys():
                continue
        out.append(item)
    return tuple(out)
