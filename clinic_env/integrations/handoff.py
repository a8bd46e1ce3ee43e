"""Hand-off JSONL: group rollouts as one line per doctor step, with token data and advantages.

A trainer that does not run the env itself (verl, OpenRLHF, a custom PPO/GRPO loop) reads this
file: each line is one doctor step, i.e. one LLM call of a token-recording rollout
(:func:`clinic_env.rollout_async.arun` with ``record_tokens=True``): the messages sent, the
completion, prompt/completion token ids and logprobs (when the server returned them), the step's
reward, and three advantages computed over the step's group (the G rollouts of one case and
seed, ``record.group``):

- ``spar``: SPAR (:func:`clinic_env.rewards.spar.spar_advantages`), per segment:
  ``clip((gamma_ij * R_i[seg] - mean(R[seg])) / (std(R[seg]) + eps), -clip, clip)``, where
  ``R_i[seg]`` is episode i's unpenalised score of the step's segment and ``gamma_ij`` the
  smallest lambda of the step's violations (1 without any);
- ``grpo``: ``clip((R_i - mean(R)) / (std(R) + eps), -clip, clip)`` on the episode reward
  ``totals["reward"]``, the same for every step of the episode;
- ``no_std``: Dr. GRPO's ``R_i - mean(R)``, without the std (and without clipping).

Std is the population std of the group. Records without ``doctor_calls`` (structured doctors,
rollouts without token recording) give one line per doctor *turn* instead, with the action name
as the completion and no messages or token data. Episodes that failed for infrastructure reasons
(``end_reason`` ``"error"`` or ``"llm_error"``) are left out of their group: their reward says
nothing about the policy. docs/TRAINERS.md has worked examples.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from clinic_env.records import EpisodeRecord, RecordLike
from clinic_env.rewards.config import RewardConfig
from clinic_env.rewards.spar import grpo_advantages, no_std_advantages, spar_advantages
from clinic_env.rewards.verifier import VerifierConfig, step_gamma

__all__ = ["ADVANTAGES", "SKIPPED_END_REASONS", "Step", "export", "group_steps", "steps_of"]

#: Advantage estimators :func:`export` knows.
ADVANTAGES = ("spar", "grpo", "no_std")
#: Episodes with these ``end_reason`` values are left out of their group.
SKIPPED_END_REASONS = frozenset({"error", "llm_error"})


@dataclass
class Step:
    """One doctor step of an episode, before advantages (see the module docstring for fields)."""

    segment: str
    reward: float
    gamma: float
    violations: list[str]
    completion: str | None = None
    messages: list[dict[str, Any]] | None = None
    prompt_token_ids: list[int] | None = None
    completion_token_ids: list[int] | None = None
    completion_logprobs: list[float] | None = None
    reask: str | None = None
    actions: list[str] = field(default_factory=list)


def _as_record(record: RecordLike) -> EpisodeRecord:
    return record if isinstance(record, EpisodeRecord) else EpisodeRecord.model_validate(dict(record))


def steps_of(record: RecordLike, verifier: VerifierConfig | None = None,
             reward_config: RewardConfig | None = None) -> list[Step]:
    """The doctor steps of one episode: its LLM calls, or its doctor turns when it has none."""
    rec = _as_record(record)
    lambdas = (verifier or VerifierConfig()).lambdas
    doctor = [t for t in rec.turns if t.agent == "doctor_0"]
    if rec.doctor_calls:
        out = []
        for k, call in enumerate(rec.doctor_calls):
            turns = [t for t in doctor if t.llm_call == k]
            violations = [v for t in turns for v in (t.violations or ())]
            out.append(Step(call.segment, call.reward, step_gamma(violations, lambdas), violations,
                            call.completion, call.messages, call.prompt_token_ids, call.completion_token_ids,
                            call.completion_logprobs, call.reask, [t.action for t in turns]))
        return out
    config = reward_config or RewardConfig()
    return [Step(t.segment, config.scalar(t.reward_components), step_gamma(t.violations or (), lambdas),
                 list(t.violations or ()), t.action, actions=[t.action]) for t in doctor]


def _group_key(rec: EpisodeRecord) -> str:
    return rec.group or f"{rec.case_id}:{rec.seed}"


def group_steps(records: Sequence[EpisodeRecord], advantages: Sequence[str] = ADVANTAGES, eps: float = 0.05,
                clip: float = 5.0, verifier: VerifierConfig | None = None,
                reward_config: RewardConfig | None = None) -> list[tuple[EpisodeRecord, list[Step], list[dict[str, float]]]]:
    """Steps and their advantages for the G episodes of one group.

    Returns:
        Per episode: the record, its steps and, per step, ``{estimator: advantage}``.
    """
    steps = [steps_of(r, verifier, reward_config) for r in records]
    adv: list[list[dict[str, float]]] = [[{} for _ in s] for s in steps]
    totals = [float(r.totals.get("reward", 0.0)) for r in records]
    if "grpo" in advantages:
        g = grpo_advantages(totals, eps, clip)
        for i in range(len(steps)):
            for a in adv[i]:
                a["grpo"] = float(g[i])
    if "no_std" in advantages:
        d = np.asarray(no_std_advantages(totals))
        for i in range(len(steps)):
            for a in adv[i]:
                a["no_std"] = float(d[i])
    if "spar" in advantages:
        for segment in sorted({st.segment for s in steps for st in s}):
            seg_r = [float(r.totals.get(segment, 0.0)) for r in records]
            gammas = [[st.gamma for st in s if st.segment == segment] for s in steps]
            values = spar_advantages(seg_r, gammas, eps, clip)
            for i, s in enumerate(steps):
                it = iter(values[i])
                for j, st in enumerate(s):
                    if st.segment == segment:
                        adv[i][j]["spar"] = float(next(it))
    return list(zip(records, steps, adv, strict=True))


def _line(rec: EpisodeRecord, j: int, step: Step, adv: dict[str, float], last: bool, messages: bool) -> dict[str, Any]:
    return {
        "group": _group_key(rec), "episode": rec.group_index if rec.group_index is not None else 0,
        "case_id": rec.case_id, "seed": rec.seed, "step": j, "segment": step.segment,
        "messages": step.messages if messages else None, "completion": step.completion, "actions": step.actions,
        "prompt_token_ids": step.prompt_token_ids, "completion_token_ids": step.completion_token_ids,
        "completion_logprobs": step.completion_logprobs, "reward": step.reward,
        "episode_reward": float(rec.totals.get("reward", 0.0)),
        "segment_reward": float(rec.totals.get(step.segment, 0.0)), "gamma": step.gamma,
        "violations": step.violations, "reask": step.reask, "done": last,
        "advantages": adv,
    }


def export(records: Iterable[RecordLike], path: str | Path, advantages: Sequence[str] = ADVANTAGES, *,
           eps: float = 0.05, clip: float = 5.0, verifier: VerifierConfig | None = None,
           reward_config: RewardConfig | None = None, include_messages: bool = True) -> int:
    """Write the hand-off JSONL of ``records`` to ``path``; returns the number of lines.

    Args:
        records: Episode records (typed or plain dicts), e.g. an :func:`~clinic_env.rollout_async.arun`
            batch with ``group_size`` G and ``record_tokens=True``. Groups are formed by
            ``record.group`` (``case_id:seed`` when unset), in first-seen order.
        path: The output file (overwritten).
        advantages: Which of :data:`ADVANTAGES` to compute.
        eps: Added to the group std (SPAR and GRPO).
        clip: Advantages are clipped to [-clip, clip] (SPAR and GRPO).
        verifier: Lambdas for the SPAR multipliers (default :class:`VerifierConfig`).
        reward_config: Weights for per-turn rewards of records without ``doctor_calls``.
        include_messages: Write each step's chat messages. They are most of the file (the doctor's
            system message lists the segment's catalogue items): a trainer that works from token
            ids alone can leave them out (``messages`` is then null).

    Raises:
        ValueError: An unknown advantage name.
    """
    unknown = [a for a in advantages if a not in ADVANTAGES]
    if unknown:
        raise ValueError(f"unknown advantages {unknown}; choose from {list(ADVANTAGES)}")
    groups: dict[str, list[EpisodeRecord]] = {}
    for record in records:
        rec = _as_record(record)
        if rec.end_reason in SKIPPED_END_REASONS:
            continue
        groups.setdefault(_group_key(rec), []).append(rec)
    n = 0
    with Path(path).open("w", encoding="utf-8") as fh:
        for members in groups.values():
            for rec, steps, adv in group_steps(members, advantages, eps, clip, verifier, reward_config):
                for j, step in enumerate(steps):
                    fh.write(json.dumps(_line(rec, j, step, adv[j], j == len(steps) - 1, include_messages), ensure_ascii=False))
                    fh.write("\n")
                    n += 1
    return n
