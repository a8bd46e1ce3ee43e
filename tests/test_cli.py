"""The command line: validate, cases list and the main job, through the real entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

import clinic_env
from clinic_env.schema.loading import bundled_dir


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "clinic_env", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600, env={"LITELLM_LOCAL_MODEL_COST_MAP": "True", "PATH": "/usr/bin:/bin"})


def test_validate_ok_and_bad(tmp_path: Path, cases: list[clinic_env.Case]) -> None:
    ok = _cli("validate", str(bundled_dir("cases")), str(bundled_dir("personas")))
    assert ok.returncode == 0, ok.stderr
    data = cases[0].model_dump(mode="json", exclude_none=True)
    data["demographics"]["sex"] = "X"
    data["differential"][0]["code"] = "not-a-code"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    res = _cli("validate", str(bad))
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith(str(bad))]
    assert any("demographics.sex" in ln and "'X'" in ln for ln in lines)
    assert any("differential[0].code" in ln and "not-a-code" in ln for ln in lines)
    missing = _cli("validate", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_cases_list() -> None:
    res = _cli("cases", "list")
    assert res.returncode == 0
    assert "cases" in res.stdout and "cardiology" in res.stdout


def test_run_main_job_on_a_case_file(tmp_path: Path, cases: list[clinic_env.Case]) -> None:
    folder = tmp_path / "cases"
    folder.mkdir()
    for case in cases[:2]:
        (folder / f"{case.id}.yaml").write_text(yaml.safe_dump(case.model_dump(mode="json", exclude_none=True)))
    out = tmp_path / "out"
    res = _cli("run", "--cases", str(folder), "--doctor", "random", "--doctor", "info-gain",
               "--episodes-per-case", "2", "--seed", "3", "--out", str(out))
    assert res.returncode == 0, res.stderr
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(records) == 2 * 2 * 2
    for r in records:
        assert r["env_version"] and r["rubric_version"] and r["turns"]
        assert {"agent", "segment", "action", "text", "reward_components"} <= set(r["turns"][0])
    summary = json.loads((out / "summary.json").read_text())
    assert {row["doctor"] for row in summary["leaderboard"]} == {"random", "info-gain"}
    assert "Leaderboard" in res.stdout
    again = _cli("run", "--cases", str(folder), "--doctor", "random", "--episodes-per-case", "2", "--seed", "3",
                 "--out", str(tmp_path / "again"))
    first = [r for r in records if r["doctor"] == "random"]
    second = [json.loads(x) for x in (tmp_path / "again" / "results.jsonl").read_text().splitlines()]
    assert again.returncode == 0 and first == second
