"""A small OpenAI-compatible chat server on loopback, for tests and benchmarks (stdlib only).

It answers ``POST /v1/chat/completions`` (and ``/chat/completions``), ``GET /v1/models``,
``GET /health`` and ``GET /metrics`` (fake vLLM spec-decoding counters), with replies that are
scripted and deterministic:

- ``replies``: a list of strings served in turn (cycled), or a callable
  ``reply(request_json) -> str | Reply`` that sees the whole request (messages, n, seed...);
- ``latency``: seconds every call waits before answering (a fixed per-call latency);
- token data as vLLM returns it, when the request asks: ``return_token_ids`` adds
  ``prompt_token_ids`` and each choice's ``token_ids``; ``logprobs`` adds
  ``choice.logprobs.content`` (``"token_id:N"`` tokens with ``return_tokens_as_token_ids``). The
  tokeniser is a toy (:func:`toy_tokens`, ids by CRC-32), the logprobs deterministic stand-ins;
- ``mode``: ``"ok"``, ``"timeout"`` (never answers within any sane client timeout),
  ``"garbage"`` (HTTP 200 with a body that is not JSON), ``"error"`` (HTTP 500) or ``"down"``
  (closes the connection at once); changeable while the server runs to simulate a server that
  stops answering. ``fail_after=N`` switches to ``fail_mode`` after N good calls. Broken HTTP:
  ``"bad_status"`` (a garbage status line), ``"truncated"`` (``Content-Length`` larger than the
  body, then close), ``"bad_chunk"`` (malformed chunked framing), ``"drip"`` (a valid answer sent
  one byte every ``drip_interval`` seconds), ``"huge"`` (claims a 1 TiB body and streams it) and
  ``"huge_chunked"`` (an endless chunked body);
- ``metrics_mode`` and ``health_mode``: the same faults for ``GET /metrics`` and ``GET /health``.

Nagle's algorithm is switched off on every connection (``disable_nagle_algorithm``): without it
each small response waits ~40 ms for the client's delayed ACK. Responses are HTTP/1.1 keep-alive.

Run it in a thread (``with OpenAITestServer(...) as srv: srv.base_url``) or as a process
(``python -m clinic_env.testing.openai_server --port 8011 --latency-ms 50 --script doctor``) when
the client side is itself being timed, so that the two do not share one interpreter lock.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import re
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Union

__all__ = ["MODES", "VOCAB", "OpenAITestServer", "Reply", "toy_logprob", "toy_prompt", "toy_token_id", "toy_tokens"]

MODES = ("ok", "timeout", "garbage", "error", "down", "bad_status", "truncated", "bad_chunk", "drip", "huge",
         "huge_chunked")
_HUGE = 1 << 40  # the body length a "huge" answer claims


@dataclass(frozen=True)
class Reply:
    """One scripted answer with optional faults.

    Attributes:
        content: The assistant message text.
        delay: Extra seconds to wait before answering.
        mode: Fault for this call only (one of :data:`MODES`); ``"ok"`` answers normally.
    """

    content: str = ""
    delay: float = 0.0
    mode: str = "ok"


ReplyFn = Callable[[dict[str, Any]], Union[str, Reply]]


_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")
VOCAB = 32000


def toy_tokens(text: str) -> list[str]:
    """The loopback server's tokenisation: runs of spaces, words, single punctuation marks."""
    return _TOKEN.findall(text)


def toy_token_id(token: str) -> int:
    """A stable id for a toy token (CRC-32 modulo :data:`VOCAB`)."""
    return zlib.crc32(token.encode("utf-8")) % VOCAB


def toy_logprob(position: int, token: str) -> float:
    """A deterministic stand-in for a sampled token's log-probability, in [-4, -0.001]."""
    return -0.001 - (zlib.crc32(f"{position}:{token}".encode()) % 4000) / 1000.0


def toy_prompt(messages: Sequence[dict[str, Any]]) -> str:
    """The chat prompt the toy tokeniser sees (one ``<|role|>`` block per message, then the reply's)."""
    return "".join(f"<|{m.get('role', '')}|>\n{m.get('content', '')}\n" for m in messages) + "<|assistant|>\n"


def _token_fields(request: dict[str, Any], contents: Sequence[str], body: dict[str, Any]) -> None:
    """Add vLLM's token fields to ``body`` where the request asks for them (``return_token_ids``,
    ``logprobs``, ``return_tokens_as_token_ids``), in vLLM's response shape."""
    as_ids = bool(request.get("return_tokens_as_token_ids"))
    if request.get("return_token_ids"):
        body["prompt_token_ids"] = [toy_token_id(t) for t in toy_tokens(toy_prompt(request.get("messages", [])))]
    for choice, text in zip(body["choices"], contents, strict=True):
        tokens = toy_tokens(text)
        if request.get("return_token_ids"):
            choice["token_ids"] = [toy_token_id(t) for t in tokens]
        if request.get("logprobs"):
            choice["logprobs"] = {"content": [
                {"token": f"token_id:{toy_token_id(t)}" if as_ids else t, "logprob": toy_logprob(i, t),
                 "bytes": list(t.encode("utf-8")), "top_logprobs": []} for i, t in enumerate(tokens)]}


def _usage(request: dict[str, Any], contents: Sequence[str]) -> dict[str, int]:
    # Rough whitespace token counts: enough for usage bookkeeping to be exercised.
    prompt = sum(len(str(m.get("content", "")).split()) for m in request.get("messages", []))
    completion = sum(len(c.split()) for c in contents)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # silence per-request stderr lines
        pass

    def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _answer(self, mode: str, body: bytes, ctype: str = "application/json") -> None:
        """Answer ``body`` (status 200) as fault ``mode`` says (see the module docstring)."""
        owner = self.server.owner
        if mode == "timeout":
            owner.stopping.wait(owner.hang_seconds)
            mode = "down"
        if mode == "ok":
            self._send(200, body, ctype)
            return
        self.close_connection = True
        if mode == "garbage":
            self._send(200, b"<html>502 upstream \x00\xff garbage")
        elif mode == "error":
            self._send(500, b'{"error": {"message": "simulated server error", "type": "server_error"}}')
        elif mode != "down":
            with contextlib.suppress(OSError):  # the client hung up: that is what it should do
                self._broken(mode, body, ctype)

    def _broken(self, mode: str, body: bytes, ctype: str) -> None:
        owner, out = self.server.owner, self.wfile
        head = f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nConnection: close\r\n".encode()
        if mode == "bad_status":
            out.write(b"HTTX/1.1 2OO 0K?\r\n" + head[17:] + b"\r\n" + body)
        elif mode == "truncated":
            out.write(head + f"Content-Length: {len(body) + 4096}\r\n\r\n".encode() + body[: len(body) // 2])
        elif mode == "bad_chunk":
            out.write(head + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n" + body + b"\r\n0\r\n\r\n")
        elif mode == "drip":
            raw = head + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
            for i in range(len(raw)):
                if owner.stopping.wait(owner.drip_interval if i else 0.0):
                    return
                out.write(raw[i:i + 1])
        elif mode in ("huge", "huge_chunked"):
            chunked = mode == "huge_chunked"
            out.write(head + (b"Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {_HUGE}\r\n\r\n".encode()))
            block = b" " * (1 << 20)  # whitespace: a valid JSON prefix, so only a size bound stops a reader
            frame = f"{len(block):x}\r\n".encode() + block + b"\r\n" if chunked else block
            sent = 0
            while sent < owner.huge_bytes and not owner.stopping.is_set():
                out.write(frame)
                sent += len(block)

    def do_GET(self) -> None:
        owner = self.server.owner
        if self.path.rstrip("/") in ("/health", "/v1/health"):
            self._answer(owner.health_mode, b"")
        elif self.path.rstrip("/") in ("/v1/models", "/models"):
            self._send(200, json.dumps({"object": "list", "data": [
                {"id": owner.model, "object": "model", "owned_by": "clinic-env-test"}]}).encode())
        elif self.path.startswith("/metrics"):
            self._answer(owner.metrics_mode, owner.metrics_text().encode(), "text/plain; version=0.0.4")
        else:
            self._send(404, b'{"error": "not found"}')

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._send(404, b'{"error": "not found"}')
            return
        try:
            request = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send(400, b'{"error": {"message": "request body is not JSON"}}')
            return
        owner = self.server.owner
        contents, delay, mode = owner.answer(request)
        if delay > 0:
            time.sleep(delay)
        body = {
            "id": f"chatcmpl-test-{owner.calls}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model", owner.model),
            "choices": [{"index": i, "message": {"role": "assistant", "content": c}, "finish_reason": "stop"}
                        for i, c in enumerate(contents)],
            "usage": _usage(request, contents),
        }
        _token_fields(request, contents, body)
        self._answer(mode, json.dumps(body).encode())


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # the default backlog of 5 resets connections under 64 concurrent clients
    owner: OpenAITestServer


class OpenAITestServer:
    """A scripted OpenAI-compatible server on ``127.0.0.1`` (see the module docstring).

    Args:
        replies: Strings served in turn, or a callable ``reply(request) -> str | Reply``.
        latency: Seconds each chat call waits before answering.
        mode: Initial fault mode (``ok``, ``timeout``, ``garbage``, ``error``, ``down``).
        fail_after: After this many answered calls, switch to ``fail_mode``.
        fail_mode: The mode used after ``fail_after`` calls.
        model: The model id listed by ``/v1/models``.
        port: TCP port (0 picks a free one).
        hang_seconds: How long a ``timeout`` call hangs before closing the connection.
        metrics_mode: Fault mode of ``GET /metrics``.
        health_mode: Fault mode of ``GET /health``.
        drip_interval: Seconds between the bytes of a ``drip`` answer.
        huge_bytes: How much of a ``huge`` body is sent at most (unless the client hangs up first).
    """

    def __init__(self, replies: Sequence[str] | ReplyFn = ("OK",), *, latency: float = 0.0, mode: str = "ok",
                 fail_after: int | None = None, fail_mode: str = "timeout", model: str = "test-model",
                 port: int = 0, hang_seconds: float = 30.0, metrics_mode: str = "ok", health_mode: str = "ok",
                 drip_interval: float = 0.5, huge_bytes: int = 256 << 20) -> None:
        for given in (mode, fail_mode, metrics_mode, health_mode):
            if given not in MODES:
                raise ValueError(f"modes must be among {MODES}, got {given!r}")
        if callable(replies):
            self._fn: ReplyFn | None = replies
            self._cycle: Any = None
        else:
            if not replies:
                raise ValueError("replies must hold at least one string")
            self._fn, self._cycle = None, itertools.cycle(list(replies))
        self.latency, self.mode, self.fail_after, self.fail_mode = latency, mode, fail_after, fail_mode
        self.model, self.hang_seconds = model, hang_seconds
        self.metrics_mode, self.health_mode = metrics_mode, health_mode
        self.drip_interval, self.huge_bytes = drip_interval, huge_bytes
        self.stopping = threading.Event()  # ends hanging and dripping answers when the server stops
        self.calls = 0
        self.requests: deque[dict[str, Any]] = deque(maxlen=200)  # the latest requests, for tests
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", port), _Handler)
        self._httpd.owner = self
        self._thread: threading.Thread | None = None
        self.spec_counters = {"num_drafts": 0, "num_draft_tokens": 0, "num_accepted_tokens": 0}

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1`` (what OpenAI clients and litellm take as ``api_base``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def answer(self, request: dict[str, Any]) -> tuple[list[str], float, str]:
        """Decide one call's reply contents, delay and mode (thread-safe)."""
        with self._lock:
            self.calls += 1
            self.requests.append(request)
            mode = self.mode
            if self.fail_after is not None and self.calls > self.fail_after:
                mode = self.fail_mode
            n = max(1, int(request.get("n") or 1))
            contents: list[str] = []
            delay = self.latency
            for _ in range(n):
                out = self._fn(request) if self._fn is not None else next(self._cycle)
                if isinstance(out, Reply):
                    delay += out.delay if not contents else 0.0
                    if out.mode != "ok":
                        mode = out.mode
                    contents.append(out.content)
                else:
                    contents.append(str(out))
            self.spec_counters["num_drafts"] += n
            self.spec_counters["num_draft_tokens"] += 3 * n
            self.spec_counters["num_accepted_tokens"] += 2 * n
        return contents, delay, mode

    def metrics_text(self) -> str:
        """Prometheus text with vLLM-style spec-decoding counters (2 of 3 draft tokens accepted)."""
        c = self.spec_counters
        label = f'{{model_name="{self.model}"}}'
        return "".join(
            f"# TYPE vllm:spec_decode_{k}_total counter\nvllm:spec_decode_{k}_total{label} {float(v)}\n"
            for k, v in c.items())

    def start(self) -> OpenAITestServer:
        """Serve in a daemon thread; returns self."""
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="openai-test-server", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted."""
        self._httpd.serve_forever(poll_interval=0.05)

    def serve_until_interrupted(self) -> None:
        """Print the base URL, then serve in this thread until Ctrl-C (for ``python -m`` use)."""
        print(f"serving {self.base_url}", flush=True)
        try:
            self.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop serving and close the socket (hanging and dripping answers end too)."""
        self.stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> OpenAITestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> None:
    """Run a server process: ``python -m clinic_env.testing.openai_server --port P [--latency-ms L]``."""
    from clinic_env.testing.scripted import SCRIPTS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--script", choices=sorted(SCRIPTS), default="doctor",
                        help="scripted replies: a deterministic doctor, patient, examiner or an echo")
    parser.add_argument("--mode", choices=MODES, default="ok")
    parser.add_argument("--metrics-mode", choices=MODES, default="ok", help="fault mode of GET /metrics")
    args = parser.parse_args(argv)
    server = OpenAITestServer(SCRIPTS[args.script], latency=args.latency_ms / 1000.0, mode=args.mode, port=args.port,
                              metrics_mode=args.metrics_mode)
    server.serve_until_interrupted()


if __name__ == "__main__":
    main()
