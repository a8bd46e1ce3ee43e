"""Validated data model: catalogues, cases, personas and rubric items (pydantic v2)."""

from clinic_env.schema.case import Case, Demographics, DifferentialEntry, Fact, Finding
from clinic_env.schema.catalogue import Catalogue, Diagnosis, HistoryItem, Presentation, TestItem
from clinic_env.schema.errors import DataError, Problem
from clinic_env.schema.loading import (
    load_cases,
    load_catalogue,
    load_personas,
    load_rubric_banks,
)
from clinic_env.schema.persona import Persona
from clinic_env.schema.rubric import Check, RubricBank, RubricItem

__all__ = [
    "Case", "Catalogue", "Check", "DataError", "Demographics", "Diagnosis", "DifferentialEntry",
    "Fact", "Finding", "HistoryItem", "Persona", "Presentation", "Problem", "RubricBank",
    "RubricItem", "TestItem", "load_cases", "load_catalogue", "load_personas", "load_rubric_banks",
]
