"""The HTML report (clinic_env.competition.report, ``clinic-env report``): contents, exports, bad run
folders, escaping, and a render in headless Chromium with no console errors and no network."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import clinic_env
from clinic_env.cli import app
from clinic_env.competition.report import ReportError, load_run, write_report
from clinic_env.records import EpisodeRecord, Turn, load
from clinic_env.rollout import run_batch, write_records

DOCTORS = ["random", "thorough", "info-gain"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, small_cases: list[clinic_env.Case]) -> Path:
    """A real run: every doctor on a few bundled cases from different specialties."""
    out = tmp_path_factory.mktemp("run")
    write_records(run_batch(small_cases[:4], DOCTORS, seed=3), out / "results.jsonl")
    (out / "summary.json").write_text(json.dumps({"seed": 3, "doctors": DOCTORS, "version": clinic_env.__version__}))
    return out


@pytest.fixture(scope="module")
def report_html(run_dir: Path) -> Path:
    written = write_report(run_dir)
    return written.html


def test_report_contents_and_exports(run_dir: Path, report_html: Path) -> None:
    html = report_html.read_text(encoding="utf-8")
    for section in ("leaderboard", "plots", "paired", "cases", "replays", "run"):
        assert f'id="{section}"' in html
    for label in ("reward distributions per doctor", "paired differences forest plot", "cost versus accuracy",
                  "mean reward per specialty heat map", "rates per doctor"):
        assert f'aria-label="{label}"' in html
    assert html.count('<details class="ep"') == 12  # 4 cases x 3 doctors
    assert "History taking" in html and "Final diagnosis" in html and 'class="v v-met"' in html
    with (run_dir / "report_episodes.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 12 and {"doctor", "case_id", "totals.reward", "exact_dx", "flag.dangerous_miss"} <= set(rows[0])
    parquet = run_dir / "report_episodes.parquet"
    try:
        import pandas as pd
        import pyarrow  # noqa: F401
    except ImportError:
        assert not parquet.exists()
    else:
        frame = pd.read_parquet(parquet)
        assert len(frame) == 12
        assert frame["totals.reward"].tolist() == pytest.approx([float(r["totals.reward"]) for r in rows])


def test_records_load_is_a_dataframe(run_dir: Path) -> None:
    pytest.importorskip("pandas")
    frame = load(run_dir)
    assert len(frame) == 12 and sorted(frame["doctor"].unique()) == sorted(DOCTORS)
    assert frame.groupby("doctor")["totals.reward"].mean().notna().all()


def test_report_is_self_contained(report_html: Path) -> None:
    html = report_html.read_text(encoding="utf-8")
    assert "http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'" in html
    for external in ("<link", " src=", "url(", "@import", "http://", "https://"):
        assert external not in html
    assert html.count("<script") == 1 and html.count("<style") == 1


def test_record_text_is_escaped(tmp_path: Path) -> None:
    evil = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    record = EpisodeRecord(case_id=evil, doctor=f"dr{evil}", seed=1, env_version="v", specialty=evil, persona=evil,
                           final_diagnosis=evil, gold_diagnosis="I21.0", flags=[evil], errors=[evil],
                           totals={"reward": 1.0},
                           turns=[Turn(cycle=0, agent="doctor_0", segment=evil, action=f"ask:{evil}", text=evil,
                                       violations=[evil], said=evil, interruption=evil)])
    other = record.model_copy(update={"doctor": "plain"})
    (tmp_path / "results.jsonl").write_text(record.to_json() + "\n" + other.to_json() + "\n", encoding="utf-8")
    (tmp_path / "summary.json").write_text(json.dumps({evil: evil, "args": [evil]}))
    html = write_report(tmp_path).html.read_text(encoding="utf-8")
    assert "<script>alert" not in html and "<img" not in html and "onerror=alert(2)>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count("<script") == 1


@pytest.mark.parametrize(("setup", "message"), [
    ("missing", "no such folder"),
    ("file", "not a folder"),
    ("no_results", "results.jsonl: missing"),
    ("empty", "no episode records"),
    ("malformed", "results.jsonl:2: not an episode record"),
    ("invalid_record", "results.jsonl:1: not an episode record (doctor: Field required)"),
    ("not_utf8", "not UTF-8"),
    ("bad_summary", "summary.json: not valid JSON"),
])
def test_bad_run_folder_exits_2_with_one_line(tmp_path: Path, run_dir: Path, setup: str, message: str) -> None:
    folder = tmp_path / "run"
    good = (run_dir / "results.jsonl").read_text(encoding="utf-8").splitlines()[0]
    if setup == "file":
        folder.write_text("x")
    elif setup != "missing":
        folder.mkdir()
        content = {"no_results": None, "empty": "\n", "malformed": good + '\n{"case_id": "x", \n',
                   "invalid_record": '{"case_id": "x", "seed": 1, "env_version": "v"}\n', "bad_summary": good}
        if setup == "not_utf8":
            (folder / "results.jsonl").write_bytes(b'{"case_id": "\xff"}\n')
        elif content[setup] is not None:
            (folder / "results.jsonl").write_text(content[setup] or "", encoding="utf-8")
        if setup == "bad_summary":
            (folder / "summary.json").write_text("{not json")
    with pytest.raises(ReportError, match=re.escape(message)):
        load_run(folder)
    result = CliRunner().invoke(app, ["report", str(folder)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    # One line naming the problem ("error: ..." from the report, or "FILE: problem" from the bounded reader).
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.output


def test_cli_entry_point(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "nested" / "page.html"
    env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "PATH": "/usr/bin:/bin"}
    ok = subprocess.run([sys.executable, "-m", "clinic_env", "report", str(run_dir), "--out", str(out)],
                        capture_output=True, text=True, timeout=120, env=env)
    assert ok.returncode == 0, ok.stderr
    assert out.is_file() and (tmp_path / "nested" / "page_episodes.csv").is_file()
    bad = subprocess.run([sys.executable, "-m", "clinic_env", "report", str(tmp_path / "nope")],
                         capture_output=True, text=True, timeout=120, env=env)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------------------- headless Chromium

def _chromium() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if path is None:
        if os.environ.get("CLINIC_ENV_REQUIRE_CHROMIUM") == "1":
            pytest.fail("chromium is required (CLINIC_ENV_REQUIRE_CHROMIUM=1): apt-get install -y chromium")
        pytest.skip("chromium not installed (Debian: apt-get install -y chromium)")
    return path


def render(page: Path, tmp_path: Path, *extra: str) -> tuple[str, list[str]]:
    """Open ``page`` in headless Chromium with the network unreachable; the DOM after scripts ran and
    the page's console lines (Chromium logs every console message, errors included, as ``:CONSOLE``)."""
    res = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
         "--disable-background-networking", "--host-resolver-rules=MAP * ~NOTFOUND",
         f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0", *extra, page.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout, [ln for ln in res.stderr.splitlines() if ":CONSOLE" in ln]


@pytest.mark.parametrize("body", [
    "<script>undefinedFunction();</script>",                  # uncaught exception
    "<script>console.error('broken');</script>",              # a logged error
    '<img src="https://example.invalid/x.png" alt="">',       # a network load the CSP blocks
])
def test_console_check_catches_errors(tmp_path: Path, body: str) -> None:
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" '
                    "content=\"default-src 'none'; script-src 'unsafe-inline'\"></head><body>" + body + "</body></html>")
    _, console = render(page, tmp_path, "--dump-dom")
    assert console, "a broken page must produce console lines"


def test_report_renders_in_chromium(report_html: Path, tmp_path: Path) -> None:
    dom, console = render(report_html, tmp_path, "--dump-dom")
    assert console == []
    assert 'data-ready="1"' in dom  # the inline script ran (the CSP hash matches)
    shot = tmp_path / "report.png"
    _, console = render(report_html, tmp_path, f"--screenshot={shot}", "--window-size=1400,2000")
    assert console == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000


def test_report_uses_the_bootstrap_settings_of_summary_json(run_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    shutil.copy(run_dir / "results.jsonl", folder)
    (folder / "summary.json").write_text(json.dumps({"statistics": {"method": {"seed": 7, "resamples": 500}}}))
    html = write_report(folder).html.read_text(encoding="utf-8")
    assert "(500\nresamples, seed 7)" in html
