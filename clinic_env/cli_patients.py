"""CLI for synthetic patients and case exchange: ``clinic-env generate``, ``clinic-env cases import``
and ``clinic-env cases export``. Each command is a thin layer over one library call."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

__all__ = ["register"]


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _fail_data(exc: Exception) -> None:
    """One line per problem of a :class:`~clinic_env.schema.DataError`, then exit 2."""
    for problem in getattr(exc, "problems", None) or [exc]:
        typer.echo(str(problem), err=True)
    raise typer.Exit(2)


def generate(
    condition: Annotated[Optional[list[str]], typer.Option("--condition", "-c", help="Condition id or ICD-10 code (repeatable; default: all).")] = None,
    n: Annotated[int, typer.Option("--n", min=1, help="Number of cases (cycling through the conditions).")] = 1,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the first case; case i uses seed + i.")] = 0,
    difficulty: Annotated[Optional[int], typer.Option(min=1, max=3, help="1 classic, 2 typical, 3 atypical (default: drawn).")] = None,
    age: Annotated[Optional[float], typer.Option(min=0, max=120, help="Patient age in years (default: drawn).")] = None,
    sex: Annotated[Optional[str], typer.Option(help="M or F (default: drawn).")] = None,
    persona: Annotated[Optional[str], typer.Option(help="Persona id (sets the patient's vocabulary; default cooperative).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output .yaml/.json/.jsonl file or a folder (default: print YAML).")] = None,
    export: Annotated[Optional[str], typer.Option(help="Also write a standardised-patient script per case: md or html (needs --out folder).")] = None,
    list_conditions: Annotated[bool, typer.Option("--list", help="List the knowledge base's conditions and exit.")] = False,
    validate: Annotated[bool, typer.Option(help="Validate what was written (strict library standards).")] = True,
) -> None:
    """Generate synthetic patients from the disease knowledge base (seeded: same seed, same case)."""
    from clinic_env.generate import CaseGenerator, GenerationError, export_script, write_cases
    from clinic_env.generate.io import case_to_dict
    from clinic_env.schema import DataError

    gen = CaseGenerator()
    if list_conditions:
        for cond in gen.kb.conditions.values():
            typer.echo(f"{cond.id:<40} {cond.code:<7} {cond.specialty:<22} {cond.title}")
        typer.echo(f"{len(gen.kb.conditions)} conditions")
        return
    if export is not None and export not in ("md", "html"):
        _fail(f"--export must be md or html, got {export!r}")
    if export is not None and (out is None or out.suffix):
        _fail("--export needs --out to be a folder")
    start = time.perf_counter()
    try:
        made = gen.generate_many(n, seed=seed, conditions=condition, difficulty=difficulty, age=age,
                                 sex=sex.upper() if sex else None, persona=persona)
    except DataError as exc:
        _fail_data(exc)
    except GenerationError as exc:
        _fail(str(exc))
    cases = [g.case for g in made]
    if out is None:
        import yaml

        typer.echo(yaml.safe_dump(case_to_dict(cases[0]) if len(cases) == 1 else {"cases": [case_to_dict(c) for c in cases]},
                                  sort_keys=False, allow_unicode=True, width=120), nl=False)
        return
    files = write_cases(cases, out)
    if export:
        for g in made:
            (out / f"{g.case.id}.sp.{export}").write_text(export_script(g.case, export, g.persona), encoding="utf-8")
    elapsed = time.perf_counter() - start
    typer.echo(f"generated {len(cases)} case(s) into {len(files)} file(s) under {out} in {elapsed:.1f} s", err=True)
    if validate:
        from clinic_env.schema.validate import validate_paths

        count, problems = validate_paths([out], strict=True)
        for problem in problems[:50]:
            typer.echo(str(problem), err=True)
        if problems:
            _fail(f"{len(problems)} problem(s) in {count} file(s)")
        typer.echo(f"{count} file(s) valid (strict)", err=True)


def cases_import(
    source: Annotated[Path, typer.Argument(help="The peer case file (JSONL).")],
    out: Annotated[Path, typer.Argument(help="Output .yaml/.json/.jsonl file or folder of cases.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="agentclinic or mediq.")] = "agentclinic",
    report: Annotated[Optional[Path], typer.Option(help="Also write the import report as JSON here.")] = None,
) -> None:
    """Import AgentClinic OSCE or MediQ cases; print counts of mapped and unmapped items."""
    from clinic_env.generate import write_cases
    from clinic_env.importers import IMPORT_FORMATS, import_cases
    from clinic_env.schema import DataError
    from clinic_env.schema.safe_read import data_format, read_documents, read_text

    if fmt not in IMPORT_FORMATS:
        _fail(f"--format must be one of {', '.join(IMPORT_FORMATS)}, got {fmt!r}")
    try:
        # The bounded reader first: a missing, special, huge, empty, deep or malformed file is
        # one line here rather than whatever the importer would make of it.
        read_documents(source) if data_format(source) else read_text(source)
        cases, rep = import_cases(source, fmt)
    except DataError as exc:
        _fail_data(exc)
    typer.echo(rep.summary())
    if report is not None:
        report.write_text(json.dumps(rep.as_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if not cases:
        _fail("no case could be imported")
    files = write_cases(cases, out)
    typer.echo(f"wrote {len(cases)} case(s) to {', '.join(str(f) for f in files[:3])}{' ...' if len(files) > 3 else ''}")


def cases_export(
    case_ref: Annotated[str, typer.Argument(metavar="CASE_ID_OR_FILE",
                                            help="A case id (bundled, or in --cases), or a case file holding one case.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="md or html.")] = "md",
    cases: Annotated[Optional[Path], typer.Option("--cases", help="Case file or folder the id is in (default: bundled library).")] = None,
    persona: Annotated[Optional[str], typer.Option(help="Persona id to act (default: the case's, else cooperative).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write here instead of printing.")] = None,
) -> None:
    """Export a case as an actor-ready standardised-patient script: the candidate's brief, the
    patient's script with a backstory for every positive item and how to answer what it does not
    cover, acting notes for the vital signs, the examiner's cards and checklist, the answer key
    and its legend (Markdown, or a self-contained HTML page)."""
    from clinic_env.generate import export_script
    from clinic_env.schema import DataError, load_cases

    if fmt not in ("md", "html"):
        _fail(f"--format must be md or html, got {fmt!r}")
    as_file = Path(case_ref)
    try:
        if cases is None and as_file.suffix.lower() in (".yaml", ".yml", ".json", ".jsonl") and as_file.is_file():
            library = load_cases(as_file)
            if len(library) != 1:
                _fail(f"{as_file} holds {len(library)} cases; pass one id with --cases {as_file} "
                      f"(e.g. {library[0].id if library else '-'})")
            found = library
        else:
            library = load_cases(cases)
            found = [c for c in library if c.id == case_ref]
    except DataError as exc:
        _fail_data(exc)
    if not found:
        _fail(f"no case {case_ref!r} in {cases or 'the bundled library'} ({len(library)} cases)")
    text = export_script(found[0], fmt, persona)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}", err=True)


def register(app: typer.Typer, cases_app: typer.Typer) -> None:
    """Add ``generate`` to ``app`` and ``import``/``export`` to the ``cases`` group."""
    app.command("generate")(generate)
    cases_app.command("import")(cases_import)
    cases_app.command("export")(cases_export)
