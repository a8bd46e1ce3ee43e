"""Shared fixtures. Tests run offline: litellm must not fetch its cost map."""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import pytest

import clinic_env


@pytest.fixture(scope="session")
def catalogue() -> clinic_env.Catalogue:
    return clinic_env.load_catalogue()


@pytest.fixture(scope="session")
def cases() -> list[clinic_env.Case]:
    return clinic_env.load_cases()


@pytest.fixture(scope="session")
def small_cases(cases: list[clinic_env.Case]) -> list[clinic_env.Case]:
    """A handful of cases from different specialties, for tests that build many envs."""
    seen: dict[str, clinic_env.Case] = {}
    for case in cases:
        seen.setdefault(case.specialty, case)
    return list(seen.values())[:6]
