"""Private tournament cases: ``clinic-env tournament --private-generated N`` (a secret seed that never
reaches a file, the output or a policy; opaque case ids; the run folder owner-only; resume from the
kept cases) and ``--cases PATH --private`` (an owner-only folder the policy processes cannot read)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import clinic_env
from clinic_env.cli import app
from clinic_env.competition import TournamentError
from clinic_env.competition.isolation import SECRET_SEED_VAR
from clinic_env.competition.tournament import (
    PRIVATE_CASES,
    PRIVATE_SOURCE,
    case_set_hash,
    generate_private_cases,
)
from clinic_env.generate import CaseGenerator, write_cases

REPO = Path(__file__).resolve().parents[2]
CHEATER = f"{REPO / 'examples' / 'cheating_policy.py'}:CheatingDoctor"
SLEEPY = f"{REPO / 'examples' / 'sleepy_policy.py'}:SleepyDoctor"
ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="policies run under another uid only when the organiser is root")
#: A secret seed long enough that finding its digits anywhere can only mean it leaked.
SECRET = 7318046529173
runner = CliRunner()

SNOOPER = '''
import json, os, pathlib
import yaml
from clinic_env.core.actions import COMMIT_DIFFERENTIAL, END_SEGMENT
from clinic_env.policies import RandomPolicy


class Snooper:
    """A cheater written for these tests: reads every file under every absolute path on the
    organiser's command line (the case folder, the run folder with its kept cases), one file at a
    time, and plays the gold diagnosis of a case whose opening statement it sees; else random."""

    def __init__(self, info, seed=None):
        self.info, self.blind = info, RandomPolicy(info, seed)

    def reset(self, seed=None):
        self.blind.reset(seed)
        self.gold, self.looked = None, False

    def act(self, observation, agent):
        if not self.looked:
            self.looked, self.gold = True, self.find(str(observation.get("transcript", "")))
        blind = self.blind.act(observation, agent)
        if self.gold not in self.info.table.diagnosis_codes:
            return blind
        for action in (self.info.table.dx(self.gold), COMMIT_DIFFERENTIAL, END_SEGMENT):
            if observation["action_mask"][action]:
                return action
        return blind

    def find(self, transcript):
        with open(f"/proc/{os.getppid()}/cmdline", "rb") as f:
            words = [w.decode(errors="replace") for w in f.read().split(b"\\0")]
        for word in words:
            path = pathlib.Path(word)
            if not path.is_absolute():
                continue
            try:
                files = sorted(path.rglob("*")) if path.is_dir() else [path]
            except OSError:
                continue
            for file in files:
                try:
                    text = file.read_text()
                    docs = ([json.loads(line) for line in text.splitlines() if line.strip()]
                            if file.suffix == ".jsonl" else [yaml.safe_load(text)])
                except Exception:
                    continue
                for doc in docs:
                    if isinstance(doc, dict) and doc.get("opening_statement") and doc["opening_statement"] in transcript:
                        return doc.get("gold_diagnosis")
        return None
'''


@pytest.fixture
def base() -> Iterator[Path]:
    """A world-searchable folder (unlike pytest's tmp_path, 700 under root): only the modes the
    tournament sets keep the sandbox user out of what it puts here."""
    folder = Path(tempfile.mkdtemp(prefix="clinic-private-"))
    os.chmod(folder, 0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _cli(*args: str, seed: int | None = SECRET, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINIC_ENV_")}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    if seed is not None:
        env[SECRET_SEED_VAR] = str(seed)
    return subprocess.run([sys.executable, "-m", "clinic_env", "tournament", *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=timeout)


def _records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]


def _by_episode(records: list[dict[str, Any]], doctor: str) -> dict[tuple[str, str, int], dict[str, Any]]:
    """A doctor's records by (case, persona, seed), without the doctor's name and wall time."""
    return {(r["case_id"], r["persona"], r["seed"]): {k: v for k, v in r.items() if k not in ("doctor", "wall_s")}
            for r in records if r["doctor"] == doctor}


def _exact(records: dict[tuple[str, str, int], dict[str, Any]]) -> float:
    return sum(r.get("final_diagnosis") == r["gold_diagnosis"] for r in records.values()) / len(records)


def _assert_no_seed(out: Path, *texts: str, n: int) -> None:
    """No file of the run folder, and none of ``texts``, holds the secret seed or a case's seed."""
    needles = [str(SECRET + i) for i in range(n)] + [str(SECRET)[:10]]
    for path in [*out.rglob("*"), *out.glob(".*")]:
        if path.is_file():
            data = path.read_text(encoding="utf-8", errors="replace")
            assert not any(s in data for s in needles), f"{path.name} holds the secret seed"
    for text in texts:
        assert not any(s in text for s in needles), "the output holds the secret seed"


def _assert_owner_only(out: Path) -> None:
    assert out.stat().st_mode & 0o777 == 0o700
    for path in out.iterdir():
        assert path.stat().st_mode & 0o777 == 0o600, f"{path.name} is not 600"


# ---------------------------------------------------------------- generating private cases
def test_generated_private_cases_are_opaque_and_secret() -> None:
    cases = generate_private_cases(6, SECRET)
    assert [c.id for c in cases] == [f"private-{i:04d}" for i in range(1, 7)]
    assert [c.title for c in cases] == [f"Private case {i:04d}" for i in range(1, 7)]
    assert all(c.source == PRIVATE_SOURCE for c in cases)
    for case in cases:
        text = json.dumps(case.model_dump(mode="json"))
        assert str(SECRET)[:8] not in text and "gen-" not in text
    assert case_set_hash(generate_private_cases(6, SECRET)) == case_set_hash(cases)  # the seed fixes the cases
    # The conditions are a secret draw, not the knowledge base's first six (all cardiology).
    kb = CaseGenerator().kb.conditions
    first = {kb[k].code for k in list(kb)[:6]}
    assert {c.gold_diagnosis for c in cases} != first
    few = generate_private_cases(4, SECRET + 1, ["appendicitis", "community-acquired-pneumonia"])
    assert sorted(c.gold_diagnosis for c in few) == sorted([kb["appendicitis"].code] * 2
                                                           + [kb["community-acquired-pneumonia"].code] * 2)
    with pytest.raises(TournamentError, match="unknown condition"):
        generate_private_cases(2, SECRET, ["no-such-condition"])


# ---------------------------------------------------------------- --private-generated through the CLI
@needs_root
def test_cheater_gains_nothing_on_private_generated_cases(base: Path) -> None:
    """random and the cheating example (isolated, dropped to nobody) on 6 cases generated from a
    secret seed that sits in the organiser's environment, with the run folder on its command line."""
    out = base / "run"
    (base / "snooper.py").write_text(SNOOPER)
    start = time.monotonic()
    res = _cli("--doctor", "random", "--doctor", f"cheater={CHEATER}", "--doctor", f"snooper={base / 'snooper.py'}:Snooper",
               "--private-generated", "6", "--move-timeout", "60", "--out", str(out))
    wall = time.monotonic() - start
    assert res.returncode == 0, res.stderr[-3000:]
    records = _records(out)
    blind = _by_episode(records, "random")
    assert len(blind) == 6
    for name in ("cheater", "snooper"):  # the snooper had the run folder, kept cases included, on the cmdline
        # It found nothing, so it played exactly the random moves: same diagnoses, totals, turns.
        assert _by_episode(records, name) == blind, name
        assert _exact(_by_episode(records, name)) <= _exact(blind)
    assert not any(r.get("policy_failures") for r in records)
    _assert_owner_only(out)
    _assert_no_seed(out, res.stdout, res.stderr, n=6)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["private"] == {"kind": "generated", "cases": 6, "conditions": None, "cases_file": PRIVATE_CASES,
                                  "secret_seed": "not recorded"}
    assert summary["case_ids"] == [f"private-{i:04d}" for i in range(1, 7)]
    assert summary["isolated"] == {"random": False, "cheater": True, "snooper": True}
    kept = clinic_env.load_cases(out / PRIVATE_CASES)
    assert summary["case_set_sha256"] == case_set_hash(kept) and [c.id for c in kept] == summary["case_ids"]
    print(f"cheater vs random on 6 private cases: {wall:.1f} s")


def test_a_sleeping_doctor_is_timed_out_and_the_private_tournament_finishes(base: Path) -> None:
    out = base / "run"
    start = time.monotonic()
    res = _cli("--doctor", "random", "--doctor", f"sleepy={SLEEPY}", "--private-generated", "2",
               "--conditions", "appendicitis,community-acquired-pneumonia,migraine-with-aura",
               "--move-timeout", "0.5", "--out", str(out), timeout=120)
    wall = time.monotonic() - start
    assert res.returncode == 0, res.stderr[-3000:]
    assert wall < 60, f"took {wall:.1f} s"
    sleepy = [r for r in _records(out) if r["doctor"] == "sleepy"]
    assert len(sleepy) == 2
    for record in sleepy:
        assert record["end_reason"] in ("forfeit", "max_cycles", "patience_exhausted")
        assert all(f.startswith("timeout: ") for f in record["policy_failures"])
    assert "forfeited episodes" in res.stderr
    _assert_owner_only(out)
    _assert_no_seed(out, res.stdout, res.stderr, n=2)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["private"]["conditions"] == ["appendicitis", "community-acquired-pneumonia",
                                                "migraine-with-aura"]
    print(f"sleepy + random on 2 private cases: {wall:.1f} s")


def test_resume_reloads_the_kept_cases_without_the_seed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    args = ["tournament", "--doctor", "random", "--doctor", "thorough", "--private-generated", "3",
            "--max-cycles", "12", "--out", str(out)]
    monkeypatch.setenv(SECRET_SEED_VAR, str(SECRET))
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    full = (out / "results.jsonl").read_text().splitlines()
    assert len(full) == 6
    # A fresh run on the folder is refused; the kept cases are part of the run.
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "already holds a run" in again.output
    # Lose the last four records and resume with no seed at all: the kept cases are reloaded.
    (out / "results.jsonl").write_text("\n".join(full[:2]) + "\n")
    monkeypatch.delenv(SECRET_SEED_VAR)
    res = runner.invoke(app, [*args, "--resume"])
    assert res.exit_code == 0, res.output
    assert "2 of 6 episode(s) already done" in res.output
    strip = [{k: v for k, v in json.loads(line).items() if k != "wall_s"} for line in full]
    assert [{k: v for k, v in r.items() if k != "wall_s"} for r in _records(out)] == strip
    _assert_owner_only(out)
    # Another N, or kept cases that are gone, cannot be resumed.
    other = runner.invoke(app, [*(("4" if a == "3" else a) for a in args), "--resume"])
    assert other.exit_code == 2 and "holds 3 case(s), not --private-generated 4" in other.output
    (out / PRIVATE_CASES).unlink()
    lost = runner.invoke(app, [*args, "--resume"])
    assert lost.exit_code == 2 and "cannot be generated again without the secret seed" in lost.output


# ---------------------------------------------------------------- --cases PATH --private
@needs_root
def test_a_private_case_folder_is_closed_to_the_policies(base: Path) -> None:
    folder = base / "cases"
    write_cases(generate_private_cases(2, SECRET + 100), folder)
    for path in [folder, *folder.iterdir()]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    (base / "snooper.py").write_text(SNOOPER)
    snooper = f"snooper={base / 'snooper.py'}:Snooper"
    # Control: without --private the folder stays world-readable and the snooper (as nobody) wins.
    res = _cli("--doctor", snooper, "--cases", str(folder), "--max-cycles", "40", "--move-timeout", "60",
               "--out", str(base / "public-run"), seed=None)
    assert res.returncode == 0, res.stderr[-3000:]
    assert _exact(_by_episode(_records(base / "public-run"), "snooper")) == 1.0
    out = base / "run"
    res = _cli("--doctor", "random", "--doctor", f"cheater={CHEATER}", "--doctor", snooper, "--cases", str(folder),
               "--private", "--move-timeout", "60", "--max-cycles", "40", "--out", str(out), seed=None)
    assert res.returncode == 0, res.stderr[-3000:]
    assert folder.stat().st_mode & 0o777 == 0o700
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in folder.iterdir())
    _assert_owner_only(out)
    records = _records(out)
    for name in ("cheater", "snooper"):  # the folder on the cmdline did not help
        assert _by_episode(records, name) == _by_episode(records, "random"), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["private"] == {"kind": "folder", "path": str(folder)} and summary["plan"]["private"] == "folder"


def test_not_root_warns_once_and_usage_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "cases"
    write_cases(generate_private_cases(1, SECRET), folder)
    base = ["tournament", "--max-cycles", "6", "--out", str(tmp_path / "run")]
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # as an organiser that is not root
    res = runner.invoke(app, [*base, "--doctor", "a=random", "--doctor", "b=random", "--isolate", "--cases", str(folder),
                              "--private"])
    assert res.exit_code == 0, res.output
    warning = [line for line in res.output.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "not running as root" in warning[0] and "another user" in warning[0]
    assert folder.stat().st_mode & 0o777 == 0o700  # protected all the same (other local users)
    for extra, message in [(["--private"], "--private needs --cases"),
                           (["--conditions", "appendicitis"], "--conditions needs --private-generated"),
                           (["--private-generated", "2", "--cases", str(folder)], "exclusive with --cases"),
                           (["--private-generated", "2", "--conditions", "nope"], "unknown condition")]:
        res = runner.invoke(app, [*base[:-1], str(tmp_path / "other"), "--doctor", "random", *extra])
        assert res.exit_code == 2 and message in res.output, (extra, res.output)
