"""The Ray backend of :func:`clinic_env.competition.run_tournament` (``--backend ray``).

Each actor builds one :class:`~clinic_env.competition.tournament.EpisodePlayer` (env, doctors,
patient, examiner) from the tournament's :class:`~clinic_env.competition.tournament.PlayerSetup`,
which is put in the object store once, and keeps it warm for every batch it is handed. The driver
(:func:`run_tournament`, in the calling process) writes each record to ``results.jsonl`` as its
batch comes back, so durability, ``--resume``, the lock and the summary are the local backend's.
Records are the same as the local backend's: an episode depends on its key only.

A doctor that cannot be built fails :meth:`RayBackend.start` with the same
:class:`~clinic_env.competition.errors.DoctorSpecError` as locally, before anything is written.
Worker deaths are handled by :class:`~clinic_env.rollout_backends.ray_pool.ActorPool`: an episode
lost with its worker is played again on another actor, and one lost twice is recorded as a failed
episode (``errors`` says why). Isolated doctors are started inside each actor (one process per
doctor per actor); file and module doctor specs must be importable where the actors run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from clinic_env.competition.doctors import DoctorSpec
from clinic_env.competition.errors import DoctorSpecError, TournamentError
from clinic_env.competition.tournament import EpisodePlayer, PlannedEpisode, PlayerSetup
from clinic_env.envs.aec import ConsultationEnv
from clinic_env.envs.setup import ENV_VERSION
from clinic_env.records import EpisodeRecord
from clinic_env.rollout_backends import BackendError, require_ray
from clinic_env.rollout_backends.ray_pool import ActorPool, PoolStats, RaySession

__all__ = ["EpisodeActor", "RayBackend", "default_batch"]


class EpisodeActor:
    """What one Ray actor holds: a warm :class:`EpisodePlayer`, built once (made remote at run time,
    so this module imports no Ray)."""

    def __init__(self, setup: PlayerSetup) -> None:
        self._player: EpisodePlayer | None = None
        self._error: tuple[str, str] | None = None
        try:
            self._player = EpisodePlayer(setup)
        except (DoctorSpecError, TournamentError) as exc:  # reported by ready(), raised by the driver
            self._error = (type(exc).__name__, str(exc))

    def ready(self) -> tuple[str, str] | None:
        """None once the player is built, else (error class, message)."""
        return self._error

    def pid(self) -> int:
        """The actor's process id (tests kill it)."""
        return os.getpid()

    def play(self, items: list[PlannedEpisode]) -> list[EpisodeRecord]:
        """The records of ``items``, in order (a failing episode gives a failed record)."""
        if self._player is None:
            raise TournamentError("the player was not built")
        return [self._player.play(item) for item in items]


def default_batch(episodes: int, workers: int) -> int:
    """Episodes per remote call: about eight calls per worker, 1 to 16 episodes each (enough to
    amortise a call's ~1 ms; few enough that a dead worker loses little and the load stays even)."""
    return max(1, min(16, episodes // max(1, workers * 8)))


def _absolute(spec: DoctorSpec) -> DoctorSpec:
    """A file spec with an absolute path (actors may start elsewhere); the recorded name is kept."""
    if spec.kind != "file":
        return spec
    where, attr = spec.target.rsplit(":", 1)
    return replace(spec, target=f"{Path(where).resolve()}:{attr}")


class RayBackend:
    """Episodes spread over Ray actors that keep their env and policies warm.

    Args:
        workers: Actors to start (default: one per CPU Ray has; a local Ray gets ``workers`` CPUs).
        address: Ray cluster to join (default ``$RAY_ADDRESS``, else a local Ray).
        batch: Episodes per remote call (default :func:`default_batch`).
        depth: Calls queued per actor, so that none waits for the driver between batches.

    Attributes:
        session: The Ray session once started (``init_s``: the time ``ray.init`` took, 0 if Ray was up).
        stats: Worker deaths, retried and lost episodes of the last :meth:`play`.
    """

    name = "ray"

    def __init__(self, workers: int | None = None, address: str | None = None, batch: int | None = None,
                 depth: int = 2) -> None:
        if workers is not None and workers < 1:
            raise BackendError(f"workers must be >= 1, got {workers}")
        self.workers, self.address, self.batch, self.depth = workers, address, batch, depth
        self.session: RaySession | None = None
        self._pool: ActorPool[PlannedEpisode, EpisodeRecord] | None = None
        self._cases: Sequence[Any] = ()

    @property
    def stats(self) -> PoolStats:
        return self._pool.stats if self._pool is not None else PoolStats()

    @property
    def actors(self) -> list[Any]:
        """The live actors' handles (tests kill one mid-run)."""
        return list(self._pool.actors.values()) if self._pool is not None else []

    def start(self, setup: PlayerSetup, env: ConsultationEnv) -> None:
        """Join or start Ray, start the actors and wait until each has built its player.

        Raises:
            DoctorSpecError, TournamentError: A doctor cannot be built (as with the local backend).
            BackendError: Ray cannot start or the workers cannot.
        """
        ray = require_ray()
        self.session = RaySession(self.address, self.workers).open()
        self._cases = setup.cases
        shipped = ray.put(replace(setup, specs=tuple(_absolute(s) for s in setup.specs)))
        remote = ray.remote(num_cpus=1, max_restarts=0)(EpisodeActor)
        self._pool = ActorPool(lambda _slot: remote.remote(shipped), self.session.workers, self.depth)
        for said in self._pool.start():
            if said is not None:
                kind, message = said
                raise (DoctorSpecError if kind == "DoctorSpecError" else TournamentError)(message)

    def play(self, todo: Sequence[PlannedEpisode]) -> Iterator[EpisodeRecord]:
        """Every record of ``todo`` once, in the order the batches finish."""
        if self._pool is None or self.session is None:
            raise TournamentError("RayBackend.play before start")
        size = self.batch or default_batch(len(todo), self.session.workers)
        batches = [list(todo[i:i + size]) for i in range(0, len(todo), size)]
        yield from self._pool.run(batches, "play", self._lost)

    def _lost(self, item: PlannedEpisode, why: str) -> EpisodeRecord:
        key = item.key
        return EpisodeRecord.failed(key.case_id, key.doctor, key.seed, ENV_VERSION, RuntimeError(why),
                                    persona=key.persona, specialty=self._cases[item.case_index].specialty)

    def describe(self) -> dict[str, Any]:
        facts = self.session.describe() if self.session is not None else {}
        return {"backend": {"name": "ray", **facts, "batch": self.batch or "auto"}}

    def close(self) -> None:
        """Kill the actors; shut Ray down if this backend started it."""
        if self._pool is not None:
            self._pool.close()
        if self.session is not None:
            self.session.close()
