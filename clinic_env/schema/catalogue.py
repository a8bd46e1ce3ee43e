"""Catalogue models: history items, examination/tests and diagnoses (package data).

A :class:`Catalogue` holds the three catalogues plus the presentations used by the guideline-style
doctor. Ids are stable strings; the action index of an item is its position in the sorted id list.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from clinic_env.schema import icd10
from clinic_env.schema.icd10 import BLOCK_RE, CODE_RE, in_block

__all__ = [
    "HISTORY_PREFIX_CATEGORY",
    "TEST_PREFIX_CATEGORY",
    "VOCABULARY_PRIOR",
    "Catalogue",
    "Diagnosis",
    "HistoryItem",
    "Presentation",
    "TestItem",
    "vocabulary_diagnosis",
    "with_diagnoses",
]

HistoryCategory = Literal[
    "presenting", "symptom", "pmh", "meds", "allergy", "social", "family", "obgyn"
]
HISTORY_PREFIX_CATEGORY: dict[str, str] = {
    "hx": "presenting",
    "sx": "symptom",
    "pmh": "pmh",
    "meds": "meds",
    "allergy": "allergy",
    "social": "social",
    "fam": "family",
    "obgyn": "obgyn",
}
System = Literal[
    "general", "cardiovascular", "respiratory", "gastrointestinal", "genitourinary",
    "neurological", "musculoskeletal", "skin", "psychiatric", "endocrine", "haematological",
    "reproductive", "ent", "eye",
]
TestCategory = Literal["exam", "bedside", "lab", "microbiology", "imaging", "procedure"]
TEST_PREFIX_CATEGORY: dict[str, tuple[str, ...]] = {
    "exam": ("exam",),
    "bedside": ("bedside",),
    "ecg": ("bedside",),
    "lab": ("lab",),
    "micro": ("microbiology",),
    "img": ("imaging",),
    "proc": ("procedure",),
}
_ID = r"^[a-z]+(\.[a-z0-9_]+)+$"


class HistoryItem(BaseModel):
    """A history question the doctor can ask."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=_ID)
    label: str = Field(min_length=2)
    category: HistoryCategory
    system: System = "general"
    question: str = Field(min_length=3, description="How a clinician asks it.")
    default_answer: str = Field(min_length=1, description="Answer when the case does not list it.")
    sensitive: bool = False
    synonyms: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _prefix(self) -> HistoryItem:
        prefix = self.id.split(".", 1)[0]
        expected = HISTORY_PREFIX_CATEGORY.get(prefix)
        if expected is None:
            raise ValueError(f"id prefix {prefix!r} is not one of {sorted(HISTORY_PREFIX_CATEGORY)}")
        if expected != self.category:
            raise ValueError(f"id prefix {prefix!r} needs category {expected!r}, got {self.category!r}")
        return self


class TestItem(BaseModel):
    """An examination manoeuvre or investigation the doctor can order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=_ID)
    label: str = Field(min_length=2)
    category: TestCategory
    cost_usd: float = Field(ge=0, le=100_000)
    cpt: str | None = None
    normal_result: str = Field(min_length=3)
    invasive: bool = False
    radiation: bool = False
    requires: tuple[str, ...] = Field(
        default=(), description="Procedures that obtain the sample (any one): the test is legal only after one "
                                "of them was done (CSF tests after proc.lumbar_puncture).")
    initial_assessment: bool = Field(
        default=False, description="A bedside assessment guidelines put first (vital signs, ECG, SpO2, capillary "
                                   "glucose, pregnancy test, GCS): legal from the first cycle, in any segment.")

    @model_validator(mode="after")
    def _prefix(self) -> TestItem:
        prefix = self.id.split(".", 1)[0]
        allowed = TEST_PREFIX_CATEGORY.get(prefix)
        if allowed is None:
            raise ValueError(f"id prefix {prefix!r} is not one of {sorted(TEST_PREFIX_CATEGORY)}")
        if self.category not in allowed:
            raise ValueError(f"id prefix {prefix!r} needs category in {allowed}, got {self.category!r}")
        return self


class Diagnosis(BaseModel):
    """A diagnosis with its ICD-10 code and the likelihoods the Bayesian baselines use."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str
    label: str = Field(min_length=2)
    block: str
    prior: float = Field(gt=0, le=1)
    sex: Literal["any", "F", "M"] = "any"
    age_min: float | None = Field(default=None, ge=0)
    age_max: float | None = Field(default=None, ge=0)
    must_not_miss: bool = False
    features: dict[str, float] = Field(default_factory=dict)

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        if not CODE_RE.match(value):
            raise ValueError(f"not an ICD-10 code: {value!r}")
        return value

    @field_validator("features")
    @classmethod
    def _probabilities(cls, value: dict[str, float]) -> dict[str, float]:
        for key, p in value.items():
            if not 0.0 < p < 1.0:
                raise ValueError(f"feature {key!r}: likelihood must be in (0, 1), got {p}")
        return value

    @model_validator(mode="after")
    def _block(self) -> Diagnosis:
        if not BLOCK_RE.match(self.block):
            raise ValueError(f"block must look like 'I20-I25', got {self.block!r}")
        if not in_block(self.code, self.block):
            raise ValueError(f"code {self.code} is not inside block {self.block}")
        if self.age_min is not None and self.age_max is not None and self.age_min > self.age_max:
            raise ValueError("age_min is above age_max")
        return self

    def plausible_for(self, age: float, sex: str) -> bool:
        """Whether the diagnosis is possible for a patient of this age and sex (``U``, a sex the
        source does not state, rules no diagnosis out)."""
        if self.sex != "any" and sex != "U" and self.sex != sex:
            return False
        if self.age_min is not None and age < self.age_min:
            return False
        return not (self.age_max is not None and age > self.age_max)


class Presentation(BaseModel):
    """A guideline-style work-up for one presenting complaint (used by the thorough doctor)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    symptom: str
    label: str
    guideline: str = Field(min_length=3)
    history: tuple[str, ...] = Field(min_length=1)
    tests: tuple[str, ...] = Field(min_length=1)
    differential: tuple[str, ...] = Field(min_length=1)


@dataclass(frozen=True)
class Catalogue:
    """The merged catalogues, indexed by id, with the sorted id tuples that define action indices."""

    history: dict[str, HistoryItem]
    tests: dict[str, TestItem]
    diagnoses: dict[str, Diagnosis]
    presentations: dict[str, Presentation] = field(default_factory=dict)
    history_ids: tuple[str, ...] = ()
    test_ids: tuple[str, ...] = ()
    diagnosis_codes: tuple[str, ...] = ()

    @classmethod
    def build(
        cls,
        history: dict[str, HistoryItem],
        tests: dict[str, TestItem],
        diagnoses: dict[str, Diagnosis],
        presentations: dict[str, Presentation] | None = None,
    ) -> Catalogue:
        """Create a catalogue and derive its sorted id tuples."""
        return cls(
            history=history,
            tests=tests,
            diagnoses=diagnoses,
            presentations=presentations or {},
            history_ids=tuple(sorted(history)),
            test_ids=tuple(sorted(tests)),
            diagnosis_codes=tuple(sorted(diagnoses)),
        )

    def fingerprint(self) -> str:
        """A short hash of the id lists: two catalogues with the same fingerprint share action indices."""
        import hashlib

        blob = "\n".join((*self.history_ids, "|", *self.test_ids, "|", *self.diagnosis_codes))
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


#: Prior of a diagnosis added from the vocabulary for a loaded case (see :func:`vocabulary_diagnosis`):
#: the smallest prior of the shipped catalogue's rare diagnoses, so a Bayesian baseline never
#: prefers it without evidence; it has no likelihood features.
VOCABULARY_PRIOR = 0.0001


def vocabulary_diagnosis(code: str, prior: float = VOCABULARY_PRIOR) -> Diagnosis:
    """A catalogue entry for a WHO ICD-10 code the catalogue lacks: the WHO title as label, the
    innermost WHO block, a small prior (:data:`VOCABULARY_PRIOR`) and no likelihood features.

    Raises:
        ValueError: ``code`` is not a WHO ICD-10 2019 category or subcategory.
    """
    label, block = icd10.description(code), icd10.block(code)
    if not icd10.is_valid(code) or label is None or block is None:
        raise ValueError(f"{code!r} is not a WHO ICD-10 2019 code ({icd10.EDITION})")
    return Diagnosis(code=icd10.normalise_code(code), label=label, block=block, prior=prior)


def with_diagnoses(catalogue: Catalogue, codes: Iterable[str]) -> Catalogue:
    """``catalogue`` plus a :func:`vocabulary_diagnosis` entry for every code it lacks (the golds and
    differential codes of the loaded cases); the same catalogue object when it lacks none, so the
    action space of an env built on the shipped cases is unchanged."""
    missing = tuple(sorted({c for c in codes if c not in catalogue.diagnoses}))
    if not missing:
        return catalogue
    # Envs built on the same catalogue and cases share one extended catalogue (and so one text
    # matcher, one action table): building them again per env cost ~0.3 s each.
    key = (id(catalogue), missing)
    hit = _EXTENDED.get(key)
    if hit is not None and hit[0] is catalogue:
        return hit[1]
    diagnoses = {**catalogue.diagnoses, **{c: vocabulary_diagnosis(c) for c in missing}}
    extended = Catalogue.build(catalogue.history, catalogue.tests, diagnoses, catalogue.presentations)
    if len(_EXTENDED) >= 16:
        _EXTENDED.pop(next(iter(_EXTENDED)))
    _EXTENDED[key] = (catalogue, extended)
    return extended


_EXTENDED: dict[tuple[int, tuple[str, ...]], tuple[Catalogue, Catalogue]] = {}
