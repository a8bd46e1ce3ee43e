"""A run folder that survives being killed: an append-only ``results.jsonl``, a lock, atomic JSON.

- :class:`ResultsFile` appends each record as one ``os.write`` of the whole line to a file opened
  with ``O_APPEND``, so a line is either entirely in the file or (when the process dies in the
  write itself) a torn tail; a background thread fsyncs every ``fsync_every_s`` seconds while
  there is something unsynced, and closing fsyncs once more.
- :func:`read_results` reads the records back, cutting a torn last line away.
- :class:`RunLock` takes a non-blocking ``fcntl.flock`` on ``OUT/.lock`` (released by the kernel
  when the process dies, however it dies) and writes the holder's pid into it.
- :func:`write_json_atomic` writes through a temporary file and ``os.replace``.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from pydantic import ValidationError

from clinic_env.competition.errors import RunFolderError
from clinic_env.records import EpisodeRecord

__all__ = ["RESULTS", "SUMMARY", "ResultsFile", "RunLock", "read_results", "write_json_atomic"]

RESULTS = "results.jsonl"
SUMMARY = "summary.json"
LOCK = ".lock"


def _fsync_dir(folder: Path) -> None:
    """Make a new or renamed entry of ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ResultsFile:
    """Append-only JSON lines with whole-line writes and an fsync at least every ``fsync_every_s``.

    Args:
        path: The ``results.jsonl`` file (created if missing).
        fsync_every_s: Longest time an appended line stays unsynced.
    """

    def __init__(self, path: Path, fsync_every_s: float = 2.0) -> None:
        self.path = path
        existed = path.exists()
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if not existed:
            _fsync_dir(path.parent)
        self._dirty = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._every = fsync_every_s
        self._syncer = threading.Thread(target=self._sync_loop, name="results-fsync", daemon=True)
        self._syncer.start()

    def append(self, line: str) -> None:
        """Append one line (a newline is added) with a single ``os.write``."""
        data = (line.rstrip("\n") + "\n").encode("utf-8")
        with self._lock:
            written = os.write(self._fd, data)
            self._dirty = True
        if written != len(data):  # a regular file only writes short when the disk is full
            raise OSError(f"short write to {self.path}: {written} of {len(data)} bytes")

    def sync(self) -> None:
        """fsync now if anything was appended since the last one."""
        with self._lock:
            if not self._dirty:
                return
            self._dirty = False
        os.fsync(self._fd)

    def _sync_loop(self) -> None:
        while not self._stop.wait(self._every):
            self.sync()

    def close(self) -> None:
        """Stop the fsync thread, fsync and close."""
        if self._fd < 0:
            return
        self._stop.set()
        self._syncer.join()
        self.sync()
        os.close(self._fd)
        self._fd = -1

    def __enter__(self) -> ResultsFile:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def read_results(path: Path) -> tuple[list[EpisodeRecord], int]:
    """Read a ``results.jsonl``; a torn last line (no final newline) is cut off the file.

    Returns:
        The records in file order and how many bytes of torn tail were removed.

    Raises:
        RunFolderError: A complete line is not a valid episode record (the file is not ours, or
            was edited): its line number and the problem are named.
    """
    if not path.exists():
        return [], 0
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1  # everything after the last newline is a line whose write was cut short
    torn = len(data) - end
    if torn:
        os.truncate(path, end)
    records = []
    for number, raw in enumerate(data[:end].splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            records.append(EpisodeRecord.model_validate_json(raw))
        except ValidationError as exc:
            first = exc.errors()[0]
            raise RunFolderError(f"{path}:{number}: not an episode record ({first['msg']} at "
                                 f"{'.'.join(map(str, first['loc'])) or 'the line'})") from None
    return records, torn


class RunLock:
    """An exclusive, non-blocking lock on a run folder (``OUT/.lock``), holding the owner's pid.

    Raises:
        RunFolderError: On entry, when another process holds the lock (its pid is named).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / LOCK
        self._fd = -1

    def acquire(self) -> None:
        """Take the lock or raise :class:`RunFolderError` naming the folder and the holder's pid."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise RunFolderError(f"{self.folder} is in use by another run (pid {holder}); wait for it to finish "
                                 "or give another --out") from None
        # The pid is for people reading the error; the flock, not the file's content, is the lock.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd

    def release(self) -> None:
        """Release the lock (the file stays: removing it would race with a process about to lock it)."""
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def _strict(data: Any) -> Any:
    """``data`` with NaN and infinities as None (strict JSON: a mean of no episodes is null, not NaN)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: _strict(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_strict(v) for v in data]
    return data


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as indented strict JSON (non-finite numbers as null) through a temporary file
    and ``os.replace``: readers see the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(_strict(data), fh, indent=2, ensure_ascii=False, allow_nan=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)
