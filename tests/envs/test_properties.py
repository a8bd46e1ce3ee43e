"""Property-based tests of env invariants: any action sequence, legal or not."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import clinic_env
from clinic_env.core.engine import AGENTS

_ENVS: dict[int, clinic_env.ConsultationParallelEnv] = {}


def _penv(max_cycles: int) -> clinic_env.ConsultationParallelEnv:
    env = _ENVS.get(max_cycles)
    if env is None:
        env = _ENVS[max_cycles] = clinic_env.parallel_env(max_cycles=max_cycles)
    return env


# An action script: each entry either picks the k-th legal action or sends a raw (possibly
# illegal, out-of-range or non-integer) action.
choice = st.one_of(
    st.tuples(st.just("legal"), st.integers(0, 10_000)),
    st.tuples(st.just("raw"), st.one_of(st.integers(-3, 2_000), st.none(), st.just("ask:hx.onset"), st.just("3"),
                                        st.booleans(), st.floats(allow_nan=True, allow_infinity=True))),
)


def _play(env: clinic_env.ConsultationParallelEnv, seed: int, script: list[tuple[str, object]]) -> list[tuple[object, ...]]:
    obs, _ = env.reset(seed=seed)
    trace: list[tuple[object, ...]] = []
    step = 0
    while env.agents:
        actions = {}
        for i, agent in enumerate(AGENTS):
            kind, value = script[(step * 3 + i) % len(script)]
            if kind == "legal":
                legal = np.flatnonzero(obs[agent]["action_mask"])
                actions[agent] = int(legal[int(value) % len(legal)])  # type: ignore[call-overload]
            else:
                actions[agent] = value
        obs, rewards, _terms, _truncs, _infos = env.step(actions)
        trace.append((tuple(actions.values()), tuple(rewards.values()), obs["doctor_0"]["transcript"]))
        for agent in AGENTS:
            assert obs[agent]["observation"].dtype == np.float32
            assert env.observation_space(agent).contains(obs[agent]), agent
        step += 1
        assert step <= env.engine.max_cycles
    return trace


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), max_cycles=st.sampled_from([1, 5, 40, 150]),
       script=st.lists(choice, min_size=1, max_size=60))
def test_any_action_sequence_is_safe_bounded_and_deterministic(seed: int, max_cycles: int, script: list[tuple[str, object]]) -> None:
    env = _penv(max_cycles)
    from clinic_env.rewards.registry import COMPONENTS

    w = env.setup.config.weights
    # Bounds from the registry: every component at its worst / best in one step.
    low = sum(min(w[n] * c.low, w[n] * c.high) for n, c in COMPONENTS.items())
    high = sum(max(w[n] * c.low, w[n] * c.high) for n, c in COMPONENTS.items())
    trace = _play(env, seed, script)
    assert 1 <= len(trace) <= max_cycles
    for _, rewards, _ in trace:
        for r in rewards:
            assert math.isfinite(r)
            assert low - 1e-9 <= r <= high + 1e-9
    assert env.engine.terminated or env.engine.truncated
    assert _play(env, seed, script) == trace


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), script=st.lists(st.integers(0, 10_000), min_size=1, max_size=40))
def test_aec_and_parallel_produce_the_same_episode(seed: int, script: list[int]) -> None:
    penv = _penv(60)
    aec = clinic_env.raw_env(max_cycles=60)
    obs, _ = penv.reset(seed=seed)
    aec.reset(seed=seed)
    step = 0
    while penv.agents:
        actions = {}
        for i, agent in enumerate(AGENTS):
            legal = np.flatnonzero(obs[agent]["action_mask"])
            actions[agent] = int(legal[script[(step * 3 + i) % len(script)] % len(legal)])
        for agent in AGENTS:
            assert aec.agent_selection == agent
            aec_obs = aec.observe(agent)
            assert np.array_equal(aec_obs["action_mask"], obs[agent]["action_mask"])
            aec.step(actions[agent])
        obs, rewards, _, _, _ = penv.step(actions)
        for agent in AGENTS:
            # After a full cycle, what each AEC agent has accumulated since it acted is the cycle's reward.
            assert math.isclose(aec._cumulative_rewards[agent], rewards[agent], abs_tol=1e-9)
        assert np.array_equal(aec.observe("doctor_0")["observation"], obs["doctor_0"]["observation"])
        assert aec.observe("doctor_0")["transcript"] == obs["doctor_0"]["transcript"]
        step += 1
    assert aec.engine.segment_scores == penv.engine.segment_scores
