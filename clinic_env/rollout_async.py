"""Async rollouts: many text-mode episodes in flight against one LLM server (asyncio).

:func:`arun` plays every case ``episodes_per_case`` times, each (case, repeat) as a group of
``group_size`` rollouts with the same seed (same persona and patient noise; the LLM's sampling
seed is offset per member) for GRPO / SPAR advantages. ``concurrency`` workers each hold a warm
text-mode env and play episodes from a shared queue, so up to ``concurrency`` LLM calls are in
flight. A server that stops answering (timeouts, errors, garbage after the client's retries)
ends the affected episode as truncated (``end_reason: "llm_error"``, the message in ``errors``);
the rest of the batch goes on. Records are the sync rollout's (:func:`clinic_env.rollout.play_episode`)
plus ``group``, ``group_index``, ``usage`` (LLM calls, tokens, latency), ``text_events`` (each
reply, what it parsed to, re-asks) and ``wall_s``. With ``record_tokens=True`` a record also holds
``doctor_calls``: each doctor LLM call's messages, completion, segment, reward, re-ask and, when the
server returns them, prompt/completion token ids and logprobs (``llm:``/``vllm:`` doctors then ask
for them); each doctor turn's ``llm_call`` points at the call that produced it. That is what
:func:`clinic_env.integrations.handoff.export` turns into a trainer's JSONL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from clinic_env.core.actions import WAIT
from clinic_env.core.engine import AGENTS, SEGMENTS
from clinic_env.envs.aec import ConsultationEnv
from clinic_env.envs.setup import ENV_VERSION
from clinic_env.envs.text import TextConsultationEnv
from clinic_env.llm.client import CallRecord, LLMCallError, Usage, track_calls, track_usage
from clinic_env.llm.metrics import aread_spec_metrics
from clinic_env.llm.policy import LLMPolicy, sampling_offset
from clinic_env.llm.redact import redact
from clinic_env.records import EpisodeRecord, LLMCall, RecordLike
from clinic_env.rollout import episode_record, episode_seed
from clinic_env.schema.case import Case
from clinic_env.schema.loading import load_cases, load_catalogue, load_personas, load_rubric_banks

__all__ = ["RolloutBatch", "arun", "batch_jobs", "job_queue", "make_agent_policy", "total_usage"]

PolicySpec = Any  # a name ("persona", "thorough", "llm:MODEL", "vllm:NAME") or a policy object
_LLM_PREFIXES = ("llm:", "vllm:")


class RolloutBatch(list[EpisodeRecord]):
    """The episode records of a batch, with batch-level figures as attributes.

    Attributes:
        wall_s: Seconds the batch took.
        spec_decode: Speculative-decoding counters over the batch (``/metrics`` difference), or None
            (no counters, or ``/metrics`` could not be read: then ``warnings`` says why).
        usage: LLM calls, tokens and latency summed over the batch.
        warnings: What went wrong outside the episodes (a ``/metrics`` read that failed), redacted.
    """

    wall_s: float = 0.0
    spec_decode: dict[str, Any] | None = None
    usage: dict[str, Any] | None = None
    warnings: tuple[str, ...] = ()


#: Replies longer than this (characters) are parsed in a worker thread, so that a slow parse of
#: one episode's reply never stalls the event loop that every other episode shares; shorter ones
#: (nearly all) are parsed inline, which costs no thread hop.
INLINE_REPLY_CHARS = 512


def _reply_chars(action: Any) -> int:
    if isinstance(action, str):
        return len(action)
    if isinstance(action, (list, tuple)):
        return sum(len(a) for a in action if isinstance(a, str))
    return 0


def make_agent_policy(spec: PolicySpec, role: str, info: Any, **llm: Any) -> Any:
    """A policy for ``role`` from ``spec``: ``"llm:MODEL"`` builds an :class:`LLMPolicy` and
    ``"vllm:SERVED_NAME"`` a :class:`~clinic_env.llm.vllm.VLLMPolicy`, with the connection settings
    in ``llm`` (api_base, timeout, retries, concurrency, ...); another string is a structured
    policy name (:func:`clinic_env.policies.make_policy`); an object is used as is."""
    if not isinstance(spec, str):
        return spec
    if spec.startswith("vllm:"):
        from clinic_env.llm.vllm import VLLMPolicy

        name = spec[len("vllm:"):]
        if not name or not llm.get("api_base"):
            raise ValueError(f"{spec!r}: give the served model name after 'vllm:' and an api_base")
        return VLLMPolicy(name, info=info, role=role, **{k: v for k, v in llm.items() if v is not None})
    if spec.startswith("llm:"):
        model = spec[len("llm:"):]
        if not model:
            raise ValueError(f"{spec!r}: give a model after 'llm:', e.g. llm:hosted_vllm/my-model")
        return LLMPolicy(model, role, info=info, **{k: v for k, v in llm.items() if v is not None})
    from clinic_env.policies import make_policy

    return make_policy(spec, info)


def _shared_kwargs(cases: Sequence[Case], env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Env arguments with every file already loaded, so that each worker's env builds fast."""
    kwargs = dict(env_kwargs)
    cat = kwargs.get("catalogue")
    if cat is None or isinstance(cat, str) or hasattr(cat, "is_dir"):
        cat = load_catalogue(cat)
    kwargs["catalogue"] = cat
    rubrics = kwargs.get("rubrics")
    if rubrics is None or isinstance(rubrics, str) or hasattr(rubrics, "is_dir"):
        kwargs["rubrics"] = load_rubric_banks(rubrics, cat)
    persona = kwargs.get("persona")
    if persona is None:
        kwargs["persona"] = load_personas()
    elif isinstance(persona, str) or hasattr(persona, "is_dir"):
        from pathlib import Path

        if Path(persona).exists():
            kwargs["persona"] = load_personas(Path(persona))
        else:
            found = [p for p in load_personas() if p.id == str(persona)]
            if not found:
                raise KeyError(f"persona={persona!r} is neither a persona file nor a bundled persona id")
            kwargs["persona"] = found
    kwargs["cases"] = list(cases)
    kwargs.pop("case", None)
    return kwargs


def batch_jobs(n_cases: int, episodes_per_case: int, group_size: int, seed: int) -> list[tuple[int, int, int, int]]:
    """A batch's jobs in their fixed order (case, repeat, group member), each ``(job index, case
    index, episode seed, group member)``; every backend plays these, so their records agree."""
    jobs: list[tuple[int, int, int, int]] = []
    for ci in range(n_cases):
        for ep in range(episodes_per_case):
            s = episode_seed(seed, ci, ep)
            jobs.extend((len(jobs), ci, s, member) for member in range(group_size))
    return jobs


def job_queue(library: Sequence[Case], episodes_per_case: int, group_size: int,
              seed: int) -> asyncio.Queue[tuple[int, Case, int, int]]:
    """:func:`batch_jobs` as a queue of ``(job index, case, episode seed, group member)`` for workers."""
    jobs: asyncio.Queue[tuple[int, Case, int, int]] = asyncio.Queue()
    for i, ci, s, member in batch_jobs(len(library), episodes_per_case, group_size, seed):
        jobs.put_nowait((i, library[ci], s, member))
    return jobs


def total_usage(records: Iterable[RecordLike]) -> Usage:
    """The LLM usage of many episode records summed (per-role rows included)."""
    total = Usage()
    for r in records:
        u = r.get("usage") or {}
        total.calls += int(u.get("calls", 0))
        total.failed_attempts += int(u.get("failed_attempts", 0))
        total.prompt_tokens += int(u.get("prompt_tokens", 0))
        total.completion_tokens += int(u.get("completion_tokens", 0))
        total.latency_s += float(u.get("latency_s", 0.0))
        for role, row in (u.get("by_agent") or {}).items():
            acc = total.by_agent.setdefault(role, {})
            for key, value in row.items():
                acc[key] = acc.get(key, 0.0) + float(value)
    return total


async def _act(policy: Any, obs: dict[str, Any], agent: str) -> Any:
    if hasattr(policy, "aact"):
        return await policy.aact(obs, agent)
    return policy.act(obs, agent)


def _doctor_call(env: TextConsultationEnv, new: list[CallRecord], first_turn: int, segment: str) -> LLMCall | None:
    """The record of the doctor call just played (the last call the policy made for it), or None."""
    if not new:
        return None
    _, messages, done = new[-1]
    info = env.infos.get(AGENTS[0]) or {}
    ids = done.token_ids[0] if done.token_ids else None
    logprobs = done.logprobs[0] if done.logprobs else None
    return LLMCall(messages=messages, completion=done.text, segment=segment, first_turn=first_turn,
                   reask=info.get("reask"),
                   prompt_token_ids=list(done.prompt_token_ids) if done.prompt_token_ids is not None else None,
                   completion_token_ids=list(ids) if ids is not None else None,
                   completion_logprobs=list(logprobs) if logprobs is not None else None)


def _link_turns(record: EpisodeRecord, calls: list[LLMCall]) -> None:
    """Each doctor turn's ``llm_call``: the last call made before the turn was played."""
    doctor = AGENTS[0]
    for k, call in enumerate(calls):
        end = calls[k + 1].first_turn if k + 1 < len(calls) else len(record.turns)
        for turn in record.turns[call.first_turn:end]:
            if turn.agent == doctor:
                turn.llm_call = k
                call.n_turns += 1


async def _play(env: TextConsultationEnv, policies: dict[str, Any], case: Case, seed: int, member: int,
                doctor_name: str, record_tokens: bool = False) -> EpisodeRecord:
    usage = Usage()
    track_usage(usage)  # this task's context only: concurrent episodes keep their own counts
    sink: list[CallRecord] | None = [] if record_tokens else None
    track_calls(sink)
    calls: list[LLMCall] = []
    sampling_offset(member)
    start = time.perf_counter()
    env.reset(seed=seed, options={"case_id": case.id})
    for offset, agent in enumerate(AGENTS):
        policies[agent].reset(seed + offset + 1)
    totals = dict.fromkeys(AGENTS, 0.0)
    errors: list[str] = []
    llm_failed = False
    index = {a: i for i, a in enumerate(AGENTS)}
    # Built-in structured policies read the vector and the mask only: skip rendering messages.
    from clinic_env.policies import BUILTIN_POLICIES

    builtin = tuple(c for c in BUILTIN_POLICIES.values() if isinstance(c, type))
    plain = {a: isinstance(p, builtin) for a, p in policies.items()}
    step = ConsultationEnv.step
    for agent in env.agent_iter():
        # What env.last() would return, without building observations for turns that need none.
        totals[agent] += env._cumulative_rewards[agent]
        if calls and agent == AGENTS[0]:
            calls[-1].reward += env._cumulative_rewards[agent]  # what the doctor earned since its last call
        if env.terminations[agent] or env.truncations[agent]:
            env.step(None)
            continue
        if env.turns.idle(index[agent]):
            # The text layer has nothing to do with a wait; only after the examiner's step (the
            # end of a cycle) does the text env play queued doctor actions.
            step(env, WAIT) if agent != AGENTS[2] else env.step(WAIT)
            continue
        obs = ConsultationEnv.observe(env, agent) if plain[agent] else env.observe(agent)
        if sink is not None:
            made, first_turn, segment = len(sink), len(env.engine.turns), SEGMENTS[min(env.engine.segment, 3)]
        try:
            action = await _act(policies[agent], obs, agent)
        except LLMCallError as exc:
            errors.append(redact(f"{agent}: {exc}"))
            llm_failed = True
            break
        if _reply_chars(action) > INLINE_REPLY_CHARS:
            await asyncio.to_thread(env.step, action)  # this env is this task's alone while it waits
        else:
            env.step(action)
        if sink is not None and agent == AGENTS[0]:
            call = _doctor_call(env, [c for c in sink[made:] if c[0] == agent], first_turn, segment)
            if call is not None:
                calls.append(call)
    record = episode_record(env, seed, doctor_name, totals, errors)
    if llm_failed:
        record.update(terminated=False, truncated=True, end_reason="llm_error")
    record.update(group=f"{case.id}:{seed}", group_index=member, usage=usage.as_dict(),
                  text_events=list(env.turns.events), wall_s=round(time.perf_counter() - start, 4))
    if calls:
        _link_turns(record, calls)
        record.doctor_calls = calls
    return record


async def arun(
    cases: Sequence[Case] | str | Path | None = None,
    doctor: PolicySpec = "thorough",
    *,
    patient: PolicySpec = "persona",
    examiner: PolicySpec = "rubric",
    episodes_per_case: int = 1,
    group_size: int = 1,
    seed: int = 0,
    concurrency: int = 8,
    env_kwargs: dict[str, Any] | None = None,
    api_base: str | None = None,
    timeout: float | None = None,
    retries: int | None = None,
    doctor_name: str | None = None,
    metrics_url: str | None = None,
    on_episode: Callable[[EpisodeRecord], None] | None = None,
    record_tokens: bool = False,
) -> RolloutBatch:
    """Play a batch of text-mode episodes with up to ``concurrency`` in flight.

    Args:
        cases: Cases (objects, a path, or None for the bundled library).
        doctor: ``"llm:MODEL"``, a structured policy name, or a policy object (an
            :class:`LLMPolicy`, or anything with ``act``/``aact``).
        patient: The same for the patient (``"persona"`` is the default structured patient).
        examiner: The same for the examiner (``"rubric"`` is the rule-check examiner).
        episodes_per_case: Seeds per case.
        group_size: Rollouts per (case, seed); members differ only in the LLM's sampling seed.
        seed: Run seed (per-episode seeds as in :func:`clinic_env.rollout.episode_seed`).
        concurrency: Episodes in flight (each ``llm:`` policy also bounds its calls by this).
        env_kwargs: Extra env arguments (persona, max_cycles, reward_config, max_reply_chars...).
        api_base, timeout, retries: Connection settings of ``llm:`` policies.
        doctor_name: Name in the records (default: the doctor spec).
        metrics_url: A vLLM ``/metrics`` URL (or api_base) to read spec-decoding counters from
            before and after the batch (default: ``api_base`` when an ``llm:`` policy is used).
        on_episode: Called with each record as it finishes.
        record_tokens: Record every doctor LLM call in ``doctor_calls`` (messages, completion,
            reward, token ids and logprobs when the server returns them; ``llm:``/``vllm:`` doctors
            ask for them). For trainers: see :mod:`clinic_env.integrations.handoff`.

    Returns:
        The records in job order (case, repeat, group member), as a :class:`RolloutBatch`.
    """
    if concurrency < 1 or group_size < 1 or episodes_per_case < 1:
        raise ValueError("concurrency, group_size and episodes_per_case must be >= 1")
    library = load_cases(cases) if cases is None or isinstance(cases, (str, Path)) else list(cases)
    kwargs = _shared_kwargs(library, env_kwargs or {})
    llm = {"api_base": api_base, "timeout": timeout, "retries": retries, "concurrency": concurrency}
    doctor_llm = {**llm, "token_data": True} if record_tokens else llm
    envs = [TextConsultationEnv(**kwargs) for _ in range(min(concurrency, len(library) * episodes_per_case * group_size))]
    info = envs[0].info
    specs = {AGENTS[0]: doctor, AGENTS[1]: patient, AGENTS[2]: examiner}
    name = redact(str(doctor_name or (doctor if isinstance(doctor, str)
                                      else getattr(doctor, "model", type(doctor).__name__))))
    uses_llm = any(isinstance(s, str) and s.startswith(_LLM_PREFIXES) for s in specs.values())
    url = metrics_url or (api_base if uses_llm else None)
    if url is None:
        url = next((getattr(s, "metrics_url", None) for s in specs.values() if getattr(s, "metrics_url", None)), None)
    # The read-out never raises and has a total deadline: a broken /metrics costs a warning only.
    metrics_timeout = min(float(timeout or 10.0), 10.0)
    warnings: list[str] = []
    before = await aread_spec_metrics(url, metrics_timeout) if url else None
    if before is not None and before.error:
        warnings.append(f"spec-decode counters not read before the batch: {before.error}")

    def policies_for() -> dict[str, Any]:
        # LLM policies are shared (one client, one semaphore); structured ones are per worker.
        return {a: shared[a] if a in shared else make_agent_policy(s, a.split("_")[0], info, **llm)
                for a, s in specs.items()}

    shared = {a: make_agent_policy(s, a.split("_")[0], info, **(doctor_llm if a == AGENTS[0] else llm))
              for a, s in specs.items() if isinstance(s, str) and s.startswith(_LLM_PREFIXES)}
    jobs = job_queue(library, episodes_per_case, group_size, seed)
    results: list[EpisodeRecord | None] = [None] * jobs.qsize()
    start = time.perf_counter()

    async def worker(env: TextConsultationEnv) -> None:
        policies = policies_for()
        while not jobs.empty():
            i, case, s, member = jobs.get_nowait()
            try:
                record = await asyncio.create_task(_play(env, policies, case, s, member, str(name), record_tokens))
            except Exception as exc:  # a broken policy must not sink the batch
                record = EpisodeRecord.failed(case.id, str(name), s, ENV_VERSION, exc,
                                              group=f"{case.id}:{s}", group_index=member)
                record.update(errors=[redact(e) for e in record.errors])
            results[i] = record
            if on_episode is not None:
                on_episode(record)

    try:
        await asyncio.gather(*(worker(env) for env in envs))
    finally:
        # HTTP sessions belong to this event loop: close every LLM client used in it.
        for policy in {id(p): p for p in (*shared.values(), *specs.values()) if hasattr(p, "client")}.values():
            await policy.client.aclose()
    batch = RolloutBatch(r for r in results if r is not None)
    batch.wall_s = time.perf_counter() - start
    batch.usage = total_usage(batch).as_dict()
    if url and before is not None and not before.error:
        after = await aread_spec_metrics(url, metrics_timeout)
        if after.error:
            warnings.append(f"spec-decode counters not read after the batch: {after.error}")
        delta = after - before
        batch.spec_decode = delta.as_dict() if delta.present and not delta.error else None
    batch.warnings = tuple(redact(w) for w in warnings)
    return batch
