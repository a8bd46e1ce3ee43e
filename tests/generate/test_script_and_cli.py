"""Standardised-patient scripts (Markdown and HTML) and the generate / cases export CLI."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import clinic_env
from clinic_env.cli import app
from clinic_env.generate import CaseGenerator, export_script

runner = CliRunner()


def test_markdown_script_has_all_parts(cases: list[clinic_env.Case]) -> None:
    case = next(c for c in cases if c.id == "card-nstemi")
    md = export_script(case, "md")
    for part in ("Candidate instructions", "Standardised patient script", "Examination and results cards",
                 "Examiner's checklist", "Answer key", case.opening_statement, "- [ ] "):
        assert part in md
    assert "SCRIPTED INCONSISTENCY" in md  # the case has a scripted contradiction
    assert case.gold_diagnosis in md.split("## 5. Answer key")[1]
    assert case.gold_diagnosis not in md.split("## 3.")[0]  # not before the answer key


def test_html_script_is_well_formed_and_escaped() -> None:
    made = CaseGenerator().generate("acute-cholecystitis", seed=2, persona="anxious-worrier")
    html = export_script(made.case, "html", made.persona)

    class Check(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.stack: list[str] = []
            self.tables = 0

        def handle_starttag(self, tag: str, attrs: list) -> None:
            if tag not in ("meta",):
                self.stack.append(tag)
            self.tables += tag == "table"

        def handle_endtag(self, tag: str) -> None:
            assert self.stack and self.stack.pop() == tag

    parser = Check()
    parser.feed(html)
    assert parser.stack == [] and parser.tables >= 3
    assert "Anxious worrier" in html and "@media print" in html
    with pytest.raises(ValueError, match="format"):
        export_script(made.case, "pdf")


def test_cli_generate_writes_valid_cases_and_scripts(tmp_path: Path) -> None:
    out = tmp_path / "gen"
    result = runner.invoke(app, ["generate", "--n", "4", "--seed", "7", "--out", str(out), "--export", "md"])
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("*.yaml"))) == 4 and len(list(out.glob("*.sp.md"))) == 4
    assert "valid (strict)" in result.output
    assert len(clinic_env.load_cases(out)) == 4
    again = runner.invoke(app, ["generate", "-c", "gout-flare", "--seed", "1", "--sex", "M"])
    assert again.exit_code == 0 and yaml.safe_load(again.output)["gold_diagnosis"] == "M10.0"
    assert runner.invoke(app, ["generate", "-c", "gout-flare", "--seed", "1", "--sex", "M"]).output == again.output
    listing = runner.invoke(app, ["generate", "--list"])
    assert listing.exit_code == 0 and "appendicitis" in listing.output
    bad = runner.invoke(app, ["generate", "-c", "testicular-torsion", "--sex", "F"])
    assert bad.exit_code == 2 and "sex" in bad.output


def test_cli_cases_export(tmp_path: Path) -> None:
    result = runner.invoke(app, ["cases", "export", "card-nstemi", "--format", "md"])
    assert result.exit_code == 0 and "# OSCE station" in result.output
    out = tmp_path / "s.html"
    result = runner.invoke(app, ["cases", "export", "card-nstemi", "--format", "html", "--out", str(out)])
    assert result.exit_code == 0 and out.read_text().startswith("<!DOCTYPE html>")
    assert runner.invoke(app, ["cases", "export", "no-such-case"]).exit_code == 2
