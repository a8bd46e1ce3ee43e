"""Simulated patients: persona speech, the leak guard, disclosure tracking and simulation quality.

- :mod:`~clinic_env.patients.vocabulary`: lay words by health literacy.
- :mod:`~clinic_env.patients.wording`: seeded varied wording, anxious asides, the interruption share.
- :mod:`~clinic_env.patients.question_types`: each history item's question type; vague answers that fit it.
- :mod:`~clinic_env.patients.speaker`: which generic lines fit the patient's age, sex and informant.
- :mod:`~clinic_env.patients.answers`: generic answers (vague, withheld, default) fitted to both.
- :mod:`~clinic_env.patients.leak_guard`: :class:`LeakGuard`, which every patient text passes.
- :mod:`~clinic_env.patients.session`: the per-episode bookkeeping the engine calls.
- :mod:`~clinic_env.patients.metrics`: fact, privacy and persona-consistency scores per episode.
"""

from __future__ import annotations

from clinic_env.patients.leak_guard import GuardResult, LeakGuard
from clinic_env.patients.metrics import SimulationQuality, episode_quality, simulation_quality
from clinic_env.patients.session import PatientSession, interruption_rate, is_direct
from clinic_env.patients.vocabulary import jargon, lay_text
from clinic_env.patients.wording import DEFAULT_INTERRUPTION_SHARE, vary_answer

__all__ = [
    "DEFAULT_INTERRUPTION_SHARE", "GuardResult", "LeakGuard", "PatientSession", "SimulationQuality",
    "episode_quality", "interruption_rate", "is_direct", "jargon", "lay_text", "simulation_quality",
    "vary_answer",
]
