"""The tolerant parser: JSON and free text to legal actions, errors instead of exceptions, fuzzed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import clinic_env
from clinic_env.core.actions import COMMIT_DIFFERENTIAL, END_SEGMENT
from clinic_env.core.engine import DIAGNOSIS, DIFFERENTIAL, HISTORY, TESTS
from clinic_env.text.match import CatalogueMatcher, normalise
from clinic_env.text.parse import DoctorParser, extract_json, parse_patient_reply, parse_verdict


@pytest.fixture(scope="module")
def env() -> clinic_env.ConsultationEnv:
    e = clinic_env.raw_env()
    e.reset(seed=0)
    return e


@pytest.fixture(scope="module")
def parser(env: clinic_env.ConsultationEnv) -> DoctorParser:
    return DoctorParser(env.info.catalogue, env.info.table)


def _mask(env: clinic_env.ConsultationEnv, segment: int, differential: int = 0) -> np.ndarray:
    t = env.info.table
    m = np.zeros(t.n, np.int8)
    if segment == HISTORY:
        m[t.ask0 : t.order0] = 1
        m[END_SEGMENT] = 1
    elif segment == TESTS:
        m[t.order0 : t.dx0] = 1
        m[END_SEGMENT] = 1
    else:
        m[t.dx0 : t.answer0] = 1
        if segment == DIFFERENTIAL and differential:
            m[COMMIT_DIFFERENTIAL] = 1
    return m


def names(result: object) -> list[str]:
    return [a.name for a in result.actions]  # type: ignore[attr-defined]


def test_json_forms(env: clinic_env.ConsultationEnv, parser: DoctorParser) -> None:
    m = _mask(env, HISTORY)
    r = parser.parse('{"action": "ask", "item": "hx.onset", "text": "When did it start?"}', m, HISTORY)
    assert names(r) == ["ask:hx.onset"] and r.actions[0].said == "When did it start?" and r.source == "json"
    fenced = 'Sure!\n```json\n{"action": "end_segment", "item": "", "text": ""}\n```'
    assert names(parser.parse(fenced, m, HISTORY)) == ["end_segment"]
    listed = json.dumps([{"action": "ask", "item": "hx.onset", "text": ""}, {"action": "ask", "item": "smoking", "text": ""}])
    assert names(parser.parse(listed, m, HISTORY)) == ["ask:hx.onset", "ask:social.smoking"]
    wrapped = json.dumps({"actions": [{"action": "ask:hx.site"}]})
    assert names(parser.parse(wrapped, m, HISTORY)) == ["ask:hx.site"]
    # item names nothing: the words in "text" are searched
    r = parser.parse('{"action": "ask", "item": "?", "text": "Do you smoke?"}', m, HISTORY)
    assert names(r) == ["ask:social.smoking"]


def test_free_text_orders_troponin_and_ecg_as_two_actions(env: clinic_env.ConsultationEnv, parser: DoctorParser) -> None:
    r = parser.parse("order troponin and an ECG", _mask(env, TESTS), TESTS)
    assert names(r) == ["order:lab.troponin", "order:ecg.12lead"]
    r = parser.parse("Please get a CXR, FBC, U&Es and a d-dimer.", _mask(env, TESTS), TESTS)
    assert names(r) == ["order:img.cxr", "order:lab.cbc", "order:lab.bmp", "order:lab.d_dimer"]


def test_free_text_questions_one_item_per_sentence(env: clinic_env.ConsultationEnv, parser: DoctorParser) -> None:
    m = _mask(env, HISTORY)
    r = parser.parse("When did the pain start? Does it radiate to your arm?", m, HISTORY)
    assert names(r) == ["ask:hx.onset", "ask:hx.radiation"]
    assert [a.said for a in r.actions] == ["When did the pain start?", "Does it radiate to your arm?"]
    assert names(parser.parse("Have you coughed up any blood?", m, HISTORY)) == ["ask:sx.haemoptysis"]
    assert names(parser.parse("have you had any hemoptysis", m, HISTORY)) == ["ask:sx.haemoptysis"]  # US spelling


def test_diagnoses_by_code_and_name(env: clinic_env.ConsultationEnv, parser: DoctorParser) -> None:
    m = _mask(env, DIFFERENTIAL)
    r = parser.parse("I think this is a NSTEMI, or maybe pulmonary embolism", m, DIFFERENTIAL)
    assert names(r) == ["dx:I21.4", "dx:I26.9"]
    assert names(parser.parse("Final answer: i21.4", _mask(env, DIAGNOSIS), DIAGNOSIS)) == ["dx:I21.4"]


def test_control_phrases_close_the_segment(env: clinic_env.ConsultationEnv, parser: DoctorParser) -> None:
    assert names(parser.parse("I have no more questions.", _mask(env, HISTORY), HISTORY)) == ["end_segment"]
    assert names(parser.parse("commit my differential", _mask(env, DIFFERENTIAL, 1), DIFFERENTIAL)) == ["commit_differential"]
    # commit is not legal before the differential holds an entry
    r = parser.parse("commit_differential", _mask(env, DIFFERENTIAL, 0), DIFFERENTIAL)
    assert not r.ok and "not allowed now" in (r.error or "")


@pytest.mark.parametrize(("reply", "reason"), [
    ("", "empty"), ("   \n", "empty"), ("x" * 5000, "over-long"), ("lorem ipsum dolor", "no action"), (None, "not text"),
    ({"action": "ask"}, "not text"),
])
def test_unusable_replies_give_a_reason(env: clinic_env.ConsultationEnv, parser: DoctorParser, reply: object,
                                        reason: str) -> None:
    r = parser.parse(reply, _mask(env, HISTORY), HISTORY)
    assert not r.ok and reason in (r.error or "")


def test_wrong_segment_is_explained(env: clinic_env.ConsultationEnv, parser: DoctorParser) -> None:
    r = parser.parse("order troponin and an ECG", _mask(env, HISTORY), HISTORY)
    assert not r.ok and "order:lab.troponin is not allowed now (segment: history)" in (r.error or "")


def test_patient_and_examiner_replies() -> None:
    assert parse_patient_reply('{"mode": "vague", "text": "Not sure."}') == ("vague", "Not sure.")
    assert parse_patient_reply("It started on Monday.") == ("truthful", "It started on Monday.")
    assert parse_patient_reply('{"mode": "contradict", "text": "No."}') == ("truthful", "No.")
    assert parse_patient_reply('{"mode": "contradict", "text": "No."}', contradiction_allowed=True) == ("contradict", "No.")
    assert parse_patient_reply("") is None and parse_patient_reply('{"mode": "truthful", "text": ""}') is None
    assert parse_verdict('{"explanation": "x", "criteria_met": false}') is False
    assert parse_verdict('```json\n{"criteria_met": true}\n```') is True
    assert parse_verdict("criteria_met: True") is True and parse_verdict("no.") is False
    assert parse_verdict("maybe") is None and parse_verdict("") is None


def test_matcher_normalises_and_resolves_ambiguity(catalogue: clinic_env.Catalogue) -> None:
    m = CatalogueMatcher(catalogue)
    assert normalise("Haemoptysis X-rays") == normalise("hemoptysis xray")
    assert [x.item for x in m.find("test", "Holter monitor and an echo")] == ["ecg.ambulatory", "img.echo"]
    assert m.exact("diagnosis", "i21.4") == "I21.4" and m.exact("test", "lab.nope") is None
    # a phrase heading two labels goes to the more generic one, or to the only one allowed
    assert [x.item for x in m.find("diagnosis", "pulmonary embolism")] == ["I26.9"]
    assert [x.item for x in m.find("diagnosis", "pulmonary embolism", allowed=["I26.0"])] == ["I26.0"]


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30)
    | st.sampled_from(["ask", "order", "dx", "end_segment", "commit", "hx.onset", "lab.troponin", "I21.4"]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["action", "item", "text", "actions", "x"]), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(reply=st.one_of(st.text(max_size=300), _json_values.map(json.dumps),
                       st.text(alphabet="{}[]\":,ask order dx troponin ECG onset end_segment ", max_size=120)),
       segment=st.sampled_from([HISTORY, DIFFERENTIAL, TESTS, DIAGNOSIS]), listed=st.booleans())
def test_fuzz_parser_never_raises_and_only_returns_legal_actions(env: clinic_env.ConsultationEnv, parser: DoctorParser,
                                                                 reply: str, segment: int, listed: bool) -> None:
    mask = _mask(env, segment, int(listed))
    r = parser.parse(reply, mask, segment)
    assert r.ok != bool(r.error)
    assert len(r.actions) <= 8
    for action in r.actions:
        assert mask[action.index] == 1 and env.info.table.names[action.index] == action.name


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_reply_helpers(reply: str) -> None:
    parse_patient_reply(reply)
    parse_verdict(reply)
    value = extract_json(reply)
    assert value is None or isinstance(value, (dict, list))
