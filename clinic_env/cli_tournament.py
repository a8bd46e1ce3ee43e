"""``clinic-env tournament``: a thin layer over :func:`clinic_env.competition.run_tournament`, which
``clinic-env run`` uses too for its structured doctors.

Exit status: 0 when every episode was played (forfeits included: they are the doctor's outcome),
1 when episodes failed (their reasons and counts are printed; ``--allow-failures`` makes it 0),
2 on a usage error (unknown doctor spec, folder locked or already holding a run, bad cases),
130 or 143 when interrupted by Ctrl-C or SIGTERM (``--resume`` continues).

Private cases: ``--private-generated N [--conditions ID,...]`` generates N cases at start from
:func:`~clinic_env.competition.isolation.secret_seed` (``$CLINIC_ENV_SECRET_SEED`` or 63 random bits;
never written, printed or passed to a policy process) under opaque ids, and keeps them in the
owner-only run folder (``private_cases.jsonl``, 600) for ``--resume``; ``--cases PATH --private``
makes a case folder or file owner-only and tells the isolated doctors' processes not to read it.
Either way the run folder is 700 (files 600). See ``docs/COMPETITIONS.md``.
"""

from __future__ import annotations

import os
import signal
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, Optional

import typer

from clinic_env.competition.tournament import Backend, TournamentResult
from clinic_env.schema.case import Case

__all__ = ["backend_of", "finish", "load_library", "play_tournament", "private_library", "ray_session", "register",
           "source_of", "tournament"]

#: The ``--backend``, ``--address`` and ``--workers`` options of ``run`` and ``tournament``.
BackendOpt = Annotated[str, typer.Option("--backend", help="Where episodes play: local (this process) or ray "
                                         "(Ray actors; needs the clinic-env[ray] extra).")]
AddressOpt = Annotated[Optional[str], typer.Option("--address", help="--backend ray: the Ray cluster to join "
                                                   "(default $RAY_ADDRESS, else a local Ray with --workers CPUs).")]
WorkersOpt = Annotated[Optional[int], typer.Option("--workers", min=1, help="--backend ray: actors to start "
                                                   "(default: one per CPU Ray has).")]


@contextmanager
def ray_session(runner: Optional[Backend]) -> Iterator[None]:
    """One Ray session around several plays with a Ray ``runner`` (nothing for the local backend);
    exits 2 when Ray cannot start or the cluster cannot be reached."""
    if runner is None:
        yield
        return
    from clinic_env.rollout_backends import BackendError
    from clinic_env.rollout_backends.ray_pool import RaySession

    session = RaySession(getattr(runner, "address", None), getattr(runner, "workers", None))
    try:
        session.open()
    except BackendError as exc:
        raise _fail(str(exc)) from None
    try:
        yield
    finally:
        session.close()


def backend_of(name: str, address: Optional[str], workers: Optional[int]) -> Optional[Backend]:
    """The backend of ``--backend/--address/--workers`` (None: local); exits 2 on bad options or a missing extra."""
    from clinic_env.rollout_backends import BackendError, make_backend

    try:
        return make_backend(name, address=address, workers=workers)
    except BackendError as exc:
        raise _fail(str(exc)) from None


def load_library(cases: Optional[Path], split: Optional[str]) -> list[Case]:
    """The cases of ``--cases PATH`` or ``--split NAME:PART`` (exclusive); exits 2 with one line per problem."""
    from clinic_env.cli import exit_on_data_error
    from clinic_env.schema import load_cases

    if split is None:
        return exit_on_data_error(lambda: load_cases(cases))
    from clinic_env.splits import SplitError, load_spec

    if cases is not None:
        typer.echo("error: --split and --cases are exclusive; give one", err=True)
        raise typer.Exit(2)
    try:
        return exit_on_data_error(lambda: load_spec(split))
    except SplitError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def source_of(cases: Optional[Path], split: Optional[str]) -> dict[str, Optional[str]]:
    """Where the cases came from, for the summary."""
    return {"cases_path": None if cases is None else str(cases), "split": split}


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def private_library(n: int, conditions: Optional[str], out: Path, resume: bool) -> tuple[list[Case], dict[str, Any]]:
    """The cases of ``--private-generated N [--conditions ...]`` and their description for the summary.

    A fresh run draws the secret seed and generates; ``--resume`` reloads ``OUT/private_cases.jsonl``
    (the seed is not stored, so the cases could not be generated again). Exits 2 on bad conditions,
    a kept case file that does not match ``N``, or a run to resume that lost its cases.
    """
    from clinic_env.competition import TournamentError
    from clinic_env.competition.isolation import SECRET_SEED_VAR, secret_seed
    from clinic_env.competition.tournament import PRIVATE_CASES, generate_private_cases

    wanted = [c.strip() for c in conditions.split(",") if c.strip()] if conditions else None
    about: dict[str, Any] = {"kind": "generated", "cases": n, "conditions": wanted, "cases_file": PRIVATE_CASES,
                             "secret_seed": "not recorded"}
    kept = out / PRIVATE_CASES
    if resume and kept.exists():
        from clinic_env.cli import exit_on_data_error
        from clinic_env.schema import load_cases

        library = exit_on_data_error(lambda: load_cases(kept))
        if len(library) != n:
            raise _fail(f"{kept} holds {len(library)} case(s), not --private-generated {n}; resume with the same arguments")
        return library, about
    if resume and (out / "summary.json").exists() and SECRET_SEED_VAR not in os.environ:
        raise _fail(f"cannot resume {out}: {PRIVATE_CASES} is missing and the cases cannot be generated again "
                    f"without the secret seed, which is never stored (set ${SECRET_SEED_VAR} to the seed the run "
                    "used, or start a new run in another --out)")
    try:
        return generate_private_cases(n, secret_seed(), wanted), about
    except (TournamentError, ValueError) as exc:
        raise _fail(str(exc)) from None


@contextmanager
def _printed_warnings() -> Iterator[None]:
    """Isolation warnings as one ``warning: ...`` line each on stderr."""
    try:
        from clinic_env.competition.isolation import IsolationWarning
    except ImportError:  # no isolation on this platform: nothing to warn about
        yield
        return

    def show(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
        typer.echo(f"warning: {message}", err=True)

    with warnings.catch_warnings():
        warnings.simplefilter("always", IsolationWarning)
        warnings.showwarning = show
        yield


@contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """SIGTERM ends the run like Ctrl-C: the results file is synced, the summary says ``interrupted``."""
    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _print_failures(result: TournamentResult) -> None:
    failures = result.failures
    if failures:
        typer.echo(f"{sum(failures.values())} of {len(result.records)} episode(s) failed:", err=True)
        for reason, n in sorted(failures.items(), key=lambda kv: -kv[1]):
            typer.echo(f"  {n} x {reason}", err=True)
    if result.forfeits:
        typer.echo("forfeited episodes (scored, not failures): "
                   + ", ".join(f"{d} {n}" for d, n in result.forfeits.items()), err=True)
    moves = result.summary.get("move_failures") or {}
    if moves:
        typer.echo(f"{sum(moves.values())} failed move(s) of isolated doctors (penalised no-ops):", err=True)
        for reason, n in sorted(moves.items(), key=lambda kv: -kv[1])[:10]:
            typer.echo(f"  {n} x {reason}", err=True)


def play_tournament(doctors: Sequence[str], library: Sequence[Case], *, out: Path, episodes_per_case: int,
                    seed: int, resume: bool, env_kwargs: Mapping[str, Any], isolate: Optional[bool],
                    move_timeout_s: float = 5.0, memory_mb: int = 1024,
                    source: Optional[Mapping[str, Any]] = None, private: Optional[Mapping[str, Any]] = None,
                    private_paths: Sequence[Path] = (), keep_cases: bool = False,
                    backend: Optional[Backend] = None) -> TournamentResult:
    """Run the tournament with a progress bar; exit 2 on usage errors and 130/143 when interrupted.
    ``source`` (``cases``, ``split``) goes into the summary's arguments with the command line;
    ``private``, ``private_paths``, ``keep_cases`` and ``backend`` as in
    :func:`~clinic_env.competition.run_tournament`; a Ray backend's worker deaths are reported on stderr.

    Failed episodes do not exit here: the caller prints and decides (``run`` still has LLM doctors to play).
    """
    from rich.progress import Progress

    from clinic_env.competition import EpisodesFailedError, TournamentError, parse_doctor_spec, run_tournament
    from clinic_env.schema import DataError

    try:
        specs = [parse_doctor_spec(d) for d in doctors]
    except TournamentError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    with _printed_warnings(), Progress(transient=False) as progress, _sigterm_as_exit():
        task = progress.add_task("episodes", total=None)

        def started(total: int, done: int) -> None:
            progress.update(task, total=total, completed=done)
            if done:
                progress.console.print(f"resuming {out}: {done} of {total} episode(s) already done", soft_wrap=True)

        try:
            return run_tournament(specs, library, out=out, episodes_per_case=episodes_per_case, seed=seed,
                                  resume=resume, allow_failures=False, env_kwargs=env_kwargs, isolate=isolate,
                                  move_timeout_s=move_timeout_s, memory_mb=memory_mb, on_start=started,
                                  on_episode=lambda _r: progress.advance(task), metadata={"argv": sys.argv[1:], **(source or {})},
                                  private=private, private_paths=private_paths, keep_cases=keep_cases,
                                  backend=backend)
        except EpisodesFailedError as exc:
            return exc.result
        except DataError as exc:
            for problem in exc.problems:
                typer.echo(str(problem), err=True)
            raise typer.Exit(2) from None
        except (TournamentError, KeyError, ValueError) as exc:
            typer.echo(f"error: {exc.args[0] if isinstance(exc, KeyError) and exc.args else exc}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.echo(f"interrupted; continue with the same arguments and --resume (records in {out})", err=True)
            raise typer.Exit(130) from None
        finally:
            _print_worker_deaths(backend)


def _print_worker_deaths(backend: Optional[Backend]) -> None:
    stats = getattr(backend, "stats", None)
    if stats is not None and stats.deaths:
        typer.echo(f"ray: {stats.deaths} worker(s) died; {stats.retried} episode(s) played again on another worker, "
                   f"{stats.lost} lost twice (recorded as failed)", err=True)


def finish(result: TournamentResult, allow_failures: bool, failures: Optional[Mapping[str, int]] = None) -> None:
    """Print the leaderboard, failures and where the files are; exit 1 on ``failures`` (default: the
    result's) unless allowed."""
    from clinic_env.cli import _print_leaderboard

    _print_leaderboard(result.summary["leaderboard"])
    _print_failures(result)
    typer.echo(f"wrote {len(result.records)} episode records to {result.out / 'results.jsonl'} and "
               f"{result.out / 'summary.json'}" + (f" ({result.resumed} from before)" if result.resumed else ""))
    if (result.failures if failures is None else failures) and not allow_failures:
        typer.echo("exit 1: episodes failed (pass --allow-failures to accept them)", err=True)
        raise typer.Exit(1)


def tournament(
    doctor: Annotated[list[str], typer.Option("--doctor", help="Doctor spec (repeatable): a built-in or plugin name, "
                                              "module:attr or path/to/file.py:Name, optionally LABEL=SPEC.")],
    out: Annotated[Path, typer.Option(help="Run folder: results.jsonl, summary.json, .lock.")],
    cases: Annotated[Optional[Path], typer.Option("--cases", help="Case file or folder (default: bundled library).")] = None,
    split: Annotated[Optional[str], typer.Option("--split", help="Benchmark split NAME:PART (exclusive with --cases).")] = None,
    episodes_per_case: Annotated[int, typer.Option(min=1, help="Episodes per case and doctor.")] = 1,
    seed: Annotated[int, typer.Option(help="Run seed: every episode's seed and persona derive from it.")] = 0,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out: play only missing episodes.")] = False,
    allow_failures: Annotated[bool, typer.Option("--allow-failures", help="Exit 0 even when episodes failed.")] = False,
    persona: Annotated[Optional[str], typer.Option(help="Persona id or file (default: all bundled, drawn per episode).")] = None,
    max_cycles: Annotated[int, typer.Option(min=1, help="Cycle budget per episode.")] = 150,
    isolate: Annotated[Optional[bool], typer.Option("--isolate/--no-isolate", help="Run doctors in their own "
                                                    "processes (default: all but the built-ins).")] = None,
    move_timeout: Annotated[float, typer.Option(min=0.001, help="Isolated doctors: seconds per move.")] = 5.0,
    memory_mb: Annotated[int, typer.Option(min=64, help="Isolated doctors: memory limit per process (MiB).")] = 1024,
    private_generated: Annotated[Optional[int], typer.Option(
        "--private-generated", min=1, help="Play N private cases generated at start from a secret seed "
        "($CLINIC_ENV_SECRET_SEED or random; never stored) under opaque ids; exclusive with --cases/--split.")] = None,
    conditions: Annotated[Optional[str], typer.Option(
        "--conditions", help="With --private-generated: knowledge-base condition ids to draw from, comma-separated "
        "(default: all).")] = None,
    private: Annotated[bool, typer.Option("--private", help="With --cases: the cases are private: make them and the "
                                          "run folder owner-only, and keep the doctors' processes out.")] = False,
    backend: BackendOpt = "local",
    address: AddressOpt = None,
    workers: WorkersOpt = None,
) -> None:
    """Play every case with every doctor on shared seeds and personas (paired), writing each episode
    to OUT/results.jsonl as it finishes; --resume continues a killed run. Exit 1 when episodes failed.
    Private cases: --private-generated N, or --cases PATH --private (see docs/COMPETITIONS.md).
    --backend ray spreads the episodes over Ray actors (docs/SCALING.md); the results are the same."""
    runner = backend_of(backend, address, workers)
    about: Optional[dict[str, Any]] = None
    hidden: list[Path] = []
    if private_generated is not None:
        if cases is not None or split is not None:
            raise _fail("--private-generated makes its own cases; it is exclusive with --cases and --split")
        library, about = private_library(private_generated, conditions, out, resume)
    else:
        if conditions is not None:
            raise _fail("--conditions needs --private-generated")
        if private and cases is None:
            raise _fail("--private needs --cases PATH (the bundled library and the splits are public)")
        library = load_library(cases, split)
        if private and cases is not None:
            about, hidden = {"kind": "folder" if cases.is_dir() else "file", "path": str(cases)}, [cases]
    env_kwargs: dict[str, Any] = {"max_cycles": max_cycles, **({"persona": persona} if persona else {})}
    result = play_tournament(doctor, library, out=out, episodes_per_case=episodes_per_case, seed=seed, resume=resume,
                             env_kwargs=env_kwargs, isolate=isolate, move_timeout_s=move_timeout, memory_mb=memory_mb,
                             source=source_of(cases, split), private=about, private_paths=hidden,
                             keep_cases=private_generated is not None, backend=runner)
    finish(result, allow_failures)


def register(app: typer.Typer) -> None:
    """Add ``tournament`` to the ``clinic-env`` app."""
    app.command("tournament")(tournament)
