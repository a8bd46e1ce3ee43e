"""Speculative-decoding counters from a vLLM server's Prometheus ``/metrics``.

vLLM exports ``vllm:spec_decode_num_drafts_total``, ``vllm:spec_decode_num_draft_tokens_total``
and ``vllm:spec_decode_num_accepted_tokens_total`` (summed here over their label sets). Over a
rollout batch (the difference of two readings): acceptance rate = accepted / draft tokens, and
mean acceptance length = 1 + accepted / drafts (tokens produced per target forward pass).

Reading ``/metrics`` never raises: the read has a total deadline and a size bound
(:mod:`clinic_env.llm.http`), and a server that cannot be reached, hangs, drips, or answers with
broken HTTP gives counters with ``present=False`` and ``error`` saying why (callers record it as a
warning; a rollout never dies for its read-out).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from clinic_env.llm.http import afetch, fetch
from clinic_env.llm.redact import redact, redact_url

__all__ = ["SpecDecodeCounters", "aread_spec_metrics", "metrics_url", "parse_spec_metrics", "read_spec_metrics"]

#: Largest ``/metrics`` answer read (bytes): vLLM's is tens of KiB.
MAX_METRICS_BYTES = 4 * 1024 * 1024

_NAMES = {
    "vllm:spec_decode_num_drafts_total": "drafts",
    "vllm:spec_decode_num_draft_tokens_total": "draft_tokens",
    "vllm:spec_decode_num_accepted_tokens_total": "accepted_tokens",
}
_LINE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s+([-+0-9.eEinfNa]+)")


@dataclass(frozen=True)
class SpecDecodeCounters:
    """Cumulative counters (one reading) or their difference over a batch (``after - before``);
    ``error`` says why a reading failed (None when the server answered, with or without counters)."""

    drafts: float = 0.0
    draft_tokens: float = 0.0
    accepted_tokens: float = 0.0
    present: bool = False
    error: str | None = None

    def __sub__(self, other: SpecDecodeCounters) -> SpecDecodeCounters:
        return SpecDecodeCounters(self.drafts - other.drafts, self.draft_tokens - other.draft_tokens,
                                  self.accepted_tokens - other.accepted_tokens, self.present and other.present,
                                  self.error or other.error)

    @property
    def acceptance_rate(self) -> float | None:
        """Accepted / proposed draft tokens (None when nothing was drafted)."""
        return self.accepted_tokens / self.draft_tokens if self.draft_tokens > 0 else None

    @property
    def mean_acceptance_length(self) -> float | None:
        """1 + accepted tokens per draft: tokens per target forward pass (None without drafts)."""
        return 1.0 + self.accepted_tokens / self.drafts if self.drafts > 0 else None

    def as_dict(self) -> dict[str, float | bool | None]:
        """A JSON-ready summary."""
        return {"drafts": self.drafts, "draft_tokens": self.draft_tokens, "accepted_tokens": self.accepted_tokens,
                "acceptance_rate": self.acceptance_rate, "mean_acceptance_length": self.mean_acceptance_length,
                "present": self.present}


def parse_spec_metrics(text: str) -> SpecDecodeCounters:
    """The spec-decoding counters in a Prometheus text exposition (absent ones are 0)."""
    values = dict.fromkeys(_NAMES.values(), 0.0)
    present = False
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if m and m.group(1) in _NAMES:
            try:
                values[_NAMES[m.group(1)]] += float(m.group(3))
                present = True
            except ValueError:
                continue
    return SpecDecodeCounters(values["drafts"], values["draft_tokens"], values["accepted_tokens"], present)


def metrics_url(api_base: str) -> str:
    """``http://host:port/metrics`` from an ``api_base`` such as ``http://host:port/v1``."""
    root = api_base.rstrip("/")
    return (root[: -len("/v1")] if root.endswith("/v1") else root) + "/metrics"


def _url(url: str) -> str:
    return url if url.rstrip("/").endswith("/metrics") else metrics_url(url)


def _result(url: str, status: int, body: bytes) -> SpecDecodeCounters:
    if status != 200:
        return SpecDecodeCounters(error=f"{redact_url(url)}: HTTP {status}")
    return parse_spec_metrics(body.decode("utf-8", "replace"))


def _failed(url: str, exc: BaseException) -> SpecDecodeCounters:
    why = "no complete answer within the deadline" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
    return SpecDecodeCounters(error=redact(f"{redact_url(url)}: {why}")[:300])


def read_spec_metrics(url: str, timeout: float = 10.0) -> SpecDecodeCounters:
    """Read the counters from ``url`` (a ``/metrics`` URL or an ``api_base``) within ``timeout``
    seconds in all. ``present`` is False when the server has none (no speculative decoding, or not
    vLLM); when the read failed, ``error`` also says why. Never raises."""
    url = _url(url)
    try:
        return _result(url, *fetch(url, timeout, MAX_METRICS_BYTES))
    except Exception as exc:  # any failure of the read-out is reported, never raised
        return _failed(url, exc)


async def aread_spec_metrics(url: str, timeout: float = 10.0) -> SpecDecodeCounters:
    """:func:`read_spec_metrics` without blocking the event loop."""
    url = _url(url)
    try:
        return _result(url, *await afetch(url, timeout, MAX_METRICS_BYTES))
    except Exception as exc:  # as above
        return _failed(url, exc)
