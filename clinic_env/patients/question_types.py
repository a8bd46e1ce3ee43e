"""Question types of history items, and vague answers that fit them
(rules and wordings in ``data/speech/question_types.yaml``).

A vague answer must answer the question asked: "A while, I think" fits "When did it start?" but
not "Does light hurt your eyes?". :func:`question_type` derives an item's type (yes/no, time,
pattern, severity, character, site, quantity, medication, open) from its id, category and
question; :func:`vague_lines` lists the vague answers of that type a persona can give: its own
lines whose words fit the type, then the table's lines of the type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from clinic_env.schema.catalogue import HistoryItem

__all__ = ["QuestionTypes", "line_types", "load_question_types", "question_type", "vague_lines"]

_FILE = Path(__file__).resolve().parent.parent / "data" / "speech" / "question_types.yaml"
ANY = "any"


class TypeRule(BaseModel):
    """An item matching every key given has question type ``type``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    ids: tuple[str, ...] | None = None
    prefixes: tuple[str, ...] | None = None
    categories: tuple[str, ...] | None = None
    question: str | None = None
    label: str | None = None

    def matches(self, item: HistoryItem) -> bool:
        """Whether ``item`` matches every key of the rule."""
        return ((self.ids is None or item.id in self.ids)
                and (self.prefixes is None or item.id.split(".", 1)[0] in self.prefixes)
                and (self.categories is None or item.category in self.categories)
                and (self.question is None or re.search(self.question, item.question.strip(), re.I) is not None)
                and (self.label is None or re.search(self.label, item.label, re.I) is not None))


class LineTypeRule(BaseModel):
    """A persona line containing ``words`` fits questions of ``types`` (``any``: all)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    words: str
    types: tuple[str, ...] = Field(min_length=1)


class QuestionTypes(BaseModel):
    """The question-type table (``data/speech/question_types.yaml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int
    types: tuple[str, ...] = Field(min_length=1)
    rules: tuple[TypeRule, ...] = Field(min_length=1)
    vague: dict[str, tuple[str, ...]]
    persona_lines: tuple[LineTypeRule, ...] = ()

    @model_validator(mode="after")
    def _known_types(self) -> QuestionTypes:
        known = set(self.types)
        for where, names in (("rules", [r.type for r in self.rules]), ("vague", list(self.vague)),
                             ("persona_lines", [t for r in self.persona_lines for t in r.types if t != ANY])):
            unknown = sorted(set(names) - known)
            if unknown:
                raise ValueError(f"{where}: unknown question types {unknown} (known: {sorted(known)})")
        missing = sorted(known - set(self.vague))
        if missing:
            raise ValueError(f"vague: no wordings for question types {missing}")
        last = self.rules[-1]
        if any(v is not None for v in (last.ids, last.prefixes, last.categories, last.question, last.label)):
            raise ValueError("rules: the last rule must have no keys (the fallback type)")
        return self


@dataclass(frozen=True)
class _Compiled:
    table: QuestionTypes
    line_rules: tuple[tuple[re.Pattern[str], frozenset[str]], ...]


@lru_cache(maxsize=4)
def load_question_types(path: str | None = None) -> _Compiled:
    """The question-type table (the bundled file unless ``path``), validated and compiled.

    Raises:
        pydantic.ValidationError: The file does not match :class:`QuestionTypes`.
    """
    file = Path(path) if path else _FILE
    table = QuestionTypes.model_validate(yaml.safe_load(file.read_text(encoding="utf-8")))
    rules = tuple((re.compile(r.words, re.IGNORECASE), frozenset(r.types)) for r in table.persona_lines)
    return _Compiled(table, rules)


@lru_cache(maxsize=1024)
def question_type(item: HistoryItem) -> str:
    """The question type of ``item`` (the first table rule it matches)."""
    return next(r.type for r in load_question_types().table.rules if r.matches(item))


@lru_cache(maxsize=1024)
def line_types(line: str) -> frozenset[str]:
    """The question types a persona's vague ``line`` fits (``{"any"}``: all; empty: none)."""
    text = line.replace("\u2019", "'")
    for pattern, types in load_question_types().line_rules:
        if pattern.search(text):
            return types
    return frozenset()


def vague_lines(item: HistoryItem, persona_lines: tuple[str, ...]) -> tuple[str, ...]:
    """The vague answers to ``item``: the persona's own lines that fit its question type, then the
    table's wordings of that type."""
    qtype = question_type(item)
    own = tuple(line for line in persona_lines if qtype in line_types(line) or ANY in line_types(line))
    return own + load_question_types().table.vague[qtype]
