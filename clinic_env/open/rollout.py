"""Async open-mode rollouts: many AgentClinic-style episodes in flight (:func:`arun_open`).

Each role is given as a spec:

- ``"llm:MODEL"`` / ``"vllm:NAME"``: an :class:`~clinic_env.llm.policy.LLMPolicy` answering in plain
  text (no response schema) from the observation's messages. One chat client is shared per
  (model, server) so that its concurrency bound holds across the batch. ``api_base`` is one URL for
  every role or a dict by role (``doctor``, ``patient``, ``examiner``, ``measurement``,
  ``moderator``; missing roles use ``"default"``);
- a scripted name: doctor ``"open-random"`` (chance level) or ``"open-oracle"`` (reads the case: an
  upper bound; :data:`~clinic_env.open.roles.SCRIPTED_DOCTORS`),
  patient ``"case"``, measurement ``"case"``, moderator ``"icd10"``, examiner ``"rubric"`` (played
  inside the env, see :mod:`clinic_env.envs.open`);
- an object with ``aact(observation, agent)`` or ``act(observation, agent)`` returning text.

Jobs are (case, repeat, group member) as in :func:`clinic_env.rollout_async.arun`: members of a
group share the episode seed and differ in the LLM's sampling seed offset. An LLM call that fails
after its retries ends only that episode (``end_reason="llm_error"``, the reason in ``errors``);
any other exception of a policy gives a failed record (``end_reason="error"``); the batch goes on.
Records carry the open-mode fields of :meth:`OpenConsultationEnv.record_fields`, plus ``group``,
``group_index``, ``usage`` (calls and tokens by role) and ``wall_s``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from clinic_env.envs.open import OPEN_ENV_VERSION, OpenConsultationEnv
from clinic_env.llm.client import ChatClient, LLMCallError, Usage, track_usage
from clinic_env.llm.policy import LLMPolicy, sampling_offset
from clinic_env.open.roles import SCRIPTED_DOCTORS
from clinic_env.records import EpisodeRecord
from clinic_env.rollout_async import RolloutBatch, _shared_kwargs, job_queue, total_usage
from clinic_env.schema.case import Case
from clinic_env.schema.loading import load_cases

__all__ = ["OPEN_ROLES", "SCRIPTED", "arun_open", "role_for"]

#: The five roles of open mode (measurement, moderator and the coverage examiner are all played
#: through the env's ``examiner`` agent).
OPEN_ROLES = ("doctor", "patient", "measurement", "moderator", "examiner")
#: The scripted name of each role.
SCRIPTED = {"doctor": "open-random", "patient": "case", "measurement": "case", "moderator": "icd10",
            "examiner": "rubric"}
_TASK_ROLE = {"consult": "doctor", "answer": "patient", "measurement": "measurement", "moderator": "moderator",
              "coverage": "examiner", "grade": "examiner"}
_POLICY_ROLE = {"doctor": "doctor", "patient": "patient", "measurement": "examiner", "moderator": "examiner",
                "examiner": "examiner"}


def role_for(observation: Mapping[str, Any]) -> str:
    """The open-mode role an observation's ``task`` belongs to."""
    return _TASK_ROLE.get(str(observation.get("task")), "examiner")


def _url(api_base: str | Mapping[str, str] | None, role: str) -> str | None:
    if api_base is None or isinstance(api_base, str):
        return api_base
    return api_base.get(role) or api_base.get("default")


def _is_llm(spec: Any) -> bool:
    return isinstance(spec, str) and spec.startswith(("llm:", "vllm:"))


def _check(role: str, spec: Any) -> None:
    if role == "doctor" and isinstance(spec, str) and spec in SCRIPTED_DOCTORS:
        return
    if isinstance(spec, str) and not _is_llm(spec) and spec != SCRIPTED[role]:
        raise ValueError(f"{role}={spec!r}: give 'llm:MODEL', 'vllm:NAME', {SCRIPTED[role]!r} or a policy object")


class _Roles:
    """Builds each role's policy; LLM clients shared per (model, server)."""

    def __init__(self, specs: dict[str, Any], api_base: str | Mapping[str, str] | None, timeout: float | None,
                 retries: int | None, concurrency: int) -> None:
        self.specs, self.api_base = specs, api_base
        self.timeout, self.retries, self.concurrency = timeout, retries, concurrency
        self.clients: dict[tuple[str, str | None], ChatClient] = {}
        self.shared: dict[str, Any] = {r: self._llm(r, s) for r, s in specs.items() if _is_llm(s)}

    def _llm(self, role: str, spec: str) -> LLMPolicy:
        kind, _, name = spec.partition(":")
        if not name:
            raise ValueError(f"{role}={spec!r}: give a model after {kind + ':'!r}")
        model = f"hosted_vllm/{name}" if kind == "vllm" else name
        url = _url(self.api_base, role)
        if kind == "vllm" and not url:
            raise ValueError(f"{role}={spec!r}: a vllm: role needs an api_base")
        client = self.clients.get((model, url))
        if client is None:
            settings: dict[str, Any] = {"concurrency": self.concurrency}
            if self.timeout is not None:
                settings["timeout"] = self.timeout
            if self.retries is not None:
                settings["retries"] = self.retries
            client = self.clients[(model, url)] = ChatClient(model, api_base=url, **settings)
        return LLMPolicy(model, _POLICY_ROLE[role], client=client, structured_output=False)

    def for_worker(self, env: OpenConsultationEnv) -> dict[str, Any]:
        """Every agent-played role's policy for one worker (scripted doctors are per env)."""
        out: dict[str, Any] = {}
        for role, spec in self.specs.items():
            if role in self.shared:
                out[role] = self.shared[role]
            elif role == "doctor" and isinstance(spec, str) and spec in SCRIPTED_DOCTORS:
                out[role] = SCRIPTED_DOCTORS[spec](env)
            elif not isinstance(spec, str):
                out[role] = spec
        return out

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose()


async def _ask(policy: Any, role: str, observation: dict[str, Any], agent: str) -> Any:
    if isinstance(policy, LLMPolicy):
        return await policy.aact_text(list(observation["messages"]), role)
    if hasattr(policy, "aact"):
        return await policy.aact(observation, agent)
    return policy.act(observation, agent)


async def _play(env: OpenConsultationEnv, policies: dict[str, Any], case: Case, seed: int, member: int,
                doctor_name: str) -> EpisodeRecord:
    usage = Usage()
    track_usage(usage)  # this task's context only
    sampling_offset(member)
    start = time.perf_counter()
    env.reset(seed=seed, options={"case_id": case.id})
    for policy in {id(p): p for p in policies.values()}.values():
        if hasattr(policy, "reset"):
            policy.reset(seed)
    for agent in env.agent_iter():
        obs, _, term, trunc, _ = env.last()
        if term or trunc:
            env.step(None)
            continue
        role = role_for(obs)
        try:
            action = await _ask(policies[role], role, obs, agent)
        except LLMCallError as exc:
            env.fail("llm_error", f"{role}: {exc}")
            continue
        if isinstance(action, (list, tuple)):
            action = action[0] if action else ""
        env.step(action)
    fields = env.record_fields()
    return EpisodeRecord(doctor=doctor_name, seed=seed, env_version=OPEN_ENV_VERSION, group=f"{case.id}:{seed}",
                         group_index=member, usage=usage.as_dict(), wall_s=round(time.perf_counter() - start, 4),
                         **fields)


async def arun_open(
    cases: Sequence[Case] | str | Path | None,
    doctor: Any,
    *,
    patient: Any = "case",
    examiner: Any = "rubric",
    measurement: Any = "case",
    moderator: Any = "icd10",
    max_doctor_turns: int = 20,
    protocol: str = "clinic",
    doctor_bias: str | None = None,
    patient_bias: str | None = None,
    episodes_per_case: int = 1,
    group_size: int = 1,
    seed: int = 0,
    concurrency: int = 8,
    api_base: str | dict[str, str] | None = None,
    timeout: float | None = None,
    retries: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    doctor_name: str | None = None,
    on_episode: Callable[[EpisodeRecord], None] | None = None,
) -> RolloutBatch:
    """Play a batch of open-mode episodes with up to ``concurrency`` in flight.

    Args:
        cases: Cases (objects, a path, or None for the bundled library).
        doctor, patient, examiner, measurement, moderator: Role specs (see the module docstring).
        max_doctor_turns, protocol, doctor_bias, patient_bias: Env settings (:class:`OpenConsultationEnv`).
        episodes_per_case: Seeds per case.
        group_size: Rollouts per (case, seed); members differ only in the LLM's sampling seed.
        seed: Run seed (per-episode seeds as in :func:`clinic_env.rollout.episode_seed`).
        concurrency: Episodes in flight (and each LLM client's bound on calls in flight).
        api_base: One server URL, or a dict by role with an optional ``"default"``.
        timeout, retries: LLM call settings (client defaults when None).
        env_kwargs: Extra env arguments (persona, catalogue, reward_config, ...).
        doctor_name: Name in the records (default: the doctor spec).
        on_episode: Called with each record as it finishes.

    Returns:
        The records in job order (case, repeat, group member), as a :class:`RolloutBatch`.
    """
    if concurrency < 1 or group_size < 1 or episodes_per_case < 1:
        raise ValueError("concurrency, group_size and episodes_per_case must be >= 1")
    specs = {"doctor": doctor, "patient": patient, "measurement": measurement, "moderator": moderator,
             "examiner": examiner}
    for role, spec in specs.items():
        _check(role, spec)
    library = load_cases(cases) if cases is None or isinstance(cases, (str, Path)) else list(cases)
    kwargs = _shared_kwargs(library, env_kwargs or {})
    kwargs.update(max_doctor_turns=max_doctor_turns, protocol=protocol, doctor_bias=doctor_bias,
                  patient_bias=patient_bias, patient="agent" if specs["patient"] != "case" else "case",
                  measurement="agent" if specs["measurement"] != "case" else "case",
                  moderator="agent" if specs["moderator"] != "icd10" else "icd10",
                  examiner="agent" if specs["examiner"] != "rubric" else "rubric")
    n_jobs = len(library) * episodes_per_case * group_size
    envs = [OpenConsultationEnv(**kwargs) for _ in range(min(concurrency, n_jobs))]
    name = doctor_name or (doctor if isinstance(doctor, str) else getattr(doctor, "model", type(doctor).__name__))
    roles = _Roles(specs, api_base, timeout, retries, concurrency)
    jobs = job_queue(library, episodes_per_case, group_size, seed)
    results: list[EpisodeRecord | None] = [None] * jobs.qsize()
    start = time.perf_counter()

    async def worker(env: OpenConsultationEnv) -> None:
        policies = roles.for_worker(env)
        while not jobs.empty():
            i, case, s, member = jobs.get_nowait()
            try:
                record = await asyncio.create_task(_play(env, policies, case, s, member, str(name)))
            except Exception as exc:  # a broken policy must not sink the batch
                record = EpisodeRecord.failed(case.id, str(name), s, OPEN_ENV_VERSION, exc, mode="open",
                                              protocol=protocol, diagnosis_correct=False,
                                              group=f"{case.id}:{s}", group_index=member)
            results[i] = record
            if on_episode is not None:
                on_episode(record)

    try:
        await asyncio.gather(*(worker(env) for env in envs))
    finally:
        await roles.aclose()
    batch = RolloutBatch(r for r in results if r is not None)
    batch.wall_s = time.perf_counter() - start
    batch.usage = total_usage(batch).as_dict()
    return batch
