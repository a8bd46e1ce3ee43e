"""Named, versioned benchmark splits: which cases a doctor trains on and which it is scored on.

    from clinic_env import splits
    splits.names()                            # ['bundled-v1', 'generated-v1', 'held-out-dx-v1']
    train = splits.load("generated-v1", "train")
    test = splits.load("generated-v1", "test")

On the command line: ``clinic-env run --split generated-v1:test``.

Each split has the parts ``train``, ``test`` and ``all`` (train then test, without repeats).

``bundled-v1``
    Every case of the bundled library (``load_cases()``, 64 cases today), in library order.
    ``train`` = ``test`` = ``all``: for memorisation baselines and for comparing doctors on the
    hand-written cases.

``generated-v1``
    Synthetic patients from the knowledge-base generator
    (:meth:`clinic_env.generate.CaseGenerator.generate`, default arguments: difficulty drawn
    30/50/20% over 1/2/3, demographics from the prevalence, the default persona), for every
    condition of the shipped knowledge base (81 today), in condition-id order.
    ``train``: 20 patients per condition, seeds 0-19 (1,620 cases today).
    ``test``: 5 other patients of the same conditions, seeds 1000-1004 (405 cases today).
    The generator seeds each patient from (seed, condition id, ...), so the two parts are different
    patients of the same conditions; no train and test patient share their content.

``held-out-dx-v1``
    Generalisation to diagnoses never seen in training, over the same generated patients. Within
    every specialty that has at least 3 gold diagnoses, ``max(1, n // 5)`` diagnoses are held out
    (15 of 81 today): those that rank first by ``sha256(f"{HELD_OUT_SEED}:{icd10_code}")``
    (seed 20261201), so adding a condition moves at most one diagnosis. Specialties with 1 or 2
    diagnoses keep them all in training.
    ``train``: the 20 train patients (seeds 0-19) of every other diagnosis (1,320 cases today).
    ``test``: all 25 patients (seeds 0-19 and 1000-1004) of the held-out diagnoses (375 today);
    the 5 with seeds 1000-1004 are also in ``generated-v1``'s test part, for a direct comparison.
    Held-out diagnoses are still in the action space and may appear in training cases'
    differentials: what is held out is the gold diagnosis.

Counts marked "today" follow the shipped case library and knowledge base: a split's cases are
the same for the same clinic-env release. Version policy: a change of a split's definition
(seeds, counts, the rule choosing conditions or held-out diagnoses, generator arguments) makes a
new version (``generated-v2``); the old name keeps its definition or is removed, never redefined.

Splits are built on first use and cached in memory (generating ``generated-v1`` takes ~4 s
on one core; ``held-out-dx-v1`` reuses it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache

from clinic_env.schema import Case, load_cases

__all__ = [
    "HELD_OUT_SEED", "PARTS", "TEST_SEEDS", "TRAIN_SEEDS", "SplitError", "held_out_diagnoses", "load",
    "load_spec", "names", "parse_spec",
]

PARTS = ("train", "test", "all")
#: Generator seeds of the train and test patients of every condition (``generated-v1``).
TRAIN_SEEDS = tuple(range(20))
TEST_SEEDS = tuple(range(1000, 1005))
#: Seed of the ranking that picks ``held-out-dx-v1``'s test diagnoses.
HELD_OUT_SEED = 20261201
_HELD_OUT_MIN_SPECIALTY = 3

Parts = dict[str, tuple[Case, ...]]


class SplitError(ValueError):
    """An unknown split name or part, or a malformed ``NAME:PART`` spec (names the known ones)."""


def _parts(train: tuple[Case, ...], test: tuple[Case, ...]) -> Parts:
    seen = {c.id for c in train}
    return {"train": train, "test": test, "all": train + tuple(c for c in test if c.id not in seen)}


def _bundled() -> Parts:
    cases = tuple(load_cases())
    return _parts(cases, cases)


@dataclass(frozen=True)
class _Patients:
    """The generated patients of one condition."""

    code: str
    specialty: str
    train: tuple[Case, ...]
    test: tuple[Case, ...]


@lru_cache(maxsize=1)
def _generated_by_condition() -> tuple[_Patients, ...]:
    """Every condition's patients, in condition-id order."""
    from clinic_env.generate import CaseGenerator

    gen = CaseGenerator()
    out = []
    for cid in sorted(gen.kb.conditions):
        cond = gen.kb.conditions[cid]
        out.append(_Patients(cond.code, cond.specialty,
                             tuple(gen.generate(cond, seed=s).case for s in TRAIN_SEEDS),
                             tuple(gen.generate(cond, seed=s).case for s in TEST_SEEDS)))
    return tuple(out)


def _generated() -> Parts:
    conds = _generated_by_condition()
    return _parts(tuple(c for p in conds for c in p.train), tuple(c for p in conds for c in p.test))


def held_out_diagnoses() -> frozenset[str]:
    """The ICD-10 codes of ``held-out-dx-v1``'s test part (see the module docstring)."""
    by_specialty: dict[str, set[str]] = {}
    for p in _generated_by_condition():
        by_specialty.setdefault(p.specialty, set()).add(p.code)

    def rank(code: str) -> str:
        return hashlib.sha256(f"{HELD_OUT_SEED}:{code}".encode()).hexdigest()

    held: set[str] = set()
    for codes in by_specialty.values():
        if len(codes) >= _HELD_OUT_MIN_SPECIALTY:
            held.update(sorted(codes, key=rank)[: max(1, len(codes) // 5)])
    return frozenset(held)


def _held_out_dx() -> Parts:
    held = held_out_diagnoses()
    conds = _generated_by_condition()
    train = tuple(c for p in conds if p.code not in held for c in p.train)
    test = tuple(c for p in conds if p.code in held for c in (*p.train, *p.test))
    return _parts(train, test)


_SPLITS: dict[str, Callable[[], Parts]] = {
    "bundled-v1": _bundled,
    "generated-v1": _generated,
    "held-out-dx-v1": _held_out_dx,
}


def names() -> list[str]:
    """The names of the registered splits."""
    return list(_SPLITS)


def _check(name: str, part: str) -> None:
    if name not in _SPLITS:
        raise SplitError(f"unknown split {name!r}; known: {', '.join(names())}")
    if part not in PARTS:
        raise SplitError(f"unknown part {part!r} of split {name!r}; known: {', '.join(PARTS)}")


@cache
def _load(name: str) -> Parts:
    return _SPLITS[name]()


def load(name: str, part: str) -> list[Case]:
    """The cases of one part of a split (built on first use, then cached).

    Args:
        name: A split name (:func:`names`), e.g. ``"generated-v1"``.
        part: ``"train"``, ``"test"`` or ``"all"``.

    Raises:
        SplitError: For an unknown name or part (the message lists the known ones).
    """
    _check(name, part)
    return list(_load(name)[part])


def parse_spec(spec: str) -> tuple[str, str]:
    """Split and check ``"NAME:PART"`` (e.g. ``"generated-v1:test"``) without building the split.

    Raises:
        SplitError: When the spec has no single ``:``, or names an unknown split or part.
    """
    name, sep, part = spec.partition(":")
    if not sep or ":" in part:
        raise SplitError(f"split {spec!r}: expected NAME:PART, e.g. generated-v1:test; "
                         f"names: {', '.join(names())}; parts: {', '.join(PARTS)}")
    _check(name, part)
    return name, part


def load_spec(spec: str) -> list[Case]:
    """The cases of ``"NAME:PART"`` (see :func:`parse_spec` and :func:`load`)."""
    return load(*parse_spec(spec))
