"""Text mode of env / parallel_env / doctor_env: messages, step(str), re-ask then no-op, queues."""

from __future__ import annotations

import json

import gymnasium
import numpy as np
import pytest
from pettingzoo.test import api_test

import clinic_env
from clinic_env.envs.doctor import DoctorEnv
from clinic_env.envs.text import TextConsultationEnv, TextDoctorEnv, TextParallelEnv
from clinic_env.text.render import doctor_system, messages_for, response_format

CASE = "card-nstemi"


def test_mode_dispatch_and_structured_default_unchanged() -> None:
    assert type(clinic_env.doctor_env()) is DoctorEnv
    assert type(clinic_env.raw_env()) is clinic_env.ConsultationEnv
    assert type(clinic_env.parallel_env()) is clinic_env.ConsultationParallelEnv
    assert isinstance(clinic_env.doctor_env(mode="text"), TextDoctorEnv)
    assert isinstance(clinic_env.env(mode="text").unwrapped, TextConsultationEnv)
    assert isinstance(clinic_env.parallel_env(mode="text"), TextParallelEnv)
    with pytest.raises(ValueError, match="mode"):
        clinic_env.env(mode="voice")
    obs, _ = clinic_env.doctor_env().reset(seed=0)
    assert set(obs) == {"observation", "action_mask"}


def test_doctor_env_text_episode() -> None:
    env = clinic_env.doctor_env(mode="text", case=CASE, persona="cooperative")
    obs, info = env.reset(seed=1)
    assert obs["transcript"].startswith("[") and obs["messages"][0]["role"] == "system"
    assert "Status: segment=history" in obs["messages"][1]["content"]
    assert env.observation_space.contains(obs)
    obs, reward, term, trunc, info = env.step("When did the pain start? Does it spread to your arm or jaw?")
    assert info["actions"] == ["ask:hx.onset", "ask:hx.radiation"] and reward < 0
    assert "Doctor: When did the pain start?" in obs["transcript"]
    assert obs["transcript"].count("Patient:") >= 3  # opening + two answers
    for reply, seg in (("end_segment", "differential"), ("NSTEMI, pulmonary embolism", "differential"),
                       ('{"action": "commit_differential", "item": "", "text": ""}', "tests"),
                       ("order troponin and an ECG", "tests"), ("end_segment", "diagnosis")):
        obs, reward, term, trunc, info = env.step(reply)
        assert info["segment"] == seg, (reply, info)
    obs, reward, term, trunc, info = env.step('{"action": "dx", "item": "I21.4", "text": "You have had a heart attack."}')
    assert term and not trunc and info["end_reason"] == "final_diagnosis"
    assert info["segment_scores"]["diagnosis"] == 1.0
    assert env.engine.ordered == ["lab.troponin", "ecg.12lead"]


def test_garbage_is_reasked_once_then_a_penalised_noop() -> None:
    env = clinic_env.doctor_env(mode="text", case=CASE, persona="cooperative")
    env.reset(seed=2)
    cycle = env.engine.cycle
    obs, reward, _, _, info = env.step("zzzz qqqq")
    # Re-asked, and it costs a step like any legal action (garbage never beats a question).
    assert reward == pytest.approx(-env.info.config.step_cost) and "reask" in info and env.engine.cycle == cycle
    assert "could not be used" in obs["messages"][1]["content"]
    obs, reward, _, _, info = env.step("")
    assert info["illegal_action"] and reward == pytest.approx(-env.info.config.illegal_penalty)
    assert "could not be used" not in obs["messages"][1]["content"]
    obs, reward, _, _, info = env.step("x" * 10_000)  # over-long: re-asked again (the note was cleared)
    assert "over-long" in info["reask"]
    assert [e["outcome"] for e in env.turns.events if "outcome" in e] == ["reask", "no-op", "reask"]
    # a structured action still works in text mode
    env.step(env.action_names.index("ask:hx.onset"))
    assert env.engine.asked.get("hx.onset") == 1


def test_aec_text_env_with_all_roles_in_text() -> None:
    env = clinic_env.env(mode="text", case=CASE, persona="cooperative")
    env.reset(seed=3)
    script = {"history": ["When did it start?", "lorem", "Do you smoke?", "end_segment"],
              "differential": ["I21.4", "commit_differential"], "tests": ["troponin and ECG please", "end_segment"],
              "diagnosis": ["I21.4"]}
    said, reasks = {k: list(v) for k, v in script.items()}, 0
    for agent in env.agent_iter(max_iter=2000):
        obs, _, term, trunc, info = env.last()
        if term or trunc:
            env.step(None)
            continue
        if not obs["messages"]:
            env.step(0)
            continue
        assert env.observation_space(agent).contains(obs)
        if agent == "doctor_0":
            reasks += "reask" in info
            env.step(said[info["segment"]].pop(0))
        elif agent == "patient_0":
            assert "The doctor's latest question is about" in obs["messages"][1]["content"]
            env.step('{"mode": "truthful", "text": "About two hours ago."}')
        else:
            assert "<<rubric_item>>" in obs["messages"][1]["content"]
            env.step(json.dumps({"explanation": "ok", "criteria_met": True}))
    eng = env.unwrapped.engine
    assert eng.end_reason == "final_diagnosis" and reasks == 1
    assert eng.ordered == ["lab.troponin", "ecg.12lead"]  # the queued second order was played
    assert all(v is True for v in eng.verdicts.values())
    patient_turns = [t for t in eng.turns if t["agent"] == "patient_0"]
    assert patient_turns and all(t["text"] == "About two hours ago." for t in patient_turns)


def test_parallel_text_env() -> None:
    env = clinic_env.parallel_env(mode="text", case=CASE, persona="cooperative")
    obs, infos = env.reset(seed=4)
    assert obs["doctor_0"]["messages"] and not obs["patient_0"]["messages"]
    obs, rewards, _, _, infos = env.step({"doctor_0": "blah"})
    assert "reask" in infos["doctor_0"] and rewards["doctor_0"] == pytest.approx(-0.01)
    obs, rewards, _, _, infos = env.step({"doctor_0": "When did it start? Any fever?"})
    assert infos["doctor_0"]["queued"] == ["ask:sx.fever"]
    env.step({"patient_0": "It started this morning."})
    env.step({"doctor_0": None})  # plays the queued question
    assert env.engine.pending == "sx.fever"


def test_text_env_passes_pettingzoo_api_test() -> None:
    api_test(clinic_env.env(mode="text", case=CASE, max_cycles=30), num_cycles=40)


def test_messages_render_per_role_and_segment(catalogue: clinic_env.Catalogue) -> None:
    env = clinic_env.raw_env(case=CASE)
    env.reset(seed=5)
    eng = env.engine
    assert doctor_system(catalogue, 0) is doctor_system(catalogue, 0)  # cached: a stable prefix
    assert "hx.onset" in doctor_system(catalogue, 0) and "lab.troponin" in doctor_system(catalogue, 2)
    assert "hx.onset" not in doctor_system(catalogue, 0, list_items=False)
    msgs = messages_for(eng, 0, note="the reply was empty")
    assert msgs[1]["content"].endswith("Reply again with one JSON action.")
    schema = response_format(0)["json_schema"]["schema"]
    assert schema["required"] == ["action", "item", "text"]
    assert set(response_format(2)["json_schema"]["schema"]["properties"]) == {"explanation", "criteria_met"}


def test_doctor_env_accepts_a_text_patient() -> None:
    class EchoPatient:
        calls = 0

        def reset(self, seed: int | None = None) -> None:
            pass

        def act_text(self, messages: list[dict[str, str]], agent: str = "") -> str:
            EchoPatient.calls += 1
            return "" if EchoPatient.calls == 1 else '{"mode": "truthful", "text": "Since this morning."}'

    env = clinic_env.doctor_env(mode="text", case=CASE, patient=EchoPatient())
    env.reset(seed=6)
    obs, *_ = env.step("When did it start?")
    assert "Patient: Since this morning." in obs["transcript"] and EchoPatient.calls == 2


def test_observation_space_of_text_doctor_env_is_valid() -> None:
    env = clinic_env.doctor_env(mode="text")
    assert isinstance(env.observation_space, gymnasium.spaces.Dict)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert np.array_equal(obs["action_mask"], env.action_masks().astype(np.int8))
