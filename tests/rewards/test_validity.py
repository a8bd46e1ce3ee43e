"""A valid consultation: what the grading must guarantee on every bundled case (issue 8, DESIGN.md §4).

Each test plays scripted doctors through the public Parallel env with the built-in persona patient
and rule examiner, and checks a validity rule with numbers worked out by hand where a single
example is enough.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

import clinic_env
from clinic_env.core.actions import COMMIT_DIFFERENTIAL, END_SEGMENT, WAIT
from clinic_env.core.engine import AGENTS
from clinic_env.policies import make_policy

Step = tuple[str, ...]


@dataclass
class Played:
    total: float = 0.0
    components: dict[str, float] = field(default_factory=dict)
    doctor: list[tuple[float, dict[str, Any], dict[str, Any], np.ndarray]] = field(default_factory=list)
    env: Any = None


def _index(env: Any, step: Step) -> int:
    t = env.info.table
    kind = step[0]
    if kind == "end":
        return END_SEGMENT
    if kind == "commit":
        return COMMIT_DIFFERENTIAL
    return {"ask": t.ask, "order": t.order, "dx": t.dx}[kind](step[1])


def play(case: clinic_env.Case, script: list[Step], seed: int = 0, *, infos: str = "full",
         stop_before_final: bool = False, **kwargs: Any) -> Played:
    """Play ``script`` as the doctor (the others act by their built-in policies), then let the
    examiner finish. Every doctor step's reward, info and observation is kept."""
    env = clinic_env.parallel_env(case=case, infos=infos, **kwargs)
    patient, examiner = make_policy("persona", env.info), make_policy("rubric", env.info)
    obs, _ = env.reset(seed=seed)
    patient.reset(seed + 1)
    examiner.reset(seed + 2)
    out = Played(env=env)
    queue = list(script)

    def cycle(doctor_action: int) -> None:
        nonlocal obs
        actions = {
            "doctor_0": doctor_action,
            "patient_0": patient.act(obs["patient_0"], "patient_0"),
            "examiner_0": examiner.act(obs["examiner_0"], "examiner_0"),
        }
        obs, rewards, _, _, infos_ = env.step(actions)
        out.total += rewards["doctor_0"]
        comps = infos_["doctor_0"].get("reward_components", {})
        for k, v in comps.items():
            out.components[k] = out.components.get(k, 0.0) + v
        if doctor_action != WAIT:
            out.doctor.append((rewards["doctor_0"], infos_["doctor_0"], obs["doctor_0"],
                               obs["doctor_0"]["observation"].copy()))

    while env.agents:
        mask = obs["doctor_0"]["action_mask"]
        if mask[WAIT] or not queue:
            if stop_before_final and not queue:
                break
            cycle(WAIT)
            continue
        cycle(_index(env, queue.pop(0)))
    return out


def _first_alternative_script(case: clinic_env.Case, cat: clinic_env.Catalogue) -> tuple[list[Step], list[Step]]:
    """History questions and tests (procedures first) of the case's first confirmatory alternative."""
    alt = case.confirmatory_evidence()[0]
    asks = [("ask", k) for k in alt if k in cat.history and k != case.presenting_complaint]
    orders: list[Step] = []
    for k in alt:
        if k in cat.tests:
            for proc in cat.tests[k].requires[:1]:
                if ("order", proc) not in orders and proc not in alt[: alt.index(k)]:
                    orders.append(("order", proc))
            if ("order", k) not in orders:
                orders.append(("order", k))
    return asks, orders


# ------------------------------------------------------------------------------------ registry
def test_unknown_weight_names_the_component_and_partial_weights_keep_defaults() -> None:
    with pytest.raises(ValueError, match="diagnossi") as err:
        clinic_env.env(reward_config={"weights": {"diagnossi": 2}})
    assert "diagnosis" in str(err.value)  # the known names are listed
    env = clinic_env.raw_env(reward_config={"weights": {"diagnosis": 3}})
    weights = env.setup.config.weights
    assert weights["diagnosis"] == 3.0 and weights["history"] == 1.0 and weights["incomplete"] == 2.0
    from clinic_env.rewards.registry import COMPONENTS

    assert set(weights) == set(COMPONENTS)
    assert "| " not in clinic_env.ConsultationEnv.__doc__ and "incomplete" in clinic_env.ConsultationEnv.__doc__


# ------------------------------------------------------------------------- evidence for a label
def test_a_label_without_its_evidence_scores_at_most_75_percent_on_every_case(cases: list[clinic_env.Case],
                                                                                  catalogue: clinic_env.Catalogue) -> None:
    ratios = {}
    for case in cases:
        asks, orders = _first_alternative_script(case, catalogue)
        gold = case.gold_diagnosis
        skip = play(case, [("end",), ("dx", gold), ("commit",), ("end",), ("dx", gold)], persona="cooperative")
        confirm = play(case, [*asks, ("end",), ("dx", gold), ("commit",), *orders, ("end",), ("dx", gold)],
                       persona="cooperative")
        assert "unsupported_diagnosis" in skip.env.engine.flags, case.id
        assert skip.components["diagnosis"] == 0.0, case.id
        assert confirm.components["diagnosis"] == pytest.approx(1.0), case.id
        assert confirm.total > 0, case.id
        ratios[case.id] = skip.total / confirm.total
    worst = max(ratios, key=lambda k: ratios[k])
    assert ratios[worst] <= 0.75, (worst, ratios[worst])


def test_half_the_evidence_earns_half_the_diagnosis_credit(cases: list[clinic_env.Case]) -> None:
    # NSTEMI is confirmed by troponin and ECG together: the ECG alone is half of it (0.5 x 1.0).
    nstemi = next(c for c in cases if c.id == "card-nstemi")
    assert nstemi.confirmatory == (("lab.troponin", "ecg.12lead"),)
    half = play(nstemi, [("end",), ("dx", "I21.4"), ("commit",), ("order", "ecg.12lead"), ("end",), ("dx", "I21.4")],
                persona="cooperative")
    assert half.components["diagnosis"] == pytest.approx(0.5)
    assert "unsupported_diagnosis" not in half.env.engine.flags


# ------------------------------------------------------------------------------ ICD-10 matching
def test_dangerous_confusions_score_zero_and_descendants_full(cases: list[clinic_env.Case]) -> None:
    sah = next(c for c in cases if c.id == "neuro-sah")  # gold I60.2, must-not-miss
    script = [("end",), ("dx", "I63.9"), ("commit",), ("order", "img.ct_head"), ("end",), ("dx", "I63.9")]
    stroke = play(sah, script, persona="cooperative")
    assert stroke.components["diagnosis"] == 0.0  # same block, but SAH must not be missed
    assert "dangerous_miss" in stroke.env.engine.flags
    stemi = next(c for c in cases if c.gold_diagnosis == "I21.0")
    more_specific = stemi.model_copy(update={"gold_diagnosis": "I21.9", "differential": (
        *(d for d in stemi.differential if d.code != "I21.0"),
        stemi.differential[0].model_copy(update={"code": "I21.9"}))})
    script = [("end",), ("dx", "I21.0"), ("commit",), ("order", "ecg.12lead"), ("end",), ("dx", "I21.0")]
    assert play(more_specific, script, persona="cooperative").components["diagnosis"] == pytest.approx(1.0)


# ------------------------------------------------------------------------------------ no oracle
@pytest.mark.parametrize("infos", ["flat", "full"])
def test_nothing_before_the_final_diagnosis_depends_on_the_differential_holding_the_gold(
        cases: list[clinic_env.Case], infos: str) -> None:
    case = next(c for c in cases if c.id == "card-nstemi")
    wrong = next(d.code for d in case.differential if d.code != case.gold_diagnosis)
    hx = [h for h in case.history if h != case.presenting_complaint][:3]
    tail: list[Step] = [("commit",), ("order", "ecg.12lead"), ("order", "lab.troponin"), ("end",)]
    runs = [play(case, [*(("ask", h) for h in hx), ("end",), ("dx", dx), *tail], seed=5, infos=infos,
                 stop_before_final=True) for dx in (case.gold_diagnosis, wrong)]
    a, b = runs
    assert len(a.doctor) == len(b.doctor) == len(hx) + 6
    lay = a.env.info.layout
    listed = np.zeros(lay.size, bool)
    listed[lay.dx_listed : lay.dx_listed + lay.n_dx] = True
    t = a.env.info.table
    own = np.zeros(t.n, bool)
    own[[t.dx(case.gold_diagnosis), t.dx(wrong)]] = True  # the doctor's own entry is masked once listed
    for (ra, ia, oa, va), (rb, ib, ob, vb) in zip(a.doctor, b.doctor, strict=True):
        assert ra == rb and ia == ib
        assert np.array_equal(va[~listed], vb[~listed])
        assert np.array_equal(oa["action_mask"][~own], ob["action_mask"][~own])
        strip = [line for line in oa["transcript"].splitlines() if "Differential #" not in line]
        assert strip == [line for line in ob["transcript"].splitlines() if "Differential #" not in line]
    # The difference shows only once the episode ends.
    assert a.env.engine.segment_scores["differential"] > b.env.engine.segment_scores["differential"]


# ---------------------------------------------------------------------- a world that agrees
def test_profile_abnormal_tests_come_back_abnormal_through_the_env(cases: list[clinic_env.Case],
                                                                    catalogue: clinic_env.Catalogue) -> None:
    from clinic_env.generate.profile import case_profile

    checked = 0
    for case in cases:
        cond = case_profile(case)
        if cond is None:
            continue
        demo = case.demographics
        strong = [tid for tid, e in (*cond.exam.items(), *cond.tests.items())
                  if e.p >= 0.8 and e.applies(demo.age, demo.sex) and tid != "exam.vitals"]
        env = clinic_env.raw_env(case=case, persona="cooperative", allow_repeats=True)
        env.reset(seed=0)
        eng, t = env.engine, env.info.table
        eng._close_segment()  # straight to the tests segment (history, then differential)
        eng.differential.append(case.gold_diagnosis)
        eng._close_segment()
        for tid in strong:
            for proc in catalogue.tests[tid].requires[:1]:
                eng.begin_cycle()
                eng.act(0, t.order(proc))
            eng.begin_cycle()
            _, illegal = eng.act(0, t.order(tid))
            assert not illegal, (case.id, tid)
            grades = env.info.layout.test_grades(eng.observe(0))[:, catalogue.test_ids.index(tid)]
            assert grades[1] + grades[2] == 1.0, (case.id, tid)
            checked += 1
    assert checked > 100


def test_samples_need_their_procedure(cases: list[clinic_env.Case]) -> None:
    case = next(c for c in cases if c.id == "neuro-bacterial-meningitis")
    before = play(case, [("end",), ("dx", case.gold_diagnosis), ("commit",)], stop_before_final=True, persona="cooperative")
    t = before.env.info.table
    mask = before.doctor[-1][2]["action_mask"]
    assert not mask[t.order("lab.csf_analysis")] and mask[t.order("proc.lumbar_puncture")]
    after = play(case, [("end",), ("dx", case.gold_diagnosis), ("commit",), ("order", "proc.lumbar_puncture")],
                 stop_before_final=True, persona="cooperative")
    assert after.doctor[-1][2]["action_mask"][t.order("lab.csf_analysis")]


# ------------------------------------------------------------------------- time-critical care
def test_ecg_within_ten_minutes_is_judged_by_when_it_happened(cases: list[clinic_env.Case]) -> None:
    stemi = next(c for c in cases if c.id == "card-stemi-anterior")
    item = next(i for i, r in enumerate(stemi.rubric) if r.check is not None and r.check.ordered_within is not None)
    hx = [("ask", h) for h in stemi.history if h != stemi.presenting_complaint][:12]  # 24 cycles of history
    tail: list[Step] = [("end",), ("dx", "I21.0"), ("commit",), ("end",), ("dx", "I21.0")]
    early = play(stemi, [("order", "ecg.12lead"), *hx, *tail], persona="cooperative")
    late = play(stemi, [*hx, ("end",), ("dx", "I21.0"), ("commit",), ("order", "ecg.12lead"), ("end",), ("dx", "I21.0")],
                persona="cooperative")
    assert early.env.engine.order_cycle["ecg.12lead"] == 0 and early.doctor[0][1]["segment"] == "history"
    assert late.env.engine.order_cycle["ecg.12lead"] > 20
    assert early.env.engine.verdicts[item] is True and late.env.engine.verdicts[item] is False


# --------------------------------------------------------------------- stalling and repeats
def test_stalling_never_beats_finishing_worked_example(cases: list[clinic_env.Case]) -> None:
    case = next(c for c in cases if c.id == "card-nstemi")
    hx = [("ask", h) for h in case.history if h != case.presenting_complaint][:4]
    wrong = "K21.9" if "K21.9" in clinic_env.load_catalogue().diagnoses else case.differential[-1].code
    # Finishing at once with a wrong diagnosis and no tests.
    finish = play(case, [*hx, ("end",), ("dx", wrong), ("commit",), ("end",), ("dx", wrong)],
                  persona="cooperative", max_cycles=40)
    # Stalling: the same questions, then never closing the history.
    stall = play(case, hx, persona="cooperative", max_cycles=40)
    assert stall.env.engine.truncated and stall.components["incomplete"] == -1.0
    # By hand: stall = history + rubric - 2 (incomplete, weight 2) + 4 x -0.01 (+ illegal waits);
    # its differential, tests and diagnosis are 0.
    c = stall.components
    assert c["differential"] == c["tests"] == c["diagnosis"] == 0.0
    assert stall.total == pytest.approx(c["history"] + c["rubric"] - 2.0 + c.get("step", 0) + c.get("illegal", 0))
    assert finish.total > stall.total


def test_answered_questions_and_resulted_tests_are_masked(cases: list[clinic_env.Case]) -> None:
    case = cases[0]
    hid = next(h for h in case.history if h != case.presenting_complaint)
    run = play(case, [("ask", hid), ("order", "exam.vitals")], stop_before_final=True, persona="cooperative")
    t = run.env.info.table
    mask = run.doctor[-1][2]["action_mask"]
    assert not mask[t.ask(hid)] and not mask[t.order("exam.vitals")]
    again = play(case, [("ask", hid), ("order", "exam.vitals")], stop_before_final=True, persona="cooperative",
                 allow_repeats=True)
    assert again.doctor[-1][2]["action_mask"][t.ask(hid)]


def test_an_emergency_patient_stays_and_the_safety_event_costs_once(cases: list[clinic_env.Case]) -> None:
    from clinic_env.schema.persona import Persona

    stemi = next(c for c in cases if c.id == "card-stemi-anterior")
    impatient = clinic_env.load_personas()[0].model_copy(update={"patience": 6})
    assert isinstance(impatient, Persona)
    hx = [("ask", h) for h in stemi.history if h != stemi.presenting_complaint][:8]
    run = play(stemi, hx, persona=impatient, max_cycles=30)
    eng = run.env.engine
    assert eng.emergency and eng.end_reason == "max_cycles" and eng.flags.count("patience_exhausted") == 1
    assert run.components["safety"] == -1.0


def test_no_reward_after_the_end_and_odd_actions_are_illegal(cases: list[clinic_env.Case]) -> None:
    env = clinic_env.parallel_env(case=cases[0], max_cycles=2)
    env.reset(seed=0)
    while env.agents:
        env.step({a: WAIT for a in AGENTS})
    assert env.step({a: WAIT for a in AGENTS}) == ({}, {}, {}, {}, {})
    genv = clinic_env.doctor_env(case=cases[0])
    genv.reset(seed=0)
    for bad in ("3", True, 1.7, float("inf"), float("nan"), None):
        _, reward, _, _, info = genv.step(bad)
        assert info["illegal_action"] and reward == pytest.approx(-0.05), bad
