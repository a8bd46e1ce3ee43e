"""Durable, paired tournaments: :func:`run_tournament` (``clinic-env tournament`` and ``clinic-env run``).

**Paired design.** Every doctor plays the same episodes. An episode's key is
``(doctor, case_id, persona, seed)``: case ``i``'s repeat ``r`` gets the seed
:func:`~clinic_env.rollout.episode_seed` ``(seed, i, r)`` and the persona :func:`draw_persona` draws
with that seed, the same for every doctor, so they meet the same patient, persona and noise.

**Deterministic per key.** An episode depends on its key only: the env is reset with the key's seed
and ``options={"case_id", "persona_id"}``, and each policy is reset with ``seed + 1`` (doctor),
``+ 2`` (patient), ``+ 3`` (examiner) before it, whatever was played before. So a run killed at any
point and resumed gives the records an uninterrupted run gives.

**Durability.** Each finished episode's record is appended to ``OUT/results.jsonl`` at once as one
whole-line write (:class:`~clinic_env.competition.store.ResultsFile`; fsync at least every 2 s and
at the end). ``resume=True`` reads the file back (a torn last line is cut away), skips the keys it
holds and plays the rest: the final file has exactly one record per key. Without ``resume`` a folder
that holds results is refused; a lock on ``OUT/.lock`` refuses a second run on the same folder.
``OUT/summary.json`` is written (atomically) when the run starts, when it is interrupted and when it
ends: versions, git commit, arguments, the case set's hash, the seeds, counts, failures, the
leaderboard and, where :mod:`clinic_env.competition.stats` is installed, its statistics.

**Failures and forfeits.** An exception while playing (an in-process policy that raises, the env,
the isolation harness) fails the episode: its record has ``errors`` and ``end_reason="error"``, and
:func:`run_tournament` raises :class:`EpisodesFailedError` at the end unless ``allow_failures``. An
isolated doctor's failed move (crash, hang, invalid reply) is a penalised no-op listed in the record's
``policy_failures``; after repeated failures the doctor *forfeits* the episode: it is no longer
asked, every remaining move of its is a penalised no-op until the env ends the episode by its own
rules (so forfeiting never scores better than playing on), and the record gets
``end_reason="forfeit"`` and the flag ``forfeit``. A forfeit is the doctor's outcome, scored like any
other episode, not a failure of the run: it does not change the exit status.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from clinic_env.competition.doctors import DoctorSpec, load_doctor_spec, parse_doctor_spec
from clinic_env.competition.errors import (
    DoctorSpecError,
    EpisodesFailedError,
    RunFolderError,
    TournamentError,
)
from clinic_env.competition.store import (
    RESULTS,
    SUMMARY,
    ResultsFile,
    RunLock,
    read_results,
    write_json_atomic,
)
from clinic_env.competition.summary import build_summary, jsonable
from clinic_env.core.actions import WAIT
from clinic_env.core.engine import AGENTS, DOCTOR
from clinic_env.envs.aec import ConsultationEnv
from clinic_env.envs.setup import ENV_VERSION, EnvInfo
from clinic_env.policies import Policy, make_policy
from clinic_env.records import EpisodeRecord
from clinic_env.rollout import episode_record, episode_seed
from clinic_env.schema.case import Case

__all__ = [
    "FORFEITED_MOVE", "EpisodeKey", "PlannedEpisode", "TournamentResult", "case_set_hash", "draw_persona",
    "key_of", "plan_episodes", "run_tournament",
]

#: What a forfeited doctor plays: outside every mask, so a penalised no-op.
FORFEITED_MOVE = -1
_DOCTOR = AGENTS[DOCTOR]


@dataclass(frozen=True, order=True)
class EpisodeKey:
    """What identifies an episode of a tournament: one record per key."""

    doctor: str
    case_id: str
    persona: str
    seed: int


@dataclass(frozen=True)
class PlannedEpisode:
    """An episode to play: its key and where its seed came from (case position, repeat)."""

    key: EpisodeKey
    case_index: int
    repeat: int


def key_of(record: EpisodeRecord) -> EpisodeKey:
    """The key of a record (``persona`` is ``""`` on a record that has none)."""
    return EpisodeKey(record.doctor, record.case_id, record.persona or "", record.seed)


def draw_persona(seed: int, personas: Sequence[str]) -> str:
    """The persona of an episode seed: the one the env itself would draw first from that seed, so
    runs that leave the persona to the env meet the same personas."""
    if not personas:
        raise TournamentError("the env has no personas to draw from")
    return personas[int(np.random.default_rng(seed).integers(len(personas)))]


def plan_episodes(doctors: Sequence[str], case_ids: Sequence[str], personas: Sequence[str], *,
                  episodes_per_case: int = 1, seed: int = 0) -> list[PlannedEpisode]:
    """Every episode of a tournament, case by case and repeat by repeat, all doctors together (so a
    run stopped early still has paired episodes).

    Args:
        doctors: Doctor names.
        case_ids: The cases' ids, in order (a case's position feeds its seeds).
        personas: Persona ids to draw from.
        episodes_per_case: Repeats per case and doctor.
        seed: Run seed.
    """
    plan: list[PlannedEpisode] = []
    for ci, case_id in enumerate(case_ids):
        for repeat in range(episodes_per_case):
            s = episode_seed(seed, ci, repeat)
            persona = draw_persona(s, personas)
            plan.extend(PlannedEpisode(EpisodeKey(d, case_id, persona, s), ci, repeat) for d in doctors)
    return plan


def case_set_hash(cases: Sequence[Case]) -> str:
    """sha256 of the cases' canonical JSON (sorted keys, compact, in order: the order feeds the seeds)."""
    data = [case.model_dump(mode="json", exclude_none=True) for case in cases]
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class TournamentResult:
    """A finished (or interrupted) tournament.

    Attributes:
        out: The run folder.
        records: One record per finished key, in plan order (earlier runs' records included).
        played: Episodes played by this call.
        resumed: Records found in ``results.jsonl`` and kept.
        summary: What ``summary.json`` holds.
    """

    out: Path
    records: list[EpisodeRecord]
    played: int
    resumed: int
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def failures(self) -> dict[str, int]:
        """Failure reason (the first error of a failed episode) -> number of episodes."""
        return dict(Counter(r.errors[0][:200] for r in self.records if r.errors))

    @property
    def forfeits(self) -> dict[str, int]:
        """Doctor -> episodes it forfeited."""
        return dict(Counter(r.doctor for r in self.records if r.end_reason == "forfeit"))


class _Doctors:
    """The doctors' policies: in-process ones built once, isolated ones each in their own process."""

    def __init__(self, specs: Sequence[DoctorSpec], env: ConsultationEnv, isolated: Mapping[str, bool],
                 move_timeout_s: float, memory_mb: int) -> None:
        self.policies: dict[str, Policy] = {}
        try:
            for spec in specs:
                if isolated[spec.name]:
                    self.policies[spec.name] = _isolated(spec, env.info, move_timeout_s, memory_mb)
                else:
                    self.policies[spec.name] = _in_process(spec, env)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for policy in self.policies.values():
            close = getattr(policy, "close", None)
            if callable(close):
                close()


def _in_process(spec: DoctorSpec, env: ConsultationEnv) -> Policy:
    factory = load_doctor_spec(spec)
    try:
        return factory(env.info, None)
    except DoctorSpecError:
        raise
    except Exception as exc:
        raise DoctorSpecError(f"doctor {spec.name!r}: building it failed: {type(exc).__name__}: {exc}") from exc


def _isolated(spec: DoctorSpec, info: EnvInfo, move_timeout_s: float, memory_mb: int) -> Policy:
    try:
        from clinic_env.competition.isolation import IsolatedPolicy
    except ImportError as exc:
        raise TournamentError(f"doctor {spec.name!r} is to run isolated, but isolation is not available "
                              f"({exc}); pass --no-isolate to run it in this process") from exc
    # The child gets the public description of the action table and observation layout, no case.
    policy: Policy = IsolatedPolicy(spec.target, info, move_timeout_s=move_timeout_s, memory_mb=memory_mb)
    return policy


def play_key(env: ConsultationEnv, doctor: Policy, others: Mapping[str, Policy], key: EpisodeKey) -> EpisodeRecord:
    """Play the episode of ``key`` with ``doctor`` against ``others`` (patient and examiner).

    The env and every policy are reset from the key's seed, so the record depends on the key only.
    An isolated doctor's failed moves go into ``policy_failures``; once it has forfeited, its moves
    are :data:`FORFEITED_MOVE` until the env ends the episode.
    """
    env.reset(seed=key.seed, options={"case_id": key.case_id, "persona_id": key.persona})
    policies = {_DOCTOR: doctor, **{a: others[a] for a in AGENTS[1:]}}
    for offset, agent in enumerate(AGENTS):
        policies[agent].reset(key.seed + offset + 1)
    failures_before = len(getattr(doctor, "failures", ()))
    totals = dict.fromkeys(AGENTS, 0.0)
    forfeited = False
    for agent in env.agent_iter():
        obs, reward, terminated, truncated, _ = env.last()
        totals[agent] += reward
        if terminated or truncated:
            env.step(None)
            continue
        mask = obs["action_mask"]
        if mask[WAIT] and mask.sum() == 1:
            env.step(WAIT)
        elif agent == _DOCTOR and forfeited:
            env.step(FORFEITED_MOVE)
        else:
            env.step(policies[agent].act(obs, agent))
            forfeited = agent == _DOCTOR and bool(getattr(doctor, "forfeited", False))
    record = episode_record(env, key.seed, key.doctor, totals, [])
    failures = [str(f) for f in list(getattr(doctor, "failures", ()))[failures_before:]]
    if failures:
        record.policy_failures = failures
    if forfeited:
        record.update(end_reason="forfeit", flags=[*record.flags, "forfeit"])
    return record


def run_tournament(
    doctors: Sequence[str | DoctorSpec],
    cases: Sequence[Case],
    *,
    out: str | Path,
    episodes_per_case: int = 1,
    seed: int = 0,
    resume: bool = False,
    allow_failures: bool = False,
    env_kwargs: Mapping[str, Any] | None = None,
    isolate: bool | None = None,
    move_timeout_s: float = 5.0,
    memory_mb: int = 1024,
    on_start: Callable[[int, int], None] | None = None,
    on_episode: Callable[[EpisodeRecord], None] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> TournamentResult:
    """Play every case with every doctor (paired), durably, into the run folder ``out``.

    Args:
        doctors: Doctor specs (see :mod:`clinic_env.competition.doctors`): built-in or plugin names,
            ``module:attr``, ``path/to/file.py:Name``, each optionally ``LABEL=SPEC``.
        cases: The cases, in order (a case's position feeds its seeds). Ids must be unique.
        out: The run folder (created if missing).
        episodes_per_case: Repeats per case and doctor (>= 1).
        seed: Run seed: every episode's seed and persona derive from it.
        resume: Continue the run already in ``out``: keep its records, play the missing keys.
        allow_failures: Return normally even when episodes failed (else :class:`EpisodesFailedError`).
        env_kwargs: Extra :class:`ConsultationEnv` arguments (``persona``, ``max_cycles``, ...).
        isolate: Run doctors in their own processes (:mod:`clinic_env.competition.isolation`):
            None (default) isolates every doctor that is not a built-in; True or False forces it.
        move_timeout_s: Isolated doctors: seconds per move before it is forfeited.
        memory_mb: Isolated doctors: memory limit of each policy process.
        on_start: Called once before playing with (episodes planned, episodes already done).
        on_episode: Called with each record once it is written.
        metadata: Extra JSON-able facts for ``summary.json`` (the CLI passes its command line).

    Returns:
        The records (one per key, plan order), counts and the summary.

    Raises:
        DoctorSpecError: A doctor spec names nothing loadable, or its policy cannot be built.
        RunFolderError: ``out`` is locked by another run, holds results and ``resume`` is False, or
            holds results of another tournament.
        TournamentError: Other bad arguments (duplicate doctor names or case ids, ``episodes_per_case`` < 1).
        EpisodesFailedError: Episodes failed and ``allow_failures`` is False (raised after writing).
    """
    start = time.perf_counter()
    specs = [d if isinstance(d, DoctorSpec) else parse_doctor_spec(d) for d in doctors]
    names = [s.name for s in specs]
    _check_unique("doctor name", names)
    _check_unique("case id", [c.id for c in cases])
    if episodes_per_case < 1:
        raise TournamentError(f"episodes_per_case must be >= 1, got {episodes_per_case}")
    if not specs or not cases:
        raise TournamentError("a tournament needs at least one doctor and one case")
    kwargs = dict(env_kwargs or {})
    env = ConsultationEnv(cases=list(cases), **kwargs)
    personas = [p.id for p in env.setup.personas]
    plan = plan_episodes(names, [c.id for c in cases], personas, episodes_per_case=episodes_per_case, seed=seed)
    identity = {"doctors": [[s.name, s.kind, s.target] for s in specs], "case_set_sha256": case_set_hash(cases),
                "seed": seed, "episodes_per_case": episodes_per_case, "personas": personas,
                "env_kwargs": jsonable(kwargs), "env_version": ENV_VERSION}
    arguments = {"doctors": [s.text for s in specs], "cases": len(cases),
                 "out": str(out), "episodes_per_case": episodes_per_case, "seed": seed, "resume": resume,
                 "allow_failures": allow_failures, "env_kwargs": jsonable(kwargs), "isolate": isolate,
                 "move_timeout_s": move_timeout_s, "memory_mb": memory_mb, **dict(metadata or {})}
    # None isolates what clinic_env did not ship: plugins and submitted files run in their own processes.
    isolated = {s.name: (not s.builtin) if isolate is None else isolate for s in specs}
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    with RunLock(folder):
        previous, torn = _previous(folder, resume, identity, {p.key for p in plan})
        done = {key_of(r): r for r in previous}
        todo = [p for p in plan if p.key not in done]
        fresh: dict[EpisodeKey, EpisodeRecord] = {}

        def summary(status: str) -> dict[str, Any]:
            records = [r for p in plan if (r := done.get(p.key) or fresh.get(p.key)) is not None]
            return build_summary(
                status=status, arguments=arguments, identity=identity, plan=plan, cases=cases, env=env,
                isolated=isolated,
                records=records, counts={"planned": len(plan), "done": len(records), "resumed": len(done),
                                         "played": len(fresh), "torn_bytes_removed": torn},
                wall_s=time.perf_counter() - start)

        # Built before anything is written: a doctor that cannot start leaves the folder as it was.
        runners = _Doctors(specs, env, isolated, move_timeout_s, memory_mb)
        others = {AGENTS[1]: make_policy("persona", env.info), AGENTS[2]: make_policy("rubric", env.info)}
        try:
            write_json_atomic(folder / SUMMARY, summary("running"))
            if on_start is not None:
                on_start(len(plan), len(done))
            with ResultsFile(folder / RESULTS) as sink:
                for item in todo:
                    record = _play_safely(env, runners.policies[item.key.doctor], others, item, cases)
                    sink.append(record.to_json())
                    fresh[item.key] = record
                    if on_episode is not None:
                        on_episode(record)
        except BaseException:
            write_json_atomic(folder / SUMMARY, summary("interrupted"))
            raise
        finally:
            runners.close()
        final = summary("complete")
        write_json_atomic(folder / SUMMARY, final)
    records = [r for p in plan if (r := done.get(p.key) or fresh.get(p.key)) is not None]
    result = TournamentResult(folder, records, played=len(fresh), resumed=len(done), summary=final)
    if result.failures and not allow_failures:
        raise EpisodesFailedError(result, result.failures)
    return result


def _check_unique(what: str, values: Sequence[str]) -> None:
    repeated = sorted(v for v, n in Counter(values).items() if n > 1)
    if repeated:
        raise TournamentError(f"each {what} must be unique; repeated: {', '.join(repeated)} "
                              "(label doctors with LABEL=SPEC)")


def _previous(folder: Path, resume: bool, identity: dict[str, Any], keys: set[EpisodeKey]) -> tuple[list[EpisodeRecord], int]:
    """The records a resumed run keeps (and the torn bytes cut away); refuses a folder that is not
    this tournament's or, without ``resume``, any folder that holds results."""
    results, summary_path = folder / RESULTS, folder / SUMMARY
    held = (results.exists() and results.stat().st_size > 0) or summary_path.exists()
    if not resume:
        if held:
            raise RunFolderError(f"{folder} already holds a run ({RESULTS} or {SUMMARY}); pass --resume to "
                                 "continue it, or give another --out")
        return [], 0
    if summary_path.exists():
        try:
            before = json.loads(summary_path.read_text(encoding="utf-8")).get("plan", {})
        except (OSError, ValueError) as exc:
            raise RunFolderError(f"{summary_path}: unreadable ({exc})") from None
        differ = sorted(k for k in identity if jsonable(before.get(k)) != identity[k])
        if differ:
            raise RunFolderError(f"{folder} holds another tournament: {', '.join(differ)} differ from this one's; "
                                 "resume with the same arguments or give another --out")
    records, torn = read_results(results)
    seen: set[EpisodeKey] = set()
    for number, record in enumerate(records, start=1):
        key = key_of(record)
        if key not in keys:
            raise RunFolderError(f"{results}: record {number} ({key}) is not an episode of this tournament")
        if key in seen:
            raise RunFolderError(f"{results}: record {number} repeats {key}")
        seen.add(key)
    return records, torn


def _play_safely(env: ConsultationEnv, doctor: Policy, others: Mapping[str, Policy], item: PlannedEpisode,
                 cases: Sequence[Case]) -> EpisodeRecord:
    key = item.key
    try:
        return play_key(env, doctor, others, key)
    except Exception as exc:  # one broken episode must not sink the tournament: it is recorded as failed
        return EpisodeRecord.failed(key.case_id, key.doctor, key.seed, ENV_VERSION, exc, persona=key.persona,
                                    specialty=cases[item.case_index].specialty)
