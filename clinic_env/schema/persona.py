"""The persona model: how a simulated patient talks and how noisy its answers are."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Interruption", "Noise", "Persona", "Phrases"]

Rate = float


class Noise(BaseModel):
    """Rates in [0, 1] of the patient's answer distortions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vague: float = Field(default=0.0, ge=0, le=1, description="Answers without the detail.")
    withholding: float = Field(default=0.0, ge=0, le=1, description="Withholds sensitive items.")
    contradiction: float = Field(default=0.0, ge=0, le=1, description="Uses the scripted contradiction.")
    tangential: float = Field(default=0.0, ge=0, le=1, description="Adds off-topic talk.")


class Interruption(BaseModel):
    """Baichuan-M3's interruption mode: anxious questions shown to the doctor only."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate: float = Field(default=0.0, ge=0, le=1)
    questions: tuple[str, ...] = ()


class Phrases(BaseModel):
    """The persona's own wording for vague, withheld and tangential answers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vague: tuple[str, ...] = ("I'm not sure, really.",)
    withhold: tuple[str, ...] = ("I'd rather not talk about that.",)
    tangents: tuple[str, ...] = ()


class Persona(BaseModel):
    """A patient persona (docs/DATA_FORMAT.md §3)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str = Field(min_length=2)
    description: str = ""
    age_band: Literal["child_proxy", "adolescent", "young_adult", "adult", "older_adult"] = "adult"
    literacy: Literal["low", "medium", "high"] = "medium"
    language_register: Literal["plain", "colloquial", "formal", "technical"] = Field(
        default="plain", alias="register", description="Language register (YAML key `register`)."
    )
    verbosity: float = Field(default=0.5, ge=0, le=1)
    anxiety: float = Field(default=0.3, ge=0, le=1)
    trust: float = Field(default=0.7, ge=0, le=1)
    patience: int | None = Field(default=None, ge=1, description="Cycles before leaving; None = never.")
    noise: Noise = Noise()
    interruption: Interruption = Interruption()
    phrases: Phrases = Phrases()


COOPERATIVE = Persona(id="cooperative", name="Cooperative", description="Answers every question plainly.")
