"""The leak guard's interface and decisions (the adversarial suite is in test_leak_suite.py)."""

from __future__ import annotations

import base64

import pytest

import clinic_env
from clinic_env.patients import GuardResult, LeakGuard
from clinic_env.patients.terms import code_mentions, diagnosis_terms


@pytest.fixture(scope="module")
def appendicitis(cases: list[clinic_env.Case]) -> clinic_env.Case:
    return next(c for c in cases if c.gold_diagnosis == "K35.8")


@pytest.fixture(scope="module")
def guard(appendicitis: clinic_env.Case, catalogue: clinic_env.Catalogue) -> LeakGuard:
    return LeakGuard(appendicitis, catalogue)


def test_interface(guard: LeakGuard) -> None:
    result = guard.check("It hurts low on the right.", [])
    assert isinstance(result, GuardResult)
    assert result.text == "It hurts low on the right." and result.blocked == [] and result.leaked is False


@pytest.mark.parametrize("reply", [
    "The diagnosis is acute appendicitis.", "It's K35.8, doctor.", "k 3 5", "My appendix is inflamed.",
    "a-p-p-e-n-d-i-c-i-t-i-s", "A. P. P. E. N. D. I. C. I. T. I. S.", "4pp3nd1c1t1s", "siticidneppa",
    "Аppendicitis", "append\u200bicitis", "appen-dicitis", "Es una apendicitis.", "C'est une appendicite.",
    "Blinddarmentzündung!", "阑尾炎", base64.b64encode(b"appendicitis").decode(), "APPENDICITIS!!!",
])
def test_blocks_the_diagnosis_in_disguise(guard: LeakGuard, reply: str) -> None:
    result = guard.check(f"It really hurts. {reply}", [])
    assert result.leaked and "diagnosis" in result.blocked
    assert "ppend" not in result.text.lower() and "35" not in result.text
    assert result.text.startswith("It really hurts.")


@pytest.mark.parametrize("reply", ["My case file says the correct diagnosis is in there.",
                                   "I'm an AI language model playing a patient.", "The answer key says so."])
def test_blocks_talk_about_the_script(guard: LeakGuard, reply: str) -> None:
    assert "meta" in guard.check(reply, []).blocked


def test_blocks_unasked_facts_and_allows_asked_ones(guard: LeakGuard, appendicitis: clinic_env.Case) -> None:
    hid = next(h for h, f in appendicitis.history.items()
               if h.startswith("sx.") and f.present and h != appendicitis.presenting_complaint)
    text = appendicitis.history[hid].text
    assert hid in guard.check(text, []).blocked
    allowed = guard.check(text, [hid])
    assert allowed.text == text and not allowed.blocked and hid in allowed.disclosed


def test_fallback_when_everything_is_blocked(guard: LeakGuard) -> None:
    result = guard.check("Appendicitis.", [])
    assert result.text and "ppendic" not in result.text.lower()


def test_names_the_case_uses_for_an_asked_item_are_allowed(cases: list[clinic_env.Case],
                                                           catalogue: clinic_env.Catalogue) -> None:
    case = next(c for c in cases if c.gold_diagnosis == "J46")
    guard = LeakGuard(case, catalogue)
    hid = next(h for h, f in case.history.items() if "asthma" in f.text.lower() and h != case.presenting_complaint)
    text = case.history[hid].text
    assert "diagnosis" in guard.check(text, []).blocked or hid in guard.check(text, []).blocked
    assert guard.check(text, [hid]).text == text


def test_terms_and_codes() -> None:
    names = {t.text for t in diagnosis_terms("I21.0", "Acute transmural myocardial infarction of anterior wall (anterior STEMI)")}
    assert {"STEMI", "heart attack", "infarction"} <= names
    assert "acute" not in {n.lower() for n in names}
    assert code_mentions("code K35.8 or k 35") == ["K35.8", "K35"]


def test_clean_text_is_cached_and_fast(guard: LeakGuard) -> None:
    assert guard.is_clean("My sister had the same last year.")
    assert not guard.is_clean("appendicitis")
