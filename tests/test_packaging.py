"""A non-editable install carries the bundled data (catalogues, cases, personas, rubrics)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contains_bundled_data(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == 0, res.stderr
    wheel = next(tmp_path.glob("clinic_env-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for folder, minimum in [("clinic_env/_bundled/personas/", 12), ("clinic_env/_bundled/rubrics/", 1),
                            ("clinic_env/data/cases/", 60), ("clinic_env/data/catalogues/", 4)]:
        found = [n for n in names if n.startswith(folder) and n.endswith(".yaml")]
        assert len(found) >= minimum, (folder, len(found))
