"""The examples run end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize(("script", "args", "expect"), [
    ("play_one_episode.py", ["--seed", "3"], "diagnosis"),
    ("custom_doctor.py", [], "frugal"),
])
def test_example_runs(script: str, args: list[str], expect: str) -> None:
    res = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert expect in res.stdout


def test_evolve_rubrics_example_shows_the_shotgun_doctor_losing() -> None:
    res = subprocess.run([sys.executable, str(EXAMPLES / "evolve_rubrics.py")], capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["shotgun_before"] > out["thorough_before"] > out["infogain_before"]
    assert out["shotgun_after"] < out["thorough_after"]
    assert abs(out["thorough_after"] - out["thorough_before"]) < 0.05
    assert abs(out["infogain_after"] - out["infogain_before"]) < 0.05
    assert out["admitted"] and out["bank_version"] >= 1
