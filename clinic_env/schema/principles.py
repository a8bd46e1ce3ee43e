"""Global principles: reusable, clinically grounded rules that become rubric items for the cases
they apply to (in the spirit of ClinAlign's reusable principles).

A principle file (``rubrics/principles.yaml``) has ``kind: principles``; each item says when it
applies (segment, specialties, settings, presenting complaints, sex, age, must-not-miss
alternatives) and the rubric item it becomes.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from clinic_env.schema.case import Case
from clinic_env.schema.rubric import RubricItem

__all__ = ["Applicability", "Principle", "PrincipleSet"]


class Applicability(BaseModel):
    """When a principle applies to a case; every condition given must hold (none = always)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    specialties: tuple[str, ...] = ()
    settings: tuple[str, ...] = ()
    presenting: tuple[str, ...] = Field(default=(), description="Presenting-complaint history ids.")
    sex: Literal["any", "F", "M"] = "any"
    age_min: float | None = Field(default=None, ge=0)
    age_max: float | None = Field(default=None, ge=0)
    informant: tuple[str, ...] = ()
    has_must_not_miss: bool | None = Field(default=None, description="Case lists must-not-miss alternatives.")
    has_contraindicated_tests: bool | None = None

    def matches(self, case: Case) -> bool:
        """Whether ``case`` meets every condition."""
        demo = case.demographics
        alternatives = [c for c in case.must_not_miss if c != case.gold_diagnosis]
        checks = [
            not self.specialties or case.specialty in self.specialties,
            not self.settings or case.setting in self.settings,
            not self.presenting or case.presenting_complaint in self.presenting,
            self.sex == "any" or demo.sex == self.sex,
            self.age_min is None or demo.age >= self.age_min,
            self.age_max is None or demo.age <= self.age_max,
            not self.informant or case.informant in self.informant,
            self.has_must_not_miss is None or bool(alternatives) == self.has_must_not_miss,
            self.has_contraindicated_tests is None or bool(case.contraindicated_tests) == self.has_contraindicated_tests,
        ]
        return all(checks)


class Principle(BaseModel):
    """A reusable principle and the rubric item it becomes where it applies."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    principle: str = Field(min_length=10, description="The principle, in one or two sentences.")
    source: str = Field(min_length=3, description="Guideline or consensus it rests on.")
    applies: Applicability = Applicability()
    rubric: RubricItem

    @model_validator(mode="after")
    def _tagged(self) -> Principle:
        if not any(t.startswith("axis:") for t in self.rubric.tags):
            raise ValueError("the rubric item needs an axis: tag")
        return self

    def item_for(self, case: Case) -> RubricItem | None:
        """The rubric item for ``case`` (with the principle's id), or None when it does not apply."""
        if not self.applies.matches(case):
            return None
        return self.rubric.model_copy(update={"id": self.id, "tags": (*self.rubric.tags, f"principle:{self.id}")})


class PrincipleSet(BaseModel):
    """A principles file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["principles"]
    version: int = Field(default=1, ge=1)
    name: str = "principles"
    description: str = ""
    items: tuple[Principle, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> PrincipleSet:
        ids = [p.id for p in self.items]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate principle ids: {dupes}")
        return self

    def items_for(self, case: Case) -> list[RubricItem]:
        """The rubric items of every principle that applies to ``case``."""
        return [item for p in self.items if (item := p.item_for(case)) is not None]
