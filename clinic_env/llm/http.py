"""A minimal keep-alive HTTP/1.1 client on asyncio streams, for OpenAI-compatible servers.

Rollouts spend most of their client time per LLM call in the HTTP library; this one does only
what a chat-completion round trip needs (POST a JSON body, read a ``Content-Length``, chunked or
close-delimited answer, keep the connection for the next call) and costs a fraction of a general
client. HTTPS works through :mod:`ssl`. Not a general HTTP client: no redirects, proxies or
compression.

It is written for servers that misbehave. Every request has one *total* deadline covering the
connection, the headers and the whole body (a server that drips a byte a second cannot stretch
it), the body is bounded (``max_body``, 8 MiB by default: a larger one is a protocol error, never
a MemoryError), and every malformed answer (a garbage status line, a bad ``Content-Length``, a
malformed or truncated chunked body, a connection closed mid-answer) is raised as
:class:`HTTPProtocolError`, a :class:`ConnectionError`. So a caller needs to handle exactly two
things: :class:`TimeoutError` (the deadline passed) and :class:`OSError` (everything else).

:func:`fetch` is the blocking form of one GET (``/health``, ``/metrics``), with the same guarantees.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
import sys
import threading
from collections.abc import Awaitable
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from clinic_env.llm.redact import redact_url

__all__ = ["MAX_BODY", "HTTPPool", "HTTPProtocolError", "deadline", "fetch"]

_Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]
T = TypeVar("T")

#: Largest response body accepted (bytes); more is a protocol error.
MAX_BODY = 8 * 1024 * 1024
_MAX_HEADERS = 128  # header lines (and trailer lines) per answer
_NO_BODY = (204, 304)


class HTTPProtocolError(ConnectionError):
    """The server's answer was not well-formed HTTP/1.1 (or broke a limit)."""


if sys.version_info >= (3, 11):
    async def deadline(awaitable: Awaitable[T], seconds: float) -> T:
        """``await awaitable`` but raise :class:`TimeoutError` once ``seconds`` have passed in all."""
        async with asyncio.timeout(seconds):
            return await awaitable
else:  # pragma: no cover - Python 3.10
    async def deadline(awaitable: Awaitable[T], seconds: float) -> T:
        """``await awaitable`` but raise :class:`TimeoutError` once ``seconds`` have passed in all."""
        try:
            return await asyncio.wait_for(awaitable, seconds)
        except asyncio.TimeoutError as exc:
            raise TimeoutError(f"no complete answer within {seconds:g} s") from exc


def _content_length(value: bytes, max_body: int) -> int:
    # Digits only (int() would also take "+5", " 5", "5_0" and unicode digits).
    if not value.isdigit() or len(value) > 18:
        raise HTTPProtocolError(f"bad Content-Length {value[:40]!r}")
    n = int(value)
    if n > max_body:
        raise HTTPProtocolError(f"answer of {n} bytes is over the {max_body}-byte limit")
    return n


async def _line(reader: asyncio.StreamReader, what: str) -> bytes:
    try:
        line = await reader.readline()
    except ValueError as exc:  # asyncio's line limit (64 KiB) was passed
        raise HTTPProtocolError(f"{what} line over the length limit") from exc
    if not line.endswith(b"\n"):
        raise HTTPProtocolError(f"connection closed inside the {what}")
    return line


async def _read_exactly(reader: asyncio.StreamReader, n: int) -> bytes:
    try:
        return await reader.readexactly(n)
    except asyncio.IncompleteReadError as exc:
        raise HTTPProtocolError(f"connection closed after {len(exc.partial)} of {n} body bytes") from exc


async def _chunked(reader: asyncio.StreamReader, max_body: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        line = await _line(reader, "chunk size")
        size_field = line.split(b";", 1)[0].strip()
        if not size_field or len(size_field) > 16 or size_field.strip(b"0123456789abcdefABCDEF"):
            raise HTTPProtocolError(f"bad chunk size line {line[:40]!r}")
        size = int(size_field, 16)
        if size == 0:
            for _ in range(_MAX_HEADERS):  # trailers, then the blank line
                if (await _line(reader, "trailer")) in (b"\r\n", b"\n"):
                    return b"".join(chunks)
            raise HTTPProtocolError("too many trailer lines")
        total += size
        if total > max_body:
            raise HTTPProtocolError(f"chunked answer over the {max_body}-byte limit")
        chunks.append(await _read_exactly(reader, size))
        if (await _line(reader, "chunk end")) not in (b"\r\n", b"\n"):
            raise HTTPProtocolError("chunk data longer than its size")


async def _until_close(reader: asyncio.StreamReader, max_body: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        piece = await reader.read(65536)
        if not piece:
            return b"".join(chunks)
        total += len(piece)
        if total > max_body:
            raise HTTPProtocolError(f"answer over the {max_body}-byte limit")
        chunks.append(piece)


async def read_response(reader: asyncio.StreamReader, max_body: int = MAX_BODY, head: bool = False,
                        ) -> tuple[int, bytes, bool]:
    """Read one answer: ``(status, body, keep_alive)``; raises :class:`HTTPProtocolError` when it
    is malformed or over ``max_body`` (``head``: the request was a HEAD, there is no body).

    The status line and headers are read in one call (CRLF line ends, 64 KiB at most in all) and
    split in C: a well-formed answer costs no more than the lenient reader this replaced. Interim
    ``1xx`` answers are skipped (a few at most), so the final answer is never left in the stream
    for the next request to read.
    """
    for _ in range(4):
        status, body, keep = await _read_one(reader, max_body, head)
        if not 100 <= status < 200:
            return status, body, keep
        if status == 101:
            raise HTTPProtocolError("the server switched protocols (101)")
    raise HTTPProtocolError("too many interim (1xx) answers")


async def _read_one(reader: asyncio.StreamReader, max_body: int, head: bool) -> tuple[int, bytes, bool]:
    try:
        raw_head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            raise ConnectionResetError("connection closed before an answer") from exc
        raise HTTPProtocolError(f"connection closed inside the headers: {exc.partial[:80]!r}") from exc
    except asyncio.LimitOverrunError as exc:
        raise HTTPProtocolError("status line and headers over the 64 KiB limit") from exc
    lines = raw_head[:-4].split(b"\r\n")
    status_line = lines[0]
    fields = status_line.split(None, 2)
    if len(fields) < 2 or not fields[0].startswith(b"HTTP/1.") or len(fields[1]) != 3 or not fields[1].isdigit():
        raise HTTPProtocolError(f"bad status line {status_line[:80]!r}")
    if len(lines) > _MAX_HEADERS:
        raise HTTPProtocolError("too many header lines")
    status = int(fields[1])
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        key = name.strip().lower()
        if not sep or not key:
            raise HTTPProtocolError(f"bad header line {line[:80]!r}")
        value = value.strip()
        if key == b"content-length" and headers.get(key, value) != value:
            raise HTTPProtocolError("conflicting Content-Length headers")
        headers[key] = value
    keep = headers.get(b"connection", b"").lower() != b"close" and fields[0] != b"HTTP/1.0"
    encoding = headers.get(b"transfer-encoding", b"").lower()
    if head or status in _NO_BODY or 100 <= status < 200:
        body = b""
    elif encoding:
        if encoding != b"chunked":
            raise HTTPProtocolError(f"unsupported Transfer-Encoding {encoding[:40]!r}")
        body = await _chunked(reader, max_body)
    elif b"content-length" in headers:
        body = await _read_exactly(reader, _content_length(headers[b"content-length"], max_body))
    else:
        body, keep = await _until_close(reader, max_body), False
    return status, body, keep


class HTTPPool:
    """Keep-alive connections to one server (use from one event loop).

    Args:
        base_url: ``http://host:port/prefix`` or ``https://...``; request paths are appended, and a
            query string (``?api_key=...``) is kept on every request. ``user:password@`` in the
            URL is sent as HTTP Basic authentication.
        max_body: Largest answer body accepted (bytes).
    """

    def __init__(self, base_url: str, max_body: int = MAX_BODY) -> None:
        try:
            parts = urlsplit(base_url)
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"api_base is not a valid URL: {redact_url(base_url)!r}") from exc
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"api_base must be an http(s) URL, got {redact_url(base_url)!r}")
        self.host = parts.hostname
        self.tls = parts.scheme == "https"
        self.port = port or (443 if self.tls else 80)
        self.prefix = parts.path.rstrip("/")
        self.query = f"?{parts.query}" if parts.query else ""
        self.max_body = max_body
        default_port = self.port == (443 if self.tls else 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self._host_header = host if default_port else f"{host}:{self.port}"
        self._basic = ""
        if parts.username is not None or parts.password is not None:
            pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}".encode()
            self._basic = f"Authorization: Basic {base64.b64encode(pair).decode()}\r\n"
        self._idle: list[_Conn] = []
        self.closed = False

    async def _connect(self) -> _Conn:
        ctx = ssl.create_default_context() if self.tls else None
        return await asyncio.open_connection(self.host, self.port, ssl=ctx)

    async def _roundtrip(self, conn: _Conn, request: bytes, head: bool) -> tuple[int, bytes, bool]:
        reader, writer = conn
        writer.write(request)
        await writer.drain()
        return await read_response(reader, self.max_body, head)

    async def _send(self, request: bytes, head: bool = False) -> tuple[int, bytes]:
        for attempt in (0, 1):
            reused = bool(self._idle)
            conn = self._idle.pop() if reused else await self._connect()
            try:
                status, body, keep = await self._roundtrip(conn, request, head)
            except (ConnectionError, OSError) as exc:
                conn[1].close()
                if reused and attempt == 0 and not isinstance(exc, HTTPProtocolError):
                    continue  # the server closed an idle connection: once more on a fresh one
                raise
            except BaseException:  # cancelled (deadline) mid-way: the connection's state is unknown
                conn[1].close()
                raise
            if keep and not self.closed:
                self._idle.append(conn)
            else:
                conn[1].close()
            return status, body
        raise ConnectionResetError("unreachable")

    async def request(self, method: str, path: str, body: bytes | None, timeout: float,
                      headers: str = "") -> tuple[int, bytes]:
        """Send ``method prefix+path``; returns the status and the body.

        Raises:
            TimeoutError: No complete answer within ``timeout`` seconds (connect, headers and body).
            OSError: The connection failed, or the answer was malformed or too large
                (:class:`HTTPProtocolError`).
        """
        length = f"Content-Length: {len(body)}\r\n" if body is not None else ""
        head = (f"{method} {self.prefix}{path}{self.query} HTTP/1.1\r\nHost: {self._host_header}\r\n{length}"
                f"{self._basic}{headers}\r\n").encode("latin-1")
        try:
            return await deadline(self._send(head + body if body else head, method == "HEAD"), timeout)
        except MemoryError as exc:  # only a pathological answer gets here (bodies are bounded)
            raise HTTPProtocolError("out of memory reading the answer") from exc

    async def post_json(self, path: str, body: bytes, timeout: float, api_key: str | None = None) -> tuple[int, bytes]:
        """POST ``body`` (JSON bytes) to ``prefix + path`` (see :meth:`request`)."""
        auth = f"Authorization: Bearer {api_key}\r\n" if api_key else ""
        return await self.request("POST", path, body, timeout,
                                  f"Content-Type: application/json\r\nAccept: application/json\r\n{auth}")

    async def get(self, path: str, timeout: float) -> tuple[int, bytes]:
        """GET ``prefix + path`` (see :meth:`request`)."""
        return await self.request("GET", path, None, timeout)

    async def close(self) -> None:
        """Close every idle connection."""
        self.closed = True
        while self._idle:
            _, writer = self._idle.pop()
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


async def afetch(url: str, timeout: float, max_body: int = MAX_BODY) -> tuple[int, bytes]:
    """One GET of ``url`` on a fresh connection, under a total deadline (see :meth:`HTTPPool.request`)."""
    parts = urlsplit(url)
    pool = HTTPPool(f"{parts.scheme}://{parts.netloc}", max_body)
    try:
        return await pool.get(f"{parts.path or '/'}{'?' + parts.query if parts.query else ''}", timeout)
    finally:
        await pool.close()


def fetch(url: str, timeout: float, max_body: int = MAX_BODY) -> tuple[int, bytes]:
    """Blocking :func:`afetch` (from a running event loop it runs in a helper thread, so it still
    blocks the caller but never past ``timeout``).

    Raises:
        ValueError: ``url`` is not an http(s) URL.
        TimeoutError, OSError: As :meth:`HTTPPool.request`.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(afetch(url, timeout, max_body))
    out: list[tuple[int, bytes]] = []
    err: list[BaseException] = []

    def work() -> None:
        try:
            out.append(asyncio.run(afetch(url, timeout, max_body)))
        except BaseException as exc:  # handed to the caller's thread
            err.append(exc)

    thread = threading.Thread(target=work, name="clinic-env-fetch", daemon=True)
    thread.start()
    thread.join(timeout + 5.0)
    if err:
        raise err[0]
    if not out:
        raise TimeoutError(f"no complete answer within {timeout:g} s")
    return out[0]
