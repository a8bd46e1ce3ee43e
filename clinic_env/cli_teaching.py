"""CLI for teaching: ``clinic-env play``, a thin layer over
:func:`clinic_env.teaching.terminal.play_in_terminal` and :class:`clinic_env.teaching.PlaySession`."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer

__all__ = ["play", "register"]


def play(
    case_id: Annotated[Optional[str], typer.Argument(help="A bundled case id (see `clinic-env cases list`) or a case file.")] = None,
    condition: Annotated[Optional[str], typer.Option("--condition", "-c", help="Generate a patient with this condition (id or ICD-10 code; `clinic-env generate --list`).")] = None,
    difficulty: Annotated[Optional[int], typer.Option(min=1, max=3, help="Generated case: 1 classic, 2 typical, 3 atypical (default: drawn).")] = None,
    persona: Annotated[Optional[str], typer.Option(help="Patient persona id or file (default: drawn from the seed).")] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the patient (and of a generated case).")] = 0,
    save: Annotated[Optional[Path], typer.Option("--save", help="Folder for session.json, feedback.md and feedback.html (default runs/play-<timestamp>/).")] = None,
    cases: Annotated[Optional[Path], typer.Option("--cases", help="A case file or folder in which CASE_ID is an id.")] = None,
    compare: Annotated[bool, typer.Option(help="Play the thorough and info-gain doctors on the same case for the feedback.")] = True,
) -> None:
    """Play a consultation in plain English at the terminal, then read the feedback.

    Ask questions in your own words, examine and order tests by their usual names, give a
    differential and a final diagnosis by name or ICD-10 code; 'done' moves on, 'help', 'hint',
    'status' and 'quit' (or Ctrl-C / Ctrl-D: the session is saved) work at any time."""
    from clinic_env.teaching import PlaySession, SessionError
    from clinic_env.teaching.terminal import play_in_terminal

    if case_id is None and condition is None:
        typer.echo("error: give a CASE_ID or --condition (see `clinic-env cases list` / `clinic-env generate --list`)", err=True)
        raise typer.Exit(2)
    try:
        session = PlaySession(case_id, condition=condition, difficulty=difficulty, persona=persona, seed=seed,
                              cases=cases)
    except SessionError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    out = save or Path("runs") / f"play-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    play_in_terminal(session, out, compare=compare)


def register(app: typer.Typer) -> None:
    """Add ``play`` to the ``clinic-env`` app."""
    app.command("play")(play)
