"""A human at the terminal: shows the transcript and the legal actions, reads a choice."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from clinic_env.core.actions import WAIT
from clinic_env.envs.setup import EnvInfo
from clinic_env.policies.base import legal_actions

__all__ = ["HumanPolicy"]


class HumanPolicy:
    """Plays an agent from the terminal.

    Type an action name (``ask:hx.onset``, ``order:lab.troponin``, ``dx:I21.4``, ``end_segment``),
    a unique fragment of one (``troponin``), or its number in the printed list. Turns where only
    ``wait`` is legal pass by themselves.

    Args:
        info: The env's description.
        seed: Unused.
        read: Input function (default :func:`input`), replaceable for tests.
        write: Output function (default :func:`print`).
    """

    def __init__(self, info: EnvInfo, seed: int | None = None, read: Callable[[str], str] = input,
                 write: Callable[[str], None] = print) -> None:
        self.info = info
        self.read = read
        self.write = write
        self._shown = 0

    def reset(self, seed: int | None = None) -> None:
        self._shown = 0

    def act(self, observation: dict[str, Any], agent: str) -> int:
        legal = legal_actions(observation)
        if len(legal) == 1 and legal[0] == WAIT:
            return WAIT
        text = observation.get("transcript", "")
        if text[self._shown :].strip():
            self.write(text[self._shown :].strip())
        self._shown = len(text)
        names = [self.info.table.names[a] for a in legal]
        self.write(f"{agent}: {len(names)} legal actions, e.g. " + ", ".join(names[:8]) + (" ..." if len(names) > 8 else ""))
        while True:
            reply = self.read(f"{agent}> ").strip()
            if reply.isdigit() and int(reply) < len(legal):
                return int(legal[int(reply)])
            if reply in names:
                return int(legal[names.index(reply)])
            hits = [i for i, n in enumerate(names) if reply and reply.lower() in n.lower()]
            if len(hits) == 1:
                return int(legal[hits[0]])
            if reply == "?":
                self.write("\n".join(f"{i:4d} {n}" for i, n in enumerate(names)))
            else:
                self.write(f"{len(hits)} legal actions match {reply!r}; type '?' to list them all")
