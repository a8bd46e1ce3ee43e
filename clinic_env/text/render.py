"""Render an agent's view of the consultation as chat messages (pure functions of the engine).

Each agent gets two messages: a ``system`` message that depends only on the role (so servers'
prefix caching hits on every call of an episode and across episodes) and a ``user`` message with
the transcript the agent may read, a status line and what it may do now.

**The doctor** (lean by default): the system message is one static text for every segment (role,
protocol, reply format, what ids look like); the user message adds the segment's task, a few
suggested legal items (:func:`clinic_env.text.retrieve.suggestions`: the complaint's work-up, the
features of the diagnoses in play, the last answers' words) and the id families, never the whole
catalogue. ``list_items=True`` restores the full listing of the segment's items in the system
message (one cached text per segment). The status line is machine readable (``Status:
segment=history; cycle=3/150; questions_asked=2; ...``), which the scripted test server relies on.

**The examiner** grades every pending rubric item in one call by default (``grading="batch"``:
items numbered ``[1]``, ``[2]``..., reply ``{"grades": [{"id", "verdict"}]}``); ``grading=
"per_item"`` keeps the HealthBench grader prompt, one item per call.
"""

from __future__ import annotations

from typing import Any

from clinic_env.core.engine import (
    DIAGNOSIS,
    DIFFERENTIAL,
    DOCTOR,
    EXAMINER,
    HISTORY,
    PATIENT,
    SEGMENTS,
    TESTS,
    Consultation,
)
from clinic_env.core.text import sanitise
from clinic_env.schema.catalogue import Catalogue
from clinic_env.text.retrieve import families, suggestions
from clinic_env.text.schema import DOCTOR_SCHEMA, EXAMINER_BATCH_SCHEMA, EXAMINER_SCHEMA, PATIENT_SCHEMA

__all__ = ["BATCH_GRADER", "GRADINGS", "Messages", "doctor_messages", "examiner_messages", "messages_for",
           "patient_messages", "response_format"]

Messages = list[dict[str, str]]

_DOCTOR_ROLE = (
    "You are the doctor in a simulated clinical consultation (an OSCE-style exercise with a simulated "
    "patient; not real medical advice). The consultation runs through four segments: history (ask the "
    "patient questions), differential (list the diagnoses you are considering, most likely first), tests "
    "(order examinations and investigations) and diagnosis (give one final diagnosis)."
)
_SEGMENT_TASK = {
    HISTORY: "Segment now: HISTORY. Ask one question per reply (action \"ask\"), naming the history item; "
             "put your question to the patient in \"text\". When you have enough history, reply with "
             "action \"end_segment\".",
    DIFFERENTIAL: "Segment now: DIFFERENTIAL. Add one diagnosis per reply (action \"dx\", item = its "
                  "ICD-10 code), most likely first. When the list is complete, reply with action "
                  "\"commit_differential\".",
    TESTS: "Segment now: TESTS. Order one examination or investigation per reply (action \"order\", item "
           "= its id); each result comes back at once. When you have what you need, reply with action "
           "\"end_segment\".",
    DIAGNOSIS: "Segment now: DIAGNOSIS. Give your single final diagnosis (action \"dx\", item = its "
               "ICD-10 code).",
}
_FORMAT = (
    "Reply with ONE JSON object and nothing else: {\"action\": ..., \"item\": ..., \"text\": ...} where "
    "action is one of ask, order, dx, end_segment, commit_differential; item is the catalogue id or "
    "ICD-10 code (empty for end_segment and commit_differential); text is what you say. Plain sentences "
    "such as \"order troponin and an ECG\" are understood too, but JSON is safest."
)
_LEAN_GUIDE = (
    "Segments and actions: history: ask (one question per reply; put the question to the patient in "
    "\"text\"), then end_segment. Differential: dx (one ICD-10 code per reply, most likely first), then "
    "commit_differential. Tests: order (one examination or test per reply; the result comes back at "
    "once), then end_segment. Diagnosis: dx (one final ICD-10 code). Each message suggests a few items "
    "that fit the case so far; any other catalogue item may be named too. Ids look like hx.onset, "
    "sx.cough, pmh.diabetes, meds.current, social.smoking, fam.cad, allergy.drug, obgyn.lmp (history); "
    "exam.vitals, bedside.glucose, ecg.12lead, lab.troponin, img.cxr, micro.blood_culture, "
    "proc.lumbar_puncture (tests); diagnoses by ICD-10 code (I21.4). If you do not know an id, leave "
    "item empty and say the question or request plainly in text. Questions must be about the patient's "
    "health; anything else is not understood and is asked again."
)


def _listing(cat: Catalogue, segment: int) -> str:
    if segment == HISTORY:
        rows = [f"- {h}: {cat.history[h].label}" for h in cat.history_ids]
        return "History items you can ask about (id: topic):\n" + "\n".join(rows)
    if segment == TESTS:
        rows = [f"- {t}: {cat.tests[t].label} (${cat.tests[t].cost_usd:g})" for t in cat.test_ids]
        return "Examinations and tests you can order (id: name (cost)):\n" + "\n".join(rows)
    rows = [f"- {c}: {cat.diagnoses[c].label}" for c in cat.diagnosis_codes]
    return "Diagnoses (ICD-10 code: name):\n" + "\n".join(rows)


# Catalogues are unhashable (dict fields): cache by identity, holding the catalogue alive.
_SYSTEM_CACHE: dict[tuple[int, int, bool], tuple[Catalogue, str]] = {}


def doctor_system(cat: Catalogue, segment: int, list_items: bool = False) -> str:
    """The doctor's system message (cached). Lean (the default): one static text for every segment
    and episode. ``list_items``: the segment's task and its full item listing (one text per segment)."""
    key = (id(cat), min(segment, DIAGNOSIS) if list_items else -1, list_items)
    hit = _SYSTEM_CACHE.get(key)
    if hit is not None and hit[0] is cat:
        return hit[1]
    parts = [_DOCTOR_ROLE, _SEGMENT_TASK[key[1]], _FORMAT] if list_items else [
        _DOCTOR_ROLE, _FORMAT, _LEAN_GUIDE, f"Id families in this catalogue: history {families(cat.history_ids)}; "
                                            f"tests {families(cat.test_ids)}."]
    if list_items:
        parts.append(_listing(cat, key[1]))
    text = sanitise("\n\n".join(parts), roles=False)
    if len(_SYSTEM_CACHE) > 256:
        _SYSTEM_CACHE.clear()
    _SYSTEM_CACHE[key] = (cat, text)
    return text


def _status(eng: Consultation) -> str:
    seg = SEGMENTS[min(eng.segment, DIAGNOSIS)]
    return (f"Status: segment={seg}; cycle={eng.cycle}/{eng.max_cycles}; questions_asked={len(eng.asked)}; "
            f"differential={len(eng.differential)}; tests_ordered={len(eng.ordered)}; cost_usd={eng.cost:.0f}")


def _doctor_now(eng: Consultation) -> str:
    seg = eng.segment
    if seg == HISTORY:
        asked = ", ".join(sorted(eng.asked)) or "none"
        return f"Already asked: {asked}.\nNow: ask a history question, or end_segment."
    if seg == DIFFERENTIAL:
        listed = ", ".join(eng.differential) or "none"
        more = "add a diagnosis (dx)" if len(eng.differential) < eng.config.differential_max else "no more entries"
        commit = ", or commit_differential" if eng.differential else " (at least one is needed)"
        return f"Differential so far: {listed}.\nNow: {more}{commit}."
    if seg == TESTS:
        ordered = ", ".join(eng.ordered) or "none"
        return f"Already ordered: {ordered}.\nNow: order a test, or end_segment."
    return "Now: give the final diagnosis (dx with an ICD-10 code)."


# Each agent's messages are a system text and a user text ``head + transcript + tail``: messages_for
# sanitises head and tail and takes the transcript sanitised line by line from the engine, which
# gives the same text as sanitising the whole (sanitise maps character by character) without
# scanning the whole transcript at every turn.
_Parts = tuple[str, str, str]


def _suggested(eng: Consultation) -> str:
    """The lean prompt's suggested legal items for the current segment."""
    rows = "\n".join(f"- {x}: {label}" for x, label in suggestions(eng))
    return f"\nSuggested (id: name; any other allowed):\n{rows}" if rows else ""


def _doctor_parts(eng: Consultation, note: str | None, list_items: bool = False) -> _Parts:
    tail = f"\n\n{_status(eng)}\n{_doctor_now(eng)}"
    if not list_items:
        tail += _suggested(eng)
    if note:
        tail += f"\n\nYour last reply could not be used: {note}. Reply again with one JSON action."
    return "", "Consultation so far:\n", tail


def doctor_messages(eng: Consultation, note: str | None = None, list_items: bool = False) -> Messages:
    """The doctor's chat messages; ``note`` (why the last reply was not understood) is appended."""
    _, head, tail = _doctor_parts(eng, note, list_items)
    return [{"role": "system", "content": doctor_system(eng.cat, min(eng.segment, DIAGNOSIS), list_items)},
            {"role": "user", "content": head + eng.view_text(DOCTOR) + tail}]


def _patient_system(eng: Consultation) -> str:
    case, persona = eng.case, eng.persona
    assert case is not None
    demo = case.demographics
    who = f"a {demo.age:g}-year-old {demo.noun(0)}"
    if case.informant != "patient":
        who += f" (the {case.informant} answers for the patient)"
    return (
        f"You are role-playing a patient in a simulated consultation: {who} who came with: "
        f"{case.chief_complaint}. Persona: {persona.name}. {persona.description} Speak in a "
        f"{persona.language_register} register, literacy {persona.literacy}. Answer ONLY the doctor's "
        "latest question, in one to three sentences, in your own words; never use medical jargon you "
        "would not know, never mention diagnoses, and never volunteer facts you were not asked about. "
        f"Reply with one JSON object {PATIENT_SCHEMA['example']}: mode is one of truthful, vague, "
        "withhold, deny (contradict only when told you may); text is what you say."
    )


def _patient_parts(eng: Consultation, note: str | None) -> _Parts:
    hid = eng.pending
    if hid is None:
        task = "There is no question to answer: reply with an empty text."
    else:
        item = eng.cat.history[hid]
        fact = eng.case.history.get(hid) if eng.case else None
        truth = (f"The truth for this question: \"{fact.text}\"" if fact is not None
                 else f"This does not apply to you; the truthful answer is like: \"{item.default_answer}\"")
        if fact is not None and fact.contradiction and not eng.contradiction_used:
            truth += f" (you may instead contradict yourself with: \"{fact.contradiction}\", mode contradict)"
        task = f"The doctor's latest question is about: {item.label}.\n{truth}"
    tail = f"\n\n{task}"
    if note:
        tail += f"\n\nYour last reply could not be used: {note}. Reply again with one JSON object."
    return _patient_system(eng), "Conversation so far:\n", tail


def patient_messages(eng: Consultation, note: str | None = None) -> Messages:
    """The patient's messages: persona, the fact behind the pending question, the dialogue."""
    system, head, tail = _patient_parts(eng, note)
    return [{"role": "system", "content": system}, {"role": "user", "content": head + eng.view_text(PATIENT) + tail}]


_GRADER = (
    "Your job is to look at a conversation between a doctor and a patient and a rubric item, and score "
    "the doctor's conduct against that one rubric item (HealthBench-style grading). The rubric item is "
    "met only if the conversation shows the doctor doing what it describes; for a negative-points item "
    "(an undesirable behaviour), met means the doctor did the undesirable thing. Reply with one JSON "
    f"object {EXAMINER_SCHEMA['example']} and nothing else."
)
#: The batch grader's system message (its first words are what the scripted test server looks for).
BATCH_GRADER = (
    "You grade numbered rubric items against a conversation between a doctor and a patient "
    "(HealthBench-style grading, all items in one reply). For each item decide: met (the conversation "
    "shows the doctor doing what it describes; for a negative-points item, an undesirable behaviour, met "
    "means the doctor did it), not_met, or abstain (the conversation cannot tell). Grade every item, "
    f"each on its own. Reply with one JSON object {EXAMINER_BATCH_SCHEMA['example']} and nothing else "
    "(lines such as \"1: met\" are understood too)."
)
GRADINGS = ("batch", "per_item")


def _examiner_parts(eng: Consultation, note: str | None, grading: str = "batch") -> _Parts:
    if grading == "per_item" or len(eng.queue) <= 0:
        if eng.queue:
            item = eng.rubric[eng.queue[0]]
            rubric = f"[{item.points:+d} points] {item.criterion}"
        else:
            rubric = "(nothing to grade: reply with criteria_met false)"
        tail = f"\n<</conversation>>\n\n<<rubric_item>>\n{rubric}\n<</rubric_item>>"
        system = _GRADER
    else:
        rows = "\n".join(f"[{n}] ({eng.rubric[i].points:+d} points) {eng.rubric[i].criterion}"
                         for n, i in enumerate(eng.queue, 1))
        tail = f"\n<</conversation>>\n\n<<rubric_items>>\n{rows}\n<</rubric_items>>"
        system = BATCH_GRADER
    if note:
        tail += f"\n\nYour last reply could not be used: {note}. Reply again with one JSON object."
    return system, "<<conversation>>\n", tail


def examiner_messages(eng: Consultation, note: str | None = None, grading: str = "batch") -> Messages:
    """The examiner's messages: the whole dialogue and the pending rubric items (all of them in one
    call with ``grading="batch"``, the one at the head of the queue with ``"per_item"``)."""
    system, head, tail = _examiner_parts(eng, note, grading)
    return [{"role": "system", "content": system}, {"role": "user", "content": head + eng.view_text(EXAMINER) + tail}]


def messages_for(eng: Consultation, agent: int, note: str | None = None, list_items: bool = False,
                 grading: str = "batch") -> Messages:
    """Messages for agent index ``agent`` (0 doctor, 1 patient, 2 examiner); ``list_items`` and
    ``grading`` as in the module docstring."""
    # Every message stays inside the observation space's charset (the doctor's cached system
    # message is sanitised once, when it is built).
    if agent == DOCTOR:
        _, head, tail = _doctor_parts(eng, note, list_items)
        system = doctor_system(eng.cat, min(eng.segment, DIAGNOSIS), list_items)
    elif agent == PATIENT:
        system, head, tail = _patient_parts(eng, note)
        system = sanitise(system, roles=False)
    elif agent == EXAMINER:
        system, head, tail = _examiner_parts(eng, note, grading)
        system = sanitise(system, roles=False)
    else:
        raise ValueError(f"agent index must be 0, 1 or 2, got {agent!r}")
    # The env's own skeleton keeps its markers; every transcript line (agents' words) is sanitised
    # with role markers defanged (core.text.sanitise), so no agent can forge another's line.
    user = sanitise(head, roles=False) + eng.view_text(agent, sanitised=True) + sanitise(tail, roles=False)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def response_format(agent: int, grading: str = "batch") -> dict[str, Any]:
    """The OpenAI ``response_format`` (json_schema) for an agent's replies (the examiner's per ``grading``)."""
    schema = (DOCTOR_SCHEMA, PATIENT_SCHEMA, EXAMINER_BATCH_SCHEMA if grading == "batch" else EXAMINER_SCHEMA)[agent]
    return {"type": "json_schema", "json_schema": {"name": schema["name"], "schema": schema["schema"], "strict": True}}
