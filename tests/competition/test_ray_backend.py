"""``--backend ray`` (clinic_env.rollout_backends): the same records as the local backend, one
durable results file, --resume, workers that die mid-run, llm: episodes under one global
concurrency limit, and a clean exit 2 without the ray extra.

The Ray tests skip when Ray is not installed (``pip install -e ".[ray]"``; the ``test`` extra has
it), unless ``CLINIC_ENV_REQUIRE_RAY=1``, which fails them instead. One local Ray (2 CPUs) serves
the whole module; the backends find it up and leave it up.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from typer.testing import CliRunner

import clinic_env
from clinic_env.cli import app
from clinic_env.competition import DoctorSpecError, run_tournament
from clinic_env.competition.store import read_results
from clinic_env.competition.tournament import key_of, plan_episodes
from clinic_env.records import EpisodeRecord
from clinic_env.rollout import episode_seed

runner = CliRunner()
ENV = {"max_cycles": 40}
MODEL = "hosted_vllm/test"



def _have_ray() -> bool:
    try:
        return importlib.util.find_spec("ray") is not None
    except ValueError:  # sys.modules["ray"] is None: made unimportable on purpose
        return False


HAVE_RAY = _have_ray()
_SKIP = pytest.mark.skipif(not HAVE_RAY and os.environ.get("CLINIC_ENV_REQUIRE_RAY") != "1",
                           reason="Ray is not installed (pip install -e '.[ray]')")
T = TypeVar("T")


def needs_ray(test: T) -> T:
    """A test on the module's local Ray: skipped without Ray, marked slow (starting actors takes seconds)."""
    marked: T = pytest.mark.slow(_SKIP(test))
    return marked

@pytest.fixture(scope="module")
def ray_up() -> Iterator[Any]:
    """A local Ray with 2 CPUs for the whole module."""
    if not HAVE_RAY:
        pytest.fail("CLINIC_ENV_REQUIRE_RAY=1 but Ray is not installed: pip install -e '.[ray]'")
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def few(cases: list[clinic_env.Case]) -> list[clinic_env.Case]:
    return [c for c in cases if c.id in ("card-nstemi", "pulm-pe", "neuro-sah", "surg-appendicitis")]


def _lines(folder: Path) -> list[str]:
    return sorted((folder / "results.jsonl").read_text(encoding="utf-8").splitlines())


def _plan(result: Any, doctor: str, cases: list[clinic_env.Case], repeats: int, seed: int) -> list[Any]:
    personas = result.summary["plan"]["personas"]
    return plan_episodes([doctor], [c.id for c in cases], personas, episodes_per_case=repeats, seed=seed)


def _backend(**kw: Any) -> Any:
    from clinic_env.rollout_backends import RayBackend

    return RayBackend(**kw)


def _dying_doctor(tmp_path: Path, seed: int, always: bool = False) -> tuple[str, Path]:
    """A doctor spec (info-gain underneath) whose process dies with os._exit(1) at the 3rd move of
    the episode of ``seed``: the first time any process gets there (a marker file), or every time."""
    marker = tmp_path / "died-once"
    path = tmp_path / "dying.py"
    path.write_text(f'''
import os
from clinic_env.policies import make_policy

class Dying:
    def __init__(self, info, seed=None):
        self.inner, self.seed, self.moves = make_policy("info-gain", info), None, 0
    def reset(self, seed=None):
        self.inner.reset(seed)
        self.seed, self.moves = seed, 0
    def act(self, observation, agent):
        self.moves += 1
        if self.moves == 3 and self.seed == {seed + 1}:  # play_key resets the doctor with the episode seed + 1
            try:
                os.close(os.open({str(marker)!r}, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                os._exit(1)
            except FileExistsError:
                if {always!r}:
                    os._exit(1)
        return self.inner.act(observation, agent)
''', encoding="utf-8")
    return f"dying={path}:Dying", marker


# -- without Ray --------------------------------------------------------------------------------------


def test_importing_clinic_env_never_imports_ray() -> None:
    code = ("import sys, clinic_env, clinic_env.cli, clinic_env.rollout_backends, clinic_env.competition; "
            "assert 'ray' not in sys.modules, 'ray imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_backend_ray_without_the_extra_exits_2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    for command in (["run", "--doctor", "random"], ["tournament", "--doctor", "random"]):
        result = runner.invoke(app, [*command, "--backend", "ray", "--out", str(tmp_path / command[0])])
        assert result.exit_code == 2, result.output
        assert "install clinic-env[ray]" in result.output
        assert not (tmp_path / command[0] / "results.jsonl").exists()


def test_backend_options_are_checked(tmp_path: Path) -> None:
    bad = [(["--backend", "spark"], "unknown backend"), (["--workers", "2"], "need --backend ray"),
           (["--address", "10.0.0.1:6379"], "need --backend ray")]
    for extra, message in bad:
        result = runner.invoke(app, ["tournament", "--doctor", "random", "--out", str(tmp_path / "x"), *extra])
        assert result.exit_code == 2 and message in result.output, result.output


def test_open_mode_refuses_the_ray_backend(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", "--mode", "open", "--backend", "ray", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "open-mode runs play locally" in result.output


@needs_ray
def test_unreachable_cluster_and_private_runs_exit_2(tmp_path: Path) -> None:
    """In a fresh process (no Ray up): a dead --address fails fast; private cases stay local."""
    cli = [sys.executable, "-m", "clinic_env.cli"]
    start = time.perf_counter()
    dead = subprocess.run([*cli, "tournament", "--doctor", "random", "--backend", "ray", "--address", "127.0.0.1:1",
                           "--out", str(tmp_path / "dead")], capture_output=True, text=True, timeout=120)
    assert dead.returncode == 2 and "cannot reach the Ray cluster at 127.0.0.1:1" in dead.stderr, dead.stderr
    assert time.perf_counter() - start < 60 and "Traceback" not in dead.stderr
    private = subprocess.run([*cli, "tournament", "--doctor", "random", "--backend", "ray", "--private-generated", "2",
                              "--out", str(tmp_path / "private")], capture_output=True, text=True, timeout=120)
    assert private.returncode == 2 and "private tournaments play on the local backend" in private.stderr
    assert not (tmp_path / "private" / "results.jsonl").exists()


def test_split_concurrency_sums_to_the_global_limit() -> None:
    from clinic_env.rollout_backends.ray_llm import split_concurrency

    assert split_concurrency(8, 3) == [3, 3, 2]
    assert split_concurrency(2, 5) == [1, 1]  # never an actor with no share
    for c in range(1, 20):
        for w in range(1, 6):
            shares = split_concurrency(c, w)
            assert sum(shares) == c and min(shares) >= 1 and max(shares) - min(shares) <= 1


# -- structured episodes ------------------------------------------------------------------------------


@needs_ray
def test_ray_and_local_write_the_same_records(ray_up: Any, few: list[clinic_env.Case], tmp_path: Path) -> None:
    doctors = ["info-gain", "random"]
    local = run_tournament(doctors, few, out=tmp_path / "local", episodes_per_case=2, seed=5, env_kwargs=ENV)
    backend = _backend(workers=2, batch=3)
    remote = run_tournament(doctors, few, out=tmp_path / "ray", episodes_per_case=2, seed=5, env_kwargs=ENV,
                            backend=backend)
    assert _lines(tmp_path / "ray") == _lines(tmp_path / "local")  # byte for byte, order aside
    assert [r.to_json() for r in remote.records] == [r.to_json() for r in local.records]  # plan order
    assert remote.played == 16 and backend.stats.deaths == 0
    summary = json.loads((tmp_path / "ray" / "summary.json").read_text())
    assert summary["arguments"]["backend"] == {"name": "ray", "address": "local", "workers": 2, "batch": 3}
    assert summary["status"] == "complete"
    assert backend.actors == [] and ray_up.is_initialized()  # actors gone, the session's Ray left up


@needs_ray
def test_ray_resumes_a_run_cut_short(ray_up: Any, few: list[clinic_env.Case], tmp_path: Path) -> None:
    full = run_tournament(["info-gain"], few, out=tmp_path / "full", episodes_per_case=3, seed=1, env_kwargs=ENV)
    part = tmp_path / "part"
    run_tournament(["info-gain"], few, out=part, episodes_per_case=3, seed=1, env_kwargs=ENV)
    lines = (part / "results.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (part / "results.jsonl").write_text("".join(lines[:5]) + lines[5][:40], encoding="utf-8")  # killed mid-write
    resumed = run_tournament(["info-gain"], few, out=part, episodes_per_case=3, seed=1, env_kwargs=ENV, resume=True,
                             backend=_backend(workers=2, batch=2))
    assert resumed.resumed == 5 and resumed.played == 7
    assert _lines(part) == _lines(tmp_path / "full")
    assert [r.to_json() for r in resumed.records] == [r.to_json() for r in full.records]


@needs_ray
def test_a_doctor_that_cannot_be_built_fails_before_anything_is_written(ray_up: Any, few: list[clinic_env.Case],
                                                                          tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("class Bad:\n    def __init__(self, info, seed=None):\n        raise RuntimeError('no weights')\n",
                   encoding="utf-8")
    with pytest.raises(DoctorSpecError, match="no weights"):
        run_tournament([f"{bad}:Bad"], few, out=tmp_path / "run", isolate=False, env_kwargs=ENV,
                       backend=_backend(workers=1))
    assert not (tmp_path / "run" / "results.jsonl").exists()


@needs_ray
def test_a_worker_killed_mid_episode_loses_nothing(ray_up: Any, few: list[clinic_env.Case], tmp_path: Path) -> None:
    """A doctor kills its actor's process (os._exit) in the middle of an episode: that worker's
    in-flight episodes are played again on another actor, each key is in the file exactly once,
    and the records are those of a run where nobody died."""
    spec, marker = _dying_doctor(tmp_path, episode_seed(2, 1, 1))  # the 2nd repeat of the 2nd case
    backend = _backend(workers=2, batch=2)
    result = run_tournament([spec], few, out=tmp_path / "ray", episodes_per_case=3, seed=2, env_kwargs=ENV,
                            isolate=False, backend=backend)
    assert marker.exists() and backend.stats.deaths == 1 and backend.stats.retried >= 1
    records, _ = read_results(tmp_path / "ray" / "results.jsonl")
    assert Counter(key_of(r) for r in records) == Counter(p.key for p in _plan(result, "dying", few, 3, 2))
    assert not result.failures
    # The same run with the marker already there (nobody dies), locally: the same records.
    run_tournament([spec], few, out=tmp_path / "local", episodes_per_case=3, seed=2, env_kwargs=ENV, isolate=False)
    assert _lines(tmp_path / "ray") == _lines(tmp_path / "local")


@needs_ray
def test_ray_kill_from_the_driver_mid_run(ray_up: Any, few: list[clinic_env.Case], tmp_path: Path) -> None:
    backend = _backend(workers=2, batch=1)
    killed: list[Any] = []

    def kill_one(_record: EpisodeRecord) -> None:
        if not killed:
            killed.append(backend.actors[0])
            ray_up.kill(killed[0], no_restart=True)

    result = run_tournament(["info-gain"], few, out=tmp_path / "ray", episodes_per_case=4, seed=3, env_kwargs=ENV,
                            backend=backend, on_episode=kill_one)
    assert killed and backend.stats.deaths == 1 and not result.failures
    records, _ = read_results(tmp_path / "ray" / "results.jsonl")
    assert len(records) == 16 and set(Counter(key_of(r) for r in records).values()) == {1}
    run_tournament(["info-gain"], few, out=tmp_path / "local", episodes_per_case=4, seed=3, env_kwargs=ENV)
    assert _lines(tmp_path / "ray") == _lines(tmp_path / "local")


@needs_ray
def test_an_episode_that_kills_every_worker_is_recorded_failed_once(ray_up: Any, few: list[clinic_env.Case],
                                                                     tmp_path: Path) -> None:
    spec, _ = _dying_doctor(tmp_path, episode_seed(4, 2, 0), always=True)  # the 3rd case
    backend = _backend(workers=2, batch=4)
    result = run_tournament([spec], few, out=tmp_path / "ray", seed=4, env_kwargs=ENV, isolate=False,
                            backend=backend, allow_failures=True)
    records, _ = read_results(tmp_path / "ray" / "results.jsonl")
    assert Counter(key_of(r) for r in records) == Counter(p.key for p in _plan(result, "dying", few, 1, 4))
    failed = [r for r in records if r.errors]
    assert [r.case_id for r in failed] == [few[2].id] and "died twice" in failed[0].errors[0]
    assert backend.stats.deaths == 2 and backend.stats.lost == 1
    assert list(result.failures.values()) == [1]


@needs_ray
def test_cli_run_and_tournament_with_ray(ray_up: Any, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["--cases", str(_three_cases(tmp_path)), "--doctor", "info-gain", "--max-cycles", "40"]
    result = runner.invoke(app, ["run", *args, "--backend", "ray", "--workers", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    local = runner.invoke(app, ["run", *args, "--out", str(tmp_path / "local")])
    assert local.exit_code == 0, local.output
    assert _lines(out) == _lines(tmp_path / "local")
    assert json.loads((out / "summary.json").read_text())["arguments"]["backend"]["name"] == "ray"
    again = runner.invoke(app, ["tournament", *args, "--backend", "ray", "--resume", "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert "3 of 3 episode(s) already done" in again.output and len(_lines(out)) == 3


# -- llm: episodes ------------------------------------------------------------------------------------


def _server_counting(latency: float) -> tuple[Any, list[float]]:
    from clinic_env.testing.openai_server import OpenAITestServer
    from clinic_env.testing.scripted import SCRIPTS

    arrivals: list[float] = []

    def reply(request: dict[str, Any]) -> str:
        arrivals.append(time.perf_counter())
        return str(SCRIPTS["doctor"](request))

    return OpenAITestServer(reply, latency=latency), arrivals


def _most_at_once(arrivals: list[float], window: float) -> int:
    """Most calls that arrived within one ``window`` (each takes longer than that: all in flight together)."""
    times = sorted(arrivals)
    return max(sum(1 for t in times if start <= t < start + window) for start in times)


@needs_ray
def test_llm_episodes_over_ray_share_one_global_limit(ray_up: Any, few: list[clinic_env.Case]) -> None:
    import asyncio

    from clinic_env.rollout import arun
    from clinic_env.rollout_backends.ray_llm import play_text_ray

    latency = 0.08
    server, arrivals = _server_counting(latency)
    with server:
        kw: dict[str, Any] = {"episodes_per_case": 2, "seed": 7, "api_base": server.base_url, "timeout": 10,
                              "env_kwargs": {"persona": "cooperative"}}
        seen: list[EpisodeRecord] = []
        batch = play_text_ray(few, f"llm:{MODEL}", concurrency=3, workers=2, on_episode=seen.append, **kw)
        at_once = _most_at_once(arrivals, latency)
        local = asyncio.run(arun(few, f"llm:{MODEL}", concurrency=3, **kw))
    assert len(batch) == 8 and len(seen) == 8 and batch.ray is not None
    assert batch.ray["concurrency_shares"] == [2, 1] and batch.ray["worker_deaths"] == 0
    assert all(r.end_reason == "final_diagnosis" and not r.errors for r in batch)
    assert len(arrivals) >= 2 * sum(r["usage"]["calls"] for r in batch) - 5  # both runs reached the server
    assert 2 <= at_once <= 3  # several actors in flight together, never more than the global limit

    def strip(r: EpisodeRecord) -> dict[str, Any]:
        return {k: v for k, v in r.model_dump().items() if k not in ("usage", "wall_s")}

    assert [strip(r) for r in batch] == [strip(r) for r in local]


@needs_ray
def test_cli_run_llm_doctor_with_ray(ray_up: Any, tmp_path: Path) -> None:
    server, arrivals = _server_counting(0.0)
    with server:
        result = runner.invoke(app, ["run", "--doctor", f"llm:{MODEL}", "--api-base", server.base_url, "--backend",
                                     "ray", "--workers", "2", "--concurrency", "2", "--out", str(tmp_path / "run"),
                                     "--cases", str(_three_cases(tmp_path))])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["llm"][f"llm:{MODEL}"]["backend"]["name"] == "ray"
    assert len(_lines(tmp_path / "run")) == 3 and arrivals


def _three_cases(tmp_path: Path) -> Path:
    """A case folder with three bundled case files."""
    folder = tmp_path / "three"
    folder.mkdir(exist_ok=True)
    bundled = sorted((Path(clinic_env.__file__).parent / "data" / "cases").rglob("*.yaml"))[:3]
    for path in bundled:
        (folder / path.name).write_bytes(path.read_bytes())
    return folder
