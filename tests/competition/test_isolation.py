"""Isolated submissions: limits, failures, no zombies, privilege drop, private cases, the cheater."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import clinic_env
from clinic_env.competition._protocol import decode_act, encode_act, info_from_description
from clinic_env.competition.errors import DoctorSpecError
from clinic_env.competition.isolation import (
    SECRET_SEED_VAR,
    IsolatedPolicy,
    IsolationWarning,
    child_environment,
    describe_info,
    protect_private_folder,
    sandbox_ids,
    secret_seed,
)
from clinic_env.policies import make_policy
from clinic_env.rollout import play_episode

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="privilege drop needs a root parent (CI runs as root)")


@pytest.fixture(scope="module")
def env() -> clinic_env.ConsultationEnv:
    return clinic_env.raw_env(observation="hybrid")


@pytest.fixture(scope="module")
def spec(env: clinic_env.ConsultationEnv) -> dict[str, Any]:
    return describe_info(env.info)


@pytest.fixture(scope="module")
def doctor_obs(env: clinic_env.ConsultationEnv) -> dict[str, Any]:
    env.reset(seed=3)
    obs, *_ = env.last()
    assert env.agent_selection == "doctor_0"
    return dict(obs)


def _children() -> set[int]:
    """Live or zombie processes whose parent is this test process."""
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                status = Path(f"/proc/{entry}/status").read_text()
            except OSError:
                continue
            if f"\nPPid:\t{os.getpid()}\n" in status:
                out.add(int(entry))
    return out


@pytest.fixture(autouse=True)
def no_zombies() -> Iterator[None]:
    before = _children()
    yield
    gc.collect()
    assert _children() - before == set(), "a policy process (or zombie) was left behind"


def _policy(tmp_path: Path, body: str, name: str = "sub") -> str:
    path = tmp_path / f"{name}.py"
    path.write_text("import os, time\nimport numpy as np\n\n\nclass P:\n"
                    "    def __init__(self, info, seed=None):\n        self.info = info\n"
                    "    def reset(self, seed=None):\n        pass\n"
                    "    def act(self, observation, agent):\n" + body)
    return f"{path}:P"


# ---------------------------------------------------------------- protocol and plain use
def test_protocol_round_trip(env: clinic_env.ConsultationEnv, spec: dict[str, Any],
                             doctor_obs: dict[str, Any]) -> None:
    info = info_from_description(json.loads(json.dumps(spec)))
    assert info.table == env.info.table and info.layout.size == env.info.layout.size
    assert info.config == env.info.config and info.catalogue.fingerprint() == env.info.catalogue.fingerprint()
    obs, agent = decode_act(encode_act(doctor_obs, "doctor_0"))
    assert agent == "doctor_0" and set(obs) == {"observation", "action_mask", "transcript"}
    np.testing.assert_array_equal(obs["observation"], doctor_obs["observation"])
    np.testing.assert_array_equal(obs["action_mask"], doctor_obs["action_mask"])
    assert obs["transcript"] == doctor_obs["transcript"]
    assert set(spec) == {"catalogue", "config", "actions", "observation_size"}  # nothing about cases


def test_isolated_random_plays_like_the_in_process_one(env: clinic_env.ConsultationEnv, spec: dict[str, Any],
                                                      doctor_obs: dict[str, Any]) -> None:
    local = make_policy("random", env.info)
    with IsolatedPolicy("random", spec) as remote:
        for seed in (1, 2):
            local.reset(seed)
            remote.reset(seed)
            assert [remote.act(doctor_obs, "doctor_0") for _ in range(20)] == \
                   [local.act(doctor_obs, "doctor_0") for _ in range(20)]
        assert remote.failures == [] and not remote.forfeited


def test_spec_errors_are_doctor_spec_errors(tmp_path: Path, spec: dict[str, Any]) -> None:
    with pytest.raises(DoctorSpecError, match="cannot read"):
        IsolatedPolicy(f"{tmp_path}/missing.py:P", spec)
    bad = tmp_path / "bad.py"
    bad.write_text("class P:\n    def __init__(self, info, seed=None):\n        raise RuntimeError('no model file')\n")
    with pytest.raises(DoctorSpecError, match="no model file"):
        IsolatedPolicy(f"{bad}:P", spec)
    with pytest.raises(DoctorSpecError, match="no built-in policy"):
        IsolatedPolicy("no-such-policy", spec)


# ---------------------------------------------------------------- failures
def test_timeout_kills_restarts_and_forfeits(spec: dict[str, Any], doctor_obs: dict[str, Any]) -> None:
    policy = IsolatedPolicy(f"{EXAMPLES}/sleepy_policy.py:SleepyDoctor", spec, move_timeout_s=0.3)
    try:
        policy.reset(0)
        first = policy.pid
        for _ in range(3):
            t0 = time.monotonic()
            assert policy.act(doctor_obs, "doctor_0") == -1
            assert time.monotonic() - t0 < 2.0  # the timeout, plus the restart of the killed process
            assert policy.pid is None and _children() == set()
        assert policy.forfeited and len(policy.failures) == 3 and policy.starts == 3
        assert all(f.startswith("timeout: move") and "process killed" in f for f in policy.failures)
        assert first is not None and not Path(f"/proc/{first}").exists()
        t0 = time.monotonic()
        assert policy.act(doctor_obs, "doctor_0") == -1  # forfeited: the child is not asked again
        assert time.monotonic() - t0 < 0.05
        policy.reset(1)
        assert policy.failures == [] and not policy.forfeited and policy.pid is not None
    finally:
        policy.close()
    assert policy.pid is None


def test_crash_forfeits_the_move_and_the_next_move_restarts(tmp_path: Path, spec: dict[str, Any],
                                                            doctor_obs: dict[str, Any]) -> None:
    body = ("        if not os.path.exists('crashed'):\n            open('crashed', 'w').close()\n"
            "            os._exit(3)\n        if not observation['action_mask'].any():\n            1 / 0\n"
            "        return 1\n")
    with IsolatedPolicy(_policy(tmp_path, body), spec) as policy:
        policy.reset(0)
        assert policy.act(doctor_obs, "doctor_0") == -1
        assert policy.failures[-1].startswith("crash: move 1: process exited with status 3")
        assert policy.act(doctor_obs, "doctor_0") == 1
        zero = dict(doctor_obs, action_mask=np.zeros_like(doctor_obs["action_mask"]))
        assert policy.act(zero, "doctor_0") == -1
        assert policy.failures[-1].startswith("crash: move 3: act raised ZeroDivisionError")
        assert policy.starts == 2 and policy.forfeited is False


@pytest.mark.parametrize(("reply", "reason"), [
    ("'ask'", "returned str"), ("True", "returned bool"), ("1.0", "returned float"), ("None", "returned NoneType"),
    ("10 ** 9", "outside the action space"), ("-5", "outside the action space"), ("2 ** 70", "out of range"),
])
def test_invalid_replies(tmp_path: Path, spec: dict[str, Any], doctor_obs: dict[str, Any],
                         reply: str, reason: str) -> None:
    with IsolatedPolicy(_policy(tmp_path, f"        return {reply}\n"), spec, max_failures=2) as policy:
        policy.reset(0)
        assert policy.act(doctor_obs, "doctor_0") == -1
        assert policy.failures[0].startswith("invalid: move 1:") and reason in policy.failures[0]
        assert policy.act(doctor_obs, "doctor_0") == -1 and policy.forfeited
        assert policy.starts == 1  # an invalid reply does not cost a restart


def test_numpy_integer_replies_are_valid(tmp_path: Path, spec: dict[str, Any], doctor_obs: dict[str, Any]) -> None:
    with IsolatedPolicy(_policy(tmp_path, "        return np.int64(1)\n"), spec) as policy:
        assert policy.act(doctor_obs, "doctor_0") == 1


def test_memory_limit(tmp_path: Path, spec: dict[str, Any], doctor_obs: dict[str, Any]) -> None:
    body = ("        if agent == 'big':\n            self.hog = bytearray(600 * 2**20)\n"
            "        self.small = bytearray(50 * 2**20)\n        return 1\n")
    with IsolatedPolicy(_policy(tmp_path, body), spec, memory_mb=512) as policy:
        policy.reset(0)
        assert policy.act(doctor_obs, "small") == 1
        assert policy.act(doctor_obs, "big") == -1
        assert policy.failures[0].startswith("memory: move 2: act raised MemoryError")
        assert policy.act(doctor_obs, "small") == 1  # the same process goes on


def test_closing_and_garbage_collection_leave_no_process(spec: dict[str, Any]) -> None:
    policy = IsolatedPolicy("random", spec)
    pid, workdir = policy.pid, policy.workdir
    assert pid is not None and Path(f"/proc/{pid}").exists() and workdir.is_dir()
    del policy
    gc.collect()
    assert not Path(f"/proc/{pid}").exists() and not workdir.exists()


def test_a_sleeping_doctor_is_timed_out_and_the_episode_finishes(spec: dict[str, Any]) -> None:
    env = clinic_env.raw_env(max_cycles=40)
    doctor = IsolatedPolicy(f"{EXAMPLES}/sleepy_policy.py:SleepyDoctor", spec, move_timeout_s=0.3)
    policies = {"doctor_0": doctor, "patient_0": make_policy("persona", env.info),
                "examiner_0": make_policy("rubric", env.info)}
    t0 = time.monotonic()
    try:
        record = play_episode(env, policies, seed=7, doctor_name="sleepy")
    finally:
        doctor.close()
    assert doctor.forfeited and [f.split(":")[0] for f in doctor.failures] == ["timeout"] * 3
    assert record["truncated"] or record["terminated"]
    assert record["final_diagnosis"] is None
    assert time.monotonic() - t0 < 15


# ---------------------------------------------------------------- the child's world
PROBE = '''
import json, os
from pathlib import Path


def _open(path):
    try:
        with open(path, "rb") as f:
            f.read(1)
        return "read"
    except OSError as exc:
        return type(exc).__name__


def _mem(pid):
    try:
        with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
            start = int(next(line for line in maps if " rw" in line).split("-")[0], 16)
            mem.seek(start)
            return "read" if mem.read(64) else "empty"
    except OSError as exc:
        return type(exc).__name__


def _environ():
    try:
        with open("/proc/self/environ", "rb") as f:
            return [item.split(b"=", 1)[0].decode() for item in f.read().split(b"\\0") if item]
    except OSError:  # a process that dropped its uid is not dumpable: its /proc files are root's
        return None


class Probe:
    def __init__(self, info, seed=None):
        ppid = os.getppid()
        fds = {}
        for fd in os.listdir("/proc/self/fd"):
            try:
                fds[fd] = os.readlink(f"/proc/self/fd/{fd}")
            except OSError as exc:
                fds[fd] = type(exc).__name__
        report = {"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "groups": os.getgroups(),
                  "env": dict(os.environ), "initial_env": _environ(), "cwd": os.getcwd(), "cwd_entries": os.listdir("."), "fds": fds,
                  "parent_environ": _open(f"/proc/{ppid}/environ"), "parent_mem": _mem(ppid),
                  "targets": {p: _open(p) for p in TARGETS}}
        Path("probe.json").write_text(json.dumps(report))

    def reset(self, seed=None):
        pass

    def act(self, observation, agent):
        return 0
'''


def _probe(tmp_path: Path, spec: dict[str, Any], targets: list[str], **kwargs: Any) -> dict[str, Any]:
    path = tmp_path / "probe.py"
    path.write_text(f"TARGETS = {targets!r}\n" + PROBE)
    with IsolatedPolicy(f"{path}:Probe", spec, **kwargs) as policy:
        report: dict[str, Any] = json.loads((policy.workdir / "probe.json").read_text())
    return report


def test_child_environment_is_scrubbed(tmp_path: Path, spec: dict[str, Any],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_SEED_VAR, "123456789")
    monkeypatch.setenv("CLINIC_ENV_CASES", str(tmp_path))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    secret_file = tmp_path / "inherited.txt"
    secret_file.write_text("organiser's file")
    fd = os.open(secret_file, os.O_RDONLY)
    os.set_inheritable(fd, True)  # even an inheritable descriptor must not reach the child
    try:
        report = _probe(tmp_path, spec, [], sandbox_user=None)
    finally:
        os.close(fd)
    assert not any(k.startswith("CLINIC_ENV_") and k != "LITELLM_LOCAL_MODEL_COST_MAP" for k in report["env"])
    assert "OPENAI_API_KEY" not in report["env"] and "123456789" not in json.dumps(report["env"])
    assert set(report["initial_env"]) == set(child_environment(Path(report["cwd"])))
    assert report["env"]["HOME"] == report["cwd"] and report["cwd"] != os.getcwd()
    assert report["cwd_entries"] == []  # a fresh, empty working directory
    assert str(secret_file) not in report["fds"].values()
    assert not any(str(tmp_path) in target for target in report["fds"].values())


@needs_root
def test_child_drops_privileges_and_cannot_read_private_cases(tmp_path: Path, spec: dict[str, Any]) -> None:
    base = Path(tempfile.mkdtemp(prefix="clinic-private-test-"))
    try:
        os.chmod(base, 0o755)  # a world-searchable parent, so that only the private folder's mode protects it
        private, public = base / "private", base / "public"
        for folder in (private, public):
            folder.mkdir(mode=0o755)
            (folder / "case.yaml").write_text("id: secret-case\n")
            os.chmod(folder / "case.yaml", 0o644)
        targets = [str(private / "case.yaml"), str(private), str(public / "case.yaml")]
        report = _probe(tmp_path, spec, targets, private_paths=[private])
    finally:
        subprocess.run(["rm", "-rf", str(base)], check=True)
    uid, gid = sandbox_ids("nobody") or (-1, -1)
    assert (report["uid"], report["euid"], report["gid"], report["groups"]) == (uid, uid, gid, [])
    assert report["targets"] == {targets[0]: "PermissionError", targets[1]: "PermissionError",
                                 targets[2]: "read"}  # the control file is readable: the mode is what protects
    assert report["parent_environ"] == "PermissionError"
    assert report["parent_mem"] == "PermissionError"  # ptrace rules: another uid cannot read our memory


def test_without_privilege_drop_private_paths_warn(tmp_path: Path, spec: dict[str, Any]) -> None:
    (tmp_path / "private").mkdir()
    with pytest.warns(IsolationWarning, match="can read the private"):
        IsolatedPolicy("random", spec, sandbox_user=None, private_paths=[tmp_path / "private"]).close()


def test_sandbox_ids_and_private_folder_modes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "cases"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.yaml").write_text("x")
    (folder / "sub" / "b.yaml").write_text("x")
    protect_private_folder(folder)
    assert [p.stat().st_mode & 0o777 for p in (folder, folder / "sub", folder / "a.yaml", folder / "sub" / "b.yaml")] \
        == [0o700, 0o700, 0o600, 0o600]
    with pytest.raises(FileNotFoundError):
        protect_private_folder(tmp_path / "missing")
    assert sandbox_ids(None) is None
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert sandbox_ids("nobody") is None  # not root: no drop possible


def test_secret_seed() -> None:
    assert secret_seed({SECRET_SEED_VAR: "42"}) == 42
    assert secret_seed({}) != secret_seed({})
    with pytest.raises(ValueError, match=SECRET_SEED_VAR):
        secret_seed({SECRET_SEED_VAR: "abc"})


# ---------------------------------------------------------------- the cheater
ORGANISER = '''
import json, os, sys
from pathlib import Path

import clinic_env
from clinic_env.competition.isolation import IsolatedPolicy, protect_private_folder, secret_seed
from clinic_env.generate import CaseGenerator, write_cases
from clinic_env.policies import make_policy
from clinic_env.rollout import play_episode

args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
folder, cheater, n = Path(args["--cases"]), args["--cheater"], int(args["--episodes"])
cases = [g.case for g in CaseGenerator().generate_many(n, secret_seed())]
write_cases(cases, folder)
protect_private_folder(folder)
env = clinic_env.raw_env(cases=folder)
bundled = {c.opening_statement for c in clinic_env.load_cases()}
out = {"private_openings_in_bundled": sum(c.opening_statement in bundled for c in cases)}
runs = [("cheater", cheater, "nobody"), ("blind", "random", "nobody"), ("cheater_no_sandbox", cheater, None),
        ("cheater_in_process", None, None)]
for label, spec, user in runs:
    if spec is None:
        module = {"__name__": "cheat"}
        exec(compile(Path(cheater.rsplit(":", 1)[0]).read_text(), "cheat", "exec"), module)
        doctor = module["CheatingDoctor"](env.info)
    else:
        doctor = IsolatedPolicy(spec, env.info, sandbox_user=user, move_timeout_s=30)
    policies = {"doctor_0": doctor, "patient_0": make_policy("persona", env.info),
                "examiner_0": make_policy("rubric", env.info)}
    records = [play_episode(env, policies, seed=100 + i, options={"case_id": c.id}) for i, c in enumerate(cases)]
    log = Path(getattr(doctor, "workdir", "."), "cheating_policy.log")
    out[label] = {"final": [r["final_diagnosis"] for r in records], "gold": [r["gold_diagnosis"] for r in records],
                  "reward": [r["totals"]["reward"] for r in records], "turns": [r["doctor_turns"] for r in records],
                  "failures": getattr(doctor, "failures", []), "log": log.read_text() if log.exists() else ""}
    if spec is not None:
        doctor.close()
print(json.dumps(out))
'''


@needs_root
def test_cheating_policy_gains_nothing_on_private_cases(tmp_path: Path) -> None:
    """The organiser names its private folder on its command line and holds the secret seed in its
    environment, as a careless real one would; the sandboxed cheater still plays exactly like random."""
    script = tmp_path / "organiser.py"
    script.write_text(ORGANISER)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINIC_ENV_")}
    env[SECRET_SEED_VAR] = "987654321"
    res = subprocess.run([sys.executable, str(script), "--cases", str(tmp_path / "private"),
                          "--cheater", f"{EXAMPLES}/cheating_policy.py:CheatingDoctor", "--episodes", "4"],
                         capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["private_openings_in_bundled"] == 0  # the private cases are not the public ones
    cheater, blind = out["cheater"], out["blind"]
    exact = {k: np.mean([f == g for f, g in zip(v["final"], v["gold"], strict=True)])
             for k, v in out.items() if isinstance(v, dict)}
    # Sandboxed: every route failed, so it played exactly the blind (random) moves.
    assert cheater["final"] == blind["final"] and cheater["reward"] == blind["reward"]
    assert cheater["turns"] == blind["turns"] and exact["cheater"] <= exact["blind"]
    assert cheater["failures"] == []
    log = cheater["log"]
    assert "gc: no engine in this process" in log and "bundled: no match" in log
    assert f"{tmp_path / 'private'}: PermissionError" in log  # found the folder on the cmdline, could not read it
    assert "environ: PermissionError" in log and "secret seed: not found" in log
    assert "memory: /proc/" in log and "mem: PermissionError" in log
    assert "matched" not in log
    # Controls: the same cheater wins when it is not sandboxed, so the routes are real.
    assert exact["cheater_no_sandbox"] == 1.0 and "matched" in out["cheater_no_sandbox"]["log"]
    assert exact["cheater_in_process"] == 1.0 and "gc: found the engine's case" in out["cheater_in_process"]["log"]
