"""A minimal keep-alive HTTP/1.1 client on asyncio streams, for OpenAI-compatible servers.

Rollouts spend most of their client time per LLM call in the HTTP library; this one does only
what a chat-completion round trip needs (POST a JSON body, read a ``Content-Length`` or chunked
answer, keep the connection for the next call) and costs a fraction of a general client. HTTPS
works through :mod:`ssl`. Not a general HTTP client: no redirects, proxies or compression.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from urllib.parse import urlsplit

__all__ = ["HTTPPool", "HTTPProtocolError"]

_Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class HTTPProtocolError(ConnectionError):
    """The server's answer was not well-formed HTTP/1.1."""


class HTTPPool:
    """Keep-alive connections to one server (use from one event loop).

    Args:
        base_url: ``http://host:port/prefix`` or ``https://...``; request paths are appended.
    """

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"api_base must be an http(s) URL, got {base_url!r}")
        self.host = parts.hostname
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        self.prefix = parts.path.rstrip("/")
        default_port = self.port == (443 if self.tls else 80)
        self._host_header = self.host if default_port else f"{self.host}:{self.port}"
        self._idle: list[_Conn] = []
        self.closed = False

    async def _connect(self) -> _Conn:
        ctx = ssl.create_default_context() if self.tls else None
        return await asyncio.open_connection(self.host, self.port, ssl=ctx)

    async def _roundtrip(self, conn: _Conn, request: bytes) -> tuple[int, bytes, bool]:
        reader, writer = conn
        writer.write(request)
        await writer.drain()
        status_line = await reader.readline()
        if not status_line:
            raise ConnectionResetError("connection closed before an answer")
        fields = status_line.split(None, 2)
        if len(fields) < 2 or not fields[0].startswith(b"HTTP/") or not fields[1].isdigit():
            raise HTTPProtocolError(f"bad status line {status_line[:80]!r}")
        status = int(fields[1])
        headers: dict[bytes, bytes] = {}
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n"):
                break
            if not line:
                raise ConnectionResetError("connection closed inside the headers")
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        keep = headers.get(b"connection", b"").lower() != b"close"
        if b"content-length" in headers:
            body = await reader.readexactly(int(headers[b"content-length"]))
        elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            chunks = []
            while True:
                size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(await reader.readexactly(size))
                await reader.readline()
            body = b"".join(chunks)
        else:
            body, keep = await reader.read(), False
        return status, body, keep

    async def _post(self, request: bytes) -> tuple[int, bytes]:
        for attempt in (0, 1):
            reused = bool(self._idle)
            conn = self._idle.pop() if reused else await self._connect()
            try:
                status, body, keep = await self._roundtrip(conn, request)
            except (ConnectionError, asyncio.IncompleteReadError, OSError):
                conn[1].close()
                if reused and attempt == 0:
                    continue  # the server closed an idle connection: once more on a fresh one
                raise
            except BaseException:  # cancelled (timeout) mid-way: the connection's state is unknown
                conn[1].close()
                raise
            if keep and not self.closed:
                self._idle.append(conn)
            else:
                conn[1].close()
            return status, body
        raise ConnectionResetError("unreachable")

    async def post_json(self, path: str, body: bytes, timeout: float, api_key: str | None = None) -> tuple[int, bytes]:
        """POST ``body`` (JSON bytes) to ``prefix + path``; returns the status and the body.

        Raises:
            asyncio.TimeoutError: No complete answer within ``timeout`` seconds.
            ConnectionError, OSError, asyncio.IncompleteReadError: The connection failed.
        """
        auth = f"Authorization: Bearer {api_key}\r\n" if api_key else ""
        head = (f"POST {self.prefix}{path} HTTP/1.1\r\nHost: {self._host_header}\r\nContent-Type: application/json\r\n"
                f"Accept: application/json\r\nContent-Length: {len(body)}\r\n{auth}\r\n")
        return await asyncio.wait_for(self._post(head.encode("latin-1") + body), timeout)

    async def close(self) -> None:
        """Close every idle connection."""
        self.closed = True
        while self._idle:
            _, writer = self._idle.pop()
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
