"""Play-and-evolve driver: rounds of rollouts, mining and admission (``clinic-env rubrics evolve``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clinic_env.leaderboard import leaderboard
from clinic_env.records import EpisodeRecord
from clinic_env.rewards.config import RewardConfig
from clinic_env.rewards.evolution import (
    DynamicBank,
    EvolutionConfig,
    append_log,
    evolve_step,
    load_review,
    mine,
    save_review,
    top_episodes,
)
from clinic_env.rewards.llm_miner import LLMMiner
from clinic_env.rollout import run_batch
from clinic_env.schema.case import Case

__all__ = ["EvolutionResult", "run_evolution"]


@dataclass
class EvolutionResult:
    """What an evolution run did.

    Attributes:
        bank: The evolved bank.
        log: Every change-log entry (admissions, retirements, skips), with evidence.
        before: Leaderboard rows of every doctor and baseline under the starting bank.
        after: The same under the evolved bank.
        rounds: Per round: bank version, admitted and retired counts, mean reward of the mined doctors.
        records_before: Episode records behind ``before``.
        records_after: Episode records behind ``after``.
    """

    bank: DynamicBank
    log: list[dict[str, Any]] = field(default_factory=list)
    before: list[dict[str, Any]] = field(default_factory=list)
    after: list[dict[str, Any]] = field(default_factory=list)
    rounds: list[dict[str, Any]] = field(default_factory=list)
    records_before: list[EpisodeRecord] = field(default_factory=list)
    records_after: list[EpisodeRecord] = field(default_factory=list)

    def mean_reward(self, doctor: str, when: str = "after") -> float:
        """Mean total reward of ``doctor`` in the ``before`` or ``after`` table."""
        rows = self.before if when == "before" else self.after
        for row in rows:
            if row["doctor"] == doctor:
                return float(row["reward"][0])
        raise KeyError(f"{doctor!r} is not in the {when} table")

    @property
    def admitted_miners(self) -> list[str]:
        """The failure modes (miner names) admitted during the run, sorted."""
        return sorted({e["miner"] for e in self.log if e["action"] == "admit"})


def run_evolution(
    cases: Sequence[Case],
    doctors: Sequence[str] = ("shotgun",),
    baselines: Sequence[str] = ("info-gain",),
    rounds: int = 3,
    bank: DynamicBank | None = None,
    reward_config: RewardConfig | None = None,
    persona: str | None = "cooperative",
    episodes_per_case: int = 1,
    seed: int = 0,
    config: EvolutionConfig | None = None,
    review_path: str | Path | None = None,
    log_path: str | Path | None = None,
    max_cycles: int = 1200,
    on_episode: Callable[[EpisodeRecord], None] | None = None,
    llm_miner: LLMMiner | None = None,
) -> EvolutionResult:
    """Evolve a dynamic rubric bank against ``doctors`` and compare them with ``baselines``.

    Each round plays every case with the mined doctors under the current bank, mines candidate
    items from their records and admits or retires items (:func:`evolve_step`). Before the first
    and after the last round, mined doctors and baselines are all scored for the two tables.

    Args:
        cases: Cases to play.
        doctors: Policies whose episodes are mined (e.g. ``shotgun``).
        baselines: Policies only scored before and after (e.g. ``info-gain``).
        rounds: Mine-Verify-Inject rounds.
        bank: Starting bank (default empty).
        reward_config: Reward the policies are scored under (default :meth:`RewardConfig.naive`).
        persona: Persona for every episode (default ``cooperative``, so persona noise does not
            confound the comparison); None draws from every bundled persona.
        episodes_per_case: Repeats per case and doctor.
        seed: Run seed.
        config: Admission and retirement thresholds.
        review_path: Human review file (candidates wait for ``accept`` there).
        log_path: JSONL change log to append to.
        max_cycles: Cycle budget (shotgun doctors need several hundred).
        on_episode: Progress callback per episode.
        llm_miner: Also ask an LLM for candidate items each round (text-mode transcripts).
    """
    bank = bank if bank is not None else DynamicBank()
    reward = reward_config or RewardConfig.naive()
    by_id = {c.id: c for c in cases}
    review = load_review(review_path) if review_path else None
    result = EvolutionResult(bank=bank)

    def play(names: Sequence[str]) -> list[EpisodeRecord]:
        env_kwargs: dict[str, Any] = {"reward_config": reward, "max_cycles": max_cycles,
                                      "dynamic_rubric": bank.model_copy(deep=True)}
        if persona:
            env_kwargs["persona"] = persona
        return run_batch(cases, list(names), episodes_per_case, seed, env_kwargs, on_episode)

    result.records_before = play([*doctors, *baselines])
    result.before = leaderboard(result.records_before)
    mined = [r for r in result.records_before if r["doctor"] in doctors]
    for _ in range(rounds):
        candidates = mine(mined, by_id)
        if llm_miner is not None:
            top, _ = top_episodes(mined, (config or EvolutionConfig()).top_quantile)
            existing = [d.item.criterion for d in bank.items] + [i.criterion for c in cases for i in c.rubric]
            candidates += llm_miner.mine(mined, sorted(top), existing)
        entries = evolve_step(bank, mined, by_id, config, candidates=candidates, review=review)
        result.log += entries
        if log_path:
            append_log(entries, log_path)
        mined = play(doctors)
        result.rounds.append({
            "round": bank.round, "bank_version": bank.version,
            "admitted": sum(e["action"] == "admit" for e in entries),
            "retired": sum(e["action"] == "retire" for e in entries),
            "mean_reward": {d: row["reward"][0] for row in leaderboard(mined) for d in [row["doctor"]]},
        })
    if review is not None and review_path:
        save_review(review, review_path)
    # The last round's batch already scored the mined doctors under the final bank (same seeds).
    result.records_after = (mined if rounds else play(doctors)) + play(baselines)
    result.after = leaderboard(result.records_after)
    return result
