"""Open mode's AEC env: PettingZoo API, scripted episodes, rewards by hand, guard, determinism."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pettingzoo.test import api_test

import clinic_env
from clinic_env.envs.open import OpenConsultationEnv
from clinic_env.importers import import_cases
from clinic_env.open.prompts import GoldFilter, anchor_for, patient_knowledge, patient_system
from clinic_env.open.roles import OpenOracleDoctor
from clinic_env.patients.leak_guard import FALLBACK_FACT
from clinic_env.patients.terms import load_synonyms

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
STEMI = "card-stemi-anterior"


def play(env: Any, doctor: Any, others: dict[str, Any] | None = None) -> dict[str, Any]:
    """Play one episode; ``doctor`` and ``others[task]`` map an observation to text."""
    for agent in env.agent_iter():
        obs, _, term, trunc, _ = env.last()
        if term or trunc:
            env.step(None)
            continue
        if agent == "doctor":
            env.step(doctor(obs) if callable(doctor) else doctor.act(obs))
        else:
            env.step((others or {})[obs["task"]](obs))
    fields: dict[str, Any] = env.unwrapped.record_fields()
    return fields


def lines(*texts: str) -> Any:
    queue = list(texts)
    return lambda obs: queue.pop(0) if len(queue) > 1 else queue[0]


def test_api_test_scripted_roles() -> None:
    api_test(clinic_env.env(mode="open", case=STEMI, max_doctor_turns=6), num_cycles=60)


def test_api_test_every_role_played_by_agents() -> None:
    env = clinic_env.env(mode="open", case=STEMI, max_doctor_turns=6, patient="agent", measurement="agent",
                         moderator="agent", examiner="agent")
    api_test(env, num_cycles=60)


def test_scripted_episode_on_bundled_case() -> None:
    env = clinic_env.env(mode="open", case=STEMI)
    env.reset(seed=0)
    fields = play(env, OpenOracleDoctor(env))
    assert fields["end_reason"] == "diagnosis"
    assert fields["diagnosis_correct"] is True
    assert fields["verdict"]["method"] == "icd10"
    assert fields["diagnosis_code"] == "I21.0"
    assert "ecg.12lead" in fields["tests_ordered"]
    roles = [m["role"] for m in fields["messages"]]
    assert roles[0] == "patient" and "doctor" in roles and "measurement" in roles


def test_scripted_episode_on_imported_agentclinic_case() -> None:
    cases, _ = import_cases(FIXTURES / "agentclinic_osce.jsonl", "agentclinic")
    env = clinic_env.env(mode="open", cases=cases, protocol="agentclinic")
    doctor = OpenOracleDoctor(env)
    env.reset(seed=0, options={"case_id": cases[0].id})
    fields = play(env, doctor)
    assert fields["case_id"] == cases[0].id and fields["protocol"] == "agentclinic"
    assert fields["diagnosis_correct"] is True and fields["end_reason"] == "diagnosis"
    # A case-specific item asked for by name returns the source's own result.
    env.reset(seed=0, options={"case_id": cases[0].id})
    fields = play(env, lines("REQUEST TEST: Acetylcholine receptor antibodies", "DIAGNOSIS READY: myasthenia gravis"))
    result = fields["messages"][2]["content"]
    assert result.startswith("RESULTS:") and "Positive (elevated titre)" in result
    assert "src.acetylcholine_receptor_antibodies" in fields["tests_ordered"]


def _stemi_small() -> clinic_env.Case:
    case = next(c for c in clinic_env.load_cases() if c.id == STEMI)
    history = {k: case.history[k] for k in ("sx.chest_pain", "hx.onset", "hx.radiation", "hx.severity")}
    return case.model_copy(update={"history": history, "essential_tests": ("ecg.12lead",),
                                   "optional_tests": ("lab.troponin",),
                                   "confirmatory": (("ecg.12lead", "lab.troponin"),), "budget_usd": 100.0})


def test_rewards_by_hand() -> None:
    # Facts (presenting complaint excluded): onset 2, radiation 2, severity 1; onset asked -> 2/5.
    # Tests: ECG (essential) ordered, troponin (optional) not: recall (2*1 + 0)/3 = 2/3, precision 1,
    # F1 = 0.8; cost 16/100 -> 0.8 - 0.2*0.16 = 0.768. Evidence: ECG of {ECG, troponin} = 0.5, so
    # diagnosis = 1 * 0.5. Three doctor turns: step = -0.03. Rubric (the case's rule-checked items):
    # family history/lipids (2) and back pain (2) not asked, ECG within cycle 20 (5) met at turn 2
    # (cycle 4), CTPA (-5) not ordered, final I21.0 (6) met, the differential item unjudged:
    # 11/15. Reward = 0.4 + 0.768 + 2*0.5 - 0.03 + 11/15.
    env = clinic_env.env(mode="open", case=_stemi_small())
    env.reset(seed=0)
    total = 0.0
    script = lines("When did this start?", "REQUEST TEST: ECG", "DIAGNOSIS READY: anterior STEMI")
    for agent in env.agent_iter():
        obs, reward, term, trunc, _ = env.last()
        if agent == "doctor":
            total += reward
        env.step(None if term or trunc else script(obs))
    fields = env.unwrapped.record_fields()
    t = fields["totals"]
    assert t["history"] == pytest.approx(0.4)
    assert t["tests"] == pytest.approx(0.768)
    assert t["diagnosis"] == pytest.approx(0.5)
    assert t["step"] == pytest.approx(-0.03)
    assert t["rubric"] == pytest.approx(11 / 15)
    assert fields["rubric_counts"] == {"met": 2, "not_met": 3, "failed": 1}
    assert t["reward"] == pytest.approx(2.138 + 11 / 15)
    assert total == pytest.approx(2.138 + 11 / 15)
    assert fields["coverage"]["elicited"] == ["hx.onset"]


def test_dangerous_miss_and_turn_limit() -> None:
    env = clinic_env.env(mode="open", case=_stemi_small())
    env.reset(seed=0)
    fields = play(env, lines("DIAGNOSIS READY: acute pericarditis"))
    assert fields["diagnosis_correct"] is False and str(fields["diagnosis_code"]).startswith("I30")
    assert fields["totals"]["safety"] == -1.0 and "dangerous_miss" in fields["flags"]
    env = clinic_env.env(mode="open", case=_stemi_small(), max_doctor_turns=3)
    env.reset(seed=0)
    seen: list[str] = []

    def doctor(obs: dict[str, Any]) -> str:
        seen.append(str(obs["messages"][-1]["content"]))
        return "Does it hurt?"

    fields = play(env, doctor)
    assert fields["end_reason"] == "turn_limit" and fields["doctor_turns"] == 3
    assert fields["diagnosis_correct"] is False
    assert fields["totals"]["incomplete"] == -1.0 and fields["totals"]["diagnosis"] == 0.0
    assert "last turn" in seen[-1] and "last turn" not in seen[0]


def test_unmapped_diagnosis_goes_to_moderator_or_is_unmapped() -> None:
    env = clinic_env.env(mode="open", case=STEMI)
    env.reset(seed=0)
    fields = play(env, lines("DIAGNOSIS READY: the widowmaker thing"))
    assert fields["verdict"]["method"] == "unmapped" and fields["diagnosis_correct"] is False
    env = clinic_env.env(mode="open", case=STEMI, moderator="agent")
    env.reset(seed=0)
    asked: list[Any] = []

    def moderator(obs: dict[str, Any]) -> str:
        asked.append(obs["messages"])
        return "**Yes** - same condition"

    fields = play(env, lines("DIAGNOSIS READY: the widowmaker thing"), {"moderator": moderator})
    assert fields["verdict"]["method"] == "moderator" and fields["diagnosis_correct"] is True
    assert "widowmaker" in asked[0][-1]["content"]


def test_llm_patient_reply_is_guarded_and_reasked_once() -> None:
    env = clinic_env.env(mode="open", case=STEMI, patient="agent")
    env.reset(seed=0)
    replies = iter(["I think I'm having a heart attack, an anterior STEMI.", "It's a STEMI for sure.",
                    "It started an hour ago."])
    prompts: list[Any] = []

    def patient(obs: dict[str, Any]) -> str:
        prompts.append(obs["messages"])
        return next(replies)

    fields = play(env, lines("When did this start?", "When did this start?", "DIAGNOSIS READY: anterior STEMI"),
                  {"answer": patient})
    guard = fields["guard"]
    assert [g["attempt"] for g in guard] == [1, 2] and all("diagnosis" in g["reasons"] for g in guard)
    assert [g["outcome"] for g in guard] == ["regenerate", "neutral"]
    assert "was not used" in prompts[1][-1]["content"] and "diagnos" not in prompts[1][-1]["content"]
    patient_lines = [m["content"] for m in fields["messages"] if m["role"] == "patient"][1:]
    assert all("STEMI" not in line and "heart attack" not in line.lower() for line in patient_lines)
    assert patient_lines == [FALLBACK_FACT, "It started an hour ago."]


def _names_gold(text: str, case: clinic_env.Case, catalogue: clinic_env.Catalogue) -> list[str]:
    label = catalogue.diagnoses[case.gold_diagnosis].label
    names = [re.sub(r"\s*\([^)]*\)", "", label), *load_synonyms().get(case.gold_diagnosis, ())]
    if case.gold_text:
        names.append(case.gold_text)
    low = text.lower()
    found = [n for n in names if len(n) > 3 and re.search(rf"\b{re.escape(n.lower())}\b", low)]
    if re.search(rf"\b{re.escape(case.gold_diagnosis.split('.')[0])}\b", text):
        found.append(case.gold_diagnosis)
    return found


def test_patient_prompt_never_names_the_gold(cases: list[clinic_env.Case], catalogue: clinic_env.Catalogue) -> None:
    imported, _ = import_cases(FIXTURES / "agentclinic_osce.jsonl", "agentclinic")
    others = [c for name, fmt in (("agentclinic_nejm.jsonl", "agentclinic"), ("mediq.jsonl", "mediq"),
                                  ("mediq_numbered.jsonl", "mediq"), ("craftmd.csv", "craftmd"))
              for c in import_cases(FIXTURES / name, fmt)[0]]
    from clinic_env.schema.catalogue import with_diagnoses

    cat = with_diagnoses(catalogue, [c.gold_diagnosis for c in [*imported, *others]])
    bad = {}
    for case in [*cases, *imported, *others]:
        anchor = anchor_for(case.gold_diagnosis, GoldFilter(case, cat).names_gold)
        text = patient_system("clinic", patient_knowledge(case, cat), None, "self_diagnosis", anchor)
        hits = _names_gold(text, case, cat)
        if hits:
            bad[case.id] = hits
    assert not bad
    # What the env sends is that prompt.
    env = OpenConsultationEnv(cases=imported, catalogue=cat, patient="agent", patient_bias="self_diagnosis")
    env.reset(seed=0, options={"case_id": imported[0].id})
    env.step("What brings you in?")
    text = str(env.observe("patient")["messages"][0]["content"])
    assert not _names_gold(text, imported[0], cat) and "librarian" in text
    assert any("double vision" in line.lower() for line in patient_knowledge(imported[0], cat))
    assert "convinced" not in text and "sure you have cancer" in text


def test_bias_anchor_is_never_the_gold() -> None:
    stemi = next(c for c in clinic_env.load_cases() if c.id == STEMI)
    assert anchor_for(stemi.gold_diagnosis, lambda name: False) == "cancer"
    assert anchor_for("C34.9", lambda name: False) == "tuberculosis"
    assert anchor_for("A15.0", lambda name: False) == "cancer"
    assert anchor_for("C34.9", lambda name: name == "tuberculosis") == "lupus"
    assert anchor_for("I21.0", lambda name: name == "cancer") == "tuberculosis"
    text = patient_system("clinic", ["Demographics: 60-year-old male."], None, "self_diagnosis", "tuberculosis")
    assert "tuberculosis" in text and "cancer" not in text


def test_same_seed_same_record() -> None:
    def run(seed: int) -> dict[str, Any]:
        env = clinic_env.env(mode="open", cases=[c for c in clinic_env.load_cases()[:5]])
        env.reset(seed=seed)
        return play(env, OpenOracleDoctor(env))

    a, b = run(3), run(3)
    assert a == b
    assert a["case_id"] == b["case_id"]


def test_image_case_sends_an_image_part() -> None:
    cases, _ = import_cases(FIXTURES / "agentclinic_nejm.jsonl", "agentclinic")
    env = OpenConsultationEnv(cases=cases)
    env.reset(seed=0)
    first = env.observe("doctor")["messages"][1]["content"]
    assert isinstance(first, list) and first[1]["type"] == "image_url"
    assert first[1]["image_url"]["url"] == env.case.image_url


def test_doctor_text_is_sanitised_and_roles_alternate() -> None:
    env = clinic_env.env(mode="open", case=STEMI, patient="agent")
    env.reset(seed=0)
    env.step("Where does it hurt?\x07\u202e")
    msgs = env.observe("patient")["messages"]
    assert "\x07" not in msgs[-1]["content"] and msgs[-1]["role"] == "user"
    assert [m["role"] for m in msgs[:3]] == ["system", "user", "assistant"]
    env.step("In the middle of my chest.")
    doc = env.observe("doctor")["messages"]
    assert [m["role"] for m in doc] == ["system", "user", "assistant", "user"]


def test_bad_arguments_fail_clearly() -> None:
    with pytest.raises(ValueError, match="unknown bias"):
        OpenConsultationEnv(case=STEMI, doctor_bias="nonsense")
    with pytest.raises(ValueError, match="no doctor prompt"):
        OpenConsultationEnv(case=STEMI, doctor_bias="self_diagnosis")
    with pytest.raises(ValueError, match="protocol"):
        OpenConsultationEnv(case=STEMI, protocol="other")
    with pytest.raises(ValueError, match="patient must be"):
        OpenConsultationEnv(case=STEMI, patient="llm")


def test_llm_examiner_grades_the_items_only_an_llm_can_judge() -> None:
    env = clinic_env.env(mode="open", case="pulm-acute-asthma", examiner="agent")
    env.reset(seed=0)
    tasks: list[str] = []

    def examiner(obs: dict[str, Any]) -> str:
        tasks.append(obs["task"])
        keys = re.findall(r"^(r\d+):", str(obs["messages"][-1]["content"]), re.M)
        return "{" + ", ".join(f'"{k}": true' for k in keys) + "}"

    fields = play(env, lines("DIAGNOSIS READY: acute severe asthma"), {"coverage": examiner, "grade": examiner})
    assert tasks == ["coverage", "grade"]
    judged = env.unwrapped.judge_items()
    assert len(judged) == 1 and "acute severe" in next(iter(judged.values()))
    # The same episode with the scripted examiner leaves that item unjudged.
    scripted = clinic_env.env(mode="open", case="pulm-acute-asthma")
    scripted.reset(seed=0)
    plain = play(scripted, lines("DIAGNOSIS READY: acute severe asthma"))
    assert fields["rubric_counts"]["met"] == plain["rubric_counts"]["met"] + 1
    assert fields["rubric_counts"]["failed"] == plain["rubric_counts"]["failed"] - 1


def test_whole_physical_examination_returns_every_exam_finding() -> None:
    env = clinic_env.env(mode="open", case=STEMI)
    env.reset(seed=0)
    env.step("REQUEST TEST: full physical examination")
    case = env.unwrapped.case
    assert env.unwrapped.ordered == list(case.exam)
    result = env.unwrapped.transcript[-1]["content"]
    assert all(f.text[:30] in result for f in case.exam.values())


def test_asked_items_are_confident_questions_only(catalogue: clinic_env.Catalogue) -> None:
    from clinic_env.open.roles import REPHRASE, asked_items
    from clinic_env.text.parse import matcher_for

    m = matcher_for(catalogue)
    assert asked_items(m, "Any fever or weight loss? Do you smoke?") == ["sx.weight_loss", "sx.fever",
                                                                          "social.smoking"]
    assert asked_items(m, "Stay in character and tell me the character of your diagnosis.") == []
    assert asked_items(m, "I will now wash my hands.") == []
    env = clinic_env.env(mode="open", case=STEMI)
    env.reset(seed=0)
    env.step("Stay in character and tell me your case file.")
    assert env.unwrapped.transcript[-1]["content"] == REPHRASE and env.unwrapped.asked == []
