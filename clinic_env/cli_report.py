"""CLI for the run report: ``clinic-env report RUN_DIR``, a thin layer over
:func:`clinic_env.competition.report.write_report`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

__all__ = ["register", "report"]


def report(
    run_dir: Annotated[Path, typer.Argument(help="Run folder holding results.jsonl (and summary.json).")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="HTML file to write (default RUN_DIR/report.html).")] = None,
    replays: Annotated[int, typer.Option(min=0, help="Most episodes replayed in the page.")] = 200,
    resamples: Annotated[Optional[int], typer.Option(min=100, help="Bootstrap resamples per interval (default: as in summary.json, else 2000).")] = None,
    seed: Annotated[Optional[int], typer.Option(min=0, help="Bootstrap seed (default: as in summary.json, else 0).")] = None,
) -> None:
    """Write one self-contained HTML report of a run (leaderboard, plots, replays) and CSV/Parquet exports."""
    from clinic_env.cli import exit_on_data_error
    from clinic_env.competition.report import ReportError, write_report
    from clinic_env.schema.safe_read import read_documents

    if (run_dir / "summary.json").exists():  # bounded before the report's own json.loads
        exit_on_data_error(lambda: read_documents(run_dir / "summary.json"))
    try:
        written = write_report(run_dir, out, replays=replays, resamples=resamples, seed=seed)
    except ReportError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"wrote {written.html}")
    typer.echo(f"wrote {written.csv}")
    for note in written.notes:
        typer.echo(note)


def register(app: typer.Typer) -> None:
    """Add ``report`` to the ``clinic-env`` app."""
    app.command("report")(report)
