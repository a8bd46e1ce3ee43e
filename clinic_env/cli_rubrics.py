"""``clinic-env rubrics ...``: evolve the dynamic rubric bank, import HealthBench rubrics."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

app = typer.Typer(help="Rubric banks: evolve dynamic items, import HealthBench rubrics.", no_args_is_help=True)


def _table(title: str, rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    cols = ("reward", "history", "differential", "tests", "diagnosis", "dynamic_rubric", "doctor_turns")
    for col in ("doctor", *cols):
        table.add_column(col, justify="left" if col == "doctor" else "right")
    for row in rows:
        cells = [f"{row[c][0]:.3f} ± {row[c][1]:.3f}" if c in row else "-" for c in cols]
        table.add_row(str(row["doctor"]), *cells)
    Console(width=160).print(table)


@app.command()
def evolve(
    doctor: Annotated[Optional[list[str]], typer.Option("--doctor", help="Doctor(s) whose episodes are mined.")] = None,
    baseline: Annotated[Optional[list[str]], typer.Option("--baseline", help="Doctor(s) only scored before/after.")] = None,
    rounds: Annotated[int, typer.Option(min=1, help="Mine-Verify-Inject rounds.")] = 3,
    cases: Annotated[Optional[Path], typer.Option("--cases", help="Case file or folder (default bundled).")] = None,
    bank: Annotated[Optional[Path], typer.Option(help="Dynamic bank YAML to start from and update (default OUT/bank.yaml).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Output folder (default runs/evolve-<timestamp>/).")] = None,
    review: Annotated[Optional[Path], typer.Option(help="Human review file: candidates wait there for accept/reject.")] = None,
    persona: Annotated[str, typer.Option(help="Persona id for every episode ('all' draws from every persona).")] = "cooperative",
    episodes_per_case: Annotated[int, typer.Option(min=1)] = 1,
    seed: Annotated[int, typer.Option()] = 0,
    max_cycles: Annotated[int, typer.Option(min=1)] = 1200,
    admit_rate: Annotated[float, typer.Option(help="Wilson lower bound a violation rate must reach.")] = 0.3,
    min_episodes: Annotated[int, typer.Option(min=1, help="Fewest top episodes an admission may rest on.")] = 4,
    max_per_case: Annotated[int, typer.Option(min=1, help="Most dynamic items per case.")] = 4,
    llm_miner: Annotated[Optional[str], typer.Option(help="Also mine with this litellm model (e.g. hosted_vllm/NAME).")] = None,
    api_base: Annotated[Optional[str], typer.Option(help="Server URL for --llm-miner.")] = None,
) -> None:
    """Evolve dynamic rubric items against DOCTOR under the naive static reward; print the
    before and after tables and write bank.yaml, changes.jsonl and summary.json."""
    from rich.progress import Progress

    from clinic_env.cli import exit_on_data_error
    from clinic_env.evolve import run_evolution
    from clinic_env.rewards.evolution import DynamicBank, EvolutionConfig
    from clinic_env.rewards.llm_miner import LLMMiner
    from clinic_env.schema import load_cases

    doctors = doctor or ["shotgun"]
    baselines = [b for b in (baseline if baseline is not None else ["thorough", "info-gain"]) if b not in doctors]
    library = exit_on_data_error(lambda: load_cases(cases))
    out = out or Path("runs") / datetime.datetime.now().strftime("evolve-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    bank_path = bank or out / "bank.yaml"
    start = DynamicBank.load(bank_path)
    total = len(library) * episodes_per_case * (len(doctors) + 2 * len(baselines) + rounds * len(doctors))
    with Progress() as progress:
        task = progress.add_task("episodes", total=total)
        result = run_evolution(library, doctors, baselines, rounds, start, persona=None if persona == "all" else persona,
                               episodes_per_case=episodes_per_case, seed=seed, review_path=review,
                               config=EvolutionConfig(admit_rate=admit_rate, min_episodes=min_episodes,
                                                      max_per_case=max_per_case),
                               log_path=out / "changes.jsonl", max_cycles=max_cycles,
                               on_episode=lambda _r: progress.advance(task),
                               llm_miner=LLMMiner(llm_miner, api_base) if llm_miner else None)
    result.bank.save(bank_path)
    _table("Before evolution (naive static reward)", result.before)
    _table(f"After {rounds} round(s) (bank v{result.bank.version}: {len(result.bank.items)} dynamic items)", result.after)
    for r in result.rounds:
        typer.echo(f"round {r['round']}: admitted {r['admitted']}, retired {r['retired']}, bank v{r['bank_version']}, "
                   f"mean reward {json.dumps({k: round(v, 3) for k, v in r['mean_reward'].items()})}")
    summary = {"before": result.before, "after": result.after, "rounds": result.rounds,
               "admitted": result.admitted_miners, "bank_version": result.bank.version}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    typer.echo(f"bank: {bank_path}  change log: {out / 'changes.jsonl'}" + (f"  review: {review}" if review else ""))


@app.command("import")
def import_rubrics(
    source: Annotated[Path, typer.Argument(help="HealthBench-format JSONL.")],
    dest: Annotated[Path, typer.Argument(help="Rubric bank YAML to write.")],
    format: Annotated[str, typer.Option("--format", help="Input format.")] = "healthbench",
) -> None:
    """Import rubric items (HealthBench JSONL) into clinic-env rubric banks."""
    import yaml

    from clinic_env.cli import exit_on_data_error
    from clinic_env.rewards.rubric import import_healthbench
    from clinic_env.schema.safe_read import read_documents

    if format != "healthbench":
        typer.echo(f"unknown format {format!r}; supported: healthbench", err=True)
        raise typer.Exit(2)
    exit_on_data_error(lambda: read_documents(source, "jsonl"))  # bounded first: size, depth, shape
    banks = exit_on_data_error(lambda: import_healthbench(source))
    data = {"banks": [b.model_dump(mode="json", exclude_none=True) for b in banks]}
    dest.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    typer.echo(f"imported {sum(len(b.items) for b in banks)} rubric items in {len(banks)} bank(s) to {dest}")
