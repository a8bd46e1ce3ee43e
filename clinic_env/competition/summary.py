"""``summary.json`` of a tournament: what was run (versions, commit, arguments, case set, seeds) and
what came out (counts, failures, leaderboard, statistics)."""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import clinic_env
from clinic_env.envs.aec import ConsultationEnv
from clinic_env.envs.setup import ENV_VERSION
from clinic_env.leaderboard import leaderboard
from clinic_env.records import EpisodeRecord, RecordLike
from clinic_env.schema.case import Case

if TYPE_CHECKING:
    from clinic_env.competition.tournament import PlannedEpisode

__all__ = ["FAILED_END_REASONS", "FORMAT", "build_summary", "diagnostic_accuracy", "episode_failed", "git_commit", "jsonable",
           "statistics"]

#: Version of the summary's layout.
FORMAT = "clinic_env.tournament/1"


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: paths and other objects as strings, tuples as lists."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "model_dump"):
        return jsonable(value.model_dump(mode="json"))
    return str(value)


def git_commit() -> dict[str, Any] | None:
    """The commit of the git checkout clinic_env is imported from, and whether tracked files have
    changes; None when it is not in a checkout or git is not installed."""
    where = Path(clinic_env.__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(where), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def statistics(records: Sequence[EpisodeRecord], seed: int) -> dict[str, Any]:
    """``{"statistics": ...}`` from :mod:`clinic_env.competition.stats` where it is installed (else
    ``{}``; ``{"statistics_error": ...}`` when it fails: the records are on disk whatever happens)."""
    try:
        from clinic_env.competition.stats import summarise
    except ImportError:
        return {}
    try:
        return {"statistics": summarise(records, seed=seed)}
    except Exception as exc:  # the records are safe on disk; say why the statistics are missing
        return {"statistics_error": f"{type(exc).__name__}: {exc}"}


#: End reasons of episodes that did not finish as the doctor played them (infrastructure failures).
FAILED_END_REASONS = frozenset({"llm_error", "error"})


def episode_failed(record: RecordLike) -> bool:
    """Whether an episode failed (errors recorded, or ended by an LLM or env error), as opposed to
    an outcome of the doctor's play (a diagnosis, a forfeit, the turn limit)."""
    return bool(record.get("errors")) or record.get("end_reason") in FAILED_END_REASONS


def diagnostic_accuracy(records: Iterable[RecordLike], *, confidence: float = 0.95) -> dict[str, dict[str, Any]]:
    """Per doctor, the share of episodes whose final diagnosis was correct, with its Wilson interval
    (:func:`clinic_env.competition.stats.wilson`): the headline metric of AgentClinic and its peers.

    ``diagnosis_correct`` decides where the record has it (open mode: ICD-10 mapping or moderator);
    otherwise the final diagnosis must equal the gold. An episode that ran out of turns without a
    diagnosis counts as wrong; failed episodes (:func:`episode_failed`) are not the doctor's outcome
    and are left out of ``n`` (counted in ``failed``). With no finished episode the rate and its
    bounds are None (JSON has no NaN).

    Returns:
        ``{doctor: {"rate", "ci_low", "ci_high", "n", "correct", "failed"}}`` in first-seen order.
    """
    from clinic_env.competition.stats import wilson

    tally: dict[str, list[int]] = {}
    for record in records:
        row = tally.setdefault(str(record.get("doctor", "?")), [0, 0, 0])  # correct, n, failed
        if episode_failed(record):
            row[2] += 1
            continue
        judged = record.get("diagnosis_correct")
        if judged is None:
            final = record.get("final_diagnosis")
            judged = final is not None and final == record.get("gold_diagnosis")
        row[0] += int(bool(judged))
        row[1] += 1
    out: dict[str, dict[str, Any]] = {}
    for doctor, (correct, n, failed) in tally.items():
        if n == 0:
            out[doctor] = {"rate": None, "ci_low": None, "ci_high": None, "n": 0, "correct": 0, "failed": failed}
            continue
        ci = wilson(correct, n, confidence=confidence)
        out[doctor] = {"rate": round(ci.estimate, 6), "ci_low": round(ci.low, 6), "ci_high": round(ci.high, 6),
                       "n": n, "correct": correct, "failed": failed}
    return out


def build_summary(*, status: str, arguments: Mapping[str, Any], identity: Mapping[str, Any],
                  plan: Sequence[PlannedEpisode], cases: Sequence[Case], env: ConsultationEnv,
                  isolated: Mapping[str, bool], records: Sequence[EpisodeRecord], counts: Mapping[str, int],
                  wall_s: float) -> dict[str, Any]:
    """The summary of a tournament (see :func:`clinic_env.competition.tournament.run_tournament`).

    Args:
        status: ``running``, ``interrupted`` or ``complete``.
        arguments: The call's arguments, as given.
        identity: What a resumed run must share with this one (checked on resume).
        plan: Every planned episode.
        cases: The cases.
        env: The env the episodes run in (versions).
        isolated: Doctor -> whether it runs in its own process.
        records: The finished records, plan order.
        counts: planned, done, resumed, played, torn_bytes_removed.
        wall_s: Seconds since the call started.
    """
    failed = [r for r in records if r.errors]
    forfeited = [r for r in records if r.end_reason == "forfeit"]
    seeds: dict[tuple[int, int], dict[str, Any]] = {}
    for item in plan:
        seeds.setdefault((item.case_index, item.repeat), {"case_id": item.key.case_id, "repeat": item.repeat,
                                                           "seed": item.key.seed, "persona": item.key.persona})
    rubric_versions = {env.setup.rubric_version, *(r.rubric_version for r in records if r.rubric_version)}
    summary: dict[str, Any] = {
        "format": FORMAT,
        "status": status,
        "package_version": clinic_env.__version__,
        "git": git_commit(),
        "env_version": ENV_VERSION,
        "rubric_versions": sorted(rubric_versions),
        "arguments": jsonable(arguments),
        "plan": jsonable(identity),
        "doctors": [d for d, _, _ in identity["doctors"]],
        "isolated": dict(isolated),
        **({"split": arguments["split"]} if arguments.get("split") else {}),  # where the cases came from
        # Private cases: how they were made or where they are (never the secret seed).
        **({"private": jsonable(arguments["private"])} if arguments.get("private") else {}),
        "cases": len(cases),
        "case_ids": [c.id for c in cases],
        "case_set_sha256": identity["case_set_sha256"],
        "seed": identity["seed"],
        "episodes_per_case": identity["episodes_per_case"],
        "seeds": list(seeds.values()),
        "episodes": len(records),
        "counts": {**counts, "failed": len(failed), "forfeited": len(forfeited)},
        "failures": dict(Counter(r.errors[0][:200] for r in failed)),
        "forfeits": dict(Counter(r.doctor for r in forfeited)),
        "move_failures": dict(Counter(f[:200] for r in records for f in (r.policy_failures or ()))),
        "wall_s": round(wall_s, 3),
        "leaderboard": leaderboard(records),
    }
    if status != "running":
        summary.update(statistics(records, int(identity["seed"])))
    return summary
