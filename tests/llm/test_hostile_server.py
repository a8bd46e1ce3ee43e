"""Servers that break HTTP, drip bytes or break ``/metrics``: every episode gets an ``llm_error``
record within its deadline and nothing raises; ``run`` exits 1 with the reasons; the HTTP
framing rules one by one; the client's fail-fast; long replies parsed off the event loop."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import clinic_env
from clinic_env.llm import LLMPolicy
from clinic_env.llm.client import ChatClient, LLMCallError
from clinic_env.llm.http import HTTPPool, HTTPProtocolError, fetch
from clinic_env.llm.metrics import read_spec_metrics
from clinic_env.llm.serve import ServerError, wait_healthy
from clinic_env.rollout import arun
from clinic_env.testing.openai_server import OpenAITestServer
from clinic_env.testing.scripted import SCRIPTS

MODEL = "hosted_vllm/test"
MSGS = [{"role": "user", "content": "hello"}]
BROKEN = ("bad_status", "truncated", "bad_chunk", "drip", "huge", "huge_chunked")
CASE_FILE = Path(clinic_env.__file__).parent / "data" / "cases" / "cardiology" / "card-af-rvr.yaml"
ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "PATH": "/usr/bin:/bin"}


def _server(**kw: Any) -> OpenAITestServer:
    # Drip slowly enough that no answer could complete within a minute, and hang as long: the time
    # bounds below (generous, for a loaded machine) then show the deadlines at work.
    return OpenAITestServer(SCRIPTS["doctor"], drip_interval=0.2, hang_seconds=60.0, **kw)


@pytest.mark.parametrize("mode", [*BROKEN, "garbage", "down", "error", "timeout"])
def test_broken_chat_ends_every_episode_as_llm_error_within_deadline(mode: str, small_cases: list[Any]) -> None:
    timeout, cases = 0.4, small_cases[:3]
    with _server(mode=mode) as srv:
        start = time.perf_counter()
        batch = asyncio.run(arun(cases, f"llm:{MODEL}", api_base=srv.base_url, concurrency=3, timeout=timeout,
                                 retries=1, env_kwargs={"persona": "cooperative"}))
        wall = time.perf_counter() - start
    assert len(batch) == len(cases)
    for r in batch:
        assert r["end_reason"] == "llm_error" and r["truncated"] and not r["terminated"]
        assert r["errors"] and r["errors"][0].startswith("doctor_0: ") and "Traceback" not in r["errors"][0]
    # Two attempts per call, each under one total deadline, plus one backoff (<= 0.75 s) and setup.
    assert wall < 2 * timeout + 0.75 + 6.0, wall


@pytest.mark.parametrize("mode", [*BROKEN, "down", "error", "timeout"])
def test_broken_metrics_costs_a_warning_never_the_run(mode: str, small_cases: list[Any]) -> None:
    with _server(metrics_mode=mode) as srv:
        start = time.perf_counter()
        batch = asyncio.run(arun(small_cases[:1], f"llm:{MODEL}", api_base=srv.base_url, timeout=0.4,
                                 env_kwargs={"persona": "cooperative"}))
        wall = time.perf_counter() - start
    assert batch[0]["end_reason"] == "final_diagnosis" and not batch[0]["errors"]
    assert batch.spec_decode is None
    assert len(batch.warnings) == 1 and "spec-decode counters not read before the batch" in batch.warnings[0]
    assert wall - batch.wall_s < 0.4 + 6.0, wall  # the episode's own time aside


def test_chat_and_metrics_both_dripping(small_cases: list[Any]) -> None:
    with _server(mode="drip", metrics_mode="drip") as srv:
        start = time.perf_counter()
        batch = asyncio.run(arun(small_cases[:2], f"llm:{MODEL}", api_base=srv.base_url, concurrency=2, timeout=0.4,
                                 retries=0))
        wall = time.perf_counter() - start
    assert [r["end_reason"] for r in batch] == ["llm_error"] * 2
    assert batch.warnings and batch.spec_decode is None
    assert wall < 0.4 + 0.4 + 6.0, wall  # the metrics read, one attempt, setup


def test_metrics_counters_still_read_from_a_healthy_server(small_cases: list[Any]) -> None:
    with _server() as srv:
        batch = asyncio.run(arun(small_cases[:1], f"llm:{MODEL}", api_base=srv.base_url, timeout=2))
        assert read_spec_metrics(srv.base_url, timeout=1).present
    assert batch.spec_decode is not None and batch.spec_decode["drafts"] > 0 and not batch.warnings


@pytest.mark.parametrize("mode", ["drip", "bad_status", "huge"])
def test_health_wait_has_a_total_deadline(mode: str) -> None:
    with _server(health_mode=mode) as srv:
        start = time.perf_counter()
        with pytest.raises(ServerError, match="no healthy answer"):
            wait_healthy(f"http://127.0.0.1:{srv.port}", timeout=0.6, interval=0.1)
        assert time.perf_counter() - start < 0.6 + 0.5


def test_doctor_env_with_llm_patient_on_broken_http_ends_truncated() -> None:
    with _server(mode="bad_chunk") as srv:
        patient = LLMPolicy(MODEL, "patient", api_base=srv.base_url, timeout=0.5, retries=1, backoff=0.01)
        env = clinic_env.doctor_env(mode="text", case="card-nstemi", patient=patient)
        env.reset(seed=0)
        _obs, _reward, terminated, truncated, info = env.step("When did it start?")  # must not raise
    assert truncated and not terminated and env.engine.end_reason == "llm_error"
    assert "bad chunk size" in info["errors"][0]


# --- the CLI -----------------------------------------------------------------------------------


def _run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "clinic_env", "run", "--cases", str(CASE_FILE), *args],
                          capture_output=True, text=True, timeout=timeout, env=ENV)


def test_run_against_nothing_listening_exits_1_with_reasons(tmp_path: Path) -> None:
    proc = _run_cli("--doctor", "llm:x", "--api-base", "http://127.0.0.1:9/v1", "--timeout", "1",
                    "--out", str(tmp_path / "a"))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "1 of 1 episode(s) failed" in proc.stderr and "1 x doctor_0: x: no usable answer" in proc.stderr
    assert "ConnectionRefusedError" in proc.stderr and "Traceback" not in out and not re.search(r"\bnan\b", out)
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert sum(summary["failures"].values()) == 1 and summary["llm"]["llm:x"]["llm_errors"] == 1
    allowed = _run_cli("--doctor", "llm:x", "--api-base", "http://127.0.0.1:9/v1", "--timeout", "1",
                       "--out", str(tmp_path / "b"), "--allow-failures")
    assert allowed.returncode == 0 and "1 of 1 episode(s) failed" in allowed.stderr


def test_run_with_structured_and_failing_llm_doctor_exits_1(tmp_path: Path) -> None:
    proc = _run_cli("--doctor", "thorough", "--doctor", "llm:x", "--api-base", "http://127.0.0.1:9/v1",
                    "--timeout", "1", "--out", str(tmp_path / "a"))
    assert proc.returncode == 1 and "1 of 2 episode(s) failed" in proc.stderr, proc.stdout + proc.stderr
    assert "thorough" in proc.stdout and "Traceback" not in proc.stderr


def test_run_against_a_dripping_server_ends_within_its_deadline(tmp_path: Path) -> None:
    with _server(mode="drip", metrics_mode="drip") as srv:
        start = time.perf_counter()
        proc = _run_cli("--doctor", f"llm:{MODEL}", "--api-base", srv.base_url, "--timeout", "1",
                        "--out", str(tmp_path / "a"), "--episodes-per-case", "3", "--concurrency", "3")
        wall = time.perf_counter() - start
    assert proc.returncode == 1 and "3 of 3 episode(s) failed" in proc.stderr, proc.stderr
    assert "timed out after 1 s" in proc.stderr and "warning: " in proc.stderr and "Traceback" not in proc.stderr
    # metrics read (1 s) + 3 attempts of 1 s + backoff (<= 2.25 s) + interpreter start-up.
    assert wall < 1 + 3 + 2.25 + 25, wall


# --- HTTP framing, one rule at a time ------------------------------------------------------------

_OK = b'{"choices": [{"message": {"content": "hi"}}]}'
_BAD_ANSWERS = {
    "status_word": b"HTTP/1.1 OK 200\r\n\r\n",
    "status_no_newline": b"HTTP/1.1 200 OK",
    "not_http": b"SSH-2.0-OpenSSH_9.6\r\n",
    "length_word": b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n",
    "length_signed": b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello",
    "length_negative": b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    "length_conflict": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
    "length_short": b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n" + _OK,
    "length_huge": b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    "chunk_negative": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
    "chunk_overlong_data": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n",
    "chunk_truncated": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nhel",
    "chunk_no_end": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
    "chunk_too_big": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffff\r\n",
    "gzip": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
    "header_no_colon": b"HTTP/1.1 200 OK\r\nnonsense\r\n\r\n",
    "header_line_huge": b"HTTP/1.1 200 OK\r\nX: " + b"a" * 200_000 + b"\r\n\r\n",
    "header_many": b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 500 + b"\r\n",
    "headers_cut": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n",
    "close_body_huge": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b" " * (1 << 16),
    "empty": b"",
    "interim_forever": b"HTTP/1.1 100 Continue\r\n\r\n" * 10,
    "switching": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
}


async def _raw_server(answer: bytes, drip: float = 0.0) -> asyncio.AbstractServer:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            if drip:
                for i in range(len(answer)):
                    writer.write(answer[i:i + 1])
                    await writer.drain()
                    await asyncio.sleep(drip)
            else:
                writer.write(answer)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def _exchange(answer: bytes, timeout: float = 2.0, max_body: int = 1 << 15, drip: float = 0.0) -> tuple[int, bytes]:
    async def go() -> tuple[int, bytes]:
        server = await _raw_server(answer, drip)
        pool = HTTPPool(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1", max_body=max_body)
        try:
            return await pool.post_json("/chat/completions", b"{}", timeout)
        finally:
            await pool.close()
            server.close()

    return asyncio.run(go())


@pytest.mark.parametrize("name", sorted(_BAD_ANSWERS))
def test_malformed_answers_are_protocol_errors(name: str) -> None:
    with pytest.raises(OSError) as info:
        _exchange(_BAD_ANSWERS[name])
    assert not isinstance(info.value, TimeoutError)
    assert isinstance(info.value, (HTTPProtocolError, ConnectionResetError))


def test_well_formed_answers_still_read() -> None:
    assert _exchange(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(_OK) + _OK) == (200, _OK)
    assert _exchange(b"HTTP/1.0 200 OK\r\n\r\n" + _OK) == (200, _OK)  # close-delimited
    assert _exchange(b"HTTP/1.1 204 No Content\r\n\r\n") == (204, b"")
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n"
    assert _exchange(interim + b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") == (200, b"ok")
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"
    assert _exchange(chunked) == (200, b"hello")


def test_total_deadline_covers_a_drip_of_a_valid_answer() -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(_OK) + _OK
    start = time.perf_counter()
    with pytest.raises(TimeoutError):
        _exchange(answer, timeout=0.3, drip=0.02)  # each byte is prompt; the whole answer is not
    assert time.perf_counter() - start < 0.3 + 0.4


def test_fetch_from_inside_a_running_loop_and_bad_urls() -> None:
    with _server() as srv:
        async def inside() -> tuple[int, bytes]:
            return fetch(f"http://127.0.0.1:{srv.port}/health", 2.0)

        assert asyncio.run(inside())[0] == 200
    with pytest.raises(ValueError, match="http"):
        fetch("ftp://x/y", 1.0)
    with pytest.raises(ValueError, match="api_base"):
        ChatClient("m", "http://[::1/v1")


@pytest.mark.parametrize("mode", ["drip", "bad_chunk", "truncated"])
def test_litellm_transport_has_the_same_total_deadline(mode: str) -> None:
    async def go(url: str) -> None:
        client = ChatClient(MODEL, url, timeout=0.5, retries=1, backoff=0.01, transport="litellm")
        try:
            await client.complete(MSGS)
        finally:
            await client.aclose()

    import litellm  # noqa: F401  (imported before the clock starts: it takes seconds)

    with _server(mode=mode) as srv, pytest.raises(LLMCallError, match="2 attempt"):
        start = time.perf_counter()
        try:
            asyncio.run(go(srv.base_url))
        finally:
            assert time.perf_counter() - start < 2 * 0.5 + 3.0


# --- answers that are JSON but not a completion, memory errors, fail-fast ------------------------


@pytest.mark.parametrize("body", [
    b'{"choices": "x"}', b'{"choices": [{"message": {"content": "a"}}], "usage": [1]}',
    b'{"choices": [{"message": {"content": "a"}}], "usage": {"prompt_tokens": "many"}}',
    b'{"choices": [{"message": {"content": "a"}}], "usage": {"prompt_tokens": 1e999}}',
    b"[" * 200_000 + b"]" * 200_000, b"\xff\xfe not utf-8", b"[]", b"null",
])
def test_json_that_is_not_a_completion_is_retried_then_llm_error(body: bytes) -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body

    async def go() -> None:
        server = await _raw_server(answer)
        client = ChatClient("m", f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1", timeout=2, retries=1,
                            backoff=0.01)
        try:
            await client.complete(MSGS)
        finally:
            await client.aclose()
            server.close()

    with pytest.raises(LLMCallError, match="2 attempt"):
        asyncio.run(go())


def test_memory_error_while_reading_is_a_failed_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    import clinic_env.llm.client as client_mod

    def boom(*_a: Any, **_k: Any) -> Any:
        raise MemoryError

    monkeypatch.setattr(client_mod, "_parse_body", boom)

    async def go(url: str) -> None:
        client = ChatClient("m", url, timeout=2, retries=1, backoff=0.01)
        try:
            await client.complete(MSGS)
        finally:
            await client.aclose()

    with _server() as srv, pytest.raises(LLMCallError, match=r"2 attempt.*MemoryError"):
        asyncio.run(go(srv.base_url))


def test_fail_fast_after_calls_in_a_row_fail_then_recovers() -> None:
    async def go(srv: OpenAITestServer) -> list[str]:
        client = ChatClient("m", srv.base_url, timeout=1, retries=0, fail_fast_after=3, fail_fast_s=0.3)
        seen = []
        try:
            for _ in range(3):
                with pytest.raises(LLMCallError, match="1 attempt"):
                    await client.complete(MSGS)
            calls = srv.calls
            with pytest.raises(LLMCallError, match="not sent, the server is failing") as info:
                await client.complete(MSGS)
            assert srv.calls == calls  # nothing was sent
            seen.append(str(info.value))
            srv.mode = "ok"
            await asyncio.sleep(0.35)
            seen.append((await client.complete(MSGS)).text)
            srv.mode = "error"
            with pytest.raises(LLMCallError, match="1 attempt"):  # the count restarted after the success
                await client.complete(MSGS)
        finally:
            await client.aclose()
        return seen

    with OpenAITestServer(["fine"], mode="error") as srv:
        seen = asyncio.run(go(srv))
    assert "HTTP 500" in seen[0] and seen[1] == "fine"


# --- long replies are parsed off the event loop ------------------------------------------------


def test_long_replies_are_stepped_in_a_worker_thread(monkeypatch: pytest.MonkeyPatch, small_cases: list[Any]) -> None:
    from clinic_env.rollout_async import INLINE_REPLY_CHARS, TextConsultationEnv

    threads: list[tuple[int, bool]] = []
    original = TextConsultationEnv.step

    def step(self: Any, action: Any) -> None:
        if isinstance(action, str):
            threads.append((len(action), threading.current_thread() is threading.main_thread()))
        original(self, action)

    monkeypatch.setattr(TextConsultationEnv, "step", step)
    padding = " " + "x" * INLINE_REPLY_CHARS

    calls = iter(range(10**6))

    def reply(req: dict[str, Any]) -> str:
        text = SCRIPTS["doctor"](req)
        text = text if isinstance(text, str) else text.content
        return text + padding if next(calls) % 2 else text

    with OpenAITestServer(reply) as srv:
        batch = asyncio.run(arun(small_cases[:1], f"llm:{MODEL}", api_base=srv.base_url, timeout=5))
    assert batch[0]["end_reason"] in ("final_diagnosis", "max_cycles", "patience")
    long = [main for n, main in threads if n > INLINE_REPLY_CHARS]
    short = [main for n, main in threads if n <= INLINE_REPLY_CHARS]
    assert long and short and not any(long) and all(short)
