"""Error types of competitions: each names the thing at fault so the CLI can exit with one clear line."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clinic_env.competition.tournament import TournamentResult

__all__ = ["DoctorSpecError", "EpisodesFailedError", "RunFolderError", "TournamentError"]


class TournamentError(ValueError):
    """A tournament could not start as asked (a usage error: the CLI exits with status 2)."""


class DoctorSpecError(TournamentError):
    """A ``--doctor`` spec names nothing loadable (unknown name, missing file or attribute, bad factory)."""


class RunFolderError(TournamentError):
    """The output folder cannot be used: another run holds its lock, it already holds results
    (without ``resume``), or its results do not belong to this tournament."""


class EpisodesFailedError(RuntimeError):
    """Some episodes failed (their records have ``errors``) and ``allow_failures`` was not given.

    Everything was written before this is raised; ``result`` holds the records and the summary.

    Attributes:
        result: The finished tournament.
        failures: Failure reason -> number of episodes.
    """

    def __init__(self, result: TournamentResult, failures: Mapping[str, int]) -> None:
        self.result = result
        self.failures = dict(failures)
        total = sum(self.failures.values())
        super().__init__(f"{total} episode(s) failed: " + "; ".join(f"{n} x {r}" for r, n in self.failures.items()))
