"""The ``clinic-env`` command line: a thin layer over the library (each command is one call)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer

from clinic_env import cli_open
from clinic_env.cli_llm import serve_app
from clinic_env.cli_tournament import AddressOpt, BackendOpt, WorkersOpt

T = TypeVar("T")

app = typer.Typer(
    name="clinic-env",
    help="Multi-agent clinical consultation environment: run, validate and inspect.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
cases_app = typer.Typer(help="Inspect the case library.", no_args_is_help=True)
app.add_typer(cases_app, name="cases")
app.add_typer(serve_app, name="serve")


def exit_on_data_error(load: Callable[[], T]) -> T:
    """Run a loader; on :class:`DataError` print one line per problem and exit with status 2."""
    from clinic_env.schema import DataError

    try:
        return load()
    except DataError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        raise typer.Exit(2) from None


def _register_subcommands() -> None:
    from clinic_env.cli_patients import register as register_patients
    from clinic_env.cli_rubrics import app as rubrics_app

    app.add_typer(rubrics_app, name="rubrics")
    register_patients(app, cases_app)
    __import__("clinic_env.cli_tournament", fromlist=["register"]).register(app)
    __import__("clinic_env.cli_report", fromlist=["register"]).register(app)
    __import__("clinic_env.cli_teaching", fromlist=["register"]).register(app)
    __import__("clinic_env.cli_teaching_web", fromlist=["register"]).register(app)


_register_subcommands()


@app.command()
def validate(
    paths: Annotated[list[Path], typer.Argument(help="Case, persona, rubric or catalogue files or folders.")],
    catalogue: Annotated[Optional[Path], typer.Option(help="Catalogue folder to check references against.")] = None,
    strict: Annotated[bool, typer.Option(help="Also apply the bundled-library standards to cases.")] = False,
) -> None:
    """Validate data files: exit 0 when all are valid, 2 with one line per problem otherwise."""
    from clinic_env.schema.validate import validate_paths

    count, problems = validate_paths(paths, catalogue=catalogue, strict=strict)
    for problem in problems:
        typer.echo(str(problem), err=True)
    if problems:
        typer.echo(f"{len(problems)} problem(s) in {count} file(s)", err=True)
        raise typer.Exit(2)
    typer.echo(f"{count} file(s) valid")


@cases_app.command("list")
def cases_list(
    cases: Annotated[Optional[Path], typer.Option("--cases", help="A case file or folder (default: bundled).")] = None,
    specialty: Annotated[Optional[str], typer.Option(help="Only this specialty.")] = None,
) -> None:
    """Print the cases as a table."""
    from rich.console import Console
    from rich.table import Table

    from clinic_env.schema import load_cases, load_catalogue

    library = exit_on_data_error(lambda: load_cases(cases))
    cat = load_catalogue()
    table = Table(title=f"{len(library)} cases")
    for column in ("id", "specialty", "age/sex", "setting", "gold", "diagnosis", "facts", "tests"):
        table.add_column(column)
    for case in library:
        if specialty and case.specialty != specialty:
            continue
        dx = cat.diagnoses.get(case.gold_diagnosis)
        demo = case.demographics
        table.add_row(
            case.id, case.specialty, f"{demo.age:g}{demo.sex}", case.setting, case.gold_diagnosis,
            dx.label if dx else "?", str(len(case.history)), str(len(case.exam) + len(case.tests)),
        )
    Console(width=160).print(table)


def _print_leaderboard(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    from clinic_env.leaderboard import FLAGS, METRICS

    table = Table(title="Leaderboard (mean ± 95% CI; columns from the reward registry)")
    shown = [name for name, _ in METRICS if any(row[name][0] for row in rows) or name in ("reward", "diagnosis")]
    columns = (*shown, "exact_dx", *FLAGS)
    for col in ("doctor", "n", *columns):
        table.add_column(col, justify="left" if col == "doctor" else "right")
    for row in rows:
        cells = []
        for col in columns:
            mean, ci = row[col]
            fmt = ".0f" if col in ("cost_usd", "doctor_turns") else ".2f" if col in FLAGS else ".3f"
            cells.append(f"{mean:{fmt}} ± {ci:{fmt}}")
        n = f"{row['episodes']}" + (f" ({row['errors']} err)" if row["errors"] else "")
        table.add_row(str(row["doctor"]), n, *cells)
    Console(width=200).print(table)


@app.command()
def run(
    cases: Annotated[Optional[Path], typer.Option("--cases", help="Case file or folder (default: bundled library).")] = None,
    split: Annotated[Optional[str], typer.Option("--split", help="Benchmark split NAME:PART, e.g. generated-v1:test "
                                                 "(clinic_env.splits; exclusive with --cases).")] = None,
    doctor: Annotated[Optional[list[str]], typer.Option("--doctor", help="Doctor policy (repeatable).")] = None,
    episodes_per_case: Annotated[int, typer.Option(min=1, help="Episodes per case and doctor.")] = 1,
    seed: Annotated[int, typer.Option(help="Run seed.")] = 0,
    out: Annotated[Optional[Path], typer.Option(help="Output folder (default runs/<timestamp>/).")] = None,
    persona: Annotated[Optional[str], typer.Option(help="Persona id or file (default: all bundled, drawn per episode).")] = None,
    max_cycles: Annotated[int, typer.Option(min=1, help="Cycle budget per episode.")] = 150,
    api_base: Annotated[Optional[str], typer.Option(help="Server URL for llm:MODEL doctors (e.g. http://127.0.0.1:8000/v1).")] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Episodes in flight for llm:MODEL doctors.")] = 8,
    timeout: Annotated[float, typer.Option(min=0.001, help="Seconds per LLM call attempt (retried with backoff).")] = 60.0,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out (structured doctors).")] = False,
    allow_failures: Annotated[bool, typer.Option("--allow-failures", help="Exit 0 even when episodes failed.")] = False,
    mode: cli_open.ModeOpt = "auto",
    protocol: cli_open.ProtocolOpt = None,
    patient: cli_open.PatientOpt = None,
    examiner: cli_open.ExaminerOpt = None,
    measurement: cli_open.MeasurementOpt = None,
    moderator: cli_open.ModeratorOpt = None,
    max_doctor_turns: cli_open.TurnsOpt = None,
    doctor_bias: cli_open.DoctorBiasOpt = None,
    patient_bias: cli_open.PatientBiasOpt = None,
    doctor_api_base: cli_open.DoctorBaseOpt = None,
    patient_api_base: cli_open.PatientBaseOpt = None,
    examiner_api_base: cli_open.ExaminerBaseOpt = None,
    measurement_api_base: cli_open.MeasurementBaseOpt = None,
    moderator_api_base: cli_open.ModeratorBaseOpt = None,
    case_format: cli_open.FormatOpt = "auto",
    backend: BackendOpt = "local",
    address: AddressOpt = None,
    workers: WorkersOpt = None,
) -> None:
    """Play every case with each doctor against the default patient and examiner; print a
    leaderboard and write results.jsonl and summary.json. Structured doctors (any spec of
    ``clinic-env tournament``, played in this process) go through the durable tournament engine:
    each episode is written as it finishes, ``--resume`` continues a killed run, and the exit status
    is 1 when episodes failed unless ``--allow-failures``. A doctor ``llm:MODEL`` (e.g.
    ``llm:hosted_vllm/NAME`` with ``--api-base``, or any litellm model) plays in text mode.
    ``--mode open`` (or ``--protocol``) plays free-dialogue consultations (:mod:`clinic_env.cli_open`).
    ``--backend ray`` spreads structured and llm: episodes over Ray actors (``--concurrency`` stays one
    global limit; docs/SCALING.md); the records are the local backend's."""
    import datetime

    from clinic_env.cli_tournament import backend_of, finish, play_tournament, ray_session, source_of
    from clinic_env.competition import DoctorSpecError, parse_doctor_spec

    open_roles = {"patient": patient, "examiner": examiner, "measurement": measurement, "moderator": moderator}
    role_bases = {"doctor": doctor_api_base, "patient": patient_api_base, "examiner": examiner_api_base,
                  "measurement": measurement_api_base, "moderator": moderator_api_base}
    if mode not in ("auto", "open"):
        typer.echo(f"error: --mode must be auto or open, got {mode!r}", err=True)
        raise typer.Exit(2)
    if mode == "open" or protocol is not None:
        if backend != "local":
            typer.echo("error: --backend ray plays structured and llm: doctors; open-mode runs play locally", err=True)
            raise typer.Exit(2)
        if resume:
            typer.echo("error: --resume covers structured doctors only; start open-mode runs afresh", err=True)
            raise typer.Exit(2)
        out = out or Path("runs") / datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        cli_open.run_open(cases, split, case_format, doctor or list(cli_open.OPEN_DOCTORS), roles=open_roles, protocol=protocol,
                          max_doctor_turns=max_doctor_turns, doctor_bias=doctor_bias, patient_bias=patient_bias,
                          api_base=api_base, role_api_base=role_bases, out=out, episodes_per_case=episodes_per_case,
                          seed=seed, concurrency=concurrency, timeout=timeout, persona=persona,
                          allow_failures=allow_failures, source=source_of(cases, split))
        return
    stray = cli_open.given_flags(**open_roles, max_doctor_turns=max_doctor_turns, doctor_bias=doctor_bias,
                                 patient_bias=patient_bias, **{f"{r}_api_base": u for r, u in role_bases.items()})
    if stray:
        typer.echo(f"error: {', '.join(stray)} need(s) --mode open", err=True)
        raise typer.Exit(2)
    doctors = doctor or ["random", "thorough", "info-gain"]
    structured = [d for d in doctors if not d.startswith(("llm:", "vllm:"))]
    llm_doctors = [d for d in doctors if d.startswith(("llm:", "vllm:"))]
    for spec in structured:
        try:
            parse_doctor_spec(spec)
        except DoctorSpecError as exc:
            typer.echo(f"error: {exc} or llm:MODEL", err=True)
            raise typer.Exit(2) from None
    if resume and llm_doctors:
        typer.echo("error: --resume covers structured doctors only; run the llm: doctors in their own --out", err=True)
        raise typer.Exit(2)
    runner = backend_of(backend, address, workers)
    library = _coded_only(cli_open.load_run_cases(cases, split, case_format))
    out = out or Path("runs") / datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    env_kwargs = {"max_cycles": max_cycles, **({"persona": persona} if persona else {})}
    if not llm_doctors:
        result = play_tournament(structured, library, out=out, episodes_per_case=episodes_per_case, seed=seed,
                                 resume=resume, env_kwargs=env_kwargs, isolate=False, source=source_of(cases, split),
                                 backend=runner)
        finish(result, allow_failures)
        return
    with ray_session(runner):  # one Ray for the structured and the llm: doctors (nothing when local)
        _run_with_llm_doctors(structured, llm_doctors, library, out, episodes_per_case, seed, env_kwargs,
                              source_of(cases, split), api_base, concurrency, timeout, allow_failures, runner)


def _coded_only(library: list[Any]) -> list[Any]:
    """The cases a structured or text run can score (a gold with an ICD-10 code); the others are
    named in one warning line (open mode plays them); exit 2 when none is left."""
    import warnings

    from clinic_env.envs.setup import coded_cases

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kept: list[Any] = exit_on_data_error(lambda: coded_cases(library))
    for w in caught:
        typer.echo(f"warning: {w.message} (use --mode open)", err=True)
    return kept


def _run_with_llm_doctors(structured: list[str], llm_doctors: list[str], library: list[Any], out: Path,
                          episodes_per_case: int, seed: int, env_kwargs: dict[str, Any], source: dict[str, Optional[str]],
                          api_base: Optional[str], concurrency: int, timeout: float, allow_failures: bool,
                          runner: Any = None) -> None:
    """``run`` with ``llm:`` doctors: the structured ones through the tournament engine, then the
    LLM ones in text mode, their records appended and the summary rewritten.

    Failed episodes of any doctor (``llm_error`` when a server gave no usable answer) make the exit
    status 1 unless ``allow_failures``, with one line per distinct reason and its count; the
    leaderboard shows only doctors with a finished episode (never a row of NaNs). Credentials in
    the command line, the URL and the error messages are redacted in everything written or printed.
    """
    import sys
    from collections import Counter

    from rich.progress import Progress

    from clinic_env.cli_llm import play_doctors
    from clinic_env.cli_tournament import finish, play_tournament
    from clinic_env.competition.store import ResultsFile, write_json_atomic
    from clinic_env.competition.summary import episode_failed, statistics
    from clinic_env.leaderboard import leaderboard
    from clinic_env.llm.redact import redact, redact_argv, redact_data
    from clinic_env.rollout import write_records
    from clinic_env.schema import DataError

    sys.argv[1:] = redact_argv(sys.argv[1:])  # summaries record the command line
    result = None
    if structured:
        result = play_tournament(structured, library, out=out, episodes_per_case=episodes_per_case, seed=seed,
                                 resume=False, env_kwargs=env_kwargs, isolate=False, source=source, backend=runner)
    else:
        out.mkdir(parents=True, exist_ok=True)
    try:
        with Progress(transient=False) as progress:
            task = progress.add_task("llm episodes", total=len(library) * len(llm_doctors) * episodes_per_case)
            if runner is None:
                llm_records, extra = play_doctors(library, llm_doctors, episodes_per_case, seed, env_kwargs, api_base,
                                                  concurrency, timeout, on_episode=lambda _r: progress.advance(task))
            else:  # --backend ray: async actors under one global --concurrency
                from clinic_env.rollout_backends.ray_llm import play_llm_doctors_ray

                llm_records, extra = play_llm_doctors_ray(
                    library, llm_doctors, episodes_per_case, seed, env_kwargs, api_base, concurrency, timeout,
                    workers=runner.workers, address=runner.address, on_episode=lambda _r: progress.advance(task))
    except (KeyError, ValueError, DataError) as exc:
        typer.echo(f"error: {redact(str(exc))}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        typer.echo("interrupted: the llm: episodes of this run were not written", err=True)
        raise typer.Exit(130) from None
    if result is None:
        write_records(llm_records, out / "results.jsonl")
        records = llm_records
        summary: dict[str, Any] = {"seed": seed, "doctors": llm_doctors, "cases": len(library),
                                   "episodes_per_case": episodes_per_case,
                                   **({"split": source["split"]} if source["split"] else {})}
    else:
        with ResultsFile(out / "results.jsonl") as sink:
            for record in llm_records:
                sink.append(record.to_json())
        records = [*result.records, *llm_records]
        summary = dict(result.summary)
        summary["doctors"] = [*summary["doctors"], *llm_doctors]
    failures = dict(Counter((r.errors[0] if r.errors else f"end_reason {r.end_reason}")[:200]
                            for r in records if episode_failed(r)))
    summary.update(episodes=len(records), leaderboard=leaderboard(records), **extra, **statistics(records, seed),
                   failures=failures)
    summary = redact_data(summary)
    write_json_atomic(out / "summary.json", summary)
    for doctor, row in (summary.get("llm") or {}).items():
        for warning in row.get("warnings", ()):
            typer.echo(f"warning: {doctor}: {warning}", err=True)
    shown = [row for row in summary["leaderboard"] if row["episodes"] > row["errors"]]
    if result is not None:
        result.records, result.summary = records, {**summary, "leaderboard": shown}
        finish(result, allow_failures, failures)
        return
    if shown:
        _print_leaderboard(shown)
    if failures:
        typer.echo(f"{sum(failures.values())} of {len(records)} episode(s) failed:", err=True)
        for reason, n in sorted(failures.items(), key=lambda kv: -kv[1]):
            typer.echo(f"  {n} x {reason}", err=True)
    typer.echo(f"wrote {len(records)} episode records to {out / 'results.jsonl'} and {out / 'summary.json'}")
    if failures and not allow_failures:
        typer.echo("exit 1: episodes failed (pass --allow-failures to accept them)", err=True)
        raise typer.Exit(1)


def main() -> None:
    """Entry point of the ``clinic-env`` script.

    A bad data file or path that a command did not report itself still ends as exit status 2
    with one line per problem, never a traceback.
    """
    import sys

    from clinic_env.schema import DataError

    try:
        app()
    except DataError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        sys.exit(2)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        typer.echo(f"error: {where}{exc.strerror or exc}", err=True)
        sys.exit(2)
    except (RecursionError, MemoryError) as exc:
        typer.echo(f"error: input too large or too deeply nested ({type(exc).__name__})", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
