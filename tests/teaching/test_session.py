"""PlaySession (clinic_env.teaching.session): plain English in, structured actions and readable
lines out; help, hint, status, quit; segment prompts; speech recorded; save/load; determinism."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clinic_env.teaching import PlaySession, Reply, SessionError

SCRIPT = ["hello, I'm one of the doctors", "when did it start?", "chest pain", "any fever?", "ECG",
          "listen to the chest", "done", "heart attack", "pulmonary embolism", "done", "blood culture", "troponin",
          "listen to the chest", "done", "say: this looks like a heart attack; if the pain comes back, call us at once",
          "NSTEMI"]


def play(inputs: list[str], **kwargs: object) -> tuple[PlaySession, list[Reply]]:
    session = PlaySession("card-nstemi", seed=0, persona="cooperative", **kwargs)  # type: ignore[arg-type]
    return session, [session.say(text) for text in inputs]


@pytest.fixture(scope="module")
def played() -> tuple[PlaySession, list[Reply]]:
    return play(SCRIPT)


def test_plain_english_inputs_map_to_actions(played: tuple[PlaySession, list[Reply]]) -> None:
    session, replies = played
    got = dict(zip(SCRIPT, (r.actions for r in replies), strict=True))
    assert got["when did it start?"] == ("ask:hx.onset",)
    assert got["chest pain"] == ("ask:sx.chest_pain",)
    assert got["any fever?"] == ("ask:sx.fever",)
    assert got["ECG"] == ("order:ecg.12lead",)  # a bedside assessment: legal during the history
    assert got["heart attack"] == ("dx:I21.4",) and got["pulmonary embolism"] == ("dx:I26.9",)
    assert got["blood culture"] == ("order:micro.blood_culture",) and got["troponin"] == ("order:lab.troponin",)
    assert got["NSTEMI"] == ("dx:I21.4",)
    # "listen to the chest" is an examination: explained in the history, ordered in the tests segment
    first, second = (replies[i] for i, t in enumerate(SCRIPT) if t == "listen to the chest")
    assert not first.understood and first.actions == () and "tests segment" in first.text
    assert second.actions == ("order:exam.respiratory",)
    assert session.done and session.record.final_diagnosis == "I21.4" and session.state().segment == "finished"


def test_replies_are_readable(played: tuple[PlaySession, list[Reply]]) -> None:
    session, replies = played
    assert "71-year-old woman" in session.opening.text and "out of puff" in session.opening.text
    assert session.opening.entries[-1].kind == "prompt" and "done" in session.opening.entries[-1].text
    onset = replies[SCRIPT.index("when did it start?")]
    assert [e.kind for e in onset.entries if e.kind == "patient"] and "yesterday teatime" in onset.text
    trop = replies[SCRIPT.index("troponin")]
    result = next(e for e in trop.entries if e.kind == "result")
    assert result.text.startswith("High-sensitivity cardiac troponin:") and result.grade == "markedly abnormal"
    assert replies[-1].entries[-1].kind == "end"


def test_segment_changes_prompt_what_to_do(played: tuple[PlaySession, list[Reply]]) -> None:
    _, replies = played
    prompts = [e.text for r in replies for e in r.entries if e.kind == "prompt"]
    assert [p.split(".")[0] for p in prompts] == ["Differential", "Tests", "Final diagnosis"]
    assert all("done" in p for p in prompts[:2])


def test_speech_is_recorded_as_the_doctors_words(played: tuple[PlaySession, list[Reply]]) -> None:
    session, replies = played
    first = replies[0]
    assert first.actions == () and first.understood and first.entries[0].kind == "speech"
    said = [t.said for t in session.record.turns if t.agent == "doctor_0" and t.said]
    assert said[0].startswith("hello, I'm one of the doctors")  # carried with the next question
    final = next(t for t in session.record.turns if t.action == "dx:I21.4" and t.segment == "diagnosis")
    assert final.said is not None and "call us at once" in final.said


def test_closing_words_and_wrong_segment_requests() -> None:
    session = PlaySession("card-nstemi", seed=0, persona="cooperative")
    assert session.say("tell me about the pain").actions == ("ask:hx.character",)  # "tell" is not speech
    assert session.say("tell the patient: we will look after you").entries[0].kind == "speech"
    assert session.say("ready for tests").actions == ("end_segment",)
    assert session.state().segment == "differential"
    refused = session.say("done")  # an empty differential cannot be committed
    assert not refused.understood and "at least one diagnosis" in refused.text
    late = session.say("any fever?")
    assert not late.understood and "history" in late.text and "Fever" in late.text
    session.say("pneumonia")
    assert session.say("next").actions == ("commit_differential",)


def test_unmatched_words_offer_the_closest_options_and_a_number_chooses() -> None:
    session = PlaySession("card-nstemi", seed=0, persona="cooperative")
    for text in ("done", "pneumonia", "done"):
        session.say(text)
    reply = session.say("tropnin levels")
    assert not reply.understood and reply.actions == ()
    options = [e.text for e in reply.entries if e.kind == "option"]
    assert 1 <= len(options) <= 5 and "troponin" in options[0].lower()
    assert "legal actions" not in reply.text
    pick = session.say("1")
    assert pick.actions == ("order:lab.troponin",)
    gibberish = session.say("xyzzy plugh")
    assert not gibberish.understood and "help" in gibberish.text and len(gibberish.entries) <= 6


def test_help_hint_and_status() -> None:
    session = PlaySession("card-nstemi", seed=0, persona="cooperative")
    assert session.help().entries[0].kind == "help" and "quit" in session.help().text
    hint = session.hint()
    assert hint.entries[0].kind == "hint" and hint.actions == ()
    session.say("chest pain")
    status = session.status().text
    assert "Segment: history" in status and "Questions asked: 1" in status and "cost so far $0" in status
    for text in ("done", "heart attack", "done"):
        session.say(text)
    for _ in range(3):
        text = session.hint().text
        assert "I21.4" not in text and "myocardial infarction" not in text.lower()  # never the diagnosis
    session.say("done")
    assert "I21.4" not in session.hint().text


def test_quit_saves_and_load_replays(tmp_path: Path) -> None:
    session, _ = play(["when did it start?", "chest pain", "done", "heart attack"], save_dir=tmp_path)
    reply = session.say("quit")
    assert session.done and reply.saved == tmp_path / "session.json" and reply.state.end_reason == "quit"
    data = json.loads(reply.saved.read_text(encoding="utf-8"))
    assert data["case_id"] == "card-nstemi" and data["inputs"][-1] == "quit"
    assert data["record"]["end_reason"] == "quit" and data["record"]["differential"] == ["I21.4"]
    again = PlaySession.load(reply.saved)
    assert not again.done and again.state().differential == ("I21.4",) and again.state().segment == "differential"
    assert session.say("chest pain").entries[0].kind == "end"  # nothing more after the end


def test_sessions_are_deterministic() -> None:
    inputs = ["when did it start?", "any sweating?", "diabetes?", "done", "heart attack", "done", "ECG", "troponin",
              "done", "NSTEMI"]
    a, ra = play(inputs)
    b, rb = play(inputs)
    assert [r.text for r in ra] == [r.text for r in rb]
    assert a.record.to_json() == b.record.to_json()
    drawn = PlaySession("card-nstemi", seed=5)
    assert drawn.persona.id == PlaySession("card-nstemi", seed=5).persona.id


def test_bad_cases_are_named() -> None:
    with pytest.raises(SessionError, match="card-nstemi"):
        PlaySession("card-nstem")
    with pytest.raises(SessionError, match="not both"):
        PlaySession("card-nstemi", condition="appendicitis")
    with pytest.raises(SessionError, match="persona"):
        PlaySession("card-nstemi", persona="nobody")


def test_generated_case_on_the_fly() -> None:
    a = PlaySession(condition="appendicitis", difficulty=2, seed=3)
    b = PlaySession(condition="appendicitis", difficulty=2, seed=3)
    assert a.case == b.case and a.opening.text == b.opening.text
    assert a.case.gold_diagnosis not in a.opening.text and "appendic" not in a.opening.text.lower()
    reply = a.say("where is the pain?")
    assert reply.understood and reply.actions
