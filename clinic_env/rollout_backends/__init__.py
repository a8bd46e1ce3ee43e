"""Where episodes are played: ``local`` (this process, the default) or ``ray`` (Ray actors).

``clinic-env run`` and ``clinic-env tournament`` take ``--backend local|ray [--address ADDR]
[--workers N]``. The Ray backend keeps one warm env and the doctors in each actor, hands them
batches of planned episodes, and gives every record back to this process, which writes it to the
run's ``results.jsonl`` as it arrives, exactly as the local backend does (records are the same:
each depends on its episode key only). A worker that dies loses only the episodes it had in
flight; they are played once more on another actor (see :mod:`.ray_pool`). ``llm:`` doctors play
in text mode on async actors that share one server under one global concurrency limit
(:mod:`.ray_llm`). How to use a cluster, and what was measured: ``docs/SCALING.md``.

Ray is the optional ``ray`` extra. Nothing in this package imports it before a Ray backend is
started, so ``import clinic_env`` never does; without it, ``--backend ray`` exits 2 and says to
install ``clinic-env[ray]``.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

from clinic_env.competition.errors import TournamentError

if TYPE_CHECKING:
    from clinic_env.rollout_backends.ray_tournament import RayBackend

__all__ = ["BACKENDS", "INSTALL_HINT", "BackendError", "RayUnavailableError", "make_backend", "require_ray"]

#: The backends ``--backend`` accepts.
BACKENDS = ("local", "ray")
INSTALL_HINT = "install clinic-env[ray] (pip install 'clinic-env[ray]')"


class BackendError(TournamentError):
    """A backend cannot be used as asked (bad options, Ray missing or unreachable): the CLI exits 2."""


class RayUnavailableError(BackendError):
    """``--backend ray`` without Ray installed."""


def require_ray() -> ModuleType:
    """The ``ray`` module, imported now.

    Raises:
        RayUnavailableError: Ray is not installed (the message says to install ``clinic-env[ray]``).
    """
    try:
        return importlib.import_module("ray")
    except ImportError as exc:
        raise RayUnavailableError(f"--backend ray needs Ray, which is not installed here ({exc}): "
                                  f"{INSTALL_HINT}") from None


def make_backend(name: str, *, address: str | None = None, workers: int | None = None,
                 batch: int | None = None) -> RayBackend | None:
    """The backend the CLI options name: None for ``local`` (run_tournament's default), else a
    :class:`~clinic_env.rollout_backends.ray_tournament.RayBackend` (Ray is imported here, so a
    missing extra is reported before anything runs).

    Raises:
        BackendError: An unknown name, ``--address``/``--workers`` with the local backend, a
            worker count below 1, or Ray not installed.
    """
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}; give one of {', '.join(BACKENDS)}")
    if name == "local":
        if address is not None or workers is not None:
            raise BackendError("--address and --workers need --backend ray")
        return None
    if workers is not None and workers < 1:
        raise BackendError(f"--workers must be >= 1, got {workers}")
    require_ray()
    from clinic_env.rollout_backends.ray_tournament import RayBackend

    return RayBackend(workers=workers, address=address, batch=batch)


def __getattr__(name: str) -> Any:
    """``RayBackend``, ``RaySession``, ``ActorPool`` and the text-mode functions on first use (they import no Ray themselves
    until started, but keep this package's import cheap)."""
    homes = {"RayBackend": "ray_tournament", "RaySession": "ray_pool", "ActorPool": "ray_pool",
             "play_text_ray": "ray_llm", "play_llm_doctors_ray": "ray_llm"}
    if name in homes:
        return getattr(importlib.import_module(f"{__name__}.{homes[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
