"""PettingZoo's and Gymnasium's own checkers on every environment, and the registry."""

from __future__ import annotations

import sys

import pettingzoo
import pytest
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import (
    api_test,
    max_cycles_test,
    parallel_api_test,
    parallel_seed_test,
    render_test,
    seed_test,
)

import clinic_env


def test_api_test() -> None:
    api_test(clinic_env.env(), num_cycles=300, verbose_progress=False)


def test_parallel_api_test() -> None:
    parallel_api_test(clinic_env.parallel_env(), num_cycles=300)


def test_seed_test() -> None:
    seed_test(clinic_env.env, num_cycles=200)


def test_parallel_seed_test() -> None:
    parallel_seed_test(clinic_env.parallel_env, num_cycles=200)


def test_max_cycles_test() -> None:
    max_cycles_test(sys.modules["clinic_env"])


def test_render_test() -> None:
    render_test(clinic_env.env, custom_tests={"ansi": lambda text: isinstance(text, str) and "Patient:" in text})


def test_doctor_env_passes_gymnasium_check_env() -> None:
    check_env(clinic_env.doctor_env(), skip_render_check=False)


@pytest.mark.parametrize("kind", ["aec", "parallel"])
def test_registered_in_pettingzoo(kind: str) -> None:
    env = pettingzoo.make(kind, clinic_env.ENV_ID, max_cycles=20)
    env.reset(seed=1)
    assert set(env.possible_agents) == {"doctor_0", "patient_0", "examiner_0"}
    assert env.unwrapped.engine.max_cycles == 20


def test_spaces_are_built_once_and_shared() -> None:
    env = clinic_env.env()
    spaces = {id(env.observation_space(a)) for a in env.possible_agents}
    assert len(spaces) == 1
    assert env.observation_space("doctor_0") is env.observation_space("doctor_0")
    assert len({id(env.action_space(a)) for a in env.possible_agents}) == 1
