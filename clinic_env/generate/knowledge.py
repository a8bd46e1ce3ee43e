"""The disease knowledge base the case generator draws from (``data/knowledge/``).

- ``conditions/*.yaml``: one entry per condition (:class:`Condition`): ICD-10 code, prevalence by
  age band and sex, presentations (presenting symptom, chief complaint, opening statements),
  history features with their likelihood P(present | condition) and the patient's words, exam
  and test findings with P(abnormal | condition) and typical results, essential and optional
  tests, must-not-miss differentials, tests to avoid, the guideline followed.
- ``lexicon.yaml``: generic patient wording for history items a condition does not word itself.
- ``background.yaml``: social, family, drug and past history that every patient has.
- ``results.yaml``: named typical results (``@neutrophilia``) and sex-specific value ranges.

Everything is checked against the catalogue when loaded (:func:`load_knowledge`); a problem raises
:class:`~clinic_env.schema.errors.DataError` naming the file, the field and the value.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from clinic_env.schema.case import Setting, Specialty
from clinic_env.schema.catalogue import Catalogue
from clinic_env.schema.errors import DataError, Problem
from clinic_env.schema.loading import load_catalogue, parse_model

__all__ = [
    "KNOWLEDGE_DIR",
    "BackgroundOption",
    "Condition",
    "FindingEntry",
    "HistoryEntry",
    "KnowledgeBase",
    "Presentation",
    "Prevalence",
    "load_knowledge",
]

KNOWLEDGE_DIR = Path(__file__).resolve().parent.parent / "data" / "knowledge"
Text = Union[str, list[str]]
_BAND = re.compile(r"^(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Restricted(_Strict):
    sex: Literal["M", "F"] | None = Field(default=None, description="Only for patients of this sex.")
    ages: tuple[float, float] | None = Field(default=None, description="Only for patients aged in [lo, hi].")

    def applies(self, age: float, sex: str) -> bool:
        """Whether the entry applies to a patient of this age and sex."""
        if self.sex is not None and self.sex != sex:
            return False
        return self.ages is None or self.ages[0] <= age <= self.ages[1]


class HistoryEntry(_Restricted):
    """A history feature of a condition: how likely it is and how the patient words it."""

    p: float = Field(ge=0, le=1, description="P(present | condition); >= 0.95 always, <= 0.05 never.")
    crit: Literal[1, 2] = 1
    pos: Text | None = Field(default=None, description="Patient's words when present (default: lexicon).")
    neg: Text | None = Field(default=None, description="Patient's words when absent (default: lexicon, catalogue).")
    vague: Text | None = Field(default=None, description="The answer without the detail (when present).")


class FindingEntry(_Restricted):
    """An examination finding or test result of a condition."""

    p: float = Field(default=1.0, ge=0, le=1, description="P(abnormal | condition).")
    abnormal: Text | None = Field(default=None, description="Result when abnormal (template or @pattern).")
    normal: Text | None = Field(default=None, description="Result when normal (default: library, catalogue).")
    grade: Literal["mild", "marked"] = Field(default="marked", description="How abnormal the abnormal result is.")


class Presentation(_Strict):
    """One way the condition presents."""

    symptom: str = Field(description="The presenting complaint (a history id).")
    chief: Text
    opening: Text
    weight: float = Field(default=1.0, gt=0)
    implies: list[str] = Field(default_factory=list, description="History ids the opening mentions: forced present.")


class Prevalence(_Strict):
    """Relative prevalence by sex and age band (weights, not rates)."""

    sex: dict[Literal["M", "F"], float]
    ages: dict[str, float]

    @field_validator("ages")
    @classmethod
    def _bands(cls, value: dict[str, float]) -> dict[str, float]:
        for band, weight in value.items():
            m = _BAND.match(band)
            if not m or float(m.group(1)) > float(m.group(2)):
                raise ValueError(f"age band must look like '18-39', got {band!r}")
            if weight < 0:
                raise ValueError(f"age band {band!r}: weight must be >= 0, got {weight}")
        return value

    def bands(self) -> list[tuple[float, float, float]]:
        """``(lo, hi, weight)`` per band."""
        out = []
        for band, weight in self.ages.items():
            m = _BAND.match(band)
            assert m is not None
            out.append((float(m.group(1)), float(m.group(2)), weight))
        return out


class Condition(_Strict):
    """A condition of the knowledge base (see the module docstring)."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    code: str
    specialty: Specialty
    title: str = Field(min_length=3)
    source: str = Field(min_length=10, description="Guidelines the presentation and work-up follow.")
    settings: list[Setting] = Field(min_length=1)
    informant: Literal["patient", "parent"] = "patient"
    prevalence: Prevalence
    vars: dict[str, str] = Field(default_factory=dict, description="Case-level variables: '2-4', 'left|right'.")
    presentations: list[Presentation] = Field(min_length=1)
    history: dict[str, HistoryEntry] = Field(min_length=8)
    exam: dict[str, FindingEntry] = Field(min_length=2)
    tests: dict[str, FindingEntry] = Field(min_length=6)
    essential: list[str] = Field(min_length=1)
    optional: list[str] = Field(default_factory=list)
    differential: list[str] = Field(min_length=3)
    meds: list[str] = Field(default_factory=list, description="Regular medicines the condition implies.")
    avoid: dict[str, str] = Field(default_factory=dict, description="Test id -> why ordering it is wrong here.")
    contraindicated: dict[str, str] = Field(default_factory=dict)
    key_questions: list[str] = Field(default_factory=list, description="History ids the rubric checks.")
    confirmatory: list[list[str]] = Field(
        default_factory=list,
        description="Evidence that confirms the diagnosis: alternatives, each a list of history, exam or test "
                    "ids; any one alternative confirms (copied into every generated case).")

    @model_validator(mode="after")
    def _consistent(self) -> Condition:
        if "exam.vitals" not in self.exam:
            raise ValueError("exam must include exam.vitals")
        listed = set(self.exam) | set(self.tests)
        missing = [t for t in (*self.essential, *self.optional) if t not in listed]
        if missing:
            raise ValueError(f"essential/optional tests not in exam or tests: {missing}")
        both = set(self.essential) & set(self.optional)
        if both:
            raise ValueError(f"tests both essential and optional: {sorted(both)}")
        clash = (set(self.avoid) | set(self.contraindicated)) & (set(self.essential) | set(self.optional))
        if clash:
            raise ValueError(f"tests both recommended and to avoid: {sorted(clash)}")
        if self.code in self.differential:
            raise ValueError("the differential lists alternatives; the condition's own code is added by the generator")
        return self


class BackgroundOption(_Restricted):
    """One option for a background history item (e.g. 'ex-smoker')."""

    weight: float = Field(default=1.0, gt=0)
    present: bool = True
    text: Text
    vague: Text | None = None
    contradiction: Text | None = None
    meds: list[str] = Field(default_factory=list, description="Medicines this option implies.")
    exclude_codes: list[str] = Field(default_factory=list, description="Gold codes (or 3-character categories) it contradicts.")


class KnowledgeBase:
    """The loaded knowledge base.

    Attributes:
        conditions: Condition id -> condition (file order).
        lexicon: History id -> ``{"pos": [...], "neg": [...], "vague": [...]}``.
        background: History id -> options (``background.yaml``), in the order they are added.
        results: Test id -> pattern name -> result templates.
        variables: Value ranges by sex (``{"hb": {"M": "134-162", "F": ...}}``, Hb in g/L).
    """

    def __init__(self, conditions: dict[str, Condition], lexicon: dict[str, dict[str, list[str]]],
                 background: dict[str, list[BackgroundOption]], results: dict[str, dict[str, list[str]]],
                 variables: dict[str, dict[str, str]]) -> None:
        self.conditions = conditions
        self.lexicon = lexicon
        self.background = background
        self.results = results
        self.variables = variables

    def condition(self, key: str) -> Condition:
        """A condition by id, or by ICD-10 code when exactly one condition has it."""
        if key in self.conditions:
            return self.conditions[key]
        by_code = [c for c in self.conditions.values() if c.code == key]
        if len(by_code) == 1:
            return by_code[0]
        raise KeyError(f"unknown condition {key!r}; known: {', '.join(sorted(self.conditions))}")


def _as_list(value: Text | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DataError.single(path, "", f"cannot read knowledge file: {exc}") from None
    if not isinstance(data, dict):
        raise DataError.single(path, "", "expected a mapping")
    return data


def _check_condition(cond: Condition, cat: Catalogue, kb: KnowledgeBase, file: str, prefix: str) -> list[Problem]:
    problems: list[Problem] = []
    p = f"{prefix}."
    if cond.code not in cat.diagnoses:
        problems.append(Problem(file, f"{p}code", "ICD-10 code not in the diagnosis catalogue", cond.code))
    for code in cond.differential:
        if code not in cat.diagnoses:
            problems.append(Problem(file, f"{p}differential", "ICD-10 code not in the diagnosis catalogue", code))
    for pres in cond.presentations:
        if pres.symptom not in cat.history:
            problems.append(Problem(file, f"{p}presentations", "unknown history id", pres.symptom))
        problems += [Problem(file, f"{p}presentations.implies", "not one of the condition's history items", h)
                     for h in pres.implies if h not in cond.history]
    for hid, entry in cond.history.items():
        if hid not in cat.history:
            problems.append(Problem(file, f"{p}history.{hid}", "unknown history id", hid))
            continue
        words = kb.lexicon.get(hid, {})
        if hid == "meds.current":
            continue  # composed from the condition's and the background's medicines
        if entry.p > 0.05 and not entry.pos and not words.get("pos"):
            problems.append(Problem(file, f"{p}history.{hid}.pos", "no wording when present (and none in the lexicon)", hid))
        if cond.informant == "parent" and ((entry.p < 0.95 and not entry.neg) or (entry.p > 0.05 and not entry.pos)):
            problems.append(Problem(file, f"{p}history.{hid}", "a parent-voice condition must word its own answers", hid))
    for kind, entries in (("exam", cond.exam), ("tests", cond.tests)):
        for tid, finding in entries.items():
            item = cat.tests.get(tid)
            if item is None or (kind == "exam") != (item.category == "exam"):
                problems.append(Problem(file, f"{p}{kind}.{tid}", f"not an {'examination' if kind == 'exam' else 'non-exam test'} id", tid))
            for text in _as_list(finding.abnormal) + _as_list(finding.normal):
                # "@normal" without a library pattern means the catalogue's normal result.
                if text.startswith("@") and text != "@normal" and text[1:] not in kb.results.get(tid, {}):
                    problems.append(Problem(file, f"{p}{kind}.{tid}", "unknown result pattern", text))
            if finding.p > 0.05 and not finding.abnormal:
                problems.append(Problem(file, f"{p}{kind}.{tid}.abnormal", "no abnormal result for p > 0.05", tid))
    for tid in (*cond.avoid, *cond.contraindicated):
        if tid not in cat.tests:
            problems.append(Problem(file, f"{p}avoid", "unknown test id", tid))
    for i, alt in enumerate(cond.confirmatory):
        problems += [Problem(file, f"{p}confirmatory[{i}]", "not one of the condition's history, exam or test items", k)
                     for k in alt if k not in cond.history and k not in cond.exam and k not in cond.tests]
        if not alt:
            problems.append(Problem(file, f"{p}confirmatory[{i}]", "empty alternative", ""))
    for hid in cond.key_questions:
        if hid not in cond.history:
            problems.append(Problem(file, f"{p}key_questions", "not one of the condition's history items", hid))
    if not cat.diagnoses.get(cond.code) or not any(w > 0 for w in cond.prevalence.sex.values()):
        return problems
    return problems


@lru_cache(maxsize=4)
def _load(folder: str, catalogue_key: int) -> KnowledgeBase:
    root = Path(folder)
    cat = load_catalogue() if catalogue_key == 0 else _CATALOGUES[catalogue_key]
    lex_raw = _read(root / "lexicon.yaml").get("items", {})
    lexicon = {hid: {k: _as_list(v) for k, v in words.items()} for hid, words in lex_raw.items()}
    res_raw = _read(root / "results.yaml")
    results = {tid: {name: _as_list(v) for name, v in pats.items()} for tid, pats in res_raw.get("results", {}).items()}
    variables = {k: dict(v) for k, v in res_raw.get("variables", {}).items()}
    problems: list[Problem] = []
    bg_file = root / "background.yaml"
    background: dict[str, list[BackgroundOption]] = {}
    for hid, options in _read(bg_file).get("items", {}).items():
        if hid not in cat.history:
            problems.append(Problem(str(bg_file), f"items.{hid}", "unknown history id", hid))
        try:
            background[hid] = [parse_model(BackgroundOption, o, str(bg_file), f"items.{hid}[{i}]")
                               for i, o in enumerate(options)]
        except DataError as exc:
            problems += exc.problems
    for hid in lexicon:
        if hid not in cat.history:
            problems.append(Problem(str(root / "lexicon.yaml"), f"items.{hid}", "unknown history id", hid))
    kb = KnowledgeBase({}, lexicon, background, results, variables)
    for file in sorted((root / "conditions").glob("*.yaml")):
        for i, raw in enumerate(_read(file).get("conditions", [])):
            try:
                cond = parse_model(Condition, raw, str(file), f"conditions[{i}]")
            except DataError as exc:
                problems += exc.problems
                continue
            if cond.id in kb.conditions:
                problems.append(Problem(str(file), f"conditions[{i}].id", "condition defined twice", cond.id))
            problems += _check_condition(cond, cat, kb, str(file), f"conditions[{i}]")
            kb.conditions[cond.id] = cond
    if problems:
        raise DataError(problems)
    if not kb.conditions:
        raise DataError.single(root / "conditions", "", "no conditions found")
    return kb


_CATALOGUES: dict[int, Catalogue] = {}


def load_knowledge(path: str | Path | None = None, catalogue: Catalogue | None = None) -> KnowledgeBase:
    """Load and check a knowledge base folder (default: the shipped one), against ``catalogue``
    (default: the bundled catalogue). Cached."""
    key = 0
    if catalogue is not None and catalogue is not load_catalogue():
        key = id(catalogue)
        _CATALOGUES[key] = catalogue
    return _load(str(Path(path) if path is not None else KNOWLEDGE_DIR), key)
