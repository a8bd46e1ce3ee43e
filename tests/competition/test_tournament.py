"""The durable tournament engine: paired keys, kill and resume, torn lines, the lock, refusals,
summary.json and honest exit codes (clinic_env.competition.tournament, clinic-env tournament)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import clinic_env
from clinic_env.cli import app
from clinic_env.competition import (
    DoctorSpecError,
    EpisodesFailedError,
    RunFolderError,
    load_doctor_spec,
    parse_doctor_spec,
    plan_episodes,
    run_tournament,
)
from clinic_env.competition.store import RunLock, read_results
from clinic_env.competition.tournament import EpisodeKey, case_set_hash, draw_persona, key_of, play_key
from clinic_env.envs.aec import ConsultationEnv
from clinic_env.policies import RandomPolicy, make_policy

ENV = {"max_cycles": 8}
runner = CliRunner()

SLOW = '''
import time
from clinic_env.policies import RandomPolicy

class Slow(RandomPolicy):
    """Random, but each episode starts late: time for the test to kill the run mid-way."""
    def reset(self, seed=None):
        time.sleep(0.15)
        super().reset(seed)
'''

BROKEN = '''
class Broken:
    """Raises on its third move of every episode."""
    def __init__(self, info, seed=None):
        self.moves = 0
    def reset(self, seed=None):
        self.moves = 0
    def act(self, observation, agent):
        self.moves += 1
        if self.moves == 3:
            raise RuntimeError("boom")
        return int(observation["action_mask"].nonzero()[0][-1])
'''


def _comparable(path: Path) -> dict[EpisodeKey, dict[str, Any]]:
    """Records by key, without the fields that measure wall time; fails on a repeated key."""
    out: dict[EpisodeKey, dict[str, Any]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        record.pop("wall_s", None)
        key = EpisodeKey(record["doctor"], record["case_id"], record["persona"], record["seed"])
        assert key not in out, f"repeated key {key}"
        out[key] = record
    return out


def _case_folder(tmp_path: Path, cases: list[clinic_env.Case]) -> Path:
    folder = tmp_path / "cases"
    folder.mkdir()
    for case in cases:
        (folder / f"{case.id}.yaml").write_text(yaml.safe_dump(case.model_dump(mode="json", exclude_none=True)))
    return folder


def test_every_doctor_plays_the_same_case_persona_and_seed(tmp_path: Path, small_cases: list[clinic_env.Case]) -> None:
    cases = small_cases[:3]
    plan = plan_episodes(["a", "b"], [c.id for c in cases], ["p1", "p2", "p3"], episodes_per_case=2, seed=7)
    assert len(plan) == len({p.key for p in plan}) == 2 * 3 * 2
    by_slot = {}
    for p in plan:
        by_slot.setdefault((p.case_index, p.repeat), set()).add((p.key.case_id, p.key.persona, p.key.seed))
    assert all(len(v) == 1 for v in by_slot.values())  # one (case, persona, seed) per slot, for both doctors
    assert len({p.key.seed for p in plan}) == 3 * 2

    result = run_tournament(["random", "thorough"], cases, out=tmp_path / "out", episodes_per_case=2, seed=7,
                            env_kwargs=ENV)
    slots = Counter((r.case_id, r.persona, r.seed) for r in result.records)
    assert len(slots) == 3 * 2 and set(slots.values()) == {2}
    env = ConsultationEnv(cases=cases, **ENV)
    personas = [p.id for p in env.setup.personas]
    assert all(r.persona == draw_persona(r.seed, personas) for r in result.records)
    # A doctor's records do not depend on who else plays.
    again = run_tournament(["thorough"], cases, out=tmp_path / "again", episodes_per_case=2, seed=7, env_kwargs=ENV)
    mine = {key_of(r): r.to_json() for r in result.records if r.doctor == "thorough"}
    assert {key_of(r): r.to_json() for r in again.records} == mine


def test_kill_minus_nine_and_resume_equals_an_uninterrupted_run(tmp_path: Path,
                                                                small_cases: list[clinic_env.Case]) -> None:
    cases = small_cases[:4]
    folder = _case_folder(tmp_path, cases)
    (tmp_path / "slow.py").write_text(SLOW)
    doctors = ["random", "thorough", f"slow={tmp_path / 'slow.py'}:Slow"]
    reference = run_tournament(doctors, clinic_env.load_cases(folder), out=tmp_path / "ref", episodes_per_case=2,
                               seed=5, env_kwargs=ENV, isolate=False)
    assert reference.played == 3 * 4 * 2 and not reference.failures
    out = tmp_path / "killed"
    args = [sys.executable, "-m", "clinic_env", "tournament", "--cases", str(folder), "--episodes-per-case", "2",
            "--seed", "5", "--max-cycles", str(ENV["max_cycles"]), "--no-isolate", "--out", str(out)]
    for d in doctors:
        args += ["--doctor", d]
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    results = out / "results.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if results.exists() and results.read_bytes().count(b"\n") >= 4:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()  # type: ignore[union-attr]
    written = results.read_bytes().count(b"\n")
    assert 4 <= written < 24
    torn = b'{"case_id": "torn mid-wr'
    with results.open("ab") as fh:  # as if the kill had landed inside a write
        fh.write(torn)

    resumed = subprocess.run([*args, "--resume"], capture_output=True, text=True, env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{written} of 24 episode(s) already done" in resumed.stdout and f"({written} from before)" in resumed.stdout
    assert _comparable(results) == _comparable(tmp_path / "ref" / "results.jsonl")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "complete"
    assert summary["counts"]["resumed"] == written and summary["counts"]["played"] == 24 - written
    assert summary["counts"]["torn_bytes_removed"] == len(torn)
    assert summary["leaderboard"] == json.loads(json.dumps(reference.summary["leaderboard"]))


def test_a_torn_last_line_is_cut_away(tmp_path: Path, small_cases: list[clinic_env.Case]) -> None:
    result = run_tournament(["random"], small_cases[:2], out=tmp_path, env_kwargs=ENV)
    path = tmp_path / "results.jsonl"
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"case_id": "x", "doc')
    records, torn = read_results(path)
    assert torn == len(b'{"case_id": "x", "doc') and path.read_bytes() == whole
    assert [r.to_json() for r in records] == [r.to_json() for r in result.records]
    path.write_bytes(whole + b'{"not": "a record"}\n')
    with pytest.raises(RunFolderError, match=r"results.jsonl:3: not an episode record"):
        read_results(path)


def test_a_second_run_on_the_folder_is_refused_by_the_lock(tmp_path: Path, small_cases: list[clinic_env.Case]) -> None:
    with RunLock(tmp_path):
        with pytest.raises(RunFolderError, match=rf"{tmp_path} is in use by another run \(pid {os.getpid()}\)"):
            run_tournament(["random"], small_cases[:1], out=tmp_path, env_kwargs=ENV)
        res = runner.invoke(app, ["tournament", "--doctor", "random", "--max-cycles", "5", "--out", str(tmp_path)])
        assert res.exit_code == 2 and f"pid {os.getpid()}" in res.output and str(tmp_path) in res.output
    assert not (tmp_path / "results.jsonl").exists()
    run_tournament(["random"], small_cases[:1], out=tmp_path, env_kwargs=ENV)  # released


def test_results_are_never_overwritten_and_resume_checks_the_plan(tmp_path: Path,
                                                                  small_cases: list[clinic_env.Case]) -> None:
    cases = small_cases[:2]
    run_tournament(["random"], cases, out=tmp_path, seed=1, env_kwargs=ENV)
    before = (tmp_path / "results.jsonl").read_bytes()
    with pytest.raises(RunFolderError, match=r"already holds a run.*--resume"):
        run_tournament(["random"], cases, out=tmp_path, seed=1, env_kwargs=ENV)
    with pytest.raises(RunFolderError, match="holds another tournament: seed differ"):
        run_tournament(["random"], cases, out=tmp_path, seed=2, env_kwargs=ENV, resume=True)
    res = runner.invoke(app, ["tournament", "--doctor", "random", "--max-cycles", "8", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "already holds a run" in res.output
    again = run_tournament(["random"], cases, out=tmp_path, seed=1, env_kwargs=ENV, resume=True)
    assert again.played == 0 and again.resumed == 2
    assert (tmp_path / "results.jsonl").read_bytes() == before


def test_summary_says_what_was_run(tmp_path: Path, small_cases: list[clinic_env.Case]) -> None:
    cases = small_cases[:2]
    result = run_tournament(["random", "best=thorough"], cases, out=tmp_path, episodes_per_case=2, seed=3,
                            env_kwargs=ENV, metadata={"split": "demo:test"})
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary == json.loads(json.dumps(result.summary))
    assert summary["status"] == "complete" and summary["package_version"] == clinic_env.__version__
    assert summary["git"] is None or len(summary["git"]["commit"]) == 40
    canonical = json.dumps([c.model_dump(mode="json", exclude_none=True) for c in cases], sort_keys=True,
                           separators=(",", ":"), ensure_ascii=False)
    assert summary["case_set_sha256"] == case_set_hash(cases) == hashlib.sha256(canonical.encode()).hexdigest()
    assert summary["arguments"]["doctors"] == ["random", "best=thorough"]
    assert summary["arguments"]["env_kwargs"] == ENV and summary["arguments"]["seed"] == 3
    assert summary["split"] == "demo:test" and summary["case_ids"] == [c.id for c in cases]
    assert [(s["case_id"], s["repeat"]) for s in summary["seeds"]] == [(c.id, r) for c in cases for r in (0, 1)]
    assert {s["seed"] for s in summary["seeds"]} == {r.seed for r in result.records}
    assert summary["env_version"] == result.records[0].env_version
    assert summary["rubric_versions"] == [result.records[0].rubric_version]
    assert summary["counts"] == {"planned": 8, "done": 8, "resumed": 0, "played": 8, "torn_bytes_removed": 0,
                                 "failed": 0, "forfeited": 0}
    assert summary["failures"] == {} and summary["isolated"] == {"random": False, "best": False}
    assert {row["doctor"] for row in summary["leaderboard"]} == {"random", "best"}
    if "statistics" in summary:  # clinic_env.competition.stats
        assert {d["doctor"] for d in summary["statistics"]["doctors"]} == {"random", "best"}


def test_failed_episodes_exit_1_unless_allowed(tmp_path: Path, small_cases: list[clinic_env.Case]) -> None:
    (tmp_path / "broken.py").write_text(BROKEN)
    folder = _case_folder(tmp_path, small_cases[:2])
    base = ["tournament", "--cases", str(folder), "--doctor", "random", "--doctor", f"{tmp_path / 'broken.py'}:Broken",
            "--max-cycles", "8", "--no-isolate"]
    res = runner.invoke(app, [*base, "--out", str(tmp_path / "strict")])
    assert res.exit_code == 1, res.output
    assert "2 of 4 episode(s) failed" in res.output and "2 x RuntimeError: boom" in res.output
    records = list(read_results(tmp_path / "strict" / "results.jsonl")[0])
    assert len(records) == 4 and sum(bool(r.errors) for r in records) == 2
    summary = json.loads((tmp_path / "strict" / "summary.json").read_text())
    assert summary["failures"] == {"RuntimeError: boom": 2} and summary["counts"]["failed"] == 2
    allowed = runner.invoke(app, [*base, "--allow-failures", "--out", str(tmp_path / "allowed")])
    assert allowed.exit_code == 0, allowed.output
    assert "2 x RuntimeError: boom" in allowed.output
    with pytest.raises(EpisodesFailedError) as caught:
        run_tournament([f"{tmp_path / 'broken.py'}:Broken"], small_cases[:1], out=tmp_path / "lib", env_kwargs=ENV,
                       isolate=False)
    assert caught.value.failures == {"RuntimeError: boom": 1} and len(caught.value.result.records) == 1


class _Forfeiting(RandomPolicy):
    """Stands in for an isolated policy whose child keeps crashing: -1 and a failure each move."""

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self.failures: list[str] = []
        self.forfeited = False

    def act(self, observation: dict[str, Any], agent: str) -> int:
        self.failures.append(f"crash: move {len(self.failures) + 1}: exit 1")
        self.forfeited = len(self.failures) >= 3
        return -1


def test_a_forfeit_is_a_scored_outcome_not_a_failure(small_cases: list[clinic_env.Case]) -> None:
    env = ConsultationEnv(cases=small_cases[:1], **ENV)
    others = {"patient_0": make_policy("persona", env.info), "examiner_0": make_policy("rubric", env.info)}
    persona = env.setup.personas[0].id
    key = EpisodeKey("quitter", small_cases[0].id, persona, 11)
    record = play_key(env, _Forfeiting(env.info), others, key)
    assert record.end_reason == "forfeit" and "forfeit" in record.flags and not record.errors
    assert record.policy_failures == [f"crash: move {i}: exit 1" for i in (1, 2, 3)]
    assert record.totals["incomplete"] == -1.0  # played out by the env's rules: never better than playing on
    assert record.totals["reward"] < 0


def test_doctor_specs(tmp_path: Path, small_cases: list[clinic_env.Case]) -> None:
    (tmp_path / "mine.py").write_text(
        "from clinic_env.policies import RandomPolicy\n"
        "class NoReset:\n    def __init__(self, info):\n        self.n = 0\n"
        "    def act(self, obs, agent):\n        self.n += 1\n        return self.n\n"
        "def factory(info, seed):\n    return RandomPolicy(info, seed=seed)\n"
        "VALUE = 3\n")
    (tmp_path / "bad.py").write_text("raise ImportError('no numpy here')\n")
    info = ConsultationEnv(max_cycles=2).info
    assert parse_doctor_spec("infogain").builtin and parse_doctor_spec("me=random").name == "me"
    spec = parse_doctor_spec(f"{tmp_path / 'mine.py'}:NoReset")
    assert spec.kind == "file" and not spec.builtin
    fresh = load_doctor_spec(spec)(info, 1)
    assert fresh.act({}, "doctor_0") == 1 and fresh.act({}, "doctor_0") == 2
    fresh.reset(5)  # no reset of its own: rebuilt
    assert fresh.act({}, "doctor_0") == 1
    assert isinstance(load_doctor_spec(f"{tmp_path / 'mine.py'}:factory")(info, 2), RandomPolicy)
    assert isinstance(load_doctor_spec("clinic_env.policies.simple:RandomPolicy")(info, 2), RandomPolicy)
    for text, message in [("nope", "unknown doctor 'nope'"), ("llm:gpt", "clinic-env run"),
                          (f"{tmp_path / 'gone.py'}:X", "no such file"), ("no_such_pkg.mod:X", "no module named"),
                          (f"{tmp_path / 'mine.py'}:Missing", "has no attribute 'Missing'.*NoReset"),
                          (f"{tmp_path / 'mine.py'}:VALUE", "is a int, not a class"),
                          (f"{tmp_path / 'bad.py'}:X", "importing .*bad.py failed: ImportError: no numpy here")]:
        with pytest.raises(DoctorSpecError, match=message):
            load_doctor_spec(text)
    (tmp_path / "ctor.py").write_text("class C:\n    def __init__(self, info):\n        raise ValueError('no')\n")
    with pytest.raises(DoctorSpecError, match="building it failed: ValueError: no"):
        run_tournament([f"{tmp_path / 'ctor.py'}:C"], small_cases[:1], out=tmp_path / "o", env_kwargs=ENV,
                       isolate=False)
    assert not (tmp_path / "o" / "summary.json").exists()  # nothing written: a corrected retry needs no --resume


def test_an_isolated_submission_plays_in_its_own_process(tmp_path: Path, small_cases: list[clinic_env.Case]) -> None:
    pytest.importorskip("clinic_env.competition.isolation")
    (tmp_path / "sub.py").write_text("from clinic_env.policies import RandomPolicy as Doctor\n")
    spec = f"{tmp_path / 'sub.py'}:Doctor"
    isolated = run_tournament([spec], small_cases[:1], out=tmp_path / "iso", env_kwargs=ENV, seed=4)
    inline = run_tournament([spec], small_cases[:1], out=tmp_path / "inline", env_kwargs=ENV, seed=4, isolate=False)
    assert isolated.summary["isolated"] == {spec: True} and not isolated.failures
    assert [r.to_json() for r in isolated.records] == [r.to_json() for r in inline.records]
