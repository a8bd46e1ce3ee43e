"""Competitions: durable tournaments, isolated submissions, paired statistics and the HTML report."""

from clinic_env.competition.doctors import DoctorSpec, load_doctor_spec, parse_doctor_spec
from clinic_env.competition.errors import (
    DoctorSpecError,
    EpisodesFailedError,
    RunFolderError,
    TournamentError,
)
from clinic_env.competition.tournament import EpisodeKey, TournamentResult, plan_episodes, run_tournament

__all__ = [
    "DoctorSpec",
    "DoctorSpecError",
    "EpisodeKey",
    "EpisodesFailedError",
    "RunFolderError",
    "TournamentError",
    "TournamentResult",
    "load_doctor_spec",
    "parse_doctor_spec",
    "plan_episodes",
    "run_tournament",
]
