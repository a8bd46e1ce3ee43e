"""``summary.json`` of a tournament: what was run (versions, commit, arguments, case set, seeds) and
what came out (counts, failures, leaderboard, statistics)."""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import clinic_env
from clinic_env.envs.aec import ConsultationEnv
from clinic_env.envs.setup import ENV_VERSION
from clinic_env.leaderboard import leaderboard
from clinic_env.records import EpisodeRecord
from clinic_env.schema.case import Case

if TYPE_CHECKING:
    from clinic_env.competition.tournament import PlannedEpisode

__all__ = ["FORMAT", "build_summary", "git_commit", "jsonable", "statistics"]

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
