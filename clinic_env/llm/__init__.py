"""LLM policies: litellm for any provider, a lean client for OpenAI-compatible servers, vLLM serving.

- :class:`LLMPolicy` (doctor, patient or examiner) and :class:`VLLMPolicy`;
- :class:`ChatClient` (timeouts, retries with backoff, a concurrency bound, usage and latency);
- :mod:`clinic_env.llm.serve`: vLLM / SGLang launch commands, presets, ``/health`` wait;
- :mod:`clinic_env.llm.metrics`: EAGLE-3 acceptance from ``/metrics``.

Importing this package does not import litellm (that takes seconds); the first litellm call does.
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from clinic_env.llm.client import ChatClient, Completion, LLMCallError, Usage
from clinic_env.llm.metrics import SpecDecodeCounters, read_spec_metrics
from clinic_env.llm.policy import LLMPolicy
from clinic_env.llm.serve import PRESETS, ModelServer, ServeConfig, sglang_command, vllm_command
from clinic_env.llm.vllm import VLLMPolicy

__all__ = [
    "PRESETS", "ChatClient", "Completion", "LLMCallError", "LLMPolicy", "ModelServer", "ServeConfig",
    "SpecDecodeCounters", "Usage", "VLLMPolicy", "read_spec_metrics", "sglang_command", "vllm_command",
]
