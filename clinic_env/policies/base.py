"""The policy protocol and helpers to read the shared observation vector."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from clinic_env.envs.setup import EnvInfo

__all__ = ["Policy", "legal_actions", "segment_of"]


@runtime_checkable
class Policy(Protocol):
    """Anything that picks an action from an observation.

    ``act`` returns an action index of the env's ``Discrete`` space; ``reset`` is called at the
    start of each episode with a seed so that stochastic policies are reproducible.
    """

    def reset(self, seed: int | None = None) -> None:
        """Forget the last episode and reseed."""
        ...

    def act(self, observation: dict[str, Any], agent: str) -> int:
        """Choose an action for ``agent``."""
        ...


def legal_actions(observation: dict[str, Any]) -> np.ndarray:
    """Indices of the legal actions in an observation's mask."""
    return np.flatnonzero(observation["action_mask"])


def segment_of(vector: np.ndarray, info: EnvInfo) -> int:
    """The segment index (0 history .. 3 diagnosis) encoded in an observation vector."""
    seg = vector[info.layout.SEGMENT : info.layout.SEGMENT + 4]
    return int(np.argmax(seg)) if seg.any() else 3
