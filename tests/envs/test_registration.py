"""Registered ids (Gymnasium and PettingZoo), the doctor's numeric view and the curriculum options."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pettingzoo
import pytest
from gymnasium.utils.env_checker import check_env

import clinic_env
from clinic_env.envs.registration import DOCTOR_IDS, ENV_ID, LITE_CASES


@pytest.mark.parametrize("env_id", DOCTOR_IDS[:2])
def test_gym_ids_pass_check_env_and_vectorise(env_id: str) -> None:
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert set(info) >= {"n_violations", "illegal_action", "segment", "cycle", "reward/diagnosis"}
    vec = gym.make_vec(env_id, num_envs=2)
    vobs, _ = vec.reset(seed=0)
    assert vobs["observation"].shape[0] == 2
    vec.close()


def test_text_id_takes_words() -> None:
    env = gym.make("clinic/Doctor-text-v0", case="card-nstemi", persona="cooperative")
    env.reset(seed=0)
    _, reward, *_ = env.step("When did the pain start?")
    assert reward == pytest.approx(-0.01)


def test_pettingzoo_registry_gives_the_wrapped_env() -> None:
    made = pettingzoo.make("aec", ENV_ID)
    assert type(made) is type(clinic_env.env())
    assert type(pettingzoo.make("parallel", ENV_ID)) is type(clinic_env.parallel_env())


def test_doctor_view_has_no_constant_fields() -> None:
    env = clinic_env.doctor_env()
    lay = env.engine.layout
    # Role, pending and grading flags are constant for a doctor asked to act: they are left out.
    left_out = {*range(lay.ROLE, lay.ROLE + 3), lay.PENDING, lay.GRADING}
    assert not left_out & set(lay.doctor_index.tolist())
    assert env.observation_space["observation"].shape == (lay.doctor_size,)
    # Every field moves in some episode: play random episodes and scripted ones over many cases.
    seen = np.zeros(lay.doctor_size, bool)
    rng = np.random.default_rng(0)
    withholding = clinic_env.doctor_env(persona="withholding")
    for seed in range(50):
        e = env if seed < 40 else withholding
        obs, _ = e.reset(seed=seed)
        done = False
        while not done:
            seen |= obs["observation"] != 0
            legal = np.flatnonzero(obs["action_mask"])
            obs, _, term, trunc, _ = e.step(int(rng.choice(legal)))
            done = term or trunc
    common = lay.doctor_index < lay.COMMON
    assert seen[common].all()
    n_h = lay.n_history
    states = seen[common.sum() : common.sum() + 4 * n_h].reshape(4, n_h)
    assert states.any(axis=1).all()  # yes, no, vague and withheld answers all occur


def test_lite_curriculum_is_small_and_budgeted() -> None:
    env = gym.make("clinic/Doctor-lite-v0").unwrapped
    assert {c.id for c in env.setup.cases} == set(LITE_CASES)
    full = clinic_env.doctor_env()
    assert env.action_space.n < full.action_space.n / 3
    eng = env.engine
    env.reset(seed=0)
    t = eng.table
    asked = 0
    while True:
        mask = eng.masks[0]
        asks = np.flatnonzero(mask[t.ask0 : t.order0])
        if not len(asks):
            break
        env.step(int(t.ask0 + asks[0]) - 1)
        asked += 1
    assert asked == 15 == len(eng.asked)


def test_reset_by_case_id_is_constant_time() -> None:
    case = clinic_env.load_cases()[0]
    many = [case.model_copy(update={"id": f"{case.id}-{i}"}) for i in range(5000)]
    env = clinic_env.raw_env(cases=many)
    env.reset(seed=0, options={"case_id": many[-1].id})
    assert env.engine.case is many[-1]
    assert env.setup._by_id is not None and len(env.setup._by_id) == 5000
