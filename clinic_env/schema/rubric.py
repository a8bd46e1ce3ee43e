"""Rubric items (HealthBench-compatible) and the rule ``check`` predicates that decide them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from clinic_env.schema.icd10 import CODE_RE

__all__ = ["AXES", "SEGMENT_TAGS", "Check", "RubricBank", "RubricItem"]

AXES = ("accuracy", "completeness", "communication", "context_awareness", "instruction_following")
SEGMENT_TAGS = ("history", "differential", "tests", "diagnosis")

_ID_OPS = ("asked", "not_asked", "ordered", "not_ordered")
_LIST_OPS = ("asked_all", "asked_any", "ordered_all", "ordered_any")
_INT_OPS = ("asked_count_gt", "ordered_count_gt", "differential_size_gt")


def _check_pattern(pattern: str) -> str:
    body = pattern[:-2] if pattern.endswith(".*") else pattern
    if not CODE_RE.match(body):
        raise ValueError(f"not an ICD-10 code or pattern: {pattern!r}")
    return pattern


class OrderedWithin(BaseModel):
    """Argument of ``ordered_within``: ``item`` was ordered (or examined) by cycle ``cycle``.

    The consultation clock is the cycle number: a question and its answer take two cycles, so
    20 cycles stand for about ten minutes of a consultation (simplified; see docs/DATA_FORMAT.md §4).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    item: str
    cycle: int = Field(ge=0)


class Check(BaseModel):
    """A rule predicate over an episode: a mapping with exactly one operator.

    See ``docs/DATA_FORMAT.md`` §4 for the operators and what "met" means for each.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    asked: str | None = None
    not_asked: str | None = None
    ordered: str | None = None
    not_ordered: str | None = None
    asked_all: tuple[str, ...] | None = None
    asked_any: tuple[str, ...] | None = None
    ordered_all: tuple[str, ...] | None = None
    ordered_any: tuple[str, ...] | None = None
    ordered_within: OrderedWithin | None = None
    asked_count_gt: int | None = Field(default=None, ge=0)
    ordered_count_gt: int | None = Field(default=None, ge=0)
    differential_size_gt: int | None = Field(default=None, ge=0)
    repeats_gt: int | None = Field(default=None, ge=0)
    diagnosed: bool | None = None
    cost_gt: float | None = Field(default=None, ge=0)
    differential_includes: str | None = None
    final_dx_in: tuple[str, ...] | None = None
    all_of: tuple[Check, ...] | None = None
    any_of: tuple[Check, ...] | None = None
    not_: Check | None = Field(default=None, alias="not")

    @field_validator("differential_includes")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        return None if value is None else _check_pattern(value)

    @field_validator("final_dx_in")
    @classmethod
    def _patterns(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if value is None else tuple(_check_pattern(p) for p in value)

    @model_validator(mode="after")
    def _exactly_one(self) -> Check:
        set_ops = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(set_ops) != 1:
            raise ValueError(f"a check needs exactly one operator, got {len(set_ops)}: {set_ops}")
        return self

    @property
    def operator(self) -> tuple[str, Any]:
        """The check's operator name (``not`` for ``not_``) and its argument."""
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is not None:
                return ("not" if name == "not_" else name), value
        raise AssertionError("unreachable: validated to have one operator")

    def referenced_ids(self) -> tuple[set[str], set[str]]:
        """History ids and test ids this check refers to (recursively)."""
        op, arg = self.operator
        if op in ("asked", "not_asked"):
            return {arg}, set()
        if op in ("ordered", "not_ordered"):
            return set(), {arg}
        if op == "ordered_within":
            return set(), {arg.item}
        if op in ("asked_all", "asked_any"):
            return set(arg), set()
        if op in ("ordered_all", "ordered_any"):
            return set(), set(arg)
        children: tuple[Check, ...] = ()
        if op in ("all_of", "any_of"):
            children = arg
        elif op == "not":
            children = (arg,)
        hx: set[str] = set()
        tests: set[str] = set()
        for child in children:
            h, t = child.referenced_ids()
            hx |= h
            tests |= t
        return hx, tests


class RubricItem(BaseModel):
    """One rubric criterion with signed points (HealthBench format plus an optional rule check)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str | None = Field(default=None, description="Stable id; required in rubric bank files.")
    criterion: str = Field(min_length=3, description="What the examiner judges.")
    points: int = Field(ge=-10, le=10, description="Signed points; negative for bad behaviour.")
    tags: tuple[str, ...] = Field(default=(), description="`axis:...`, `segment:...` and others.")
    check: Check | None = Field(default=None, description="Rule predicate; None needs an LLM.")

    @field_validator("points")
    @classmethod
    def _nonzero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("points must not be 0")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: tuple[str, ...]) -> tuple[str, ...]:
        for tag in tags:
            key, sep, value = tag.partition(":")
            if not sep or not key or not value:
                raise ValueError(f"tag {tag!r} is not of the form key:value")
            if key == "axis" and value not in AXES:
                raise ValueError(f"unknown axis {value!r}; expected one of {AXES}")
            if key == "segment" and value not in SEGMENT_TAGS:
                raise ValueError(f"unknown segment {value!r}; expected one of {SEGMENT_TAGS}")
        if sum(t.startswith("segment:") for t in tags) > 1:
            raise ValueError("at most one segment: tag")
        return tags

    @property
    def segment(self) -> str | None:
        """The segment this item grades (from its ``segment:`` tag), or None for the whole episode."""
        for tag in self.tags:
            if tag.startswith("segment:"):
                return tag.split(":", 1)[1]
        return None


class RubricBank(BaseModel):
    """A rubric bank file: general items applied to every case."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(default=1, ge=1)
    name: str = Field(min_length=1)
    description: str = ""
    items: tuple[RubricItem, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _ids(self) -> RubricBank:
        seen: set[str] = set()
        for i, item in enumerate(self.items):
            if not item.id:
                raise ValueError(f"items[{i}] needs an id in a rubric bank")
            if item.id in seen:
                raise ValueError(f"duplicate rubric item id {item.id!r}")
            seen.add(item.id)
        return self


Segment = Literal["history", "differential", "tests", "diagnosis"]
