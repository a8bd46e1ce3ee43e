"""Rollouts: play episodes with pluggable policies and write message-level episode records."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from clinic_env.core.actions import WAIT
from clinic_env.core.engine import AGENTS, DOCTOR
from clinic_env.envs.aec import ConsultationEnv
from clinic_env.envs.setup import ENV_VERSION
from clinic_env.patients.metrics import episode_quality
from clinic_env.policies import Policy, make_policy
from clinic_env.records import EpisodeRecord, Turn, dump_records, totals_from
from clinic_env.rewards.facts import Claim
from clinic_env.rewards.rubric import score_rubric
from clinic_env.schema.case import Case
from clinic_env.schema.icd10 import EDITION as ICD10_EDITION

__all__ = ["episode_seed", "group", "next_decision", "play_episode", "run_batch", "write_records"]


def episode_seed(seed: int, case_index: int, episode: int) -> int:
    """A stable per-episode seed derived from the run seed, the case's position and the repeat."""
    return int(np.random.SeedSequence((seed, case_index, episode)).generate_state(1)[0])


def play_episode(
    env: ConsultationEnv,
    policies: dict[str, Policy],
    seed: int,
    options: dict[str, Any] | None = None,
    doctor_name: str = "doctor",
    policy_seeds: dict[str, int] | None = None,
) -> EpisodeRecord:
    """Play one episode of an AEC env and return its record (DESIGN.md §5).

    Args:
        env: A :class:`ConsultationEnv` (unwrapped).
        policies: One policy per agent name.
        seed: Seeds the env (case, persona, patient noise) and, offset per agent, the policies.
        options: Passed to ``reset`` (``case_id``, ``persona_id``).
        doctor_name: Recorded as the doctor's name.
        policy_seeds: Per-agent policy seeds (default ``seed + 1``, ``+ 2``, ``+ 3``).

    Returns:
        The episode record: ids, versions, every non-wait turn, totals and any errors.
    """
    env.reset(seed=seed, options=options)
    for offset, agent in enumerate(AGENTS):
        policies[agent].reset((policy_seeds or {}).get(agent, seed + offset + 1))
    totals = dict.fromkeys(AGENTS, 0.0)
    while (turn := next_decision(env, totals)) is not None:
        agent, obs = turn
        env.step(policies[agent].act(obs, agent))
    return episode_record(env, seed, doctor_name, totals, [])


def next_decision(env: ConsultationEnv, totals: dict[str, float]) -> tuple[str, dict[str, Any]] | None:
    """Play an AEC env's forced moves (a finished agent's ``None``, ``wait`` when it is the only
    legal action) until an agent has a real choice, adding each agent's rewards to ``totals``.

    Returns:
        That agent and its observation, or None once the episode is over. Every loop that plays
        the env (rollouts, tournaments, the teaching session) goes through here.
    """
    while env.agents:
        agent = env.agent_selection
        obs, reward, terminated, truncated, _ = env.last()
        totals[agent] += reward
        if terminated or truncated:
            env.step(None)
            continue
        mask = obs["action_mask"]
        if mask[WAIT] and mask.sum() == 1:
            env.step(WAIT)
            continue
        return agent, obs
    return None


def episode_record(env: ConsultationEnv, seed: int, doctor_name: str, totals: dict[str, float],
                   errors: list[str]) -> EpisodeRecord:
    """The typed record of the episode ``env`` just finished."""
    eng = env.engine
    case = eng.case
    assert case is not None
    report = score_rubric(eng.rubric, eng.verdicts)
    doctor_turns = sum(1 for t in eng.turns if t["agent"] == AGENTS[DOCTOR])
    scores = {**eng.segment_scores, "rubric": eng.segment_scores.get("rubric", report.score)}
    claims = [c for c in eng.claims if isinstance(c, Claim)]
    return EpisodeRecord(
        case_id=case.id, specialty=case.specialty, persona=eng.persona.id, seed=seed, doctor=doctor_name,
        env_version=ENV_VERSION, rubric_version=env.setup.rubric_version,
        catalogue=env.setup.catalogue.fingerprint(), icd10_edition=ICD10_EDITION,
        turns=[Turn.model_validate(t) for t in eng.turns],
        totals=totals_from(totals[AGENTS[DOCTOR]], scores),
        evidence=eng.segment_scores.get("evidence"),
        flags=list(eng.flags),
        rubric_counts=report.counts, rubric_per_tag=report.per_tag,
        dynamic_met=list(eng.dynamic_met),
        claims=[{"text": c.text, "verdict": c.verdict, "item": c.item} for c in claims],
        hallucination_rate=(sum(c.verdict == "refuted" for c in claims) / len(claims)) if claims else 0.0,
        cost_usd=eng.cost, doctor_turns=doctor_turns, cycles=eng.cycle, questions=len(eng.asked),
        tests_ordered=list(eng.ordered), order_cycles=dict(eng.order_cycle), differential=list(eng.differential),
        final_diagnosis=eng.final_dx, gold_diagnosis=case.gold_diagnosis,
        terminated=eng.terminated, truncated=eng.truncated, end_reason=eng.end_reason,
        disclosed=dict(eng.patient.disclosed), guard_blocks=list(eng.patient.blocks),
        patient_quality=episode_quality(eng).as_dict(), errors=errors,
    )


def run_batch(
    cases: Sequence[Case],
    doctors: Sequence[str],
    episodes_per_case: int = 1,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    on_episode: Callable[[EpisodeRecord], None] | None = None,
) -> list[EpisodeRecord]:
    """Play every case with every doctor against the default patient and examiner.

    Each (case, repeat) gets one seed shared by all doctors, so the doctors meet the same persona
    and the same patient noise: their scores are paired. A policy that raises is recorded in the
    episode's ``errors`` and the batch goes on.

    Args:
        cases: The cases to play.
        doctors: Doctor policy names (see :func:`clinic_env.policies.make_policy`).
        episodes_per_case: Repeats per case and doctor.
        seed: Run seed.
        env_kwargs: Extra arguments for :class:`ConsultationEnv` (persona, max_cycles, ...).
        on_episode: Called with each record as it finishes (progress bars, streaming writes).
    """
    env = ConsultationEnv(cases=list(cases), **(env_kwargs or {}))
    records: list[EpisodeRecord] = []
    for name in doctors:
        policies: dict[str, Policy] = {
            AGENTS[0]: make_policy(name, env.info),
            AGENTS[1]: make_policy("persona", env.info),
            AGENTS[2]: make_policy("rubric", env.info),
        }
        for ci, case in enumerate(cases):
            if not case.coded:  # uncoded gold: open mode only (the env skipped it, with a warning)
                continue
            for ep in range(episodes_per_case):
                s = episode_seed(seed, ci, ep)
                try:
                    record = play_episode(env, policies, s, {"case_id": case.id}, doctor_name=name)
                except Exception as exc:  # a broken policy must not sink the batch
                    record = EpisodeRecord.failed(case.id, name, s, ENV_VERSION, exc)
                records.append(record)
                if on_episode is not None:
                    on_episode(record)
    return records


def group(
    env_fn: Callable[[], Any],
    policy: Policy | str,
    case: Case | str,
    seed: int,
    G: int,
    patient: Policy | str = "persona",
    examiner: Policy | str = "rubric",
    policy_seed: int = 0,
) -> list[EpisodeRecord]:
    """Run G episodes of the same case and env seed, varying only the doctor's sampling seed.

    The env seed fixes the persona and the patient's noise draws, so the group's rewards differ
    only through the doctor's choices: the baseline GRPO and SPAR need (see
    :mod:`clinic_env.rewards.spar`).

    Args:
        env_fn: Builds the AEC env (``clinic_env.env``, ``clinic_env.raw_env`` or a partial).
        policy: The doctor policy, or a name for :func:`clinic_env.policies.make_policy`.
        case: The case (or its id); it must be among the env's cases.
        seed: Env seed shared by the group.
        G: Group size (>= 1).
        patient: Patient policy or name.
        examiner: Examiner policy or name.
        policy_seed: The doctor's sampling seed of the first rollout; rollout g uses ``policy_seed + g``.

    Returns:
        G episode records, each with ``group_index`` and ``policy_seed``.
    """
    if G < 1:
        raise ValueError(f"G must be >= 1, got {G}")
    env = env_fn()
    raw = getattr(env, "unwrapped", env)
    case_id = case if isinstance(case, str) else case.id

    def build(p: Policy | str) -> Policy:
        return make_policy(p, raw.info) if isinstance(p, str) else p

    policies = {AGENTS[0]: build(policy), AGENTS[1]: build(patient), AGENTS[2]: build(examiner)}
    name = policy if isinstance(policy, str) else type(policy).__name__
    records = []
    for g in range(G):
        seeds = {AGENTS[0]: policy_seed + g, AGENTS[1]: seed + 2, AGENTS[2]: seed + 3}
        record = play_episode(raw, policies, seed, {"case_id": case_id}, doctor_name=name, policy_seeds=seeds)
        record.update(group_index=g, policy_seed=policy_seed + g)
        records.append(record)
    return records


def write_records(records: Iterable[EpisodeRecord | dict[str, Any]], path: str | Path) -> int:
    """Write records as JSON lines; returns how many were written."""
    n = 0
    with Path(path).open("w", encoding="utf-8") as fh:
        for line in dump_records(records):
            fh.write(line + "\n")
            n += 1
    return n


def __getattr__(name: str) -> Any:
    """Lazy re-export of the async rollouts (:func:`clinic_env.rollout_async.arun`), which import
    this module themselves."""
    if name in ("arun", "RolloutBatch"):
        from clinic_env import rollout_async

        return getattr(rollout_async, name)
    raise AttributeError(f"module 'clinic_env.rollout' has no attribute {name!r}")
