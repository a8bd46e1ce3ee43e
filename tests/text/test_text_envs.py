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
            # batch grading (the default): every pending item numbered; a per-item reply grades item 1
            assert "<<rubric_items>>" in obs["messages"][1]["content"] or "<<rubric_item>>" in obs["messages"][1]["content"]
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
    # lean (default): one static system text for every segment; the full listing on request
    assert doctor_system(catalogue, 0) is doctor_system(catalogue, 2)
    assert "hx.onset: " in doctor_system(catalogue, 0, True) and "lab.troponin: " in doctor_system(catalogue, 2, True)
    assert "hx.onset: " not in doctor_system(catalogue, 0) and "Hyperkalaemia" not in doctor_system(catalogue, 0)
    msgs = messages_for(eng, 0, note="the reply was empty")
    assert msgs[1]["content"].endswith("Reply again with one JSON action.")
    schema = response_format(0)["json_schema"]["schema"]
    assert schema["required"] == ["action", "item", "text"]
    assert set(response_format(2, "per_item")["json_schema"]["schema"]["properties"]) == {"explanation", "criteria_met"}
    assert set(response_format(2)["json_schema"]["schema"]["properties"]) == {"grades"}


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


def _words(text: str) -> int:
    return len(text.split())


def test_lean_doctor_prompt_is_small_and_suggests_legal_items() -> None:
    env = clinic_env.doctor_env(mode="text", case=CASE, persona="cooperative")
    obs, _ = env.reset(seed=7)
    system, user = (m["content"] for m in obs["messages"])
    lean_prefix = system
    for question in ("When did it start?", "Does it spread?", "Do you smoke?", "Any fever?", "Any cough?"):
        obs, *_ = env.step(question)
    system, user = (m["content"] for m in obs["messages"])
    assert system == lean_prefix  # the static prefix does not change between turns
    assert _words(system) < 400 and _words(user) < 300  # was ~1,430 words of catalogue per call
    listed = [line[2:].split(":")[0] for line in user.splitlines() if line.startswith("- ")]
    mask, table = env.engine.masks[0], env.engine.table
    assert 1 <= len(listed) <= 8 and all(mask[table.ask(x)] for x in listed)
    assert "hx.onset" not in listed  # already asked: never suggested
    for reply in ("end_segment", "NSTEMI", "commit_differential", "end_segment"):
        obs, *_ = env.step(reply)
    system, user = (m["content"] for m in obs["messages"])
    assert "segment=diagnosis" in user and system == lean_prefix
    assert user.split("Suggested")[1].splitlines()[1].startswith("- I21.4: ")  # the doctor's differential first
    full = clinic_env.doctor_env(mode="text", case=CASE, list_items=True)
    obs, _ = full.reset(seed=7)
    assert _words(obs["messages"][0]["content"]) > 1000  # the old full listing, on request


def test_batch_examiner_grades_a_segment_in_one_turn() -> None:
    env = clinic_env.env(mode="text", case=CASE, persona="cooperative")
    env.reset(seed=8)
    calls, graded_per_call = 0, []
    doctor = ["When did it start?", "end_segment", "I21.4", "commit_differential", "troponin", "end_segment", "I21.4"]
    for agent in env.agent_iter(max_iter=2000):
        obs, _, term, trunc, _ = env.last()
        if term or trunc:
            env.step(None)
            continue
        if not obs["messages"]:
            env.step(0)
            continue
        if agent == "doctor_0":
            env.step(doctor.pop(0))
        elif agent == "patient_0":
            env.step("It started this morning.")
        else:
            calls += 1
            items = obs["messages"][1]["content"].split("<<rubric_items>>")[1]
            rows = [ln for ln in items.splitlines() if ln.startswith("[")]
            graded_per_call.append(len(rows))
            env.step("\n".join(f"{ln.split(']')[0][1:]}: {'met' if n % 2 else 'not met'}" for n, ln in enumerate(rows)))
    eng = env.unwrapped.engine
    assert eng.end_reason == "final_diagnosis" and not eng.queue
    assert calls <= 4 and sum(graded_per_call) == len(eng.verdicts) == len(eng.rubric)
    assert set(eng.verdicts.values()) == {True, False}


def test_batch_examiner_partial_and_broken_replies() -> None:
    from clinic_env.text.verdicts import parse_grades

    assert parse_grades('{"grades": [{"id": "1", "verdict": "met"}, {"id": "3", "verdict": "abstain"}]}', 3) == {
        1: "met", 3: "abstain"}
    assert parse_grades('{"1": true, "2": "not met", "9": "met"}', 3) == {1: "met", 2: "not_met"}
    assert parse_grades("[1] met\n2) not met\nitem 3: yes", 3) == {1: "met", 2: "not_met", 3: "met"}
    assert parse_grades('{"explanation": "x", "criteria_met": false}', 5) == {1: "not_met"}
    assert parse_grades("no idea", 3) == {} and parse_grades("", 3) == {}
    env = clinic_env.raw_env(mode="text", case=CASE)
    env.reset(seed=9)
    eng, turns = env.engine, env.turns
    eng.queue.extend(range(4))
    eng.begin_cycle()
    res = turns.resolve(2, "2: met\n3: not met")  # item 1 missing: asked again, the rest kept
    assert res.reask and "1" in res.reask and eng.pregraded == {1: "met", 2: "not_met"}
    res = turns.resolve(2, "still nothing useful")  # second failure: abstain on every item not graded yet
    eng.act(2, res.index)
    assert eng.verdicts == {0: None, 1: True, 2: False, 3: None} and not eng.queue
