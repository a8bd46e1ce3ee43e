"""The loopback OpenAI-compatible test server and the chat client: latency, faults, retries, usage."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from typing import Any

import pytest

from clinic_env.llm.client import ChatClient, LLMCallError, Usage, track_usage
from clinic_env.testing.openai_server import OpenAITestServer, Reply

MSGS = [{"role": "user", "content": "hello there"}]


def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(f"{url}/chat/completions", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def test_server_scripted_replies_n_usage_and_endpoints() -> None:
    with OpenAITestServer(["one", "two"], model="m") as srv:
        a = _post(srv.base_url, {"model": "m", "messages": MSGS})
        b = _post(srv.base_url, {"model": "m", "messages": MSGS, "n": 3})
        assert a["choices"][0]["message"]["content"] == "one"
        assert [c["message"]["content"] for c in b["choices"]] == ["two", "one", "two"]
        assert a["usage"]["prompt_tokens"] == 2 and srv.calls == 2
        with urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/health", timeout=5) as r:
            assert r.status == 200
        with urllib.request.urlopen(f"{srv.base_url}/models", timeout=5) as r:
            assert json.loads(r.read())["data"][0]["id"] == "m"
        with urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/metrics", timeout=5) as r:
            assert "vllm:spec_decode_num_draft_tokens_total" in r.read().decode()


def test_sequential_calls_are_fast_with_nagle_off() -> None:
    async def run(url: str) -> float:
        client = ChatClient("hosted_vllm/m", url, timeout=5)
        await client.complete(MSGS)
        start = time.perf_counter()
        for _ in range(30):
            await client.complete(MSGS)
        await client.aclose()
        return (time.perf_counter() - start) / 30

    with OpenAITestServer(["ok"]) as srv:
        per_call = asyncio.run(run(srv.base_url))
    assert per_call < 0.02  # with Nagle's algorithm on, each call would wait ~40 ms


@pytest.mark.parametrize("transport", ["http", "litellm"])
def test_client_transports_and_usage(transport: str) -> None:
    async def run(url: str) -> tuple[Any, Usage]:
        client = ChatClient("hosted_vllm/m", url, timeout=5, transport=transport)
        usage = Usage()
        track_usage(usage)
        out = await client.complete(MSGS, agent="doctor_0", temperature=0.0, n=2, seed=3)
        await client.aclose()
        return out, usage

    with OpenAITestServer(lambda req: f"seed={req.get('seed')} n={req.get('n')}") as srv:
        out, usage = asyncio.run(run(srv.base_url))
        assert srv.requests[0]["model"] == "m"  # the provider prefix is not sent
    assert out.texts == ("seed=3 n=2", "seed=3 n=2") and out.prompt_tokens == 2
    assert usage.calls == 1 and usage.by_agent["doctor_0"]["calls"] == 1 and usage.latency_s > 0


def test_auto_transport_choice() -> None:
    assert ChatClient("hosted_vllm/x", "http://127.0.0.1:1/v1").transport == "http"
    assert ChatClient("served-name", "http://127.0.0.1:1/v1").transport == "http"
    assert ChatClient("anthropic/claude-x", None).transport == "litellm"
    assert ChatClient("openai/gpt-4o-mini", None).transport == "litellm"


@pytest.mark.parametrize("transport", ["http", "litellm"])
def test_retries_with_backoff_then_success(transport: str) -> None:
    state = {"n": 0}

    def flaky(req: dict[str, Any]) -> Reply:
        state["n"] += 1
        return Reply("late answer") if state["n"] >= 3 else Reply(mode="error" if state["n"] == 1 else "garbage")

    async def run(url: str) -> tuple[Any, Usage]:
        client = ChatClient("hosted_vllm/m", url, timeout=5, retries=3, backoff=0.01, transport=transport)
        usage = Usage()
        track_usage(usage)
        out = await client.complete(MSGS)
        await client.aclose()
        return out, usage

    with OpenAITestServer(flaky) as srv:
        out, usage = asyncio.run(run(srv.base_url))
    assert out.text == "late answer" and out.attempts == 3 and usage.failed_attempts == 2


@pytest.mark.parametrize(("mode", "transport"), [("timeout", "http"), ("down", "http"), ("garbage", "http"),
                                                 ("error", "http"), ("timeout", "litellm"), ("garbage", "litellm")])
def test_failing_server_raises_after_retries(mode: str, transport: str) -> None:
    async def run(url: str) -> None:
        client = ChatClient("hosted_vllm/m", url, timeout=0.3, retries=1, backoff=0.01, transport=transport)
        try:
            await client.complete(MSGS)
        finally:
            await client.aclose()

    with OpenAITestServer(["x"], mode=mode, hang_seconds=1.0) as srv, pytest.raises(LLMCallError, match="2 attempt"):
        asyncio.run(run(srv.base_url))


def test_client_error_4xx_is_not_retried() -> None:
    async def run(url: str) -> None:
        client = ChatClient("m", url.replace("/v1", "/nope"), timeout=2, retries=3, backoff=0.01)
        try:
            await client.complete(MSGS)
        finally:
            await client.aclose()

    with OpenAITestServer(["x"]) as srv, pytest.raises(LLMCallError, match="HTTP 404"):
        asyncio.run(run(srv.base_url))
    assert srv.calls == 0


def test_concurrency_semaphore_bounds_calls_in_flight() -> None:
    async def run(url: str) -> None:
        client = ChatClient("m", url, timeout=5, concurrency=3)
        await asyncio.gather(*(client.complete(MSGS) for _ in range(12)))
        await client.aclose()

    with OpenAITestServer(["ok"], latency=0.05) as srv:
        start = time.perf_counter()
        asyncio.run(run(srv.base_url))
        elapsed = time.perf_counter() - start
    assert elapsed >= 4 * 0.05 * 0.9  # 12 calls, 3 at a time, 50 ms each: at least 4 rounds
    assert elapsed < 12 * 0.05  # but not one at a time


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_http_pool_reads_chunked_and_close_delimited_answers(framing: str) -> None:
    from clinic_env.llm.http import HTTPPool

    body = json.dumps({"choices": [{"message": {"content": "hi"}}]}).encode()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        if framing == "chunked":
            half = len(body) // 2
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                         + f"{half:x}\r\n".encode() + body[:half] + b"\r\n"
                         + f"{len(body) - half:x}\r\n".encode() + body[half:] + b"\r\n0\r\n\r\n")
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body)
        await writer.drain()
        writer.close()

    async def run() -> tuple[int, bytes]:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool = HTTPPool(f"http://127.0.0.1:{port}/v1")
        try:
            first = await pool.post_json("/chat/completions", b"{}", timeout=5)
            second = await pool.post_json("/chat/completions", b"{}", timeout=5)  # a closed connection is replaced
            assert first == second
            return first
        finally:
            await pool.close()
            server.close()

    status, raw = asyncio.run(run())
    assert status == 200 and json.loads(raw)["choices"][0]["message"]["content"] == "hi"
    with pytest.raises(ValueError, match="http"):
        HTTPPool("ftp://example/v1")
