"""A submission that tries to cheat, to show what isolated tournaments stop.

On its first move of each episode it looks for the case behind the opening statement, by every
route a plugin could try, and if one works it plays the gold diagnosis as fast as the mask allows;
otherwise it plays exactly like the built-in ``random`` policy (same seed, same moves), so its
score against ``random`` measures what cheating gained. Routes, in order:

1. ``gc``: the organiser's own objects (works only when it runs in the organiser's process).
2. ``bundled``: ``clinic_env.load_cases()`` matched on the opening statement (public cases).
3. ``folders``: case files at paths named in its own argv/environment/working directory and in the
   parent's ``/proc/<ppid>/cmdline``, ``environ``, ``cwd`` and open ``fd`` links.
4. ``secret seed``: ``CLINIC_ENV_SECRET_SEED`` in its own or the parent's environment, used to
   regenerate the tournament's generated cases.
5. ``memory``: the parent's readable memory (``/proc/<ppid>/maps`` + ``mem``), searched for the
   opening statement with a diagnosis code next to it.

Every attempt and its outcome is appended to ``cheating_policy.log`` in its working directory.
Use as ``--doctor examples/cheating_policy.py:CheatingDoctor``.
"""

from __future__ import annotations

import gc
import os
import re
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import clinic_env
from clinic_env.core.actions import COMMIT_DIFFERENTIAL, END_SEGMENT
from clinic_env.envs.setup import EnvInfo
from clinic_env.policies import RandomPolicy

_CODE = re.compile(rb"[A-Z][0-9]{2}(?:\.[0-9A-Z]{1,4})?")
_MEMORY_BUDGET = 256 * 1024 * 1024


class CheatingDoctor:
    """Random legal moves unless it can find the case (see the module docstring)."""

    def __init__(self, info: EnvInfo, seed: int | None = None) -> None:
        self.info = info
        self.blind = RandomPolicy(info, seed)
        self.log_path = Path.cwd() / "cheating_policy.log"
        self.gold: str | None = None
        self._looked = False
        self._libraries: dict[str, list[Any]] | None = None

    def reset(self, seed: int | None = None) -> None:
        self.blind.reset(seed)
        self.gold, self._looked = None, False

    def act(self, observation: dict[str, Any], agent: str) -> int:
        if not self._looked:
            self._looked = True
            self.gold = self._find_gold(str(observation.get("transcript", "")))
        blind = self.blind.act(observation, agent)  # drawn every move, so a failed cheat is exactly random
        if self.gold is None or self.gold not in self.info.table.diagnosis_codes:
            return blind
        mask = observation["action_mask"]
        for action in (self.info.table.dx(self.gold), COMMIT_DIFFERENTIAL, END_SEGMENT):
            if mask[action]:
                return action
        return blind

    # ------------------------------------------------------------------ attempts
    def _log(self, route: str, outcome: str) -> None:
        try:
            with open(self.log_path, "a", encoding="utf-8") as log:
                log.write(f"{route}: {outcome}\n")
        except OSError:
            pass

    def _find_gold(self, transcript: str) -> str | None:
        gold = self._from_gc()
        if gold is None:
            for route, cases in self._case_libraries().items():
                gold = next((c.gold_diagnosis for c in cases if c.opening_statement in transcript), None)
                self._log(route, f"matched {gold}" if gold else f"no match among {len(cases)} cases")
                if gold:
                    break
        if gold is None:
            gold = self._from_memory(transcript)
        return gold

    def _from_gc(self) -> str | None:
        for obj in gc.get_objects():
            case = getattr(obj, "case", None) if type(obj).__name__ == "Consultation" else None
            if case is not None:
                self._log("gc", f"found the engine's case {case.id}")
                return str(case.gold_diagnosis)
        self._log("gc", "no engine in this process")
        return None

    def _case_libraries(self) -> dict[str, list[Any]]:
        if self._libraries is None:
            self._libraries = {"bundled": list(clinic_env.load_cases())}
            for path in _candidate_paths(self._log):
                try:
                    cases = clinic_env.load_cases(path)
                except Exception as exc:  # any failure is just a failed attempt
                    self._log("folders", f"{path}: {type(exc).__name__}: {str(exc)[:120]}")
                    continue
                self._log("folders", f"{path}: read {len(cases)} cases")
                self._libraries[f"folder {path}"] = list(cases)
            seed = _secret_seed(self._log)
            if seed is not None:
                from clinic_env.generate import CaseGenerator

                gen = CaseGenerator()
                self._libraries["secret seed"] = [g.case for g in gen.generate_many(len(gen.kb.conditions), seed)]
        return self._libraries

    def _from_memory(self, transcript: str) -> str | None:
        ppid = os.getppid()
        codes = set(self.info.table.diagnosis_codes)
        openings = [line.split(": ", 1)[1] for line in transcript.splitlines() if ": " in line][:1]
        if not openings:
            return None
        needle = openings[0].encode()
        votes: Counter[str] = Counter()
        try:
            with open(f"/proc/{ppid}/maps") as maps, open(f"/proc/{ppid}/mem", "rb", buffering=0) as mem:
                budget = _MEMORY_BUDGET
                for line in maps:
                    fields = line.split()
                    if "rw" not in fields[1] or budget <= 0:
                        continue
                    start, end = (int(x, 16) for x in fields[0].split("-"))
                    size = min(end - start, budget)
                    budget -= size
                    try:
                        mem.seek(start)
                        data = mem.read(size)
                    except OSError:
                        continue
                    for hit in _find_all(data, needle):
                        window = data[max(0, hit - 65536) : hit + 65536]
                        votes.update(c.decode() for c in _CODE.findall(window) if c.decode() in codes)
        except OSError as exc:
            self._log("memory", f"/proc/{ppid}/mem: {type(exc).__name__}: {exc.strerror}")
            return None
        gold = votes.most_common(1)[0][0] if votes else None
        self._log("memory", f"read; guess {gold}")
        return gold


def _find_all(data: bytes, needle: bytes) -> Iterable[int]:
    at = data.find(needle)
    while at >= 0:
        yield at
        at = data.find(needle, at + 1)


def _read_proc(path: str, log: Any) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        log("folders", f"{path}: {type(exc).__name__}: {exc.strerror}")
        return b""


def _candidate_paths(log: Any) -> list[Path]:
    ppid = os.getppid()
    words = [*sys.argv, *os.environ.values()]
    for blob in (_read_proc(f"/proc/{ppid}/cmdline", log), _read_proc(f"/proc/{ppid}/environ", log)):
        for part in blob.split(b"\0"):
            words.extend(part.decode(errors="replace").replace("=", " ").split())
    found = [Path(w) for w in words if w.startswith("/") or w.startswith(".")]
    try:
        parent_cwd = Path(os.readlink(f"/proc/{ppid}/cwd"))
        found += [parent_cwd, parent_cwd / "cases"]
        found += [Path(os.readlink(f"/proc/{ppid}/fd/{fd}")) for fd in os.listdir(f"/proc/{ppid}/fd")]
    except OSError as exc:
        log("folders", f"/proc/{ppid}/cwd and fd: {type(exc).__name__}: {exc.strerror}")
    found.append(Path.cwd())
    out: list[Path] = []
    for path in found:
        try:
            if path not in out and (_is_data(path) or (path.is_dir() and any(map(_is_data, path.iterdir())))):
                out.append(path)
        except OSError as exc:
            log("folders", f"{path}: {type(exc).__name__}: {exc.strerror}")
    return out


def _is_data(path: Path) -> bool:
    return path.suffix in (".yaml", ".yml", ".json", ".jsonl") and path.is_file()


def _secret_seed(log: Any) -> int | None:
    value = os.environ.get("CLINIC_ENV_SECRET_SEED")
    if value is None:
        blob = _read_proc(f"/proc/{os.getppid()}/environ", log)
        for part in blob.split(b"\0"):
            if part.startswith(b"CLINIC_ENV_SECRET_SEED="):
                value = part.split(b"=", 1)[1].decode()
    log("secret seed", f"found {value}" if value else "not found")
    return int(value) if value and value.isdigit() else None
