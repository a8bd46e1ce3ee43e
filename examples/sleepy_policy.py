"""A submission that never answers: every ``act`` sleeps forever.

An :class:`~clinic_env.competition.isolation.IsolatedPolicy` kills it after ``move_timeout_s`` on
each move and forfeits the episode after ``max_failures`` timeouts, so a tournament still finishes::

    clinic-env tournament --doctor examples/sleepy_policy.py:SleepyDoctor ...
"""

from __future__ import annotations

import time
from typing import Any


class SleepyDoctor:
    """Takes a constructor and a reset like any policy, then hangs on its first move."""

    def __init__(self, info: Any = None, seed: int | None = None) -> None:
        self.seed = seed

    def reset(self, seed: int | None = None) -> None:
        self.seed = seed

    def act(self, observation: dict[str, Any], agent: str) -> int:
        while True:
            time.sleep(3600)
