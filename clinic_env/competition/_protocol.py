"""The wire protocol between :class:`~clinic_env.competition.isolation.IsolatedPolicy` and its worker.

Every message is a frame: one kind byte, a little-endian ``uint32`` payload length, the payload.
Nothing is pickled in either direction; the parent decodes only fixed, bounded frames from the
child, so a hostile child can at worst send a wrong action or be killed.

=====  ===========  ==============================================================================
kind   direction    payload
=====  ===========  ==============================================================================
``H``  parent ->    hello: UTF-8 JSON (policy to load, the :func:`describe_info` dict, limits, uid)
``R``  parent ->    reset: the seed as ASCII decimal, empty for ``None``
``A``  parent ->    act: ``<BII`` (agent name length, vector length, mask length), the agent name,
                    the observation vector as float32, the mask as int8, the transcript as UTF-8
``Q``  parent ->    quit (empty)
``O``  child ->     ok: the hello or reset succeeded (empty)
``a``  child ->     action: ``<q`` (the parent still checks it is inside the action space)
``I``  child ->     invalid reply: the policy returned something that is not an int (UTF-8 text)
``E``  child ->     error: the policy raised or failed to load (UTF-8 text, at most 2,000 bytes)
=====  ===========  ==============================================================================
"""

from __future__ import annotations

import json
import os
import select
import struct
import time
from typing import Any

import numpy as np

from clinic_env.core.actions import ActionTable
from clinic_env.core.layout import ObservationLayout
from clinic_env.envs.setup import EnvInfo
from clinic_env.rewards.config import RewardConfig
from clinic_env.schema.catalogue import Catalogue, Diagnosis, HistoryItem, Presentation, TestItem

__all__ = [
    "HEADER", "MAX_REPLY", "PROTOCOL_VERSION", "ProtocolError", "decode_act", "describe_info", "encode_act",
    "frame", "info_from_description", "read_frame", "write_all",
]

PROTOCOL_VERSION = 1
HEADER = struct.Struct("<cI")
ACT_HEAD = struct.Struct("<BII")
ACTION = struct.Struct("<q")
#: Largest payload the parent accepts from a child (an error text is cut to 2,000 bytes).
MAX_REPLY = 4096


class ProtocolError(RuntimeError):
    """The other side sent a frame that breaks the protocol, closed the pipe, or missed the deadline."""

    def __init__(self, message: str, *, timed_out: bool = False, closed: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out
        self.closed = closed


def frame(kind: bytes, payload: bytes = b"") -> bytes:
    """One frame: kind byte, length, payload."""
    return HEADER.pack(kind, len(payload)) + payload


def _wait(fd: int, event: int, deadline: float | None) -> None:
    poller = select.poll()
    poller.register(fd, event | select.POLLHUP | select.POLLERR)
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise ProtocolError("deadline passed", timed_out=True)
        if poller.poll(None if left is None else max(1, int(left * 1000) + 1)):
            return


def write_all(fd: int, data: bytes, deadline: float | None) -> None:
    """Write ``data`` to a non-blocking ``fd`` before ``deadline`` (``time.monotonic()``; None: no limit)."""
    view = memoryview(data)
    while view:
        _wait(fd, select.POLLOUT, deadline)
        try:
            sent = os.write(fd, view)
        except BlockingIOError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            raise ProtocolError("the pipe is closed", closed=True) from None
        view = view[sent:]


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    chunks: list[bytes] = []
    while n:
        _wait(fd, select.POLLIN, deadline)
        try:
            chunk = os.read(fd, n)
        except BlockingIOError:
            continue
        if not chunk:
            raise ProtocolError("the pipe is closed", closed=True)
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, deadline: float | None, max_payload: int) -> tuple[bytes, bytes]:
    """Read one frame from ``fd``; a payload longer than ``max_payload`` is a :class:`ProtocolError`."""
    kind, length = HEADER.unpack(_read_exact(fd, HEADER.size, deadline))
    if length > max_payload:
        raise ProtocolError(f"frame {kind!r} announces {length} bytes (at most {max_payload} allowed)")
    return kind, _read_exact(fd, length, deadline) if length else b""


def encode_act(observation: dict[str, Any], agent: str) -> bytes:
    """The ``A`` frame's payload for one move: the agent's vector, mask and transcript only."""
    vector = np.ascontiguousarray(observation.get("observation", observation.get("observations")), np.float32)
    mask = np.ascontiguousarray(observation["action_mask"], np.int8)
    name = agent.encode()
    transcript = observation.get("transcript")
    text = transcript.encode() if isinstance(transcript, str) else b""
    return ACT_HEAD.pack(len(name), vector.size, mask.size) + name + vector.tobytes() + mask.tobytes() + text


def decode_act(payload: bytes) -> tuple[dict[str, Any], str]:
    """Inverse of :func:`encode_act` (in the worker): ``(observation dict, agent name)``."""
    n_name, n_vec, n_mask = ACT_HEAD.unpack_from(payload)
    at = ACT_HEAD.size
    agent = payload[at : at + n_name].decode()
    at += n_name
    vector = np.frombuffer(payload, np.float32, n_vec, at).copy()
    at += 4 * n_vec
    mask = np.frombuffer(payload, np.int8, n_mask, at).copy()
    at += n_mask
    observation: dict[str, Any] = {"observation": vector, "action_mask": mask}
    if at < len(payload):
        observation["transcript"] = payload[at:].decode()
    return observation, agent


def describe_info(info: EnvInfo) -> dict[str, Any]:
    """A JSON-ready description of ``info``: the catalogue (public, no cases), the reward config and
    the action table's names, from which a worker rebuilds an equal :class:`EnvInfo`."""
    cat = info.catalogue
    return {
        "catalogue": {
            "history": [item.model_dump(mode="json") for item in cat.history.values()],
            "tests": [item.model_dump(mode="json") for item in cat.tests.values()],
            "diagnoses": [item.model_dump(mode="json") for item in cat.diagnoses.values()],
            "presentations": [item.model_dump(mode="json") for item in cat.presentations.values()],
        },
        "config": info.config.model_dump(mode="json"),
        "actions": list(info.table.names),
        "observation_size": info.layout.size,
    }


def info_from_description(description: dict[str, Any]) -> EnvInfo:
    """Rebuild an :class:`EnvInfo` from :func:`describe_info`'s dict (ValueError if it does not match)."""
    raw = description["catalogue"]
    cat = Catalogue.build(
        history={d["id"]: HistoryItem(**d) for d in raw["history"]},
        tests={d["id"]: TestItem(**d) for d in raw["tests"]},
        diagnoses={d["code"]: Diagnosis(**d) for d in raw["diagnoses"]},
        presentations={d["symptom"]: Presentation(**d) for d in raw["presentations"]},
    )
    table = ActionTable.from_catalogue(cat)
    layout = ObservationLayout(len(cat.history_ids), len(cat.test_ids), len(cat.diagnosis_codes))
    if list(table.names) != list(description["actions"]) or layout.size != description["observation_size"]:
        raise ValueError("the rebuilt action table or observation layout differs from the parent's")
    return EnvInfo(cat, table, layout, RewardConfig(**description["config"]))


def encode_json(value: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON."""
    return json.dumps(value, separators=(",", ":")).encode()
