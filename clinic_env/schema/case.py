"""The case model: one patient's ground truth, written as data (see docs/DATA_FORMAT.md §2)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from clinic_env.schema.icd10 import CODE_RE
from clinic_env.schema.rubric import RubricItem

__all__ = ["NOT_AVAILABLE", "SPECIALTIES", "Case", "Demographics", "DifferentialEntry", "Fact", "Finding", "Sex", "SourceItem"]

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


class SourceItem(BaseModel):
    """A finding or result an imported source reports that no catalogue item covers, kept under its
    own id (``src.<name>``) with the source's own name and words (text and open modes can ask for it
    by name, see :meth:`Case.lookup_item`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="The source's own name for the item.")
    kind: Literal["history", "exam", "test"]
    text: str = Field(min_length=1, description="The source's own words.")
    abnormal: bool = False


#: What an unlisted test returns in a case marked ``unlisted: not_available``.
NOT_AVAILABLE = Finding(text="Not done / not available in the source.", abnormal=False)


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower().replace("_", " ")) if w not in {"src", "the", "of", "and", "a"}}


class DifferentialEntry(BaseModel):
    """A diagnosis to consider, flagged when missing it would be dangerous."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str
    must_not_miss: bool = False

    _check_code = field_validator("code")(classmethod(lambda cls, v: _code(v)))


#: The sexes a case can give: ``U`` is "not stated in the source" (an imported newborn whose record
#: never says), never a guess; bundled and generated cases are always ``M`` or ``F``.
Sex = Literal["M", "F", "U"]


class Demographics(BaseModel):
    """Age in years (fractions for infants) and sex (``U``: not stated in the source)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    age: float = Field(ge=0, le=120)
    sex: Sex

    @property
    def sex_stated(self) -> bool:
        """Whether the source states the patient's sex."""
        return self.sex != "U"

    @property
    def age_band(self) -> str:
        """The age words curated ambiguous diagnosis names are resolved by (``newborn`` up to 28
        days, then ``infant``, ``child``, ``adult``): "respiratory distress syndrome" is P22.0 in a
        newborn, J80 in an adult (:func:`clinic_env.schema.vocabulary.map_diagnosis`'s context)."""
        age = self.age
        return "newborn" if age <= 28 / 365 else "infant" if age < 1 else "child" if age < 18 else "adult"

    def noun(self, child_below: float = 16) -> str:
        """``man``/``woman`` (``boy``/``girl`` below ``child_below`` years); with the sex not
        stated, by age alone: ``baby`` (under 1), ``child`` (under 18) or ``adult``, never a guessed sex."""
        if self.sex == "U":
            return "baby" if self.age < 1 else "child" if self.age < 18 else "adult"
        if self.age < child_below:
            return "boy" if self.sex == "M" else "girl"
        return "man" if self.sex == "M" else "woman"


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
    #: Empty only when the complaint is case-specific (an imported source none of whose history
    #: the catalogue codes; the ``src.*`` items hold it).
    history: dict[str, Fact] = Field(default_factory=dict)
    exam: dict[str, Finding] = Field(default_factory=dict)
    tests: dict[str, Finding] = Field(default_factory=dict)
    essential_tests: tuple[str, ...] = ()
    optional_tests: tuple[str, ...] = ()
    contraindicated_tests: dict[str, str] = Field(
        default_factory=dict, description="Test id -> why it is unsafe for this patient (unsafe-action violations)."
    )
    budget_usd: float = Field(gt=0)
    gold_diagnosis: str = Field(
        default="", description="The gold's ICD-10 code; empty only when gold_status is 'unmapped'.")
    gold_status: Literal["coded", "unmapped"] = Field(
        default="coded", description="'unmapped': the source's diagnosis (gold_text) has no code a coder would "
                                     "accept from its words; such a case runs only in open mode (LLM moderator).")
    confirmatory: tuple[tuple[str, ...], ...] = Field(
        default=(),
        description="The evidence that confirms the gold diagnosis: alternatives, each a list of item ids "
                    "(tests, exam items or history items) that together confirm it; any one alternative "
                    "confirms. Empty: the abnormal essential tests, each alone (see confirmatory_evidence).")
    differential: tuple[DifferentialEntry, ...] = Field(
        description="At least one entry, the gold among them (an unmapped gold: codes of other "
                                "diagnoses to consider, possibly none).")
    rubric: tuple[RubricItem, ...] = ()
    source: str = Field(min_length=3)
    extra_items: dict[str, SourceItem] = Field(
        default_factory=dict, description="Imported findings and results no catalogue item covers (ids src.<name>).")
    unlisted: Literal["profile", "not_available"] = Field(
        default="profile", description="What a test the case does not list returns: a result consistent with the "
                                       "gold's profile, or 'not done / not available in the source' (imported cases).")
    source_text: str | None = Field(default=None, description="The source record's raw text (for an LLM patient).")
    image_url: str | None = Field(default=None, description="An image that belongs to the case (multimodal open mode).")
    gold_text: str | None = Field(default=None, description="The source's own words for the diagnosis.")

    _check_gold = field_validator("gold_diagnosis")(classmethod(lambda cls, v: _code(v) if v else v))

    @model_validator(mode="after")
    def _consistent(self) -> Case:
        codes = [d.code for d in self.differential]
        if self.gold_status == "unmapped":
            if self.gold_diagnosis:
                raise ValueError("gold_status 'unmapped' takes no gold_diagnosis code (leave it out)")
            if not (self.gold_text or "").strip():
                raise ValueError("gold_status 'unmapped' needs gold_text (the source's words for the diagnosis)")
        elif not self.gold_diagnosis:
            raise ValueError("gold_diagnosis: an ICD-10 code is required (or gold_status: unmapped with gold_text)")
        elif self.gold_diagnosis not in codes:
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
        bad_ids = [k for k in self.extra_items if not re.fullmatch(r"src\.[a-z0-9_]+", k)]
        if bad_ids:
            raise ValueError(f"extra_items ids must look like src.<name>: {bad_ids}")
        if not self.history and not self.presenting_complaint.startswith("src."):
            raise ValueError("history: at least one fact (or a case-specific src.* presenting complaint)")
        own = self.extra_items.get(self.presenting_complaint)
        if self.presenting_complaint.startswith("src.") and (own is None or own.kind != "history"):
            raise ValueError(f"presenting_complaint {self.presenting_complaint!r} must be a history item of extra_items")
        overlap = set(self.exam) & set(self.tests)
        if overlap:
            raise ValueError(f"ids in both exam and tests: {sorted(overlap)}")
        return self

    @property
    def coded(self) -> bool:
        """Whether the gold has an ICD-10 code (structured and text modes need one; see
        :func:`clinic_env.envs.setup.resolve_setup`)."""
        return self.gold_status == "coded"

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

    def unlisted_finding(self) -> Finding | None:
        """:data:`NOT_AVAILABLE` for a case whose unlisted tests are not available, else None (the
        engine then derives a result from the gold's profile)."""
        return NOT_AVAILABLE if self.unlisted == "not_available" else None

    def lookup_item(self, name: str) -> tuple[str, SourceItem] | None:
        """The case-specific item a doctor asks for by name in text/open mode (``"CT angiogram"`` ->
        ``src.ct_angiogram``): its id or the most words of its name in common, all of the name's
        words present in the request or the request's words all in the name."""
        if name in self.extra_items:
            return name, self.extra_items[name]
        asked = _words(name)
        best: tuple[int, str] | None = None
        for key, item in self.extra_items.items():
            have = _words(item.name) | _words(key)
            common = len(asked & have)
            if common and (asked <= have or _words(item.name) <= asked) and (best is None or common > best[0]):
                best = (common, key)
        return (best[1], self.extra_items[best[1]]) if best else None
