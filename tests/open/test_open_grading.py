"""Open mode's readers and verdicts: markers, yes/no, coverage replies, ICD-10 verdicts, biases."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

import clinic_env
from clinic_env.open.biases import BIAS_IDS, bias_text, load_biases
from clinic_env.open.grading import (
    find_diagnosis,
    find_test_request,
    icd10_verdict,
    parse_coverage,
    parse_yes_no,
    split_test_names,
)

WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=10).filter(lambda w: w not in ("and", "plus"))
NAME = st.lists(WORDS, min_size=1, max_size=4).map(" ".join)


@pytest.mark.parametrize(("reply", "verdict"), [
    ("Yes.", True), ("yes - same condition", True), ("**No**", False), ("The answer is yes", True),
    ("No, these are different diseases.", False), ("YES", True), ("Not the same disease.", False),
    ('{"verdict": "no"}', False), ("Correct: they match.", True), ("I cannot tell.", None), ("", None),
])
def test_yes_no_examples(reply: str, verdict: bool | None) -> None:
    assert parse_yes_no(reply) is verdict


@given(st.sampled_from(["", "**", "`", "> ", '"']), st.sampled_from(["Yes", "yes", "No", "no"]),
       st.sampled_from(["", ".", "!", " - same condition", ", definitely.", "**"]))
def test_yes_no_decorated(pre: str, word: str, tail: str) -> None:
    if word.lower() == "no" and "same" in tail:
        tail = "."
    assert parse_yes_no(f"{pre}{word}{tail}") is (word.lower() == "yes")


@given(st.text(max_size=300))
def test_readers_never_raise(text: str) -> None:
    assert parse_yes_no(text) in (True, False, None)
    find_diagnosis(text)
    find_test_request(text)
    split_test_names(text)
    parse_coverage(text, ["hx.onset", "sx.fever"])


@given(NAME, st.text(alphabet="abc ,?", max_size=30), st.sampled_from(["DIAGNOSIS READY", "diagnosis ready",
                                                                      "Final diagnosis"]))
def test_diagnosis_marker_roundtrip(name: str, before: str, marker: str) -> None:
    assert find_diagnosis(f"{before} {marker}: **{name}**.\nThanks for coming in.") == name


@given(st.lists(NAME, min_size=1, max_size=4))
def test_test_names_roundtrip(names: list[str]) -> None:
    joined = ", ".join(names[:-1]) + (" and " if len(names) > 1 else "") + names[-1]
    assert find_test_request(f"Let us check. REQUEST TEST: {joined}\nThen we talk.") == joined
    assert split_test_names(joined) == names


@given(st.sets(st.sampled_from(["hx.onset", "sx.fever", "meds.current", "social.smoking"])))
def test_coverage_json_and_lines(chosen: set[str]) -> None:
    ids = ["hx.onset", "sx.fever", "meds.current", "social.smoking"]
    assert parse_coverage(json.dumps({i: i in chosen for i in ids}), ids) == chosen
    lines = "\n".join(f"{i}: {'yes' if i in chosen else 'no'}" for i in ids)
    assert parse_coverage(lines, ids) == chosen
    assert parse_coverage("I could not decide.", ids) is None


def test_icd10_verdicts(cases: list[clinic_env.Case], catalogue: clinic_env.Catalogue) -> None:
    stemi = next(c for c in cases if c.id == "card-stemi-anterior")
    right, code, _ = icd10_verdict("anterior STEMI", stemi, catalogue)
    assert right is not None and right.correct and code == "I21.0" and right.method == "icd10"
    # Same category, but the gold is must-not-miss: a near miss scores 0 and is not correct.
    near, code, _ = icd10_verdict("myocardial infarction", stemi, catalogue)
    assert near is not None and code == "I21.9" and near.match == 0.0 and not near.correct
    none, code, detail = icd10_verdict("the widowmaker thing", stemi, catalogue)
    assert none is None and code is None and detail.startswith("unmapped")
    pe = next(c for c in cases if c.gold_diagnosis.startswith("I26"))
    for words in ("Pulmonary embolism, likely provoked by recent surgery", "Most likely pulmonary embolism",
                  "I think it is pulmonary embolism"):
        hedged, code, _ = icd10_verdict(words, pe, catalogue)
        assert hedged is not None and hedged.correct and code == pe.gold_diagnosis, words
    # Two diagnoses in one answer name neither: never split, so never credited.
    either, code, _ = icd10_verdict("pulmonary embolism or pneumonia", pe, catalogue)
    assert either is None or not either.correct


def test_biases_cover_agentclinic_ids_and_roles() -> None:
    expected = {"recency", "frequency", "false_consensus", "self_diagnosis", "confirmation", "status_quo",
                "anchoring", "gender", "race", "age", "education", "religion", "socioeconomic", "culture",
                "sexual_orientation"}
    assert expected <= set(BIAS_IDS)
    biases = load_biases()
    assert all(b.source for b in biases.values())
    assert {b.kind for b in biases.values()} == {"cognitive", "implicit"}
    assert "cancer" in bias_text("confirmation", "doctor")
    assert bias_text("cultural", "patient") == bias_text("culture", "patient")
    assert bias_text(None, "doctor") == bias_text("none", "patient") == ""
    with pytest.raises(ValueError, match="no patient prompt"):
        bias_text("status_quo", "patient")
