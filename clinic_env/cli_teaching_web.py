"""CLI for the teaching web page: ``clinic-env web``, a thin layer over :func:`clinic_env.teaching.web.serve`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register", "web"]


def web(
    host: Annotated[str, typer.Option(help="Address to listen on (loopback only unless --allow-remote).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    runs: Annotated[Path, typer.Option("--runs", help="Folder of run folders to browse.")] = Path("runs"),
    allow_remote: Annotated[bool, typer.Option("--allow-remote", help="Allow a --host other machines can reach "
                                               "(the page has no log-in).")] = False,
    max_sessions: Annotated[int, typer.Option(min=1, help="Most consultations kept at once.")] = 32,
    idle_minutes: Annotated[float, typer.Option(min=1, help="Minutes after which an idle consultation is dropped.")] = 60,
) -> None:
    """Serve the teaching web page: play a case in the browser, read the feedback, browse run folders."""
    try:
        from clinic_env.teaching.web import WebError, is_loopback, serve
    except ImportError as exc:
        typer.echo(f'error: clinic-env web needs the "web" extra ({exc.name} is missing): '
                   'pip install "clinic-env[web]"', err=True)
        raise typer.Exit(2) from None
    if not is_loopback(host) and not allow_remote:
        typer.echo(f"error: --host {host}: not a loopback address; the page has no log-in, so serving it to "
                   "other machines needs --allow-remote", err=True)
        raise typer.Exit(2)
    typer.echo(f"clinic-env web: http://{'[' + host + ']' if ':' in host else host}:{port}/ (Ctrl-C stops it)")
    try:
        serve(host, port, runs, allow_remote=allow_remote, max_sessions=max_sessions, idle_s=idle_minutes * 60)
    except WebError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None


def register(app: typer.Typer) -> None:
    """Add ``web`` to the ``clinic-env`` app."""
    app.command("web")(web)
