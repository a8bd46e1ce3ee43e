"""Ray plumbing shared by the tournament and the LLM backends: a session and a fault-tolerant actor pool.

:class:`RaySession` connects to a cluster (``--address`` or ``$RAY_ADDRESS``) or starts a local
Ray with one CPU per worker, and shuts down only what it started (a Ray that is already up, in a
test or a benchmark, is used as it is). Its ``init_s`` is the time ``ray.init`` took.

:class:`ActorPool` keeps ``workers`` actors busy: each has up to ``depth`` calls queued, so it never
waits for the driver between batches, and every result is handed back as soon as its call ends
(completion order). When an actor dies (its process killed, a node lost, ``ray.kill``), every call
it had in flight fails with a :class:`ray.exceptions.RayActorError`; the pool starts a replacement
actor and queues each item of those calls again, alone, at the front of the queue; a retried item
runs alone on its actor (nothing queued behind it), so an episode that kills every worker it meets
takes no other episode down twice. An item lost a second time is given
to ``lost`` (the tournament records it as a failed episode) and never played again. So every item
yields exactly one result, whichever workers die, and the number of replacements is bounded (each
death costs some item one of its two tries).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from clinic_env.rollout_backends import BackendError, require_ray

__all__ = ["ActorPool", "PoolStats", "RaySession"]

T = TypeVar("T")
R = TypeVar("R")


class RaySession:
    """``ray.init`` when Ray is not up yet; a context manager that shuts down what it started.

    Args:
        address: A cluster to join (``ray://...`` or ``host:port``); None uses ``$RAY_ADDRESS`` or,
            without it, starts a local Ray with ``workers`` CPUs (default: this machine's).
        workers: How many actors the caller wants; :attr:`workers` is the number to start.

    Raises:
        RayUnavailableError: Ray is not installed.
        BackendError: Ray could not start or the cluster could not be reached (one line, no traceback).
    """

    def __init__(self, address: str | None = None, workers: int | None = None) -> None:
        self.address = address
        self.requested = workers
        self.started = False
        self.init_s = 0.0
        self.workers = workers or 1

    def open(self) -> RaySession:
        """Start or join Ray; sets :attr:`workers` (the request, else the CPUs Ray has)."""
        ray = require_ray()
        if not ray.is_initialized():
            target = self.address or os.environ.get("RAY_ADDRESS") or None
            if target:
                _check_reachable(target)
            start = time.perf_counter()
            try:
                if target:
                    ray.init(address=target, logging_level=logging.WARNING, log_to_driver=False)
                else:
                    ray.init(num_cpus=self.requested or os.cpu_count() or 1, include_dashboard=False,
                             logging_level=logging.WARNING, log_to_driver=False)
            except Exception as exc:  # ConnectionError, ValueError, RuntimeError... from ray.init
                where = f"the Ray cluster at {target}" if target else "a local Ray"
                raise BackendError(f"could not start {where}: {type(exc).__name__}: "
                                   f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
            self.started, self.init_s = True, time.perf_counter() - start
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.workers = self.requested or max(1, cpus)
        return self

    def close(self) -> None:
        """Shut Ray down if this session started it."""
        if self.started:
            require_ray().shutdown()
            self.started = False

    def describe(self) -> dict[str, Any]:
        """Where the actors run, for ``summary.json``."""
        target = self.address or os.environ.get("RAY_ADDRESS")
        return {"address": target or "local", "workers": self.workers}

    def __enter__(self) -> RaySession:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class PoolStats:
    """What happened to the workers: actors that died (and were replaced), items played again, items lost twice."""

    deaths: int = 0
    retried: int = 0
    lost: int = 0
    died: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"worker_deaths": self.deaths, "retried": self.retried, "lost_twice": self.lost,
                "why": self.died[:5]}


class ActorPool(Generic[T, R]):
    """``workers`` Ray actors that play batches, each kept ``depth`` calls deep, surviving worker deaths.

    Args:
        make_actor: ``make_actor(slot)`` starts an actor for slot ``slot`` (0..workers-1); a replacement
            for a dead actor is made for the same slot.
        workers: Number of actors.
        depth: Calls in flight per actor: an int for all, or one per slot (the LLM backend splits its
            global concurrency this way).
        ready_timeout_s: How long :meth:`start` waits for the actors to be built.
    """

    def __init__(self, make_actor: Callable[[int], Any], workers: int, depth: int | Sequence[int] = 2,
                 ready_timeout_s: float = 300.0) -> None:
        self._make = make_actor
        self.depths = [depth] * workers if isinstance(depth, int) else list(depth)
        self.actors: dict[int, Any] = {}  # slot -> handle of its live actor
        self._gen: dict[int, int] = {}  # slot -> generation of its live actor (a replacement is a new one)
        self._load: dict[int, int] = {}  # generation -> calls in flight
        self._next_gen = 0
        self.ready_timeout_s = ready_timeout_s
        self.stats = PoolStats()

    def start(self) -> list[Any]:
        """Start every actor and wait until each is built; returns what each one's ``ready()`` said
        (None, or the error that stopped it building its players)."""
        ray = require_ray()
        for slot in range(len(self.depths)):
            self._spawn(slot)
        refs = [a.ready.remote() for a in self.actors.values()]
        try:
            return list(ray.get(refs, timeout=self.ready_timeout_s))
        except ray.exceptions.GetTimeoutError:
            cpus = ray.available_resources().get("CPU", 0)
            raise BackendError(f"the Ray workers did not start within {self.ready_timeout_s:.0f} s ({cpus:g} CPU(s) "
                               f"free for {len(self.depths)} worker(s)); give fewer --workers") from None
        except ray.exceptions.RayError as exc:
            raise BackendError(f"a Ray worker failed to start: {_first_line(exc)}") from None

    def run(self, batches: Iterable[list[T]], method: str, lost: Callable[[T, str], R]) -> Iterator[R]:
        """Call ``actor.<method>.remote(batch)`` for every batch and yield each result as its call ends.

        ``method`` returns a list with one result per item. An item whose actor died is tried once
        more, alone on its actor; one lost twice yields ``lost(item, why)``. A call that raises inside the actor
        (a bug: the players record their own failures) yields ``lost`` for its items at once.
        """
        ray = require_ray()
        queue: deque[tuple[list[T], int]] = deque((list(b), 0) for b in batches if b)
        inflight: dict[Any, tuple[int, int, list[T], int]] = {}
        solo: set[int] = set()  # generations running a retry, which get nothing else meanwhile
        while queue or inflight:
            for slot, actor in list(self.actors.items()):
                gen = self._gen[slot]
                while queue and gen not in solo and self._load[gen] < self.depths[slot]:
                    items, attempt = queue[0]
                    if attempt and self._load[gen]:  # a retry runs alone: if it kills its worker, only it dies
                        break
                    queue.popleft()
                    inflight[getattr(actor, method).remote(items)] = (slot, gen, items, attempt)
                    self._load[gen] += 1
                    if attempt:
                        solo.add(gen)
            done, _ = ray.wait(list(inflight), num_returns=1)
            for ref in done:
                slot, gen, items, attempt = inflight.pop(ref)
                self._load[gen] -= 1
                if attempt:
                    solo.discard(gen)
                try:
                    results = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    why = f"the Ray worker raised: {_first_line(exc)}"
                    self.stats.lost += len(items)
                    yield from (lost(item, why) for item in items)
                    continue
                except ray.exceptions.RayError as exc:  # the actor or its node died
                    why = _first_line(exc)
                    self._replace(slot, gen, why)
                    for item in reversed(items):
                        if attempt == 0:
                            queue.appendleft(([item], 1))
                            self.stats.retried += 1
                        else:
                            self.stats.lost += 1
                            yield lost(item, f"its Ray worker died twice: {why}")
                    continue
                yield from results

    def _spawn(self, slot: int) -> None:
        self.actors[slot] = self._make(slot)
        self._gen[slot], self._load[self._next_gen] = self._next_gen, 0
        self._next_gen += 1

    def _replace(self, slot: int, gen: int, why: str) -> None:
        """A new actor for ``slot`` if generation ``gen`` is still its actor (one death fails every
        call the actor had in flight: the first failure replaces it, the others find it replaced)."""
        if self._gen[slot] != gen:
            return
        ray = require_ray()
        self.stats.deaths += 1
        self.stats.died.append(why[:200])
        with contextlib.suppress(Exception):  # already gone
            ray.kill(self.actors[slot], no_restart=True)
        self._spawn(slot)

    def close(self) -> None:
        """Kill every actor (their processes end; a local Ray stays up for the session to shut)."""
        if not self.actors:
            return
        ray = require_ray()
        for actor in self.actors.values():
            with contextlib.suppress(Exception):  # already dead
                ray.kill(actor, no_restart=True)
        self.actors.clear()


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast on a cluster address nothing listens on (``ray.init`` retries such an address for
    minutes). ``auto``, ``local`` and addresses without a port are left to Ray."""
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise BackendError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc} (start it with "
                           "`ray start --head`, or check --address / $RAY_ADDRESS)") from None


def _first_line(exc: BaseException) -> str:
    """An exception's first meaningful line (Ray's messages carry whole tracebacks)."""
    for line in str(exc).splitlines():
        if line.strip():
            return f"{type(exc).__name__}: {line.strip()}"[:300]
    return type(exc).__name__
