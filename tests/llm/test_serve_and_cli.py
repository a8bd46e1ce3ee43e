"""Server launch commands, presets, /health wait, /metrics read-out and the CLI (no vLLM needed)."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import clinic_env
from clinic_env.llm.metrics import SpecDecodeCounters, metrics_url, parse_spec_metrics, read_spec_metrics
from clinic_env.llm.serve import (
    PRESETS,
    ModelServer,
    ServeConfig,
    ServerError,
    apply_preset,
    detect_quantization,
    sglang_command,
    vllm_command,
)
from clinic_env.testing.openai_server import OpenAITestServer
from clinic_env.testing.scripted import SCRIPTS

ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "PATH": "/usr/bin:/bin"}


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "clinic_env", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300, env=ENV)


def test_vllm_command_eagle3_and_quantization(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(json.dumps({"quantization_config": {"quant_method": "awq", "bits": 4}}))
    assert detect_quantization(str(ckpt)) == "awq" and detect_quantization(str(tmp_path / "nope")) is None
    cmd = vllm_command(ServeConfig(str(ckpt), "drafts/eagle", port=8123, num_speculative_tokens=4))
    assert cmd[1:3] == ["-m", "vllm.entrypoints.openai.api_server"] and "--quantization" not in cmd
    spec = json.loads(cmd[cmd.index("--speculative-config") + 1])
    assert spec == {"method": "eagle3", "model": "drafts/eagle", "num_speculative_tokens": 4}
    forced = vllm_command(ServeConfig("m", None, quantization="gptq", max_model_len=4096, load_format="dummy"))
    assert forced[forced.index("--quantization") + 1] == "gptq" and "--speculative-config" not in forced
    assert forced[forced.index("--load-format") + 1] == "dummy"
    with pytest.raises(ValueError, match="quantization"):
        vllm_command(ServeConfig("m", quantization="int3"))


def test_presets_and_sglang() -> None:
    assert {"llama3.1-8b-int4-eagle3", "qwen3-8b-awq-eagle3", "baichuan-m3-235b-gptq-int4"} <= set(PRESETS)
    cfg = apply_preset("qwen3-8b-awq-eagle3", port=9000)
    assert cfg.model == "Qwen/Qwen3-8B-AWQ" and cfg.draft_model == "AngelSlim/Qwen3-8B_eagle3" and cfg.port == 9000
    cmd = sglang_command(cfg)
    assert cmd[cmd.index("--speculative-algorithm") + 1] == "EAGLE3"
    assert cmd[cmd.index("--speculative-num-draft-tokens") + 1] == "4"
    with pytest.raises(KeyError):
        apply_preset("gpt-5")


def test_metrics_parsing_and_batch_difference() -> None:
    text = ('# HELP x\nvllm:spec_decode_num_drafts_total{engine="0",model_name="m"} 10.0\n'
            'vllm:spec_decode_num_draft_tokens_total{engine="0",model_name="m"} 30.0\n'
            'vllm:spec_decode_num_accepted_tokens_total{engine="0",model_name="m"} 12.0\n'
            'vllm:spec_decode_num_accepted_tokens_per_pos_total{position="0"} 9.0\n')
    after = parse_spec_metrics(text)
    delta = after - SpecDecodeCounters(4.0, 12.0, 3.0, True)
    assert delta.acceptance_rate == pytest.approx(9 / 18) and delta.mean_acceptance_length == pytest.approx(1 + 9 / 6)
    assert parse_spec_metrics("up 1\n").present is False and SpecDecodeCounters().acceptance_rate is None
    assert metrics_url("http://h:1/v1") == "http://h:1/metrics"
    assert read_spec_metrics("http://127.0.0.1:9/v1").present is False  # unreachable: no counters, no crash


def test_model_server_waits_for_health_and_stops(tmp_path: Path) -> None:
    # The loopback test server stands in for vLLM: same /health, /v1 and /metrics.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "clinic_env.testing.openai_server", "--port", str(port)]
    server = ModelServer(cmd, port=port, env=ENV, log_path=tmp_path / "srv.log").start(timeout=60)
    try:
        assert server.startup_s is not None and read_spec_metrics(server.base_url).present
    finally:
        server.stop()
    assert server.process is None
    broken = ModelServer([sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"], port=port,
                         log_path=tmp_path / "bad.log")
    with pytest.raises(ServerError, match="exited with code 3"):
        broken.start(timeout=30)


def test_cli_serve_dry_run_prints_the_command() -> None:
    res = _cli("serve", "vllm", "--model", "org/Model-GPTQ-Int4", "--draft-model", "org/eagle3", "--quantization",
               "gptq", "--num-speculative-tokens", "5", "--port", "8111", "--dry-run")
    assert res.returncode == 0, res.stderr
    line = next(ln for ln in res.stdout.splitlines() if not ln.startswith("#"))
    args = shlex.split(line)
    assert args[args.index("--quantization") + 1] == "gptq" and args[args.index("--port") + 1] == "8111"
    assert json.loads(args[args.index("--speculative-config") + 1])["num_speculative_tokens"] == 5
    preset = _cli("serve", "vllm", "--preset", "llama3.1-8b-int4-eagle3", "--dry-run")
    assert "yuhuili/EAGLE3-LLaMA3.1-Instruct-8B" in preset.stdout
    assert _cli("serve", "sglang", "--preset", "qwen3-8b-awq-eagle3", "--dry-run").returncode == 0
    assert "baichuan-m3-235b-gptq-int4" in _cli("serve", "presets").stdout
    bad = _cli("serve", "vllm", "--preset", "nope", "--dry-run")
    assert bad.returncode == 2 and "unknown preset" in bad.stderr


def test_cli_run_llm_doctor_against_loopback(tmp_path: Path, cases: list[clinic_env.Case]) -> None:
    case_file = tmp_path / "one.yaml"
    import yaml

    case_file.write_text(yaml.safe_dump(cases[0].model_dump(mode="json", exclude_none=True)))
    with OpenAITestServer(SCRIPTS["doctor"]) as srv:
        res = _cli("run", "--cases", str(case_file), "--doctor", "llm:hosted_vllm/test", "--doctor", "thorough",
                   "--api-base", srv.base_url, "--concurrency", "4", "--timeout", "5", "--episodes-per-case", "2",
                   "--out", str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr[-2000:]
    records = [json.loads(ln) for ln in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    llm = [r for r in records if r["doctor"] == "llm:hosted_vllm/test"]
    assert len(llm) == 2 and all(r["end_reason"] == "final_diagnosis" and r["usage"]["calls"] == 10 for r in llm)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    info = summary["llm"]["llm:hosted_vllm/test"]
    assert info["usage"]["calls"] == 20 and info["llm_errors"] == 0 and info["spec_decode"]["present"]


def test_cli_run_llm_doctor_with_dead_server_finishes(tmp_path: Path, cases: list[clinic_env.Case]) -> None:
    import yaml

    case_file = tmp_path / "one.yaml"
    case_file.write_text(yaml.safe_dump(cases[1].model_dump(mode="json", exclude_none=True)))
    with OpenAITestServer(["x"], mode="down") as srv:
        res = _cli("run", "--cases", str(case_file), "--doctor", "llm:hosted_vllm/test", "--api-base", srv.base_url,
                   "--timeout", "0.5", "--out", str(tmp_path / "out"), "--allow-failures")
    assert res.returncode == 0, res.stderr[-2000:]  # failures accepted; without the flag: exit 1 (test_hostile_server)
    assert "1 of 1 episode(s) failed" in res.stderr and "ConnectionResetError" in res.stderr
    record = json.loads((tmp_path / "out" / "results.jsonl").read_text().splitlines()[0])
    assert record["truncated"] and record["end_reason"] == "llm_error" and record["errors"]
