"""Isolated submissions: run a submitted policy in its own process, behind a narrow pipe.

    info = env.unwrapped.info
    doctor = IsolatedPolicy("submissions/team_a.py:Doctor", describe_info(info), move_timeout_s=2.0)
    doctor.reset(seed)
    action = doctor.act(observation, "doctor_0")      # -1 when the move is forfeited
    doctor.failures, doctor.forfeited                  # reasons; True after max_failures
    doctor.close()

The child (``python -I -m clinic_env.competition._worker``) gets, per move, only its agent's
observation vector, action mask and transcript, and at start the public description of the
action table and observation layout (:func:`describe_info`: the catalogue and reward config, no
case). Its replies are checked, bounded frames; nothing from the child is unpickled. See
``docs/COMPETITIONS.md`` for what this protects and what it does not.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from clinic_env.competition._protocol import (
    ACTION,
    MAX_REPLY,
    PROTOCOL_VERSION,
    ProtocolError,
    describe_info,
    encode_act,
    encode_json,
    frame,
    read_frame,
    write_all,
)
from clinic_env.competition.errors import DoctorSpecError
from clinic_env.envs.setup import EnvInfo

__all__ = [
    "SECRET_SEED_VAR", "IsolatedPolicy", "IsolationWarning", "child_environment", "describe_info",
    "harden_parent", "protect_private_folder", "sandbox_ids", "secret_seed",
]

#: Environment variable holding the organiser's secret seed for generated tournament cases.
SECRET_SEED_VAR = "CLINIC_ENV_SECRET_SEED"
_KEEP_ENV = ("LANG", "LC_ALL", "LC_CTYPE", "TZ")
_PR_SET_DUMPABLE = 4


class IsolationWarning(UserWarning):
    """The isolation asked for is weaker than it could be (no privilege drop: not run as root)."""


def secret_seed(environ: Mapping[str, str] | None = None) -> int:
    """The secret seed of generated tournament cases: ``$CLINIC_ENV_SECRET_SEED`` if set, else 63
    random bits from :mod:`secrets`. Never pass it on a command line (``/proc/<pid>/cmdline`` is
    world-readable); children never receive it (:func:`child_environment` drops it).

    Raises:
        ValueError: The variable is set but is not a non-negative integer.
    """
    value = (os.environ if environ is None else environ).get(SECRET_SEED_VAR)
    if value is None:
        return secrets.randbits(63)
    try:
        seed = int(value)
    except ValueError:
        raise ValueError(f"${SECRET_SEED_VAR} must be a non-negative integer, got {value!r}") from None
    if seed < 0:
        raise ValueError(f"${SECRET_SEED_VAR} must be a non-negative integer, got {value!r}")
    return seed


def protect_private_folder(path: str | Path) -> Path:
    """Make a folder of private cases readable by its owner only: 700 on it and every folder
    inside, 600 on every file. A sandbox user (:func:`sandbox_ids`) then cannot list or read it.

    Raises:
        FileNotFoundError: ``path`` is not a folder.
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"private case folder {root} does not exist or is not a folder")
    for folder, dirs, files in os.walk(root):
        os.chmod(folder, 0o700)
        for name in dirs:
            os.chmod(Path(folder, name), 0o700)
        for name in files:
            file = Path(folder, name)
            if not file.is_symlink():
                os.chmod(file, 0o600)
    return root


def sandbox_ids(user: str | int | None = "nobody") -> tuple[int, int] | None:
    """``(uid, gid)`` a policy process drops to: those of ``user`` (a name or a uid) when this
    process runs as root, None otherwise (a non-root process cannot change its uid) or for None.

    Raises:
        KeyError: No such user.
    """
    if user is None or os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwuid(user) if isinstance(user, int) else pwd.getpwnam(user)
    except KeyError:
        raise KeyError(f"sandbox user {user!r} does not exist (see /etc/passwd)") from None
    if entry.pw_uid == 0:
        raise ValueError(f"sandbox user {user!r} is root")
    return entry.pw_uid, entry.pw_gid


def child_environment(workdir: Path) -> dict[str, str]:
    """The environment a policy process starts with: a fixed PATH, the locale, HOME and TMPDIR in
    its own folder, single-threaded BLAS; nothing else of ours (no ``CLINIC_ENV_*``, no keys)."""
    env = {key: os.environ[key] for key in _KEEP_ENV if key in os.environ}
    env.update(PATH="/usr/local/bin:/usr/bin:/bin", HOME=str(workdir), TMPDIR=str(workdir),
               PYTHONDONTWRITEBYTECODE="1", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1", LITELLM_LOCAL_MODEL_COST_MAP="True")
    return env


def harden_parent() -> bool:
    """Mark this process non-dumpable (``prctl(PR_SET_DUMPABLE, 0)``), so that processes of the same
    uid cannot read its ``/proc/<pid>/mem``, ``environ`` or ``fd``; used when policies cannot run
    under another uid. Also disables core dumps of this process. Returns whether it worked."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return int(libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)) == 0


def _policy_spec(spec: str) -> dict[str, Any]:
    """What the worker loads: a file's source (read here, so the sandbox user need not read it),
    a ``module:attr`` or a built-in / entry-point name."""
    if ":" in spec:
        left, attr = spec.rsplit(":", 1)
        if not attr:
            raise DoctorSpecError(f"doctor spec {spec!r}: nothing after ':'")
        if left.endswith(".py") or "/" in left or os.sep in left:
            path = Path(left).resolve()
            try:
                source = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise DoctorSpecError(f"doctor spec {spec!r}: cannot read {path}: {exc.strerror}") from None
            return {"kind": "source", "path": str(path), "source": source, "attr": attr,
                    "module": f"submission_{path.stem}"}
        return {"kind": "module", "module": left, "attr": attr}
    return {"kind": "name", "name": spec}


class _Failure(Exception):
    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


class IsolatedPolicy:
    """A submitted policy in its own process; implements the :class:`~clinic_env.policies.Policy` protocol.

    A crash, a hang past ``move_timeout_s`` (the process is killed and restarted for the next move)
    or a reply that is not an int in the action space forfeits the move: :meth:`act` returns -1
    (the env's penalised illegal no-op) and ``failures`` gets ``"<kind>: move <n>: <detail>"``
    with kind ``timeout``, ``crash``, ``memory``, ``invalid`` or ``start``. After ``max_failures``
    in one episode ``forfeited`` is True and :meth:`act` returns -1 without asking the child.

    Args:
        spec: ``module:attr``, ``path/to/file.py:Name`` (the file is read here and sent as source)
            or a built-in / ``clinic_env.policies`` entry-point name; called as ``factory(info, seed=...)``.
        info_spec: :func:`describe_info` of the env's :class:`EnvInfo` (an ``EnvInfo`` is accepted too).
        move_timeout_s: Wall-clock limit of one ``act`` or ``reset`` (the pipe round trip included).
        memory_mb: Address-space limit of the child (``RLIMIT_AS``).
        max_failures: Failures in one episode after which it is forfeited.
        private_paths: Folders the child must not read: made owner-only (:func:`protect_private_folder`);
            an :class:`IsolationWarning` says so when the child cannot run under another uid.
        start_timeout_s: Limit for starting the child and building the policy.
        sandbox_user: User (name or uid) the child drops to when this process is root; None keeps ours.
        seed: Seed given to the policy's constructor.

    Raises:
        DoctorSpecError: The spec names nothing loadable, or the child could not build the policy.
    """

    def __init__(self, spec: str, info_spec: dict[str, Any] | EnvInfo, *, move_timeout_s: float = 2.0,
                 memory_mb: int = 1024, max_failures: int = 3, private_paths: Sequence[str | Path] = (),
                 start_timeout_s: float = 30.0, sandbox_user: str | int | None = "nobody",
                 seed: int | None = None) -> None:
        if move_timeout_s <= 0 or start_timeout_s <= 0:
            raise ValueError("move_timeout_s and start_timeout_s must be > 0")
        if memory_mb < 64 or max_failures < 1:
            raise ValueError(f"memory_mb must be >= 64 and max_failures >= 1, got {memory_mb}, {max_failures}")
        self.spec = spec
        self.move_timeout_s, self.start_timeout_s = float(move_timeout_s), float(start_timeout_s)
        self.memory_mb, self.max_failures = int(memory_mb), int(max_failures)
        description = describe_info(info_spec) if isinstance(info_spec, EnvInfo) else info_spec
        self.n_actions = len(description["actions"])
        self.ids = sandbox_ids(sandbox_user)
        for path in private_paths:
            protect_private_folder(path)
        if self.ids is None:
            harden_parent()
            if private_paths:
                warnings.warn(IsolationWarning(
                    "policy processes run under this process's own uid, so they can read the private "
                    "case folders; run the tournament as root (policies drop to a sandbox user) or in "
                    "a container"), stacklevel=2)
        self._hello = encode_json({"protocol": PROTOCOL_VERSION, "policy": _policy_spec(spec), "info": description,
                                   "memory_mb": self.memory_mb, "seed": seed,
                                   "uid": None if self.ids is None else self.ids[0],
                                   "gid": None if self.ids is None else self.ids[1]})
        self._private = Path(tempfile.mkdtemp(prefix="clinic-isolation-"))
        #: The child's working directory (empty at start; HOME and TMPDIR point here).
        self.workdir = Path(tempfile.mkdtemp(prefix="clinic-policy-"))
        if self.ids is not None:
            os.chown(self.workdir, *self.ids)
        self._proc: subprocess.Popen[bytes] | None = None
        self._procbox: list[subprocess.Popen[bytes] | None] = [None]
        self._cleanup = weakref.finalize(self, _cleanup, self._procbox, (self._private, self.workdir))
        self.failures: list[str] = []
        self.forfeited = False
        self.moves = 0
        self.starts = 0
        self._seed: int | None = None
        try:
            self._start()
        except _Failure as exc:
            self.close()
            raise DoctorSpecError(f"doctor spec {spec!r}: {exc}") from None

    # ------------------------------------------------------------------ the Policy protocol
    def reset(self, seed: int | None = None) -> None:
        """Start a new episode: clear ``failures``, ``forfeited`` and ``moves``; forward ``seed``."""
        self.failures, self.forfeited, self.moves, self._seed = [], False, 0, seed
        try:
            if self._proc is None:
                self._start()
            self._reset_child()
        except _Failure as exc:
            self._fail(exc)

    def act(self, observation: dict[str, Any], agent: str) -> int:
        """The child's action for ``observation``, or -1 when the move is forfeited."""
        if self.forfeited:
            return -1
        self.moves += 1
        try:
            if self._proc is None:
                self._start()
                self._reset_child()
            return self._ask(encode_act(observation, agent))
        except _Failure as exc:
            return self._fail(exc)

    def close(self) -> None:
        """Kill the child (and its process group) and remove its working directory."""
        self._kill()
        self._cleanup()

    def __enter__(self) -> IsolatedPolicy:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        """The child's process id (None while none runs)."""
        return None if self._proc is None else self._proc.pid

    # ------------------------------------------------------------------ the child
    def _start(self) -> None:
        self._kill()
        self.starts += 1
        log_path = self._private / "stderr.log"
        with open(log_path, "wb") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-m", "clinic_env.competition._worker"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, cwd=self.workdir,
                env=child_environment(self.workdir), close_fds=True, start_new_session=True, bufsize=0)
        self._procbox[0] = self._proc
        assert self._proc.stdin is not None
        os.set_blocking(self._proc.stdin.fileno(), False)
        kind, payload = self._exchange(frame(b"H", self._hello), self.start_timeout_s, "start")
        if kind != b"O":
            self._kill()
            raise _Failure("start", f"the policy could not be built: {payload.decode(errors='replace')}")

    def _reset_child(self) -> None:
        payload = b"" if self._seed is None else str(int(self._seed)).encode()
        kind, text = self._exchange(frame(b"R", payload), self.move_timeout_s, "reset")
        if kind != b"O":
            raise _Failure(self._error_kind(text), f"reset raised {text.decode(errors='replace')}")

    def _ask(self, payload: bytes) -> int:
        kind, reply = self._exchange(frame(b"A", payload), self.move_timeout_s, "move")
        if kind == b"a" and len(reply) == ACTION.size:
            action = int(ACTION.unpack(reply)[0])
            if 0 <= action < self.n_actions:
                return action
            raise _Failure("invalid", f"action {action} is outside the action space 0..{self.n_actions - 1}")
        text = reply.decode(errors="replace")
        if kind == b"I":
            raise _Failure("invalid", text)
        if kind == b"E":
            raise _Failure(self._error_kind(reply), f"act raised {text}")
        self._kill()
        raise _Failure("invalid", f"protocol violation: unexpected frame {kind!r}; process killed")

    def _exchange(self, message: bytes, timeout: float, what: str) -> tuple[bytes, bytes]:
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        deadline = time.monotonic() + timeout
        try:
            write_all(proc.stdin.fileno(), message, deadline)
            kind, payload = read_frame(proc.stdout.fileno(), deadline, MAX_REPLY)
        except ProtocolError as exc:
            if exc.timed_out:
                self._kill()
                raise _Failure("start" if what == "start" else "timeout",
                               f"no reply to {what} within {timeout:g} s; process killed") from None
            status = self._kill()
            if not exc.closed:
                raise _Failure("invalid", f"protocol violation: {exc}; process killed") from None
            tail = self._log_tail()
            cause = "memory" if "MemoryError" in tail else ("start" if what == "start" else "crash")
            raise _Failure(cause, f"process exited with status {status}" + (f" ({tail})" if tail else "")) from None
        return kind, payload

    @staticmethod
    def _error_kind(text: bytes) -> str:
        return "memory" if text.startswith(b"MemoryError") else "crash"

    def _log_tail(self, limit: int = 300) -> str:
        try:
            data = (self._private / "stderr.log").read_bytes()[-limit:]
        except OSError:
            return ""
        lines = [line for line in data.decode(errors="replace").splitlines() if line.strip()]
        return lines[-1].strip() if lines else ""

    def _fail(self, failure: _Failure) -> int:
        self.failures.append(f"{failure.kind}: move {self.moves}: {str(failure).split(': ', 1)[1]}")
        if len(self.failures) >= self.max_failures:
            self.forfeited = True
        return -1

    def _kill(self) -> int | None:
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        return _reap(proc)


def _reap(proc: subprocess.Popen[bytes]) -> int:
    """Kill the child's whole process group (it is a session leader) and wait for it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    status = proc.wait()
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            pipe.close()
    return status


def _cleanup(proc: list[subprocess.Popen[bytes] | None], folders: tuple[Path, ...]) -> None:
    if proc[0] is not None and proc[0].returncode is None:
        _reap(proc[0])
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)

