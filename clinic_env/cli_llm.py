"""CLI pieces for LLM policies: ``clinic-env serve vllm|sglang|presets`` and the ``llm:`` doctors of
``clinic-env run`` (a thin layer: each command is one library call)."""

from __future__ import annotations

import asyncio
import json
import shlex
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from clinic_env.llm.redact import MASK, redact, redact_url, register_secret, secret_name
from clinic_env.records import EpisodeRecord

__all__ = ["play_doctors", "serve_app"]

serve_app = typer.Typer(help="Launch an OpenAI-compatible LLM server (vLLM or SGLang) with EAGLE-3 drafting.",
                        no_args_is_help=True)


def play_doctors(cases: Sequence[Any], doctors: Sequence[str], episodes_per_case: int, seed: int,
                 env_kwargs: dict[str, Any], api_base: str | None = None, concurrency: int = 8,
                 timeout: float = 60.0, on_episode: Callable[[EpisodeRecord], None] | None = None,
                 ) -> tuple[list[EpisodeRecord], dict[str, Any]]:
    """Play ``cases`` with each doctor: structured ones through :func:`clinic_env.rollout.run_batch`
    (as before), ``llm:MODEL`` ones through :func:`clinic_env.rollout.arun` in text mode with
    ``concurrency`` episodes in flight. Returns the records and, per LLM doctor, the batch's usage,
    wall time and speculative-decoding figures (for summary.json)."""
    from clinic_env.rollout import arun, run_batch

    structured = [d for d in doctors if not d.startswith(("llm:", "vllm:"))]
    records = run_batch(cases, structured, episodes_per_case, seed, env_kwargs, on_episode) if structured else []
    extra: dict[str, Any] = {}
    for doctor in doctors:
        if not doctor.startswith(("llm:", "vllm:")):
            continue
        batch = asyncio.run(arun(cases, doctor, episodes_per_case=episodes_per_case, seed=seed, concurrency=concurrency,
                                 env_kwargs=env_kwargs, api_base=api_base, timeout=timeout, on_episode=on_episode))
        records.extend(batch)
        llm = extra.setdefault("llm", {})
        llm[redact(doctor)] = {
            "api_base": redact_url(api_base) if api_base else None, "concurrency": concurrency, "timeout": timeout,
            "wall_s": round(batch.wall_s, 3), "usage": batch.usage, "spec_decode": batch.spec_decode,
            "llm_errors": sum(1 for r in batch if r.get("end_reason") == "llm_error"),
            **({"warnings": list(batch.warnings)} if batch.warnings else {})}
    return records, extra


def _env_pairs(entries: Optional[list[str]]) -> dict[str, str]:
    """``--env KEY=VALUE`` entries as a dict; values of secret-named keys are registered for
    redaction at once, so that no later message can show them."""
    pairs: dict[str, str] = {}
    for entry in entries or ():
        key, sep, value = entry.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--env takes KEY=VALUE, got {redact(entry)!r}")
        if secret_name(key):
            register_secret(value)
        pairs[key.strip()] = value
    return pairs


def _config(model: Optional[str], draft_model: Optional[str], preset: Optional[str], **kw: Any) -> Any:
    from clinic_env.llm.serve import ServeConfig, apply_preset

    if preset:
        return apply_preset(preset, model=model, draft_model=draft_model, **kw)
    if not model:
        raise typer.BadParameter("give --model (or --preset)")
    return ServeConfig(model=model, draft_model=draft_model, **{k: v for k, v in kw.items() if v is not None})


def _serve(engine: str, cfg: Any, dry_run: bool, health_timeout: float, log: Optional[Path]) -> None:
    from clinic_env.llm.metrics import read_spec_metrics
    from clinic_env.llm.serve import (
        ModelServer,
        ServerError,
        detect_quantization,
        sglang_command,
        vllm_command,
    )

    cmd = vllm_command(cfg) if engine == "vllm" else sglang_command(cfg)
    detected = detect_quantization(cfg.model)
    if cfg.quantization == "auto":
        how = f"auto-detected from the checkpoint: {detected}" if detected else "auto (the server reads the checkpoint)"
    else:
        how = f"forced: {cfg.quantization}"
    typer.echo(f"# quantization {how}; speculative decoding: "
               + (f"EAGLE-3, draft {cfg.draft_model}, K={cfg.num_speculative_tokens}" if cfg.draft_model else "off"))
    env_prefix = " ".join(f"{k}={MASK if secret_name(k) else shlex.quote(v)}" for k, v in cfg.env.items())
    typer.echo(redact((env_prefix + " " if env_prefix else "") + shlex.join(cmd)))
    if dry_run:
        return
    server = ModelServer(cmd, cfg.host, cfg.port, cfg.env, log)
    typer.echo(f"# starting; log: {server.log_path}", err=True)
    try:
        server.start(timeout=health_timeout)
    except ServerError as exc:
        typer.echo(f"error: {redact(str(exc))}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"# healthy after {server.startup_s:.1f} s at {server.base_url}")
    typer.echo(f"# try: clinic-env run --doctor llm:hosted_vllm/{cfg.name} --api-base {server.base_url} --concurrency 32")
    try:
        while server.process is not None and server.process.poll() is None:
            try:
                server.process.wait(timeout=60)
            except subprocess.TimeoutExpired:  # every minute: the cumulative spec-decoding figures
                counters = read_spec_metrics(server.base_url)
                if counters.present:
                    typer.echo(json.dumps({"spec_decode": counters.as_dict()}))
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


_Model = Annotated[Optional[str], typer.Option(help="Checkpoint: hub id or local folder (INT4 GPTQ/AWQ or not).")]
_Draft = Annotated[Optional[str], typer.Option("--draft-model", help="EAGLE-3 draft: hub id or folder.")]
_Quant = Annotated[Optional[str], typer.Option(help="auto (from the checkpoint), gptq, awq, gptq_marlin, awq_marlin, none.")]
_Preset = Annotated[Optional[str], typer.Option(help="A known model/draft pair (see `clinic-env serve presets`).")]


@serve_app.command("vllm")
def serve_vllm(
    model: _Model = None,
    draft_model: _Draft = None,
    quantization: _Quant = None,
    preset: _Preset = None,
    num_speculative_tokens: Annotated[Optional[int], typer.Option(min=1, help="K draft tokens per step.")] = None,
    host: Annotated[str, typer.Option(help="Listen address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    served_model_name: Annotated[Optional[str], typer.Option(help="Name clients send.")] = None,
    max_model_len: Annotated[Optional[int], typer.Option(help="Context length.")] = None,
    tensor_parallel_size: Annotated[Optional[int], typer.Option(help="GPUs.")] = None,
    gpu_memory_utilization: Annotated[Optional[float], typer.Option(help="Share of GPU memory.")] = None,
    dtype: Annotated[Optional[str], typer.Option(help="auto, bfloat16, float16...")] = None,
    load_format: Annotated[Optional[str], typer.Option(help="e.g. dummy (random weights, for tests).")] = None,
    python: Annotated[Optional[str], typer.Option(help="Interpreter that has vLLM (default: this one).")] = None,
    extra: Annotated[Optional[list[str]], typer.Option(help="Extra server flag (repeatable), e.g. --extra=--enforce-eager.")] = None,
    env: Annotated[Optional[list[str]], typer.Option(help="KEY=VALUE for the server's environment (repeatable).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the command and exit.")] = False,
    health_timeout: Annotated[float, typer.Option(help="Seconds to wait for /health.")] = 900.0,
    log: Annotated[Optional[Path], typer.Option(help="Server log file.")] = None,
) -> None:
    """Build (and unless --dry-run, launch) a vLLM server for an INT4 checkpoint with EAGLE-3, wait
    for /health, and print how to point `clinic-env run` at it."""
    try:
        cfg = _config(model, draft_model, preset, quantization=quantization, num_speculative_tokens=num_speculative_tokens,
                      host=host, port=port, served_model_name=served_model_name, max_model_len=max_model_len,
                      tensor_parallel_size=tensor_parallel_size, gpu_memory_utilization=gpu_memory_utilization,
                      dtype=dtype, load_format=load_format, python=python, extra_args=tuple(extra or ()) or None,
                      env=_env_pairs(env) or None)
        _serve("vllm", cfg, dry_run, health_timeout, log)
    except (KeyError, ValueError) as exc:
        typer.echo(f"error: {redact(str(exc))}", err=True)
        raise typer.Exit(2) from None


@serve_app.command("sglang")
def serve_sglang(
    model: _Model = None,
    draft_model: _Draft = None,
    quantization: _Quant = None,
    preset: _Preset = None,
    num_speculative_tokens: Annotated[Optional[int], typer.Option(min=1, help="Draft steps.")] = None,
    host: Annotated[str, typer.Option(help="Listen address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 30000,
    served_model_name: Annotated[Optional[str], typer.Option(help="Name clients send.")] = None,
    max_model_len: Annotated[Optional[int], typer.Option(help="Context length.")] = None,
    tensor_parallel_size: Annotated[Optional[int], typer.Option(help="GPUs.")] = None,
    python: Annotated[Optional[str], typer.Option(help="Interpreter that has SGLang.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the command and exit.")] = False,
    health_timeout: Annotated[float, typer.Option(help="Seconds to wait for /health.")] = 900.0,
) -> None:
    """The SGLang equivalent (``--speculative-algorithm EAGLE3``)."""
    try:
        cfg = _config(model, draft_model, preset, quantization=quantization, num_speculative_tokens=num_speculative_tokens,
                      host=host, port=port, served_model_name=served_model_name, max_model_len=max_model_len,
                      tensor_parallel_size=tensor_parallel_size, python=python)
        _serve("sglang", cfg, dry_run, health_timeout, None)
    except (KeyError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@serve_app.command("presets")
def serve_presets() -> None:
    """List the known model / EAGLE-3 draft pairs."""
    from clinic_env.llm.serve import PRESETS

    for name, p in PRESETS.items():
        typer.echo(f"{name}\n  model {p.model}\n  draft {p.draft_model or '(give --draft-model)'}\n"
                   f"  INT4 {p.weights} (quantization {p.quantization}), K={p.num_speculative_tokens}, "
                   f"tp={p.tensor_parallel_size}\n  {p.note}")
