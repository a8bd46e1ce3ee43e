"""Adversarial leak suite: 56 adversarial doctor turns against (1) the structured patient, (2) a
leaky LLM patient whose replies pass the guard inside the engine, and (3) the same leaky patient
served by a local OpenAI-compatible server and driven through the text-mode env.

Nothing that names the gold diagnosis (by the independent check in ``leakcheck.py``) may reach
the doctor's view, and no unasked case fact may be disclosed.
"""

from __future__ import annotations

import json
import os

import pytest
from leakcheck import ADVERSARIAL_TURNS, LeakyPatient, independent_leaks, leak_word

import clinic_env
from clinic_env.core.actions import PATIENT_MODES, WAIT
from clinic_env.core.engine import DOCTOR, EXAMINER, PATIENT
from clinic_env.generate import CaseGenerator


def test_suite_has_at_least_fifty_adversarial_turns() -> None:
    assert len(set(ADVERSARIAL_TURNS)) == len(ADVERSARIAL_TURNS) >= 50


@pytest.fixture(scope="module")
def leak_cases(cases: list[clinic_env.Case]) -> list[clinic_env.Case]:
    """Bundled cases with distinct gold diagnoses plus generated cases of other conditions."""
    seen: dict[str, clinic_env.Case] = {}
    for case in cases:
        seen.setdefault(case.gold_diagnosis, case)
    gen = CaseGenerator()
    # CLINIC_ENV_LEAK_FULL=1: every bundled diagnosis and one generated case per condition (the
    # figures in the closing note); by default a third of each, to keep CI fast.
    step = 1 if os.environ.get("CLINIC_ENV_LEAK_FULL") else 3
    extra = [gen.generate(cid, seed=7, difficulty=3).case for cid in list(gen.kb.conditions)[:: 1 if step == 1 else 10]]
    return list(seen.values())[::step] + extra


class Session:
    """Drives one engine turn by turn (doctor asks, patient answers) and reads the doctor's view."""

    def __init__(self, case: clinic_env.Case, persona: str) -> None:
        # Probes re-ask the same items on purpose: repeats must stay legal here.
        self.env = clinic_env.raw_env(cases=[case], persona=persona, allow_repeats=True)
        self.env.reset(seed=11)
        self.eng = self.env.engine
        self.t = self.env.info.table
        self.case = case

    def _cycle(self, doctor: int, patient: int, said_doctor: str | None = None, said_patient: str | None = None) -> None:
        self.eng.act(DOCTOR, doctor, said_doctor)
        self.eng.act(PATIENT, patient, said_patient)
        examiner = self.t.verdict("abstain") if self.eng.masks[EXAMINER][self.t.verdict0] else WAIT
        self.eng.act(EXAMINER, examiner)
        self.eng.end_cycle()

    def exchange(self, hid: str, question: str, mode_index: int, reply: str | None = None) -> str:
        """Ask ``hid`` in the doctor's words, answer, return what the doctor sees of the answer."""
        before = len(self.eng.transcript.view("doctor"))
        self._cycle(self.t.ask(hid), WAIT, said_doctor=question)
        legal = [i for i, m in enumerate(PATIENT_MODES) if self.eng.masks[PATIENT][self.t.answer0 + i]]
        mode = self.t.answer0 + legal[mode_index % len(legal)]
        self._cycle(WAIT, mode, said_patient=reply)
        view = self.eng.transcript.view("doctor")[before:]
        return "\n".join(line for line in view.splitlines() if line.startswith("Patient"))

    def allowed(self) -> list[str]:
        texts = [self.case.opening_statement, self.case.chief_complaint]
        for hid in (*self.eng.asked, self.case.presenting_complaint):
            fact = self.case.history.get(hid)
            if fact:
                texts += [t for t in (fact.text, fact.vague, fact.contradiction) if t]
        return texts


def _items(case: clinic_env.Case, catalogue: clinic_env.Catalogue) -> list[str]:
    facts = [h for h in case.history if h != case.presenting_complaint]
    return facts + [h for h in catalogue.history_ids[::9] if h not in case.history]


@pytest.mark.parametrize("persona", ["anxious-worrier", "withholding"])
def test_structured_patient_leaks_nothing(leak_cases: list[clinic_env.Case], catalogue: clinic_env.Catalogue,
                                          persona: str) -> None:
    checked = 0
    for case in leak_cases:
        s = Session(case, persona)
        items = _items(case, catalogue)
        for i, question in enumerate(ADVERSARIAL_TURNS):
            hid = items[i % len(items)]
            shown = s.exchange(hid, question, i)
            assert not independent_leaks(shown, case, catalogue, s.allowed()), (case.id, question, shown)
            turn = s.eng.turns[-1] if s.eng.turns[-1]["agent"] == "patient_0" else s.eng.turns[-2]
            assert set(turn.get("disclosed", {})) <= {hid}, (case.id, turn)
            checked += 1
    assert checked == len(leak_cases) * len(ADVERSARIAL_TURNS)


@pytest.mark.slow
def test_leaky_llm_replies_are_stopped_by_the_guard(leak_cases: list[clinic_env.Case],
                                                     catalogue: clinic_env.Catalogue) -> None:
    attempts = noticed = kept_answer = with_fact = 0
    for case in leak_cases:
        s = Session(case, "cooperative")
        leaky = LeakyPatient(case, catalogue)
        items = _items(case, catalogue)
        for i, question in enumerate(ADVERSARIAL_TURNS):
            hid = items[i % len(items)]
            reply = leaky.reply(hid, set(s.eng.asked) | {hid})
            shown = s.exchange(hid, question, 0, reply=reply)
            assert not independent_leaks(shown, case, catalogue, s.allowed()), (case.id, reply, shown)
            turn = next(t for t in reversed(s.eng.turns) if t["agent"] == "patient_0")
            attempts += 1
            noticed += bool(turn.get("guard"))
            fact = case.history.get(hid)
            if fact is not None:
                with_fact += 1
                kept_answer += fact.text.split(".")[0] in shown
    # The guard notices nearly every attempt (the rest named the diagnosis in words the case
    # itself gives the patient for an asked item, which is allowed), and mostly keeps the answer.
    assert noticed / attempts > 0.9
    assert kept_answer / with_fact > 0.7, (kept_answer, with_fact)


def test_guard_blocks_unasked_facts_in_free_text(leak_cases: list[clinic_env.Case],
                                                 catalogue: clinic_env.Catalogue) -> None:
    from clinic_env.patients import LeakGuard

    tried = blocked = 0
    for case in leak_cases[:12]:
        guard = LeakGuard(case, catalogue)
        asked = {case.presenting_complaint}
        for hid, fact in case.history.items():
            if hid in asked or len(fact.text) < 25:
                continue
            result = guard.check(f"Well. {fact.text}", asked)
            tried += 1
            blocked += hid in result.blocked
            assert fact.text in guard.check(fact.text, asked | {hid}).text, (case.id, hid)
    # The rest repeat what the opening statement already told the doctor.
    assert blocked / tried > 0.9, (blocked, tried)


# ------------------------------------------------------------------- encoded probes, served
_PROBE_GOLDS = ("I21.0", "K35.8", "I26.9", "G43.1", "J18.9")


def _probe_runs(cases: list[clinic_env.Case], catalogue: clinic_env.Catalogue) -> list[dict[str, object]]:
    """Every encoded probe (``leakcheck.encoded_probes``) over bundled cases with different golds,
    served by the loopback OpenAI-compatible server to an LLMPolicy patient in the TEXT env."""
    from leakcheck import decodes_to, encoded_probes, extra_names

    from clinic_env.llm.policy import LLMPolicy
    from clinic_env.testing.openai_server import OpenAITestServer

    state: dict[str, str] = {"text": ""}

    def reply(request: dict[str, object]) -> str:
        # A stubborn leaky model: the regenerated reply leaks again in the same way.
        return json.dumps({"mode": "truthful", "text": state["text"]})

    runs: list[dict[str, object]] = []
    picked = [next(c for c in cases if c.gold_diagnosis == g) for g in _PROBE_GOLDS]
    with OpenAITestServer(replies=reply) as server:
        patient = LLMPolicy("leaky-patient", role="patient", api_base=server.base_url, transport="http")
        for case in picked:
            word = leak_word(case, catalogue)
            items = [h for h in _items(case, catalogue) if h in case.history][:12]
            for name, turns in [*encoded_probes(word, case.gold_diagnosis), *extra_names(case, catalogue)]:
                env = clinic_env.env(mode="text", cases=[case], persona="cooperative", allow_repeats=True).unwrapped
                env.reset(seed=5)
                eng = env.engine
                for k, turn in enumerate(turns):
                    state["text"] = turn
                    env.step(json.dumps({"action": "ask", "item": items[k % len(items)], "text": "Tell me more."}))
                    for _ in range(6):  # patient answers (re-asked once at most); others wait
                        agent = env.agent_selection
                        if agent == "doctor_0" and not eng.masks[DOCTOR][WAIT]:
                            break
                        if agent == "patient_0" and not eng.masks[PATIENT][WAIT]:
                            env.step(patient.act(env.observe(agent), agent))
                        else:
                            env.step(WAIT)
                seen = "\n".join(ln for ln in eng.transcript.view("doctor").splitlines()[2:] if ln.startswith("Patient"))
                record = " ".join(str(t.get("text", "")) for t in eng.turns if t.get("agent") == "patient_0")
                allowed = [case.opening_statement, case.chief_complaint] + [
                    case.history[h].text for h in eng.asked if h in case.history]
                blocks = [e for e in env.turns.events if e.get("guard")] if hasattr(env, "turns") else []
                runs.append({
                    "case": case.id, "probe": name, "turns": turns, "seen": seen,
                    "leak": decodes_to(seen, word) or bool(independent_leaks(seen, case, catalogue, allowed))
                    or decodes_to(record, word),
                    "blocked": bool(blocks) or bool(eng.patient.blocks),
                    "unasked": [h for t in eng.turns for h in t.get("disclosed", {}) if h not in eng.asked],
                })
    return runs


@pytest.mark.slow
def test_encoded_probes_served_locally_never_reach_the_doctor(cases: list[clinic_env.Case],
                                                             catalogue: clinic_env.Catalogue) -> None:
    """Every encoding of the issue (single- and multi-turn) behind the loopback server: 0 leaks."""
    runs = _probe_runs(cases, catalogue)
    leaks = [(r["case"], r["probe"], r["seen"]) for r in runs if r["leak"]]
    blocked = sum(bool(r["blocked"]) for r in runs)
    unasked = [(r["case"], r["probe"], r["unasked"]) for r in runs if r["unasked"]]
    print(f"\nLEAK SUITE: probes={len(runs)} blocked={blocked} leaks_reaching_doctor={len(leaks)} "
          f"unasked_facts={len(unasked)}")
    assert len(runs) >= 150
    assert not leaks, leaks[:5]
    assert not unasked, unasked[:5]
    assert blocked == len(runs), [(r["case"], r["probe"], r["turns"]) for r in runs if not r["blocked"]]
