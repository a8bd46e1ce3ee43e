"""Credentials never reach what clinic-env prints or stores: :func:`redact` over generated secrets in
every context they travel in, and end to end through ``run`` and ``serve`` (stdout, stderr,
results.jsonl, summary.json)."""

from __future__ import annotations

import asyncio
import json
import shlex
import socket
import subprocess
import sys
import threading
from pathlib import Path

from hypothesis import assume, given
from hypothesis import strategies as st
from typer.testing import CliRunner

import clinic_env
from clinic_env.llm.client import ChatClient, LLMCallError
from clinic_env.llm.redact import MASK, redact, redact_argv, redact_data, redact_url, register_secret
from clinic_env.llm.serve import ServeConfig

CASE_FILE = Path(clinic_env.__file__).parent / "data" / "cases" / "cardiology" / "card-af-rvr.yaml"
ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "PATH": "/usr/bin:/bin"}

# Secrets as they may appear unencoded in URLs and headers; each holds a digit, which the prose
# around them never does, so "the secret is gone" cannot be fooled by the prose.
URL_SAFE = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._~-"),
                   min_size=6, max_size=40).filter(lambda s: any(c.isdigit() for c in s))
KEYISH = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"),
                 min_size=8, max_size=48).filter(lambda s: any(c.isdigit() for c in s))
ANY_VALUE = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1,
                    max_size=30).filter(lambda s: any(c.isdigit() for c in s) and s.strip() == s and "*" not in s)
WORDS = st.lists(st.sampled_from(["error", "calling", "server", "failed", "after", "the", "attempt", "episode",
                                  "connection", "refused", "from", "reply", "HTTP", "at", "(", ")", ":", ","]),
                 max_size=6).map(" ".join)


def _hidden(text: str, secret: str) -> None:
    # The secret must not already be part of the text around it (a port number, a header name).
    assume(text.count(secret) == 1 and secret not in text.replace(secret, " "))
    out = redact(text)
    assert secret not in out, (text, out)
    assert MASK in out and redact(out) == out


@given(WORDS, URL_SAFE, URL_SAFE, st.sampled_from(["http", "https"]), WORDS)
def test_url_userinfo(before: str, user: str, secret: str, scheme: str, after: str) -> None:
    url = f"{scheme}://{user}:{secret}@example.org:8000/v1"
    _hidden(f"{before} {url} {after}", secret)
    assert redact_url(url) == f"{scheme}://{MASK}@example.org:8000/v1"
    assert secret not in redact(repr(f"got {url!r}")).replace("example.org:8000/v1", "")


@given(WORDS, URL_SAFE, st.sampled_from(["api_key", "key", "token", "access_token", "apiKey", "sig", "password"]),
       st.booleans())
def test_query_parameters(before: str, secret: str, name: str, first: bool) -> None:
    query = f"{name}={secret}&model=x" if first else f"model=x&{name}={secret}"
    url = f"http://127.0.0.1:8000/v1/chat/completions?{query}"
    _hidden(f"{before} POST {url} HTTP/1.1", secret)
    assert "model=x" in redact(url) and "127.0.0.1:8000/v1/chat/completions" in redact(url)


@given(WORDS, st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~+/"),
                      min_size=1, max_size=40).filter(lambda s: any(c.isdigit() for c in s)),
       st.sampled_from(["Bearer", "Basic", "bearer"]), st.booleans())
def test_authorization_headers(before: str, secret: str, scheme: str, as_bytes_repr: bool) -> None:
    head = f"POST /v1 HTTP/1.1\r\nAuthorization: {scheme} {secret}\r\nContent-Length: 2\r\n"
    text = repr(head.encode()) if as_bytes_repr else head
    _hidden(f"{before} {text}", secret)
    _hidden(json.dumps({"headers": {"Authorization": f"{scheme} {secret}"}}), secret)


@given(WORDS, KEYISH, st.sampled_from(["sk-", "sk-proj-", "sk-ant-api03-", "hf_", "ghp_"]))
def test_provider_key_shapes(before: str, body: str, prefix: str) -> None:
    assume(prefix not in ("hf_", "ghp_") or (body.isalnum() and len(body) >= 10))
    _hidden(f"{before} Incorrect API key provided: {prefix}{body}. {before}", body)


@given(st.sampled_from(["HF_TOKEN", "OPENAI_API_KEY", "db_password", "MY_SECRET", "AWS_SECRET_ACCESS_KEY"]),
       ANY_VALUE, WORDS)
def test_environment_assignments_and_flags(name: str, value: str, after: str) -> None:
    assume(not value.startswith("--"))  # read as the next flag, by any command-line parser
    _hidden(f"{name}={shlex.quote(value)} python -m vllm {after}", value)
    _hidden(f"python -m vllm --{name.lower().replace('_', '-')} {shlex.quote(value)} {after}", value)
    _hidden(json.dumps({name: value, "other": 1}), value)
    assert redact_argv(["serve", f"--{name.lower()}", value])[-1] == MASK
    assert redact_data({"env": {name: value}})["env"][name] == MASK


@given(WORDS)
def test_prose_without_secrets_is_unchanged(text: str) -> None:
    plain = f"{text} http://127.0.0.1:8000/v1 prompt_tokens=12 HTTP 500 model=llama max_tokens=20"
    assert redact(plain) == plain


@given(ANY_VALUE.filter(lambda s: len(s) >= 5), WORDS)
def test_registered_secrets_are_hidden_in_any_context(secret: str, words: str) -> None:
    register_secret(secret)
    _hidden(f"{words} [{secret}] {words}", secret)
    _hidden(f"x{secret}y", secret)  # inside a word too: a registered value is hidden wherever it is


def test_client_errors_and_the_config_repr_hide_credentials() -> None:
    cfg = ServeConfig("m", env={"HF_TOKEN": "hf_abcdefghijklmnop1234"})
    assert "hf_abcdefghijklmnop1234" not in repr(cfg)

    async def go() -> str:
        client = ChatClient("m", "http://alice:pw-9876543@127.0.0.1:9/v1?api_key=k-12345678", timeout=1, retries=0)
        try:
            await client.complete([{"role": "user", "content": "x"}])
        except LLMCallError as exc:
            return str(exc)
        finally:
            await client.aclose()
        return ""

    message = asyncio.run(go())
    assert message and "pw-9876543" not in message and "k-12345678" not in message


# --- end to end ----------------------------------------------------------------------------------


def _echo_401_server() -> tuple[socket.socket, threading.Thread]:
    """Answers every request with 401 and the request head echoed back (as some proxies do)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    piece = conn.recv(65536)
                    if not piece:
                        break
                    data += piece
                head = data.split(b"\r\n\r\n")[0]
                body = json.dumps({"error": {"message": "unauthorized: " + head.decode("latin-1")}}).encode()
                conn.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                             % len(body) + body)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return sock, thread


def test_run_never_prints_or_stores_credentials(tmp_path: Path) -> None:
    sock, _ = _echo_401_server()
    port = sock.getsockname()[1]
    password, key = "Pa55-word-77Q", "sk-live0123456789abcdef"
    api_base = f"http://bob:{password}@127.0.0.1:{port}/v1?api_key={key}"
    try:
        proc = subprocess.run([sys.executable, "-m", "clinic_env", "run", "--cases", str(CASE_FILE),
                               "--doctor", "llm:x", "--doctor", "thorough", "--api-base", api_base, "--timeout", "2",
                               "--out", str(tmp_path)], capture_output=True, text=True, timeout=120, env=ENV)
    finally:
        sock.close()
    assert proc.returncode == 1 and "HTTP 401" in proc.stderr, proc.stderr
    stored = [(tmp_path / "results.jsonl").read_text(), (tmp_path / "summary.json").read_text()]
    for text in (proc.stdout, proc.stderr, *stored):
        assert password not in text and key not in text and "0123456789abcdef" not in text
    summary = json.loads(stored[1])
    assert summary["llm"]["llm:x"]["api_base"] == f"http://{MASK}@127.0.0.1:{port}/v1?api_key={MASK}"


def test_serve_dry_run_masks_secret_env_values() -> None:
    from clinic_env.cli import app

    result = CliRunner().invoke(app, ["serve", "vllm", "--model", "m", "--dry-run", "--env", "HF_TOKEN=tok-31415926",
                                      "--env", "VLLM_CPU_KVCACHE_SPACE=4", "--extra=--api-key=abc-2718281828"])
    assert result.exit_code == 0, result.output
    assert "tok-31415926" not in result.output and "abc-2718281828" not in result.output
    assert f"HF_TOKEN={MASK}" in result.output and "VLLM_CPU_KVCACHE_SPACE=4" in result.output
    bad = CliRunner().invoke(app, ["serve", "vllm", "--model", "m", "--dry-run", "--env", "NOEQUALS"])
    assert bad.exit_code == 2 and "KEY=VALUE" in bad.output


def test_redact_takes_linear_time_on_adversarial_text() -> None:
    import time

    units = ["key", "?key", "akey_", "'k':", "k=", '"key":', "http://@", "http://a", "Authorization: ", "--key ",
             "a.", "sk-", "Bearer ", "-", "a-", "eyJaaaaaa.", "x-api-key:", '"', "key='"]
    for unit in units:
        small, big = unit * (2000 // len(unit)), unit * (32000 // len(unit))
        start = time.perf_counter()
        redact(small)
        t_small = time.perf_counter() - start
        start = time.perf_counter()
        redact(big)
        t_big = time.perf_counter() - start
        # 16x the text: a quadratic pattern would take ~256x; allow 40x and noise on a busy machine.
        assert t_big < max(40 * t_small, 0.05) and t_big < 2.0, (unit, t_small, t_big)
