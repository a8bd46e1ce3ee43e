"""Resolve the constructor arguments shared by every env (cases, personas, rubrics, config)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import numpy as np

from clinic_env.core.actions import ActionTable
from clinic_env.core.engine import Budgets, Consultation
from clinic_env.core.layout import ObservationLayout
from clinic_env.rewards.config import RewardConfig
from clinic_env.rewards.evolution import DynamicBank
from clinic_env.schema.case import Case
from clinic_env.schema.catalogue import Catalogue, with_diagnoses
from clinic_env.schema.errors import DataError
from clinic_env.schema.loading import (
    load_cases,
    load_catalogue,
    load_personas,
    load_principles,
    load_rubric_banks,
)
from clinic_env.schema.persona import Persona
from clinic_env.schema.principles import PrincipleSet
from clinic_env.schema.reduce import items_within, reduce_catalogue
from clinic_env.schema.rubric import RubricBank, RubricItem

__all__ = ["ENV_VERSION", "EnvInfo", "EnvSetup", "check_render_mode", "coded_cases", "resolve_setup"]

#: Version of the env's behaviour; recorded in every episode record. Bump on any change.
ENV_VERSION = "consultation-v1"

CasesArg = Union[str, Path, Case, Sequence[Case], None]
PersonaArg = Union[str, Persona, Sequence[Persona], None]


@dataclass(frozen=True)
class EnvInfo:
    """What a policy needs to decode observations and actions of an env."""

    catalogue: Catalogue
    table: ActionTable
    layout: ObservationLayout
    config: RewardConfig


@dataclass
class EnvSetup:
    """The resolved ingredients of an env."""

    catalogue: Catalogue
    cases: list[Case]
    personas: list[Persona]
    general_rubric: tuple[RubricItem, ...]
    rubric_version: str
    config: RewardConfig
    max_cycles: int
    dynamic: DynamicBank | None = None
    principles: tuple[PrincipleSet, ...] = ()
    fact_judge: Callable[..., Any] | None = None
    _principle_items: dict[str, tuple[RubricItem, ...]] = field(default_factory=dict)
    interruption_share: float | None = None
    _by_id: dict[str, Case] | None = None
    allow_repeats: bool = False
    budgets: Budgets = field(default_factory=Budgets)

    def engine(self) -> Consultation:
        """A fresh engine for this set-up."""
        dynamic = self.dynamic.items_for if self.dynamic is not None else None
        engine = Consultation(self.catalogue, self.config, self.general_rubric, self.max_cycles, dynamic,
                              self.principle_items, allow_repeats=self.allow_repeats, budgets=self.budgets)
        engine.fact_judge = self.fact_judge
        engine.interruption_share = self.interruption_share
        return engine

    def principle_items(self, case: Case) -> tuple[RubricItem, ...]:
        """The principles' rubric items that apply to ``case`` (cached per case id)."""
        items = self._principle_items.get(case.id)
        if items is None:
            items = items_within((item for pset in self.principles for item in pset.items_for(case)), self.catalogue)
            self._principle_items[case.id] = items
        return items

    def info(self, engine: Consultation) -> EnvInfo:
        """The policy-facing description of ``engine``."""
        return EnvInfo(self.catalogue, engine.table, engine.layout, self.config)

    def choose(self, rng: np.random.Generator, options: dict[str, Any] | None) -> tuple[Case, Persona]:
        """Pick the episode's case and persona: from ``options`` (``case_id``, ``persona_id``) or by ``rng``."""
        options = options or {}
        case_id, persona_id = options.get("case_id"), options.get("persona_id")
        if case_id is not None:
            if self._by_id is None:
                self._by_id = {}
                for c in self.cases:
                    self._by_id.setdefault(c.id, c)
            found = self._by_id.get(case_id)
            if found is None:
                raise KeyError(f"options['case_id']={case_id!r} is not among the env's {len(self.cases)} cases")
            case = found
        else:
            case = self.cases[int(rng.integers(len(self.cases)))]
        if persona_id is not None:
            personas = [p for p in self.personas if p.id == persona_id]
            if not personas:
                raise KeyError(f"options['persona_id']={persona_id!r} is not among the env's personas")
            persona = personas[0]
        else:
            persona = self.personas[int(rng.integers(len(self.personas)))]
        return case, persona


def check_render_mode(render_mode: str | None, modes: Sequence[str]) -> str | None:
    """``render_mode`` if it is None or one of ``modes``; a clear ValueError otherwise."""
    if render_mode is not None and render_mode not in modes:
        raise ValueError(f"render_mode must be one of {list(modes)}, got {render_mode!r}")
    return render_mode


def _cases(case: CasesArg, cases: CasesArg, cat: Catalogue) -> list[Case]:
    chosen = case if case is not None else cases
    if chosen is None:
        return load_cases(None) if cat is load_catalogue() else load_cases(None, cat)
    if isinstance(chosen, Case):
        return [chosen]
    if isinstance(chosen, (str, Path)):
        path = Path(chosen)
        if not path.exists():
            found = [c for c in load_cases(None) if c.id == str(chosen)]
            if found:
                return found
            raise DataError.single(chosen, "", "no such case file, folder or bundled case id")
        return load_cases(path, cat)
    out = list(chosen)
    if not out or not all(isinstance(c, Case) for c in out):
        raise TypeError("cases= must be a path, a case id, a Case or a non-empty sequence of Case objects")
    return out


def coded_cases(cases: list[Case]) -> list[Case]:
    """The cases whose gold has an ICD-10 code; the others are named in a warning (structured and
    text modes cannot score an uncoded gold). Raises :class:`DataError` when none is coded."""
    uncoded = [c for c in cases if not c.coded]
    if not uncoded:
        return cases
    names = ", ".join(f"{c.id} ({c.gold_text!r})" for c in uncoded[:20]) + (" ..." if len(uncoded) > 20 else "")
    kept = [c for c in cases if c.coded]
    if not kept:
        raise DataError.single("cases", "gold_status", "every case's gold is unmapped (no ICD-10 code): "
                               f"structured and text modes cannot score them; use open mode ({names})")
    warnings.warn(f"{len(uncoded)} case(s) skipped: gold unmapped (no ICD-10 code), open mode only: {names}",
                  UserWarning, stacklevel=3)
    return kept


def _personas(persona: PersonaArg) -> list[Persona]:
    if persona is None:
        return load_personas()
    if isinstance(persona, Persona):
        return [persona]
    if isinstance(persona, (str, Path)):
        path = Path(persona)
        if path.exists():
            return load_personas(path)
        found = [p for p in load_personas() if p.id == str(persona)]
        if not found:
            raise DataError.single(str(persona), "", "no such persona file or bundled persona id")
        return found
    out = list(persona)
    if not out or not all(isinstance(p, Persona) for p in out):
        raise TypeError("persona= must be a path, a persona id, a Persona or a sequence of Persona objects")
    return out


def resolve_setup(
    *,
    case: CasesArg = None,
    cases: CasesArg = None,
    persona: PersonaArg = None,
    rubrics: str | Path | Sequence[RubricBank] | None = None,
    catalogue: str | Path | Catalogue | None = None,
    reward_config: RewardConfig | dict[str, Any] | None = None,
    allow_repeats: bool = False,
    budgets: Budgets | dict[str, int | None] | None = None,
    max_cycles: int = 150,
    dynamic_rubric: DynamicBank | str | Path | None = None,
    principles: bool | str | Path | Sequence[PrincipleSet] = True,
    fact_judge: Callable[..., Any] | None = None,
    interruption_share: float | None = None,
    uncoded: Literal["skip", "keep"] = "skip",
) -> EnvSetup:
    """Load and check everything an env needs (see :class:`ConsultationEnv` for the arguments).

    ``uncoded``: what to do with cases whose gold has no ICD-10 code (``gold_status: unmapped``).
    The structured and text envs score a diagnosis against a code, so they ``skip`` them with a
    warning naming each (a :class:`DataError` when no case is left); open mode ``keep``s them (an
    LLM moderator judges the doctor's words against the source's).
    """
    if max_cycles < 1:
        raise ValueError(f"max_cycles must be >= 1, got {max_cycles}")
    if interruption_share is not None and not 0.0 <= interruption_share <= 1.0:
        raise ValueError(f"interruption_share must be in [0, 1], got {interruption_share}")
    reduced = isinstance(catalogue, str) and catalogue == "cases"
    cat = catalogue if isinstance(catalogue, Catalogue) else load_catalogue(None if reduced else catalogue)
    if rubrics is None or isinstance(rubrics, (str, Path)):
        banks = load_rubric_banks(rubrics, cat)
    else:
        banks = list(rubrics)
    items = tuple(item for bank in banks for item in bank.items)
    if isinstance(budgets, dict):
        unknown = set(budgets) - {"questions", "differential", "tests"}
        if unknown:
            raise ValueError(f"unknown budget(s) {sorted(unknown)}; known: questions, differential, tests")
        budgets = Budgets(**budgets)
    dynamic = DynamicBank.load(dynamic_rubric) if isinstance(dynamic_rubric, (str, Path)) else dynamic_rubric
    if principles is True or isinstance(principles, (str, Path)):
        psets = tuple(load_principles(None if principles is True else principles, cat))
    else:
        psets = tuple(principles or ())
    labels = [f"{b.name}@v{b.version}" for b in banks] + [f"{p.name}@v{p.version}" for p in psets]
    version = "+".join(labels + ([dynamic.label] if dynamic else [])) or "none"
    config = reward_config if isinstance(reward_config, RewardConfig) else RewardConfig(**(reward_config or {}))
    chosen = _cases(case, cases, cat)
    if uncoded == "skip":
        chosen = coded_cases(chosen)
    # Structured mode's diagnosis actions: the catalogue plus the golds and differential codes of
    # the loaded cases (WHO codes outside the catalogue get a vocabulary entry), fixed per env.
    cat = with_diagnoses(cat, (code for c in chosen for code in (c.gold_diagnosis, *(d.code for d in c.differential))
                               if code))
    if reduced:
        applied = [*items, *(i for c in chosen for p in psets for i in p.items_for(c))]
        cat = reduce_catalogue(cat, chosen, applied)
        items = items_within(items, cat)
    return EnvSetup(cat, chosen, _personas(persona), items, version, config, max_cycles, dynamic,
                    psets, fact_judge, interruption_share=interruption_share, allow_repeats=allow_repeats,
                    budgets=budgets or Budgets())
