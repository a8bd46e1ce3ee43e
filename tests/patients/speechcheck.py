"""Play many patient answers over every bundled case and persona, and the checks the patient's
generic speech must pass (used by ``test_speech_fits.py``).

The checks are data tables written here, independently of the package's own rules in
``clinic_env/data/speech/``, so a rule missing there shows up as a failure here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

import clinic_env
from clinic_env.core.actions import PATIENT_MODES, WAIT
from clinic_env.core.engine import DOCTOR, EXAMINER, PATIENT
from clinic_env.patients.question_types import question_type
from clinic_env.schema.case import Case, Fact

#: Answer modes drawn for the patient, weighted towards the generic sources (vague, withhold,
#: deny: the catalogue's default) that these checks are about.
MODE_WEIGHTS = {"truthful": 1.0, "vague": 3.0, "withhold": 1.5, "deny": 1.5, "contradict": 0.5}


@dataclass
class Said:
    """One patient text and where it came from."""

    case: Case
    persona: str
    seed: int
    kind: str  # answer | tangent | interruption
    text: str
    item: str = ""
    source: str = ""


@dataclass
class Episode:
    """What one episode's patient said."""

    case: Case
    persona: str
    seed: int
    said: list[Said] = field(default_factory=list)


def answer_source(mode: str, fact: Fact | None) -> str:
    """Where an answer's words come from: the case's (``fact``, ``contradiction``) or generic
    (``default``, ``vague``, ``withhold``)."""
    if mode == "withhold":
        return "withhold"
    if fact is None:
        return "vague" if mode == "vague" else "default"
    if mode == "vague":
        return "fact" if fact.vague else "vague"
    if mode == "deny" and fact.present:
        return "default"
    return "contradiction" if mode == "contradict" and fact.contradiction else "fact"


def _cycle(eng: Any, doctor: int, patient: int) -> None:
    eng.act(DOCTOR, doctor)
    eng.act(PATIENT, patient)
    eng.act(EXAMINER, WAIT)
    eng.end_cycle()


def play(case: Case, persona: str, seed: int, questions: int, env: Any) -> Episode:
    """One episode of ``case`` with ``persona``: the doctor asks ``questions`` random unasked
    history items and the patient answers each in a random legal mode."""
    env.reset(seed=seed, options={"case_id": case.id, "persona_id": persona})
    eng, table = env.engine, env.info.table
    rng = np.random.default_rng(seed)
    ids = list(env.info.catalogue.history_ids)
    order = rng.permutation(len(ids))[:questions]
    ep = Episode(case, persona, seed)
    for i in order:
        hid = ids[int(i)]
        if eng.terminated or eng.truncated:
            break
        ask = table.ask(hid)
        if not eng.masks[DOCTOR][ask]:
            continue
        _cycle(eng, ask, WAIT)
        legal = [m for m in PATIENT_MODES if eng.masks[PATIENT][table.answer(m)]]
        weights = np.array([MODE_WEIGHTS[m] for m in legal])
        mode = legal[int(rng.choice(len(legal), p=weights / weights.sum()))]
        n = len(eng.turns)
        _cycle(eng, WAIT, table.answer(mode))
        turn = next(t for t in eng.turns[n:] if t["agent"] == "patient_0")
        fact = case.history.get(hid)
        text = turn["text"]
        tangent = turn.get("tangent")
        if isinstance(tangent, str):
            ep.said.append(Said(case, persona, seed, "tangent", tangent, hid))
            text = text[: -len(tangent)].rstrip()
        ep.said.append(Said(case, persona, seed, "answer", text, hid, answer_source(turn["mode"], fact)))
        if turn.get("interruption"):
            ep.said.append(Said(case, persona, seed, "interruption", turn["interruption"], hid))
    return ep


def episodes(cases: list[Case], personas: list[str], per_pair: int, questions: int,
             first_seed: int = 0) -> Iterator[Episode]:
    """``per_pair`` episodes of every case x persona, each with its own seed (one env per
    persona, reset onto each case)."""
    seed = first_seed
    for persona in personas:
        env = clinic_env.raw_env(cases=cases, persona=persona, max_cycles=4 * questions + 20)
        for case in cases:
            for _ in range(per_pair):
                yield play(case, persona, seed, questions, env)
                seed += 1


def scripted_texts(case: Case) -> str:
    """Everything the case's own words say (lower-case), which generic speech checks leave out."""
    parts = [case.opening_statement, case.chief_complaint]
    for fact in case.history.values():
        parts += [fact.text, fact.vague or "", fact.contradiction or ""]
    return " \n ".join(parts).lower()


# ---------------------------------------------------------------------------------- the checks
#: Words that mark a vague text as answering one kind of question, and the question types
#: (clinic_env.patients.question_types) each kind may answer.
VAGUE_MARKERS: dict[str, tuple[str, frozenset[str]]] = {
    "duration": (r"\b(a while|time flies|how long|last week|few days|tuesday|wednesday|when\b|days run)",
                 frozenset({"time", "pattern"})),
    "count": (r"\b(normal amount|not a lot|don't (really )?count|keep count|not much)\b",
              frozenset({"quantity", "yesno"})),
    "place": (r"\b(around here|one spot|pin down|move about|in that region)\b",
              frozenset({"site", "quantity", "time", "severity"})),
    "rating": (r"\b(a number on it|how bad|bad enough|had worse|niggle)\b",
               frozenset({"severity", "character", "yesno"})),
    "describe": (r"\b(describe|put it better)\b", frozenset({"character", "site"})),
    "medicine": (r"\b(tablets?|packets?|boxes|the names)\b", frozenset({"medication"})),
}


def vague_problem(said: Said, catalogue: clinic_env.Catalogue) -> str | None:
    """Why a generic vague answer does not fit its question's type (None: it fits)."""
    qtype = question_type(catalogue.history[said.item])
    for kind, (pattern, fits) in VAGUE_MARKERS.items():
        if re.search(pattern, said.text, re.I) and qtype not in fits:
            return f"{kind} wording for a {qtype} question"
    return None


@dataclass(frozen=True)
class Who:
    """A check's view of the patient."""

    age: float
    sex: str
    informant: str


#: (words, predicate over the patient, what must be true): a generic text containing the words
#: is a violation unless the predicate holds.
PERSON_RULES: tuple[tuple[str, Any, str], ...] = (
    (r"\bteething\b", lambda w: w.age < 3, "teething: a baby or toddler"),
    (r"\bmy (mum|dad|parents|mother|father)\b", lambda w: w.age < 30 or w.informant != "patient",
     "my mum/dad: a young patient, or a parent speaking"),
    (r"\b(my|the|your|her|his) periods?\b|\bmenstrua", lambda w: w.sex == "F" and w.age >= 10,
     "periods: a girl or woman"),
    (r"\bpregnan|\bthe change\b|\bmenopause", lambda w: (w.sex == "F" and w.age >= 10) or w.informant == "parent",
     "pregnancy or menopause: a woman, or a parent speaking of the child's birth"),
    (r"\b(penis|erections?|testicles?)\b", lambda w: w.sex == "M", "male anatomy: a man or boy"),
    (r"\bmy (husband|wife|partner|other half)\b", lambda w: w.age >= 16 or w.informant != "patient",
     "my husband/wife/partner: an adult, or a parent speaking"),
    (r"\b(my|our) (kids|children|grandson|granddaughter)\b", lambda w: w.age >= 22 and w.informant == "patient",
     "my children: an adult patient"),
    (r"\bmy (son|daughter)\b", lambda w: w.age >= 35 and w.informant == "patient",
     "my son/daughter: an older patient"),
    (r"\bmy child\b|\btoo little\b|\bat this age\b|\bnursery\b", lambda w: w.informant == "parent",
     "my child / nursery: a parent speaking"),
    (r"\b(am i|will i|have i got|do i need)\b", lambda w: w.informant == "patient",
     "first-person worries: the patient themself"),
    (r"\b(i've never smoked|i don't drink|i don't take drugs|i'm not pregnant|my tummy|my back|my chest|"
     r"my breathing|my heart|i haven't been coughing|i haven't vomited|my head's been clear)\b",
     lambda w: w.informant == "patient", "the patient's own body in the first person: the patient themself"),
    (r"\b(board meeting|my assistant|forty years|student nurses|in my day|outlived)\b",
     lambda w: w.age >= 22 and w.informant == "patient", "a working or long life: an adult patient"),
    (r"\b(at school|exams|my phone)\b", lambda w: 4 <= w.age < 30, "school: a young patient"),
)


def person_problem(said: Said) -> str | None:
    """Why a generic text does not fit the patient's age, sex or informant (None: it fits)."""
    case = said.case
    who = Who(case.demographics.age, case.demographics.sex, case.informant)
    for pattern, ok, why in PERSON_RULES:
        if re.search(pattern, said.text.replace("\u2019", "'"), re.I) and not ok(who):
            return why
    return None


#: Common names of tests and results a patient cannot know before they are done, besides the
#: catalogue's own labels and abbreviations.
TEST_SYNONYMS = (
    "troponin", "ecg", "ekg", "electrocardiogram", "ct", "ct scan", "cat scan", "mri", "x-ray", "xray",
    "x ray", "ultrasound", "echocardiogram", "blood test", "blood tests", "bloods", "blood results",
    "test results", "potassium", "sodium", "d-dimer", "crp", "white count", "haemoglobin", "lumbar puncture",
    "biopsy", "endoscopy", "colonoscopy", "angiogram", "scan", "swab", "culture",
)


def catalogue_test_terms(catalogue: clinic_env.Catalogue) -> tuple[str, ...]:
    """Test names to look for: each catalogue label, its bracketed abbreviations and the
    synonyms above (lower-case)."""
    terms = set(TEST_SYNONYMS)
    for test in catalogue.tests.values():
        if test.category in ("exam",):
            continue
        label = test.label.lower()
        terms.add(re.sub(r"\s*\(.*?\)", "", label).strip())
        for inner in re.findall(r"\(([^)]*)\)", test.label):
            terms.update(t.strip().lower() for t in re.split(r"[,/;]| and ", inner)
                         if re.fullmatch(r"[A-Za-z0-9-]{2,8}", t.strip()) and any(c.isupper() for c in t))
    return tuple(sorted(t for t in terms if len(t) >= 2))


@lru_cache(maxsize=8)
def _terms_pattern(terms: tuple[str, ...]) -> re.Pattern[str]:
    alternation = "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True))
    return re.compile(rf"(?=\b({alternation})s?\b)")


def named_tests(text: str, terms: tuple[str, ...], allowed: str) -> list[str]:
    """The terms ``text`` names that the case's own words (``allowed``) do not."""
    hits = {m.group(1) for m in _terms_pattern(terms).finditer(text.lower())}
    return sorted(t for t in hits if not re.search(rf"\b{re.escape(t)}", allowed))
