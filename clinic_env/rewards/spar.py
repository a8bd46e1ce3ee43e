"""Group-relative advantages: SPAR (Baichuan-M3), plain GRPO and a no-std variant (Baichuan-M2).

For a group of G rollouts of the same case and seed, SPAR gives each step j of episode i the
advantage

    A_ij = clip((gamma_ij * R_i - mean(R)) / (std(R) + eps), -clip, clip)      (R_i >= 0)

where R_i is episode i's *unpenalised* reward for the segment the step belongs to, mean and
(population) std are taken over the group's unpenalised rewards, and gamma_ij = min lambda over
the step's violations (1 when it has none; see :mod:`clinic_env.rewards.verifier`).

Pitfalls, and what this module does about them:

- **R_i = 0 makes the penalty vanish**: gamma * 0 = 0, so a violating step in a zero-reward episode
  is not punished at all. ``zero_floor`` (default 0, i.e. plain SPAR) subtracts
  ``(1 - gamma) * zero_floor`` from the penalised reward so violations keep a cost when R_i = 0.
- **R_i < 0** (the tests reward can be negative through its cost term): gamma * R_i would be
  *larger* than R_i, turning the penalty into a bonus. The penalised reward is computed as
  ``R_i - (1 - gamma) * |R_i|``, which equals gamma * R_i for R_i >= 0 and is more negative for
  R_i < 0.
- **std ~ 0** (every rollout earned the same): the denominator falls to eps, so a penalty
  (gamma < 1) becomes a very large negative advantage. ``eps`` (default 0.05) bounds it and
  ``clip`` (default 5) caps it; with no violations and equal rewards every advantage is exactly 0.
- Advantages of an unpenalised group sum to ~0 (per step position), as GRPO's do; penalties make
  the sum negative on purpose.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from clinic_env.records import RecordLike
from clinic_env.rewards.verifier import VerifierConfig, step_gamma

__all__ = [
    "grpo_advantages",
    "no_std_advantages",
    "segment_inputs",
    "spar_advantages",
]


def _group(rewards: Sequence[float]) -> tuple[np.ndarray, float, float]:
    r = np.asarray(rewards, dtype=np.float64)
    if r.ndim != 1 or r.size == 0:
        raise ValueError(f"R must be a non-empty 1-D sequence of group rewards, got shape {r.shape}")
    if not np.all(np.isfinite(r)):
        raise ValueError("R holds a non-finite reward")
    return r, float(r.mean()), float(r.std())


def _penalise(r: float, gam: np.ndarray, zero_floor: float) -> np.ndarray:
    """gamma * r for r >= 0, r - (1 - gamma) |r| in general, minus the zero floor's share."""
    return r - (1.0 - gam) * (abs(r) + zero_floor)


def spar_advantages(
    R: Sequence[float],
    gammas: Sequence[Sequence[float]],
    eps: float = 0.05,
    clip: float = 5.0,
    zero_floor: float = 0.0,
) -> list[np.ndarray]:
    """SPAR step advantages for one group and one segment.

    Args:
        R: The G unpenalised segment rewards of the group (same case and seed).
        gammas: Per episode, the multipliers of its steps in that segment (each in (0, 1]).
        eps: Added to the group std.
        clip: Advantages are clipped to [-clip, clip].
        zero_floor: See the module docstring (0 = plain SPAR).

    Returns:
        Per episode, an array of its steps' advantages (same lengths as ``gammas``).
    """
    r, mean, std = _group(R)
    if len(gammas) != r.size:
        raise ValueError(f"gammas has {len(gammas)} episodes but R has {r.size}")
    out = []
    for ri, g in zip(r, gammas, strict=True):
        gam = np.asarray(g, dtype=np.float64)
        if gam.size and (gam.min() <= 0.0 or gam.max() > 1.0):
            raise ValueError("every gamma must be in (0, 1]")
        penalised = _penalise(ri, gam, zero_floor)
        out.append(np.clip((penalised - mean) / (std + eps), -clip, clip))
    return out


def grpo_advantages(R: Sequence[float], eps: float = 0.05, clip: float = 5.0) -> np.ndarray:
    """Plain group-relative advantages (GRPO): one per episode, (R_i - mean) / (std + eps), clipped."""
    r, mean, std = _group(R)
    return np.clip((r - mean) / (std + eps), -clip, clip)


def no_std_advantages(
    R: Sequence[float], gammas: Sequence[Sequence[float]] | None = None, clip: float | None = None
) -> list[np.ndarray] | np.ndarray:
    """Baichuan-M2's variant without std normalisation: gamma * R_i - mean(R) (penalised as in SPAR).

    Without ``gammas`` it returns one advantage per episode (R_i - mean); with them, per-step
    arrays. Dropping the std keeps a group whose rewards barely differ from producing huge
    advantages, at the price of scale depending on the reward's range.
    """
    r, mean, _ = _group(R)
    if gammas is None:
        adv = r - mean
        return adv if clip is None else np.clip(adv, -clip, clip)
    steps = [_penalise(ri, np.asarray(g, dtype=np.float64), 0.0) - mean for ri, g in zip(r, gammas, strict=True)]
    return steps if clip is None else [np.clip(s, -clip, clip) for s in steps]


def segment_inputs(
    records: Sequence[RecordLike],
    segment: str,
    config: VerifierConfig | None = None,
) -> tuple[list[float], list[list[float]]]:
    """Build SPAR's ``R`` and ``gammas`` for one segment from G episode records of a group.

    ``R_i`` is the record's unpenalised segment score (``totals[segment]``, 0 when the segment was
    never reached) and ``gammas_i`` the multipliers of the episode's doctor steps taken in that
    segment (from each turn's ``violations``).

    Args:
        records: Episode records from :func:`clinic_env.rollout.group` (same case and seed).
        segment: ``history``, ``differential``, ``tests`` or ``diagnosis``.
        config: Verifier settings (lambdas); default :class:`VerifierConfig`.
    """
    lambdas = (config or VerifierConfig()).lambdas
    keys = {(r.get("case_id"), r.get("seed")) for r in records}
    if len(keys) > 1:
        raise ValueError(f"a SPAR group must share one case and seed, got {sorted(map(str, keys))}")
    R: list[float] = []
    gammas: list[list[float]] = []
    for record in records:
        R.append(float(record.get("totals", {}).get(segment, 0.0)))
        gammas.append([
            step_gamma(turn.get("violations", ()), lambdas)
            for turn in record.get("turns", ())
            if turn.get("agent") == "doctor_0" and turn.get("segment") == segment and "violations" in turn
        ])
    return R, gammas
