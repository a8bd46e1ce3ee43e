"""The examples run end to end."""

from __future__ import annotations

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
