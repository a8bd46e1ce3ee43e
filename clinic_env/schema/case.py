"""The case model: one patient's ground truth, written as data (see docs/DATA_FORMAT.md §2)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from clinic_env.schema.icd10 import CODE_RE
from clinic_env.schema.rubric import RubricItem

__all__ = ["SPECIALTIES", "Case", "Demographics", "DifferentialEntry", "Fact", "Finding"]

SPECIALTIES = (
    "cardiology", "pulmonology", "neurology", "infectious_disease", "endocrinology",
    "gastroenterology", "general_surgery", "nephrology", "urology", "obstetrics_gynaecology",
    "haematology", "vascular", "rheumatology", "orthopaedics", "psychiatry", "toxicology",
    "paediatrics", "ent", "ophthalmology", "dermatology", "allergy_immunology",
    "emergency_medicine", "geriatrics", "general_medicine",
)
Specialty = Literal[
    "cardiology", "pulmonology", "neurology", "infectious_disease", "endocrinology",
    "gastroenterology", "general_surgery", "nephrology", "urology", "obstetrics_gynaecology",
    "haematology", "vascular", "rheumatology", "orthopaedics", "psychiatry", "toxicology",
    "paediatrics", "ent", "ophthalmology", "dermatology", "allergy_immunology",
    "emergency_medicine", "geriatrics", "general_medicine",
]
Setting = Literal[
    "emergency department", "primary care", "urgent care", "inpatient ward", "outpatient clinic"
]


def _code(value: str) -> str:
    if not CODE_RE.match(value):
        raise ValueError(f"not an ICD-10 code: {value!r}")
    return value


class Fact(BaseModel):
    """A history fact: what the patient says when asked, and how much it matters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str = Field(min_length=1, description="The patient's own words.")
    present: bool = Field(default=True, description="Positive finding, or a pertinent negative.")
    criticality: Literal[1, 2] = Field(description="2 critical, 1 supplementary.")
    vague: str | None = Field(default=None, description="The same answer without the detail.")
    contradiction: str | None = Field(default=None, description="A scripted inconsistent answer.")


class Finding(BaseModel):
    """An examination finding or a test result.

    ``grade`` says how far an abnormal result is from normal: ``mild`` (e.g. WCC 12.4, a
    troponin just above the 99th percentile, trace proteinuria) or ``marked`` (the default for an
    abnormal result: diagnostic or dangerous values). The doctor's numeric observation shows
    normal / mildly / markedly abnormal.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str = Field(min_length=1)
    abnormal: bool
    grade: Literal["mild", "marked"] | None = Field(
        default=None, description="Abnormal results only: mild or marked (default marked).")

    @model_validator(mode="after")
    def _grade(self) -> Finding:
        if self.grade is not None and not self.abnormal:
            raise ValueError("grade is only for abnormal results")
        return self

    @property
    def level(self) -> int:
        """0 normal, 1 mildly abnormal, 2 markedly abnormal."""
        if not self.abnormal:
            return 0
        return 1 if self.grade == "mild" else 2


class DifferentialEntry(BaseModel):
    """A diagnosis to consider, flagged when missing it would be dangerous."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str
    must_not_miss: bool = False

    _check_code = field_validator("code")(classmethod(lambda cls, v: _code(v)))


class Demographics(BaseModel):
    """Age in years (fractions for infants) and sex."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    age: float = Field(ge=0, le=120)
    sex: Literal["M", "F"]


class Case(BaseModel):
    """One clinical case. Internal consistency is checked here; catalogue references by
    :func:`clinic_env.schema.loading.check_case_references`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str = Field(min_length=3)
    specialty: Specialty
    setting: Setting = "emergency department"
    difficulty: int = Field(default=2, ge=1, le=3)
    demographics: Demographics
    informant: Literal["patient", "parent", "relative"] = "patient"
    presenting_complaint: str
    chief_complaint: str = Field(min_length=2)
    opening_statement: str = Field(min_length=2)
    history: dict[str, Fact] = Field(min_length=1)
    exam: dict[str, Finding] = Field(default_factory=dict)
    tests: dict[str, Finding] = Field(default_factory=dict)
    essential_tests: tuple[str, ...] = ()
    optional_tests: tuple[str, ...] = ()
    contraindicated_tests: dict[str, str] = Field(
        default_factory=dict, description="Test id -> why it is unsafe for this patient (unsafe-action violations)."
    )
    budget_usd: float = Field(gt=0)
    gold_diagnosis: str
    confirmatory: tuple[tuple[str, ...], ...] = Field(
        default=(),
        description="The evidence that confirms the gold diagnosis: alternatives, each a list of item ids "
                    "(tests, exam items or history items) that together confirm it; any one alternative "
                    "confirms. Empty: the abnormal essential tests, each alone (see confirmatory_evidence).")
    differential: tuple[DifferentialEntry, ...] = Field(min_length=1)
    rubric: tuple[RubricItem, ...] = ()
    source: str = Field(min_length=3)

    _check_gold = field_validator("gold_diagnosis")(classmethod(lambda cls, v: _code(v)))

    @model_validator(mode="after")
    def _consistent(self) -> Case:
        codes = [d.code for d in self.differential]
        if self.gold_diagnosis not in codes:
            raise ValueError(f"gold_diagnosis {self.gold_diagnosis} must be in the differential")
        if len(set(codes)) != len(codes):
            raise ValueError("the differential lists a code twice")
        both = set(self.essential_tests) & set(self.optional_tests)
        if both:
            raise ValueError(f"tests both essential and optional: {sorted(both)}")
        contradictions = [k for k, f in self.history.items() if f.contradiction]
        if len(contradictions) > 1:
            raise ValueError(f"at most one scripted contradiction per case, got {contradictions}")
        unsafe = set(self.contraindicated_tests) & (set(self.essential_tests) | set(self.optional_tests))
        if unsafe:
            raise ValueError(f"tests both contraindicated and recommended: {sorted(unsafe)}")
        if any(not alt for alt in self.confirmatory):
            raise ValueError("confirmatory: every alternative must list at least one item id")
        overlap = set(self.exam) & set(self.tests)
        if overlap:
            raise ValueError(f"ids in both exam and tests: {sorted(overlap)}")
        return self

    @property
    def must_not_miss(self) -> tuple[str, ...]:
        """Codes of the must-not-miss diagnoses in the differential."""
        return tuple(d.code for d in self.differential if d.must_not_miss)

    def confirmatory_evidence(self) -> tuple[tuple[str, ...], ...]:
        """The alternatives that confirm the gold: ``confirmatory`` when given, otherwise each
        essential test or exam item whose result is abnormal, alone (then every essential test)."""
        if self.confirmatory:
            return self.confirmatory
        abnormal = tuple((t,) for t in self.essential_tests if (f := self.result(t)) is not None and f.abnormal)
        return abnormal or tuple((t,) for t in self.essential_tests)

    def result(self, test_id: str) -> Finding | None:
        """The listed exam finding or test result for ``test_id``, if the case lists one."""
        return self.exam.get(test_id) or self.tests.get(test_id)
