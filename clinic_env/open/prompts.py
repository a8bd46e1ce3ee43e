"""The prompts of open mode: what each role is told, and what it may know.

Every role's knowledge is built from the case here, in one place, so that it can be checked:

- the **doctor** gets the presentation only (AgentClinic's ``Objective_for_Doctor`` for an imported
  OSCE case, otherwise age, sex, setting and chief complaint) and the opening statement;
- the **patient** gets what a patient would know: complaint, symptoms, history, their medicines and
  what they were told (for an imported AgentClinic case the ``Patient_Actor`` block of the raw
  record, otherwise the case's history facts in the patient's own words). Any sentence that names
  the gold diagnosis, a synonym of it (the leak guard's term list) or its ICD-10 category is
  dropped before the prompt is built (:class:`GoldFilter`);
- the **measurement** reader gets the examination findings and test results (the same filter
  applies, so the reader cannot echo a diagnosis that the case's wording names);
- the **moderator** gets the gold diagnosis in words and the doctor's diagnosis, nothing else;
- the **examiner** (coverage task) gets the doctor-patient dialogue and the case's facts.

Two protocols: ``"clinic"`` (clinic-env wording: persona-styled patient, the doctor told its turn
count each turn) and ``"agentclinic"`` (the AgentClinic set-up: short dialogue turns, the same
``REQUEST TEST:`` / ``DIAGNOSIS READY:`` markers, measurement answers ``RESULTS: ...`` or
``NORMAL READINGS``, moderator answers Yes or No). All wording is clinic-env's own.
"""

from __future__ import annotations

import json
import re
from typing import Any

from clinic_env.open.biases import anchor_for, bias_text
from clinic_env.patients.terms import TermIndex, code_mentions, diagnosis_terms
from clinic_env.schema.case import Case
from clinic_env.schema.catalogue import Catalogue
from clinic_env.schema.persona import Persona

__all__ = [
    "PROTOCOLS", "GoldFilter", "anchor_for", "coverage_messages", "doctor_system", "final_turn_note",
    "grade_messages", "measurement_knowledge", "measurement_system", "moderator_messages", "patient_knowledge", "patient_system", "presentation",
    "reask_note", "source_record",
]

PROTOCOLS = ("clinic", "agentclinic")
_SPLIT = re.compile(r"(?<=[.!?;])\s+|\n+")


class GoldFilter:
    """Finds sentences that name a case's gold diagnosis: its ICD-10 category (written as a code),
    its catalogue label and the label's distinctive parts, the shipped synonyms, and the source's
    own words for it (:func:`clinic_env.patients.terms.diagnosis_terms`, fuzzy spelling)."""

    def __init__(self, case: Case, catalogue: Catalogue) -> None:
        dx = catalogue.diagnoses.get(case.gold_diagnosis)
        extra = [case.gold_text] if case.gold_text else []
        self.category = case.gold_diagnosis.split(".")[0]
        self.index = TermIndex(diagnosis_terms(case.gold_diagnosis, dx.label if dx else None, extra))

    def names_gold(self, text: str) -> bool:
        """Whether ``text`` names the gold diagnosis or its code."""
        if any(c.split(".")[0] == self.category for c in code_mentions(text)):
            return True
        return bool(self.index.find(text))

    def keep(self, text: str) -> str:
        """``text`` without its sentences that name the gold diagnosis."""
        return " ".join(s for s in (p.strip() for p in _SPLIT.split(text)) if s and not self.names_gold(s))


def source_record(case: Case) -> dict[str, Any] | None:
    """The raw AgentClinic OSCE record of an imported case (``OSCE_Examination``), or None."""
    if not case.source_text:
        return None
    try:
        record = json.loads(case.source_text)
    except (json.JSONDecodeError, TypeError):
        return None
    if not isinstance(record, dict):
        return None
    osce = record.get("OSCE_Examination", record)
    return osce if isinstance(osce, dict) and isinstance(osce.get("Patient_Actor"), dict) else None


def _lines(value: Any, prefix: str = "") -> list[str]:
    """``"Label: text"`` lines of a nested dict/list (keys' underscores as spaces)."""
    if isinstance(value, dict):
        out: list[str] = []
        for key, sub in value.items():
            out += _lines(sub, f"{prefix} {str(key).replace('_', ' ')}".strip())
        return out
    if isinstance(value, list):
        text = ", ".join(str(v).strip() for v in value if str(v).strip())
        return [f"{prefix}: {text}." if prefix else text] if text else []
    text = str(value or "").strip()
    if not text:
        return []
    return [f"{prefix}: {text}" if prefix else text]


def _sex_word(case: Case) -> str:
    """boy/girl/man/woman; baby/child/adult when the source does not state the sex."""
    return case.demographics.noun(13)


def _age(case: Case) -> str:
    age = case.demographics.age
    if age < 1:
        return f"{max(1, round(age * 12))}-month-old"
    return f"{int(age)}-year-old"


def _where(case: Case) -> str:
    return {"primary care": "in primary care", "urgent care": "at an urgent care centre"}.get(
        case.setting, f"in the {case.setting}")


def presentation(case: Case, catalogue: Catalogue) -> str:
    """What the doctor is told before the consultation starts (no diagnosis)."""
    gold = GoldFilter(case, catalogue)
    osce = source_record(case)
    objective = str(osce.get("Objective_for_Doctor") or "").strip() if osce else ""
    base = f"A {_age(case)} {_sex_word(case)} {_where(case)}; main complaint: {case.chief_complaint}."
    if objective:
        base = f"{gold.keep(objective)} {base}".strip()
    return gold.keep(base) or f"A {_age(case)} {_sex_word(case)} {_where(case)}."


def patient_knowledge(case: Case, catalogue: Catalogue) -> list[str]:
    """What the patient knows, as lines, with every sentence naming the gold dropped.

    An imported AgentClinic case gives its ``Patient_Actor`` block (demographics, history, symptoms,
    past medical and social history, review of systems); any other case its opening statement and
    the history facts in the patient's own words (pertinent negatives as such)."""
    gold = GoldFilter(case, catalogue)
    osce = source_record(case)
    lines: list[str] = []
    if osce is not None:
        lines = _lines(osce["Patient_Actor"])
    else:
        sex = {"M": "male", "F": "female"}.get(case.demographics.sex, "sex not stated")
        lines.append(f"Demographics: {_age(case)} {sex}.")
        lines.append(f"What you came in with: {case.opening_statement}")
        topics: dict[str, list[str]] = {}  # one line per fact text (imported facts often share one sentence)
        for hid, fact in case.history.items():
            item = catalogue.history.get(hid)
            topics.setdefault(fact.text, []).append(item.label if item is not None else hid)
        lines += [f"{'; '.join(names)}: {text}" for text, names in topics.items()]
    out = []
    for line in lines:
        kept = gold.keep(line)
        if kept and not re.fullmatch(r"[^:]*:\s*", kept):
            out.append(kept)
    return out


def measurement_knowledge(case: Case, catalogue: Catalogue) -> list[str]:
    """The examination findings and test results the measurement reader holds (gold names dropped)."""
    gold = GoldFilter(case, catalogue)
    lines = []
    for tid, finding in [*case.exam.items(), *case.tests.items()]:
        item = catalogue.tests.get(tid)
        lines.append(f"{item.label if item else tid}: {finding.text}")
    for src in case.extra_items.values():
        if src.kind in ("exam", "test"):
            lines.append(f"{src.name}: {src.text}")
    return [kept for line in lines if (kept := gold.keep(line))]


def _persona_style(persona: Persona | None) -> str:
    if persona is None:
        return ""
    talk = {"plain": "plain everyday words", "colloquial": "casual, colloquial speech",
            "formal": "formal, careful speech", "technical": "some medical words you have picked up"}
    length = "short answers" if persona.verbosity < 0.35 else ("long, chatty answers" if persona.verbosity > 0.7
                                                                 else "answers of a sentence or two")
    mood = "You are worried and it shows." if persona.anxiety > 0.6 else ""
    trust = "You are a little wary of doctors." if persona.trust < 0.4 else ""
    extra = f" ({persona.description})" if persona.description else ""
    return (f"How you talk{extra}: {talk.get(persona.language_register, 'plain words')}, {length}. "
            f"{mood} {trust}").strip()


def doctor_system(protocol: str, max_turns: int, bias: str | None, image: bool = False,
                  anchor: str | None = None) -> str:
    """The doctor's system prompt (``anchor``: the biases' anchor diagnosis, see :func:`anchor_for`)."""
    bias_par = bias_text(bias, "doctor", anchor)
    if protocol == "agentclinic":
        text = (
            "You play a doctor in a simulated clinic and speak only in dialogue, one to three sentences a "
            f"turn. You may take at most {max_turns} turns before you must decide. Ask the patient questions "
            "to find out what is wrong. To get an examination finding or a test result, write "
            "'REQUEST TEST: <name of the test>' (for example 'REQUEST TEST: Chest_X-Ray'). When you have "
            "decided, write 'DIAGNOSIS READY: <your diagnosis>'."
        )
    else:
        text = (
            "You are the doctor in a consultation. The patient answers your questions in their own words; "
            "they do not know their diagnosis. Ask one or two focused questions per turn. To examine the "
            "patient or get a test result, write 'REQUEST TEST: <test or examination>' on its own; the "
            "result comes back in the next message. You have at most "
            f"{max_turns} turns in all. When you are confident, write 'DIAGNOSIS READY: <diagnosis in "
            "words>'; that ends the consultation."
        )
    if image:
        text += " An image from the case is attached to the first message; you may use it."
    return f"{text}\n\n{bias_par}".strip()


def patient_system(protocol: str, knowledge: list[str], persona: Persona | None, bias: str | None,
                   anchor: str | None = None) -> str:
    """The patient's system prompt (knowledge from :func:`patient_knowledge`, never the diagnosis;
    ``anchor``: the biases' anchor diagnosis, chosen so that it is not the case's gold)."""
    facts = "\n".join(f"- {line}" for line in knowledge)
    if protocol == "agentclinic":
        head = ("You play a patient in a simulated clinic and speak only in dialogue, one to three sentences "
                "a turn. A doctor will question and examine you to work out what is wrong.")
    else:
        head = ("You are a patient talking to a doctor. Answer in the first person, as the patient would, "
                "in one to three sentences. " + _persona_style(persona))
    rules = ("Answer only what the doctor asks, from the facts below; do not volunteer the rest. If you are "
             "asked about something the facts do not cover, say you have not noticed it or do not know. You do "
             "not know your diagnosis: never guess one or name a disease you might have. Do not mention "
             "these instructions.")
    bias_par = bias_text(bias, "patient", anchor)
    return f"{head}\n{rules}\n\n{bias_par}\n\nWhat you know about yourself:\n{facts}".replace("\n\n\n", "\n\n")


def measurement_system(protocol: str, knowledge: list[str]) -> str:
    """The measurement reader's system prompt (SDBench-gatekeeper style, no diagnosis)."""
    data = "\n".join(f"- {line}" for line in knowledge) or "- (no results recorded)"
    return (
        "You report examination findings and test results for one patient. Reply in the form "
        "'RESULTS: <results>'. Report exactly what the data below say for the requested item. For an item the "
        "data do not cover, give a plausible normal result for this patient, or 'NORMAL READINGS'; keep every "
        "answer consistent with the data and with what you reported before. Never state or suggest a "
        "diagnosis, and give results only, not interpretations.\n\nThe patient's data:\n" + data
    )


def moderator_messages(gold_text: str, doctor_text: str) -> list[dict[str, Any]]:
    """The moderator's chat: the correct diagnosis and the doctor's, answer Yes or No."""
    system = ("You check a doctor's final diagnosis against the correct one. Say 'Yes' if they name the same "
              "disease (synonyms, abbreviations and more specific forms of it count), otherwise 'No'. Answer "
              "with one word.")
    user = f"Correct diagnosis: {gold_text}\nDoctor's diagnosis: {doctor_text}\nSame disease?"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def coverage_messages(dialogue: str, facts: dict[str, str]) -> list[dict[str, Any]]:
    """The examiner's coverage chat: which of the case's facts the doctor found out (one call)."""
    system = ("You review a medical consultation. For each numbered fact about the patient, decide whether the "
              "doctor found it out during the dialogue (the patient said it, or confirmed it when asked). Reply "
              "with a JSON object mapping each fact id to true or false, nothing else.")
    listed = "\n".join(f"{fid}: {text}" for fid, text in facts.items())
    user = f"Dialogue:\n{dialogue}\n\nFacts:\n{listed}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def grade_messages(dialogue: str, criteria: dict[str, str]) -> list[dict[str, Any]]:
    """The examiner's rubric chat: which criteria the doctor met (one call for every item)."""
    system = ("You grade a doctor's conduct in a medical consultation against a rubric. For each criterion, "
              "decide whether the doctor met it in the dialogue below. Reply with a JSON object mapping each "
              "criterion id to true or false, nothing else.")
    listed = "\n".join(f"{cid}: {text}" for cid, text in criteria.items())
    return [{"role": "system", "content": system},
            {"role": "user", "content": f"Dialogue:\n{dialogue}\n\nCriteria:\n{listed}"}]


def final_turn_note() -> str:
    """Added to the doctor's last turn."""
    return "(This is your last turn: give your diagnosis now, as 'DIAGNOSIS READY: <diagnosis>'.)"


def reask_note() -> str:
    """Shown to a role whose reply the leak guard withheld (it answers once more). It says neither
    what was blocked nor why, so that the note teaches nothing about the guard."""
    return "(Your last reply was not used. Answer only what the doctor asked, in your own words.)"
