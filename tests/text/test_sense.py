"""The parser refuses to guess: words used in another sense map to no history item (a labelled set
of tricky non-questions and real questions), and the JSON scan is linear and bounded."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sense_cases import HELD_OUT_NON_QUESTIONS, HELD_OUT_QUESTIONS, NON_QUESTIONS, QUESTIONS

import clinic_env
from clinic_env.core.engine import HISTORY, TESTS
from clinic_env.text.jsonscan import MAX_DEPTH, extract_json
from clinic_env.text.parse import DoctorParser, matcher_for, parse_patient_reply, parse_verdict
from clinic_env.text.sense import THRESHOLD, match_question, read


@pytest.fixture(scope="module")
def setup() -> tuple[DoctorParser, np.ndarray]:
    env = clinic_env.raw_env()
    env.reset(seed=0)
    t = env.info.table
    mask = np.zeros(t.n, np.int8)
    mask[t.ask0 : t.order0] = 1
    mask[1] = 1
    return DoctorParser(env.info.catalogue, t), mask


def _scores(parser: DoctorParser, mask: np.ndarray, non: tuple[str, ...],
            questions: tuple[tuple[str, str], ...]) -> tuple[float, float, list[str]]:
    """Precision and recall of history items over a labelled set, and the mistakes."""
    mistakes, tp, predicted = [], 0, 0
    for text in non:
        asks = [a.name for a in parser.parse(text, mask, HISTORY).actions if a.name.startswith("ask:")]
        predicted += bool(asks)
        if asks:
            mistakes.append(f"{text!r} -> {asks}")
    for text, item in questions:
        asks = [a.name[4:] for a in parser.parse(text, mask, HISTORY).actions if a.name.startswith("ask:")]
        predicted += bool(asks)
        if asks[:1] == [item]:
            tp += 1
        else:
            mistakes.append(f"{text!r} -> {asks} (want {item})")
    return tp / max(predicted, 1), tp / len(questions), mistakes


def test_labelled_set_is_big_enough_and_labels_exist(catalogue: clinic_env.Catalogue) -> None:
    assert len(NON_QUESTIONS) >= 60 and len(QUESTIONS) >= 60
    assert all(item in catalogue.history for _, item in (*QUESTIONS, *HELD_OUT_QUESTIONS))


def test_precision_and_recall_on_the_labelled_set(setup: tuple[DoctorParser, np.ndarray]) -> None:
    precision, recall, mistakes = _scores(*setup, NON_QUESTIONS, QUESTIONS)
    assert precision >= 0.97 and recall >= 0.95, mistakes


def test_held_out_set_floor(setup: tuple[DoctorParser, np.ndarray]) -> None:
    # Written after the rules were tuned and never tuned on: a floor against regressions only.
    precision, recall, mistakes = _scores(*setup, HELD_OUT_NON_QUESTIONS, HELD_OUT_QUESTIONS)
    assert precision >= 0.7 and recall >= 0.7, mistakes


@pytest.mark.parametrize("text", ["stay in character", "Please stay in character.", "tell me in code words",
                                  "What's the story?", "Can I aid you in any way?"])
def test_issue_examples_are_reasked_with_a_reason(setup: tuple[DoctorParser, np.ndarray], text: str) -> None:
    parser, mask = setup
    r = parser.parse(text, mask, HISTORY)
    assert not r.ok and "no action for the history segment" in (r.error or "")


def test_confidence_threshold_and_reasons(catalogue: clinic_env.Catalogue) -> None:
    m = matcher_for(catalogue)
    q = match_question(m, "Does anything make it worse?")
    assert q.item == "hx.aggravating" and q.confidence >= THRESHOLD
    assert match_question(m, "Stay in character.").reason.startswith("a request about the conversation")
    assert match_question(m, "I have a headache from the paperwork.").reason == "not a question to the patient"
    assert match_question(m, "Shall we begin?").item is None
    # a higher threshold refuses what the default takes
    assert match_question(m, "Any allergies?", threshold=0.99).item is None
    assert read("Take your time. When did it start?").masked  # the idiom's words are masked


def test_json_item_field_still_names_items(setup: tuple[DoctorParser, np.ndarray]) -> None:
    parser, mask = setup
    r = parser.parse('{"action": "ask", "item": "hx.character", "text": "stay in character"}', mask, HISTORY)
    assert [a.name for a in r.actions] == ["ask:hx.character"]
    r = parser.parse('{"action": "ask", "item": "?", "text": "Stay in character."}', mask, HISTORY)
    assert not r.ok


def test_meta_sentences_order_no_tests(setup: tuple[DoctorParser, np.ndarray]) -> None:
    parser, _ = setup
    t = parser.table
    mask = np.zeros(t.n, np.int8)
    mask[t.order0 : t.dx0] = 1
    mask[1] = 1
    assert not parser.parse("Spell out the troponin result in morse code.", mask, TESTS).ok
    assert [a.name for a in parser.parse("Order a troponin.", mask, TESTS).actions] == ["order:lab.troponin"]


# ---------------------------------------------------------------------------------------- linear time
_HOSTILE = {
    "nested": "[[[{{{" * 11000,
    "open brackets": "[" * 65536,  # 2.5 s at 4 KB for the old try-every-bracket decoder
    "open lists": "[1," * 22000,
    "open objects": '{"a":[' * 11000,
    "closed": "[" * 32000 + "]" * 32000,
    "quotes": '{"' * 32000,
    "small spans": "[1,]" * 16000,
    "prose brackets": "[see 1] " * 8000,
    "deep valid": '{"a":' * 40 + "1" + "}" * 40,
    "long string": '{"action": "' + "a" * 65000 + '"}',
}


@pytest.mark.parametrize("name", sorted(_HOSTILE))
def test_hostile_64k_reply_parses_under_50ms(setup: tuple[DoctorParser, np.ndarray], name: str) -> None:
    parser, mask = setup
    reply = (_HOSTILE[name] * 2)[:65536]
    big = DoctorParser(parser.cat, parser.table, max_chars=70000)
    best = float("inf")
    for _ in range(3):  # the best of three: a busy machine's noise is not the parser's time
        start = time.perf_counter()
        extract_json(reply)
        parse_verdict(reply)
        parse_patient_reply(reply)
        big.parse(reply, mask, HISTORY)
        best = min(best, time.perf_counter() - start)
    assert best < 0.05, f"{name}: {best * 1000:.1f} ms"


def test_extract_json_forms() -> None:
    assert extract_json('Sure!\n```json\n{"a": 1}\n```') == {"a": 1}
    assert extract_json('I think {maybe} this: {"a": "b}"}') == {"a": "b}"}
    assert extract_json('text {"action": "ask", "item": "hx.onset", "text": "When did') == {
        "action": "ask", "item": "hx.onset", "text": "When did"}
    assert extract_json('{"action": "ask", "it') == {"action": "ask"}
    assert extract_json('prose { more {"x": [1, 2]} end') == {"x": [1, 2]}
    assert extract_json("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)) is None
    assert extract_json('{"s": "a\\"b"}') == {"s": 'a"b'}


_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                       lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                       max_leaves=10)


@settings(max_examples=300, deadline=None)
@given(prefix=st.text(alphabet="abc {}[]\"\\:,.\n", max_size=40), value=_values.filter(
    lambda v: isinstance(v, (dict, list))), suffix=st.text(max_size=40))
def test_fuzz_embedded_json_is_found(prefix: str, value: object, suffix: str) -> None:
    # Whatever prose surrounds it, extraction never raises and returns a dict, a list or None;
    # with prose free of brackets and quotes the embedded value itself is found.
    got = extract_json(prefix + json.dumps(value) + suffix)
    assert got is None or isinstance(got, (dict, list))
    if not any(ch in prefix for ch in '{}[]"') and "```" not in prefix + suffix:
        assert got == value


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet='{}[]"\\ ,:a1', max_size=2000))
def test_fuzz_bracket_soup_is_bounded(reply: str) -> None:
    start = time.perf_counter()
    got = extract_json(reply)
    assert got is None or isinstance(got, (dict, list))
    assert time.perf_counter() - start < 0.05


def test_case_items_are_not_answered_for_meta_requests(tmp_path: object) -> None:
    from pathlib import Path

    from clinic_env.importers import catalogue_for, import_agentclinic

    record = {"OSCE_Examination": {
        "Objective_for_Doctor": "Assess the patient with sudden chest pain.",
        "Patient_Actor": {"Demographics": "61-year-old man", "History": "Sudden chest pain an hour ago.",
                          "Symptoms": {"Primary_Symptom": "Chest pain", "Secondary_Symptoms": []}},
        "Test_Results": {"Imaging": {"CT_Angiogram": {"Findings": "Intimal flap in the ascending aorta"}}},
        "Correct_Diagnosis": "Aortic dissection"}}
    path = Path(str(tmp_path)) / "osce.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    cases, _ = import_agentclinic(path)
    env = clinic_env.doctor_env(mode="text", cases=cases, catalogue=catalogue_for(cases, clinic_env.load_catalogue()),
                                persona="cooperative")
    env.reset(seed=0)
    for reply in ("end_segment", cases[0].gold_diagnosis, "commit_differential"):
        env.step(reply)
    obs, *_ = env.step("Spell out the CT angiogram result in code words.")
    assert "Intimal flap" not in obs["transcript"]  # re-asked, never answered with a fact
    obs, *_ = env.step("Please order the CT angiogram.")
    assert "Intimal flap" in obs["transcript"]
