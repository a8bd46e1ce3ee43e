"""``clinic-env run --mode open``: free-dialogue consultations (AgentClinic's protocol) from the
command line, a thin layer over :func:`clinic_env.open.arun_open`.

Each doctor plays every case; each episode record is appended to ``OUT/results.jsonl`` as it
finishes (:class:`~clinic_env.competition.store.ResultsFile`: one whole-line write each, fsynced
within seconds), so a killed run keeps what it played. ``OUT/summary.json`` holds the diagnostic
accuracy per doctor with its Wilson 95% interval (the figure AgentClinic and its peers publish),
calls per episode and tokens per role, failures by reason, the leaderboard and the statistics.

Exit status: 0 when every episode was played (a wrong diagnosis or the turn limit is the doctor's
outcome), 1 when episodes failed (an LLM call that failed after its retries, an env error; reasons
and counts are printed; ``--allow-failures`` makes it 0), 2 on a usage error (unknown bias,
protocol or role spec, bad case file).

``--cases`` also takes a peer's case file as it is (AgentClinic JSONL, MediQ JSONL, CRAFT-MD CSV),
read through :mod:`clinic_env.importers`: ``--format`` names the format, or it is detected from
the file's first record.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

if TYPE_CHECKING:  # kept out of the CLI's start-up: imported where a run needs them
    from clinic_env.records import EpisodeRecord, RecordLike
    from clinic_env.schema.case import Case

__all__ = ["CASE_FORMATS", "detect_format", "given_flags", "load_run_cases", "redact", "run_open", "usage_summary"]

#: What ``run --format`` takes: ``auto`` (detected), ``clinic`` (clinic-env case files) or an importer's format.
CASE_FORMATS = ("auto", "clinic", "agentclinic", "mediq", "craftmd")
OPEN_DOCTORS = ("open-random", "open-oracle")
FORMAT = "clinic_env.open/1"

# Options of ``run`` that only open mode reads (declared here, so cli.py stays a list of names).
ModeOpt = Annotated[str, typer.Option(
    "--mode", help="auto: structured doctors in structured mode, llm: doctors in text mode; open: free dialogue "
    "(doctor, patient, measurement, moderator; --protocol implies it).")]
ProtocolOpt = Annotated[Optional[str], typer.Option(
    "--protocol", help="Open-mode preset: agentclinic (every role an LLM, the doctor's model unless given; 20 doctor "
    "turns; AgentClinic's prompts) or clinic (scripted roles unless given).")]
PatientOpt = Annotated[Optional[str], typer.Option("--patient", help="Open mode: llm:MODEL or case (default).")]
ExaminerOpt = Annotated[Optional[str], typer.Option("--examiner", help="Open mode: llm:MODEL or rubric (default).")]
MeasurementOpt = Annotated[Optional[str], typer.Option(
    "--measurement", help="Open mode: tests outside the case: llm:MODEL or case (default).")]
ModeratorOpt = Annotated[Optional[str], typer.Option(
    "--moderator", help="Open mode: grading of the final diagnosis: llm:MODEL or icd10 (default).")]
TurnsOpt = Annotated[Optional[int], typer.Option(
    "--max-doctor-turns", min=1, help="Open mode: the doctor's turn budget (default 20).")]
_BIAS_HELP = ("Open mode: a bias paragraph for the {}'s prompt, by id (clinic_env/data/open/biases.yaml, "
              "AgentClinic's biases: e.g. {}); default none.")
DoctorBiasOpt = Annotated[Optional[str], typer.Option(
    "--doctor-bias", help=_BIAS_HELP.format("doctor", "recency, frequency, false_consensus, confirmation"))]
PatientBiasOpt = Annotated[Optional[str], typer.Option(
    "--patient-bias", help=_BIAS_HELP.format("patient", "recency, false_consensus, self_diagnosis"))]
FormatOpt = Annotated[str, typer.Option("--format", help="Format of --cases: " + ", ".join(CASE_FORMATS) + ".")]
_BASE_HELP = "Open mode: server URL for the {} (default: --api-base)."
DoctorBaseOpt = Annotated[Optional[str], typer.Option("--doctor-api-base", help=_BASE_HELP.format("doctor"))]
PatientBaseOpt = Annotated[Optional[str], typer.Option("--patient-api-base", help=_BASE_HELP.format("patient"))]
ExaminerBaseOpt = Annotated[Optional[str], typer.Option("--examiner-api-base", help=_BASE_HELP.format("examiner"))]
MeasurementBaseOpt = Annotated[Optional[str], typer.Option("--measurement-api-base",
                                                           help=_BASE_HELP.format("measurement agent"))]
ModeratorBaseOpt = Annotated[Optional[str], typer.Option("--moderator-api-base", help=_BASE_HELP.format("moderator"))]


def redact(text: str) -> str:
    """``text`` with credentials masked (:func:`clinic_env.llm.redact.redact`)."""
    from clinic_env.llm.redact import redact as mask

    return mask(text)


def given_flags(**options: Any) -> list[str]:
    """The flags among ``options`` (keyword = flag name with ``_``) that were given (not None)."""
    return [f"--{name.replace('_', '-')}" for name, value in options.items() if value is not None]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


# ------------------------------------------------------------------------------------ case files

def _first_record(path: Path) -> Any:
    """The first non-empty JSON line or CSV header of ``path`` (bounded read), or None."""
    with path.open("rb") as fh:
        head = fh.read(1 << 20)
    for raw in head.splitlines():
        line = raw.strip()
        if not line:
            continue
        if path.suffix.lower() == ".csv":
            return line.decode("utf-8", "replace")
        try:
            return json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            return None  # not sniffable: the loader then names the file and its problem
    return None


def detect_format(path: Path) -> str:
    """The format of a case file from its first record: ``agentclinic`` (an ``OSCE_Examination``
    or a NEJM question with answers), ``mediq`` (a question with its context or facts),
    ``craftmd`` (a CSV with ``case_vignette``), else ``clinic`` (clinic-env's own files)."""
    if not path.is_file() or path.suffix.lower() not in (".jsonl", ".json", ".csv"):
        return "clinic"
    first = _first_record(path)
    if isinstance(first, str):
        return "craftmd" if "case_vignette" in first else "clinic"
    if not isinstance(first, dict):
        return "clinic"
    if "OSCE_Examination" in first or "Patient_Actor" in first or ("answers" in first and "question" in first):
        return "agentclinic"
    if "question" in first and any(k in first for k in ("context", "facts", "atomic_facts")):
        return "mediq"
    return "clinic"


def load_run_cases(cases: Optional[Path], split: Optional[str], fmt: str = "auto") -> list[Case]:
    """The cases of ``run``: ``--split``, clinic-env case files, or a peer's file through its
    importer (the import report goes to stderr). Exits 2 with one line per problem."""
    from clinic_env.cli_tournament import load_library

    if fmt not in CASE_FORMATS:
        raise _fail(f"--format must be one of {', '.join(CASE_FORMATS)}, got {fmt!r}")
    if cases is None or split is not None:
        if fmt not in ("auto", "clinic"):
            raise _fail(f"--format {fmt} needs --cases PATH (a {fmt} file)")
        return load_library(cases, split)
    peer = detect_format(cases) if fmt == "auto" else fmt
    if peer == "clinic":
        return load_library(cases, split)
    from clinic_env.cli import exit_on_data_error
    from clinic_env.importers import import_cases
    from clinic_env.schema.safe_read import data_format, read_documents, read_text

    def imported() -> list[Case]:
        read_documents(cases) if data_format(cases) else read_text(cases)  # bounded pre-read: one-line errors
        found, report = import_cases(cases, peer)
        typer.echo(report.summary(), err=True)
        return found

    library = exit_on_data_error(imported)
    if not library:
        raise _fail(f"no case could be imported from {cases} ({peer})")
    return library


# ------------------------------------------------------------------------------------ options

def _check_bias(role: str, bias: Optional[str]) -> None:
    """Exit 2 unless ``bias`` is a known id (:mod:`clinic_env.open.biases`) that ``role`` can take."""
    if bias is None:
        return
    from clinic_env.open.biases import bias_text

    try:
        bias_text(bias, role)
    except ValueError as exc:
        raise _fail(f"--{role}-bias: {exc}") from None


def _check_spec(flag: str, spec: str, scripted: Sequence[str], api_base: Optional[str]) -> None:
    from clinic_env.open.protocols import is_llm

    if is_llm(spec):
        name = spec.split(":", 1)[1]
        if not name:
            raise _fail(f"{flag} {spec!r}: give a model after the colon, e.g. llm:hosted_vllm/NAME")
        if spec.startswith("vllm:") and not api_base:
            raise _fail(f"{flag} {spec!r}: vllm: needs --api-base (or the role's own --*-api-base)")
        return
    if spec not in scripted:
        raise _fail(f"{flag} {spec!r}: give llm:MODEL, vllm:NAME or {' / '.join(scripted)}")


def _api_bases(api_base: Optional[str], per_role: Mapping[str, Optional[str]]) -> str | dict[str, str] | None:
    given = {role: url for role, url in per_role.items() if url}
    if not given:
        return api_base
    return {**({"default": api_base} if api_base else {}), **given}


def _base_of(bases: str | dict[str, str] | None, role: str) -> Optional[str]:
    if isinstance(bases, dict):
        return bases.get(role) or bases.get("default")
    return bases


# ------------------------------------------------------------------------------------ summary

def usage_summary(records: Sequence[RecordLike]) -> dict[str, dict[str, Any]]:
    """Per doctor: LLM calls per episode and, per role, calls, tokens and tokens per call (from
    each record's ``usage.by_agent``); failed episodes count too (their calls were paid for)."""
    out: dict[str, dict[str, Any]] = {}
    for record in records:
        row = out.setdefault(str(record.get("doctor", "?")), {"episodes": 0, "calls": 0, "by_role": {}})
        usage = record.get("usage") or {}
        row["episodes"] += 1
        row["calls"] += int(usage.get("calls") or 0)
        for role, figures in (usage.get("by_agent") or {}).items():
            acc = row["by_role"].setdefault(role, {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0})
            for key in acc:
                acc[key] += int(figures.get(key) or 0)
    for row in out.values():
        episodes = max(row["episodes"], 1)
        row["calls_per_episode"] = round(row["calls"] / episodes, 3)
        for acc in row["by_role"].values():
            acc["calls_per_episode"] = round(acc["calls"] / episodes, 3)
            acc["prompt_tokens_per_call"] = round(acc["prompt_tokens"] / acc["calls"], 1) if acc["calls"] else None
    return out


def _failures(records: Sequence[EpisodeRecord]) -> Counter[str]:
    from clinic_env.competition.summary import episode_failed

    return Counter(redact(str((r.get("errors") or [r.get("end_reason")])[0]))[:200]
                   for r in records if episode_failed(r))


def _print_table(summary: Mapping[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Open mode ({summary['protocol']}): diagnostic accuracy (Wilson 95% CI)")
    for col in ("doctor", "n", "correct", "accuracy", "95% CI", "failed", "turns", "calls/ep", "doctor tok/call"):
        table.add_column(col, justify="left" if col == "doctor" else "right")
    for doctor, acc in summary["diagnostic_accuracy"].items():
        use = summary["usage"].get(doctor, {})
        doc = use.get("by_role", {}).get("doctor", {})
        rate = "-" if acc["rate"] is None else f"{acc['rate']:.3f}"
        ci = "-" if acc["rate"] is None else f"[{acc['ci_low']:.3f}, {acc['ci_high']:.3f}]"
        turns = summary["doctor_turns"].get(doctor)
        tok = doc.get("prompt_tokens_per_call")
        table.add_row(doctor, str(acc["n"]), str(acc["correct"]), rate, ci, str(acc["failed"]),
                      "-" if turns is None else f"{turns:.1f}", f"{use.get('calls_per_episode', 0):.1f}",
                      "-" if tok is None else f"{tok:.0f}")
    Console(width=160).print(table)


def _summary(records: Sequence[EpisodeRecord], *, status: str, arguments: Mapping[str, Any], library: Sequence[Case],
             settings: Any, doctors: Sequence[str], bases: str | dict[str, str] | None, seed: int,
             wall_s: float) -> dict[str, Any]:
    import clinic_env
    from clinic_env.competition.summary import diagnostic_accuracy, git_commit, jsonable, statistics
    from clinic_env.leaderboard import leaderboard

    failures = _failures(records)
    turns: dict[str, list[float]] = {}
    for r in records:
        turns.setdefault(str(r.get("doctor")), []).append(float(r.get("doctor_turns") or 0))
    summary: dict[str, Any] = {
        "format": FORMAT, "mode": "open", "status": status, "protocol": settings.protocol,
        "prompt_style": settings.prompt_style, "package_version": clinic_env.__version__, "git": git_commit(),
        "arguments": jsonable(arguments), "doctors": list(doctors), "roles": dict(settings.roles),
        "api_base": (redact(bases) if isinstance(bases, str) else
                     {k: redact(v) for k, v in bases.items()} if bases else None),
        "max_doctor_turns": settings.max_doctor_turns, "doctor_bias": settings.doctor_bias,
        "patient_bias": settings.patient_bias, "seed": seed, "cases": len(library),
        "case_ids": [c.id for c in library], "episodes": len(records),
        "counts": {"failed": sum(failures.values()), "played": len(records)},
        "failures": dict(failures.most_common()),
        "end_reasons": dict(Counter(str(r.get("end_reason")) for r in records)),
        "diagnostic_accuracy": diagnostic_accuracy(records),
        "usage": usage_summary(records),
        "doctor_turns": {d: round(sum(v) / len(v), 3) for d, v in turns.items()},
        "wall_s": round(wall_s, 3),
        "leaderboard": leaderboard(records),
    }
    if status == "complete":
        summary.update(statistics(records, seed))
    return summary


# ------------------------------------------------------------------------------------ the run

def run_open(cases: Optional[Path], split: Optional[str], case_format: str, doctors: Sequence[str], *,
             roles: Mapping[str, Optional[str]],
             protocol: Optional[str], max_doctor_turns: Optional[int], doctor_bias: Optional[str],
             patient_bias: Optional[str], api_base: Optional[str], role_api_base: Mapping[str, Optional[str]],
             out: Path, episodes_per_case: int, seed: int, concurrency: int, timeout: float,
             persona: Optional[str], allow_failures: bool, source: Mapping[str, Optional[str]]) -> None:
    """Play the cases (:func:`load_run_cases`, read once the options are checked) in open mode with
    each doctor, write the run folder, print the accuracy table and the failures; exit 1 on failed
    episodes unless ``allow_failures``, 2 on usage errors."""
    import asyncio

    from rich.progress import Progress

    from clinic_env.competition.errors import RunFolderError
    from clinic_env.competition.store import RESULTS, SUMMARY, ResultsFile, RunLock, write_json_atomic
    from clinic_env.open.protocols import ROLES, SCRIPTED_ROLES, ProtocolError, resolve
    from clinic_env.schema import DataError

    try:
        settings = resolve(protocol, list(doctors), roles, max_doctor_turns=max_doctor_turns,
                           doctor_bias=doctor_bias, patient_bias=patient_bias)
    except ProtocolError as exc:
        raise _fail(str(exc)) from None
    bases = _api_bases(api_base, role_api_base)
    for doctor in doctors:
        _check_spec("--doctor", doctor, OPEN_DOCTORS, _base_of(bases, "doctor"))
    for role in ROLES:
        _check_spec(f"--{role}", settings.roles[role], (SCRIPTED_ROLES[role],), _base_of(bases, role))
    _check_bias("doctor", settings.doctor_bias)
    _check_bias("patient", settings.patient_bias)
    library = load_run_cases(cases, split, case_format)
    out.mkdir(parents=True, exist_ok=True)
    if (out / RESULTS).exists() and (out / RESULTS).stat().st_size:
        raise _fail(f"{out} already holds a run ({RESULTS}); give another --out")
    from clinic_env.llm.redact import redact_argv, redact_data

    arguments = {"argv": redact_argv(sys.argv[1:]), **source, "episodes_per_case": episodes_per_case,
                 "concurrency": concurrency, "timeout": timeout, "persona": persona}
    env_kwargs = {"persona": persona} if persona else None
    records: list[EpisodeRecord] = []
    start = time.perf_counter()

    def summary(status: str) -> dict[str, Any]:
        made = _summary(records, status=status, arguments=arguments, library=library, settings=settings,
                        doctors=doctors, bases=bases, seed=seed, wall_s=time.perf_counter() - start)
        return dict(redact_data(made))

    from clinic_env.cli_tournament import _sigterm_as_exit

    try:
        with RunLock(out), ResultsFile(out / RESULTS) as sink, Progress(transient=False) as progress, \
                _sigterm_as_exit():
            task = progress.add_task("open episodes", total=len(library) * len(doctors) * episodes_per_case)

            def finished(record: EpisodeRecord) -> None:
                sink.append(record.to_json())
                records.append(record)
                progress.advance(task)

            from clinic_env.open import arun_open

            for doctor in doctors:
                asyncio.run(arun_open(
                    list(library), doctor, **settings.roles, max_doctor_turns=settings.max_doctor_turns,
                    protocol=settings.prompt_style, doctor_bias=settings.doctor_bias,
                    patient_bias=settings.patient_bias, episodes_per_case=episodes_per_case, seed=seed,
                    concurrency=concurrency, api_base=bases, timeout=timeout, env_kwargs=env_kwargs,
                    doctor_name=doctor, on_episode=finished))
    except RunFolderError as exc:
        raise _fail(str(exc)) from None
    except DataError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        raise typer.Exit(2) from None
    except (KeyError, ValueError) as exc:
        raise _fail(redact(str(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc))) from None
    except (KeyboardInterrupt, SystemExit) as exc:  # Ctrl-C, or SIGTERM (raised as SystemExit(143))
        code = exc.code if isinstance(exc, SystemExit) and isinstance(exc.code, int) else 130
        write_json_atomic(out / SUMMARY, summary("interrupted"))
        typer.echo(f"interrupted; {len(records)} episode record(s) kept in {out / RESULTS}", err=True)
        raise typer.Exit(code) from None
    result = summary("complete")
    write_json_atomic(out / SUMMARY, result)
    _print_table(result)
    failures = result["failures"]
    if failures:
        typer.echo(f"{sum(failures.values())} of {len(records)} episode(s) failed:", err=True)
        for reason, n in failures.items():
            typer.echo(f"  {n} x {reason}", err=True)
    typer.echo(f"wrote {len(records)} episode records to {out / RESULTS} and {out / SUMMARY}")
    if failures and not allow_failures:
        typer.echo("exit 1: episodes failed (pass --allow-failures to accept them)", err=True)
        raise typer.Exit(1)
