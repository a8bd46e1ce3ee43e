"""The child side of an isolated policy: ``python -I -m clinic_env.competition._worker``.

Reads frames on stdin and answers on stdout (see :mod:`clinic_env.competition._protocol`). Before
the submitted code is loaded it lowers its address-space limit and, when the hello names a uid,
drops its privileges for good; it then only ever sees the frames its parent sends.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import struct
import sys
import traceback
import types
from importlib.metadata import entry_points
from typing import Any

from clinic_env.competition._protocol import (
    ACTION,
    ProtocolError,
    decode_act,
    frame,
    info_from_description,
    read_frame,
)
from clinic_env.envs.setup import EnvInfo

#: Modules imported before privileges are dropped: the sandbox user may be unable to read the
#: interpreter's own files (a Python under /root), so what policies commonly use is loaded first.
PRELOAD = (
    "clinic_env", "clinic_env.policies", "clinic_env.generate", "numpy", "numpy.random", "collections",
    "dataclasses", "functools", "hashlib", "heapq", "itertools", "json", "math", "pathlib", "random", "re",
    "statistics", "string", "struct", "time", "typing", "importlib.util", "importlib.metadata",
)
_MAX_HELLO = 64 * 1024 * 1024
_MAX_TEXT = 2000


def _send(fd: int, kind: bytes, payload: bytes = b"") -> None:
    data = frame(kind, payload)
    while data:
        data = data[os.write(fd, data):]


def _text(message: str) -> bytes:
    return message.encode(errors="replace")[:_MAX_TEXT]


def _limit_memory(memory_mb: int) -> None:
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _drop_privileges(uid: int, gid: int) -> None:
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)  # as root this sets the real, effective and saved uid: there is no way back
    try:
        os.setuid(0)
    except PermissionError:
        return
    raise SystemExit("privileges could not be dropped")


def _load_factory(policy: dict[str, Any]) -> Any:
    kind = policy["kind"]
    if kind == "source":
        name = policy["module"]
        module = types.ModuleType(name)
        module.__file__ = policy["path"]
        sys.modules[name] = module
        exec(compile(policy["source"], policy["path"], "exec"), module.__dict__)
        target: Any = module
    elif kind == "module":
        target = importlib.import_module(policy["module"])
    else:
        from clinic_env.policies import BUILTIN_POLICIES

        name = policy["name"]
        if name in BUILTIN_POLICIES:
            return BUILTIN_POLICIES[name]
        found = [ep for ep in entry_points(group="clinic_env.policies") if ep.name == name]
        if not found:
            raise LookupError(f"no built-in policy or 'clinic_env.policies' entry point named {name!r}")
        return found[0].load()
    for part in policy["attr"].split("."):
        target = getattr(target, part)
    return target


def _start(hello: dict[str, Any]) -> tuple[Any, EnvInfo]:
    _limit_memory(int(hello["memory_mb"]))
    if hello.get("uid") is not None:
        _drop_privileges(int(hello["uid"]), int(hello["gid"]))
    info = info_from_description(hello["info"])
    factory = _load_factory(hello["policy"])
    policy = factory(info, seed=hello.get("seed"))
    if not callable(getattr(policy, "act", None)) or not callable(getattr(policy, "reset", None)):
        raise TypeError(f"{type(policy).__name__} has no act() and reset(): not a Policy")
    return policy, info


def _describe(exc: BaseException) -> str:
    traceback.print_exception(exc, file=sys.stderr)
    return f"{type(exc).__name__}: {exc}"


def _serve(policy: Any, fd_in: int, fd_out: int) -> int:
    while True:
        kind, payload = read_frame(fd_in, None, _MAX_HELLO)
        if kind == b"Q":
            return 0
        try:
            if kind == b"R":
                policy.reset(int(payload) if payload else None)
                _send(fd_out, b"O")
                continue
            if kind != b"A":
                raise ValueError(f"unexpected frame {kind!r}")
            observation, agent = decode_act(payload)
            action = policy.act(observation, agent)
        except Exception as exc:  # the policy's own failure: report it, keep serving
            _send(fd_out, b"E", _text(_describe(exc)))
            continue
        if isinstance(action, bool) or not hasattr(action, "__index__"):
            _send(fd_out, b"I", _text(f"act() returned {type(action).__name__} {action!r:.80}, not an int"))
            continue
        try:
            _send(fd_out, b"a", ACTION.pack(action.__index__()))
        except struct.error:
            _send(fd_out, b"I", _text(f"act() returned {action!r:.80}, out of range"))


def main() -> int:
    """Serve one policy until the parent says quit or closes the pipe."""
    # The protocol gets private copies of stdin/stdout; the policy's print() goes to the log (stderr)
    # and its input() sees end of file, so neither can corrupt the frames.
    fd_in, fd_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    os.close(devnull)
    for name in PRELOAD:
        importlib.import_module(name)
    kind, payload = read_frame(fd_in, None, _MAX_HELLO)
    if kind != b"H":
        return 2
    hello = json.loads(payload)
    try:
        policy, _ = _start(hello)
    except BaseException as exc:
        _send(fd_out, b"E", _text(_describe(exc)))
        return 1
    _send(fd_out, b"O")
    try:
        return _serve(policy, fd_in, fd_out)
    except (ProtocolError, BrokenPipeError):  # the parent went away: nothing left to do
        return 0


if __name__ == "__main__":
    sys.exit(main())
