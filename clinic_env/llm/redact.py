"""Credential redaction for everything clinic-env prints or stores about LLM connections.

Keys reach the client through URLs (``http://user:secret@host/v1``, ``?api_key=...``), headers
(``Authorization: Bearer ...``), environment assignments (``serve --env HF_TOKEN=...``) and
provider error messages that quote them (``sk-...``). :func:`redact` hides all of these in any
text, by two means:

- **context**: the value after a secret-looking name or marker (URL userinfo, a query parameter or
  ``NAME=value`` / ``"name": "value"`` whose name contains key, token, secret, password or
  credential, an ``Authorization`` header, a ``Bearer`` token) and the shapes of common provider
  keys (``sk-...``, ``hf_...``, ``ghp_...``, ``AKIA...``, JWTs);
- **registration**: :func:`register_secret` records a value that is known to be secret (the
  client's key, a URL's password, a ``serve --env`` value), and every later :func:`redact` hides
  it wherever it shows up, whatever the context.

Replacements read ``***``; names, hosts and paths stay, so a message still says which server
failed. :func:`redact_url` is the same for one URL. Apply them at the boundaries (error messages,
summaries, records, logs, stdout), not on the per-call fast path.
"""

from __future__ import annotations

import re
import threading
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["MASK", "redact", "redact_argv", "redact_data", "redact_url", "register_credentials", "register_secret",
           "secret_name"]

MASK = "***"
_MIN_REGISTERED = 5  # shorter registered values would blank out ordinary words

_SECRET_WORD = r"(?:key|token(?!s\b)|secret|passw(?:or)?d|pwd|credential|signature|sig(?![a-z]))"
_NAME_CHARS = r"[A-Za-z0-9_\-.]"  # names are bounded ({0,64}) below: linear time on any text
_SECRET_NAME = re.compile(rf"(?i){_SECRET_WORD}")

# Where a key may start: not inside a word, or right after a \n, \r or \t escape (bytes reprs).
_S = r"(?:(?<=\\[nrt])|(?<![A-Za-z0-9_]))"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # URL userinfo: scheme://user:password@host -> scheme://***@host (up to the netloc's last @).
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]{0,31}://)[^\s/?#]{0,4096}@"), rf"\1{MASK}@"),
    # Query parameters named like secrets: ?api_key=..., &token=..., ;sig=...
    (re.compile(rf"(?i)([?&;]{_NAME_CHARS}{{0,64}}?{_SECRET_WORD}{_NAME_CHARS}{{0,64}}=)[^\s&#;'\"<>\\]*"), rf"\1{MASK}"),
    # Authorization headers (any scheme) and header-style API keys.
    (re.compile(r"(?i)((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic|token|digest)\s+)?)"
                r"[^\s\"',;}\]\\]+"), rf"\1{MASK}"),
    (re.compile(r"(?i)((?:x-)?api-key[\"']?\s*:\s*[\"']?)[^\s\"',;}\]\\]+"), rf"\1{MASK}"),
    (re.compile(r"(Bearer\s+)[A-Za-z0-9\-._~+/]+=*"), rf"\1{MASK}"),
    # Provider key shapes: OpenAI/Anthropic sk-, Hugging Face, GitHub, Slack, AWS, Google, JWT.
    (re.compile(_S + r"(sk-)[A-Za-z0-9_\-]{6,}"), rf"\1{MASK}"),
    (re.compile(_S + r"((?:sk|pk|rk)_(?:live|test)_)[A-Za-z0-9]{6,}"), rf"\1{MASK}"),
    (re.compile(_S + r"(hf_)[A-Za-z0-9]{10,}"), rf"\1{MASK}"),
    (re.compile(_S + r"(gh[pousr]_|github_pat_)[A-Za-z0-9_]{10,}"), rf"\1{MASK}"),
    (re.compile(_S + r"(xox[abprs]-)[A-Za-z0-9\-]{6,}"), rf"\1{MASK}"),
    (re.compile(_S + r"(AKIA)[0-9A-Z]{12,}"), rf"\1{MASK}"),
    (re.compile(_S + r"(AIza)[0-9A-Za-z_\-]{20,}"), rf"\1{MASK}"),
    (re.compile(_S + r"eyJ[A-Za-z0-9_\-]{6,}\.[A-Za-z0-9_\-]{6,}\.[A-Za-z0-9_\-]*"), MASK),
)
# NAME=value (environment / command line): the value is one shell word, quoted pieces included.
_ASSIGN = re.compile(rf"(?i)(\b[A-Za-z_][A-Za-z0-9_]{{0,64}}{_SECRET_WORD}[A-Za-z0-9_]{{0,64}}=)"
                     r"(?!\*\*\*)((?:'[^']*'|\"(?:[^\"\\]|\\.)*\"|[^\s'\"&])+)")
# --api-key VALUE / --hf-token=VALUE (command lines).
_FLAG = re.compile(rf"(?i)(--[A-Za-z0-9_\-]{{0,64}}{_SECRET_WORD}[A-Za-z0-9_\-]{{0,64}}(?:=|\s+))(?!\*\*\*|--)"
                   r"((?:'[^']*'|\"(?:[^\"\\]|\\.)*\"|[^\s'\"])+)")
# "name": "value" / 'name': 'value' (JSON, Python reprs).
_QUOTED = re.compile(rf"(?i)([\"'])({_NAME_CHARS}{{0,64}}{_SECRET_WORD}{_NAME_CHARS}{{0,64}})\1(\s*:\s*)"
                     r"(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')")

_lock = threading.Lock()
_registered: tuple[str, ...] = ()


def secret_name(name: str) -> bool:
    """Whether an environment variable or parameter called ``name`` holds a secret (its name
    contains key, token, secret, password or credential, in any case)."""
    return bool(_SECRET_NAME.search(name))


def register_secret(value: str | None) -> None:
    """Hide ``value`` in every later :func:`redact` (ignored when shorter than 5 characters,
    which the context rules still cover)."""
    global _registered
    if not value or len(value) < _MIN_REGISTERED:
        return
    with _lock:
        if value not in _registered:
            # Longest first, so that a secret containing another is hidden whole.
            _registered = tuple(sorted((*_registered, value), key=len, reverse=True))


def register_credentials(url: str | None, key: str | None = None) -> None:
    """Register ``key`` and what ``url`` holds in secret (its password, its secret-named query
    values) with :func:`register_secret`; clients call it with their ``api_base`` and key."""
    register_secret(key)
    if not url:
        return
    try:
        parts = urlsplit(url)
        register_secret(unquote(parts.password or "") or None)
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            if secret_name(name):
                register_secret(value)
    except ValueError:
        pass  # an unusable URL fails where it is used, with a message redacted by context


def _quoted(m: re.Match[str]) -> str:
    value = m.group(4)
    return f"{m.group(1)}{m.group(2)}{m.group(1)}{m.group(3)}{value[0]}{MASK}{value[0]}"


def redact(text: str) -> str:
    """``text`` with every credential it holds replaced by ``***`` (see the module docstring)."""
    if not text:
        return text
    for secret in _registered:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    text = _ASSIGN.sub(rf"\1{MASK}", text)
    text = _FLAG.sub(rf"\1{MASK}", text)
    return _QUOTED.sub(_quoted, text)


def redact_argv(argv: list[str]) -> list[str]:
    """A command line's words redacted: each word by :func:`redact`, and the word after a flag
    named like a secret (``--api-key VALUE``) masked whole unless it is itself a ``--flag``."""
    out: list[str] = []
    for word in argv:
        secret_flag = bool(out) and out[-1].startswith("--") and "=" not in out[-1] and secret_name(out[-1])
        out.append(MASK if secret_flag and not word.startswith("--") else redact(word))
    return out


def redact_url(url: str) -> str:
    """``url`` without credentials: ``http://***@host:port/v1?api_key=***`` (:func:`redact`, which
    also covers a malformed URL, named for the call sites that print one URL)."""
    return redact(url)


def redact_data(value: Any) -> Any:
    """A copy of JSON-like ``value`` (dicts, lists, strings) with :func:`redact` applied to every
    string, and the values of secret-named keys replaced whole."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: (MASK if isinstance(k, str) and secret_name(k) and isinstance(v, str) and v else redact_data(v))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_data(v) for v in value]
    return value
