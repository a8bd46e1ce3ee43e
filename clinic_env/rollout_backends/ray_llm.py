"""Text-mode (``llm:``) rollouts over Ray: async actors sharing one server under one global limit.

:func:`play_text_ray` plays what :func:`clinic_env.rollout.arun` plays (same jobs, seeds, groups and
records: each actor runs arun's own per-episode coroutine), but spread over ``workers`` async Ray
actors. The global ``concurrency`` (episodes in flight, hence LLM calls in flight: an episode makes
one call at a time) is split across the actors, ``concurrency // workers`` each plus one for the
first ``concurrency % workers``; the driver never has more than an actor's share of episodes
queued on it, and each actor's LLM clients are bounded by the same share. So the server never sees
more than ``concurrency`` calls at once, however many actors there are. An actor keeps its envs
(one per episode it has in flight, built on demand) and its LLM clients warm between episodes.
A dead actor's episodes are played again elsewhere (:class:`~.ray_pool.ActorPool`).

:func:`play_llm_doctors_ray` is what ``clinic-env run --backend ray`` calls for its ``llm:`` doctors
(the local backend calls :func:`clinic_env.cli_llm.play_doctors`); it returns the same figures.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from clinic_env.core.engine import AGENTS
from clinic_env.envs.setup import ENV_VERSION
from clinic_env.records import EpisodeRecord
from clinic_env.rollout_async import RolloutBatch, batch_jobs, total_usage
from clinic_env.rollout_backends import BackendError, require_ray
from clinic_env.rollout_backends.ray_pool import ActorPool, RaySession
from clinic_env.schema.case import Case

__all__ = ["RayRolloutBatch", "TextEpisodeActor", "play_llm_doctors_ray", "play_text_ray", "split_concurrency"]

_LLM_PREFIXES = ("llm:", "vllm:")
_COST_MAP = "LITELLM_LOCAL_MODEL_COST_MAP"
#: A job: (position in the batch, case position, episode seed, group member).
Job = tuple[int, int, int, int]


class RayRolloutBatch(RolloutBatch):
    """A :class:`~clinic_env.rollout_async.RolloutBatch` played over Ray.

    Attributes:
        ray: Actors, each one's share of the concurrency, worker deaths, retried and lost episodes.
    """

    ray: dict[str, Any] | None = None


def split_concurrency(concurrency: int, workers: int) -> list[int]:
    """Each actor's share of the global limit: as even as possible, summing to ``concurrency``."""
    w = max(1, min(workers, concurrency))
    return [concurrency // w + (1 if k < concurrency % w else 0) for k in range(w)]


class TextEpisodeActor:
    """One async Ray actor: text-mode envs and policies for up to ``concurrency`` episodes at once.

    Made remote at run time (this module imports no Ray). Its LLM policies are built in the actor's
    event loop on the first call, their clients bounded by ``concurrency`` (its share of the global limit).
    """

    def __init__(self, cases: list[Case], env_kwargs: dict[str, Any], specs: dict[str, Any],
                 llm: dict[str, Any], concurrency: int, name: str, cost_map: str | None) -> None:
        if cost_map is not None:  # litellm must not fetch its cost map where the driver said not to
            os.environ.setdefault(_COST_MAP, cost_map)
        from clinic_env.rollout_async import _shared_kwargs

        self._cases, self._specs, self._name = cases, specs, name
        self._llm = {**llm, "concurrency": concurrency}
        self._error: str | None = None
        self._free: list[tuple[Any, dict[str, Any]]] = []
        self._shared: dict[str, Any] | None = None
        self._spare: Any = None
        try:
            self._kwargs = _shared_kwargs(cases, env_kwargs)
            self._spare = self._new_env()  # the first episode's env
            self._info = self._spare.info
        except Exception as exc:  # a bad persona or file: said by ready(), raised by the driver
            self._error = f"{type(exc).__name__}: {exc}"

    def _new_env(self) -> Any:
        from clinic_env.envs.text import TextConsultationEnv

        return TextConsultationEnv(**self._kwargs)

    async def ready(self) -> str | None:
        """None once the actor can play, else why it cannot."""
        return self._error

    def _slot(self) -> tuple[Any, dict[str, Any]]:
        """A free env with its own structured policies (LLM policies are shared by the actor)."""
        from clinic_env.rollout_async import make_agent_policy

        if self._free:
            return self._free.pop()
        if self._shared is None:
            self._shared = {a: make_agent_policy(s, a.split("_")[0], self._info, **self._llm)
                            for a, s in self._specs.items() if isinstance(s, str) and s.startswith(_LLM_PREFIXES)}
        policies = {a: self._shared[a] if a in self._shared else make_agent_policy(s, a.split("_")[0], self._info,
                                                                                   **self._llm)
                    for a, s in self._specs.items()}
        env, self._spare = self._spare or self._new_env(), None
        return env, policies

    async def play(self, jobs: list[Job]) -> list[tuple[int, EpisodeRecord]]:
        """Play each job (concurrently when several) and return (position, record) pairs."""
        import asyncio

        return list(await asyncio.gather(*(self._one(job) for job in jobs)))

    async def _one(self, job: Job) -> tuple[int, EpisodeRecord]:
        import asyncio

        from clinic_env.rollout_async import _play

        i, ci, seed, member = job
        case = self._cases[ci]
        env, policies = self._slot()
        try:
            # A task of its own, as in arun: usage tracking and the sampling offset are per task.
            record = await asyncio.create_task(_play(env, policies, case, seed, member, self._name))
        except Exception as exc:  # a broken policy must not sink the batch (arun does the same)
            record = EpisodeRecord.failed(case.id, self._name, seed, ENV_VERSION, exc,
                                          group=f"{case.id}:{seed}", group_index=member)
        finally:
            self._free.append((env, policies))
        return i, record

    async def close(self) -> None:
        """Close the LLM clients' HTTP sessions (they belong to this actor's event loop)."""
        for policy in (self._shared or {}).values():
            client = getattr(policy, "client", None)
            if client is not None:
                await client.aclose()


def play_text_ray(cases: Sequence[Case] | str | Path | None, doctor: Any = "thorough", *, patient: Any = "persona",
                  examiner: Any = "rubric", episodes_per_case: int = 1, group_size: int = 1, seed: int = 0,
                  concurrency: int = 8, workers: int | None = None, address: str | None = None,
                  env_kwargs: dict[str, Any] | None = None, api_base: str | None = None,
                  timeout: float | None = None, retries: int | None = None, doctor_name: str | None = None,
                  on_episode: Callable[[EpisodeRecord], None] | None = None) -> RayRolloutBatch:
    """:func:`clinic_env.rollout.arun` over Ray actors: the same records (``wall_s`` and latencies
    aside), with at most ``concurrency`` episodes in flight over all actors together.

    Args:
        workers: Actors (default: one per CPU Ray has; never more than ``concurrency``).
        address: Ray cluster (default ``$RAY_ADDRESS``, else a local Ray); a Ray already up is used.
        Others: as :func:`clinic_env.rollout.arun`.

    Returns:
        The records in job order, with ``wall_s``, ``usage``, ``spec_decode`` and ``ray`` (actors,
        concurrency shares, worker deaths).

    Raises:
        ValueError: Bad counts, or an actor could not build its env (bad persona, files).
        BackendError: Ray missing, unreachable, or its workers could not start.
    """
    from clinic_env.llm.metrics import SpecDecodeCounters, read_spec_metrics
    from clinic_env.schema.loading import load_cases

    if concurrency < 1 or group_size < 1 or episodes_per_case < 1:
        raise ValueError("concurrency, group_size and episodes_per_case must be >= 1")
    library = load_cases(cases) if cases is None or isinstance(cases, (str, Path)) else list(cases)
    specs = {AGENTS[0]: doctor, AGENTS[1]: patient, AGENTS[2]: examiner}
    name = str(doctor_name or (doctor if isinstance(doctor, str) else getattr(doctor, "model", type(doctor).__name__)))
    llm = {"api_base": api_base, "timeout": timeout, "retries": retries}
    uses_llm = any(isinstance(s, str) and s.startswith(_LLM_PREFIXES) for s in specs.values())
    url = api_base if uses_llm else None
    jobs = batch_jobs(len(library), episodes_per_case, group_size, seed)
    ray = require_ray()
    with RaySession(address, workers) as session:
        shares = split_concurrency(concurrency, min(session.workers, len(jobs)))
        remote = ray.remote(num_cpus=1, max_restarts=0)(TextEpisodeActor)
        shipped = ray.put(library)
        cost_map = os.environ.get(_COST_MAP)
        pool: ActorPool[Job, tuple[int, EpisodeRecord]] = ActorPool(
            lambda slot: remote.remote(shipped, dict(env_kwargs or {}), specs, llm, shares[slot], name, cost_map),
            len(shares), depth=shares)
        try:
            said = [s for s in pool.start() if s is not None]
            if said:
                raise ValueError(said[0])
            before = read_spec_metrics(url) if url else SpecDecodeCounters()
            start = time.perf_counter()

            def lost(job: Job, why: str) -> tuple[int, EpisodeRecord]:
                case = library[job[1]]
                return job[0], EpisodeRecord.failed(case.id, name, job[2], ENV_VERSION, RuntimeError(why),
                                                    group=f"{case.id}:{job[2]}", group_index=job[3])

            results: list[EpisodeRecord | None] = [None] * len(jobs)
            for i, record in pool.run([[job] for job in jobs], "play", lost):
                results[i] = record
                if on_episode is not None:
                    on_episode(record)
            wall = time.perf_counter() - start
        finally:
            _close_actors(pool)
    batch = RayRolloutBatch(r for r in results if r is not None)
    batch.wall_s = wall
    batch.usage = total_usage(batch).as_dict()
    if url:
        delta = read_spec_metrics(url) - before
        batch.spec_decode = delta.as_dict() if delta.present else None
    batch.ray = {"workers": len(shares), "concurrency_shares": shares, **pool.stats.as_dict()}
    return batch


def _close_actors(pool: ActorPool[Any, Any]) -> None:
    """Let each actor close its HTTP sessions (a few seconds at most), then kill them all."""
    ray = require_ray()
    refs = [actor.close.remote() for actor in pool.actors.values()]
    if refs:
        ray.wait(refs, num_returns=len(refs), timeout=5.0)
    pool.close()


def play_llm_doctors_ray(cases: Sequence[Case], doctors: Sequence[str], episodes_per_case: int, seed: int,
                         env_kwargs: dict[str, Any], api_base: str | None = None, concurrency: int = 8,
                         timeout: float = 60.0, *, workers: int | None = None, address: str | None = None,
                         on_episode: Callable[[EpisodeRecord], None] | None = None,
                         ) -> tuple[list[EpisodeRecord], dict[str, Any]]:
    """``clinic-env run --backend ray``'s ``llm:`` doctors: each played by :func:`play_text_ray`.
    Returns the records and, per doctor, what :func:`clinic_env.cli_llm.play_doctors` reports
    (usage, wall time, spec-decoding figures) plus the Ray figures."""
    records: list[EpisodeRecord] = []
    extra: dict[str, Any] = {}
    for doctor in doctors:
        if not doctor.startswith(_LLM_PREFIXES):
            raise BackendError(f"play_llm_doctors_ray plays llm:/vllm: doctors only, not {doctor!r}")
        batch = play_text_ray(cases, doctor, episodes_per_case=episodes_per_case, seed=seed, concurrency=concurrency,
                              workers=workers, address=address, env_kwargs=env_kwargs, api_base=api_base,
                              timeout=timeout, on_episode=on_episode)
        records.extend(batch)
        extra.setdefault("llm", {})[doctor] = {
            "api_base": api_base, "concurrency": concurrency, "timeout": timeout, "wall_s": round(batch.wall_s, 3),
            "usage": batch.usage, "spec_decode": batch.spec_decode, "backend": {"name": "ray", **(batch.ray or {})},
            "llm_errors": sum(1 for r in batch if r.get("end_reason") == "llm_error")}
    return records, extra
