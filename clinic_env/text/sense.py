"""Is a sentence a clinical question about the patient? The text parser's guard against guessing.

A doctor's words name a history item only when they are used as a question (or request) to the
patient about their health. "Stay in character" is not a question about the character of the
pain, "tell me in code words" is not about autoimmune history, "what's the story?" is not a
social history question. :func:`read` gives a :class:`Reading` of one sentence:

- ``meta``: the sentence is about the conversation itself (role-play, code words, spelling,
  alphabets, ciphers, formats, instructions): it names no item, whatever its words;
- ``question``: it is put as a question or request (a question mark, an interrogative or inverted
  auxiliary first, "tell me", "describe"...), or is a short topic ("chest pain?", "smoking history");
- ``addressed``: it is put to or about the patient (a patient word such as "you"/"your"/"it", a
  symptom or body word, or an elliptical question of at most a few words: "Any allergies?");
- ``masked``: token positions inside fixed expressions ("take your time", "under pressure"),
  which name nothing;
- :func:`everyday_ok`: a cue made only of everyday-sense words (``work``, ``drink``, ``character``,
  ``all the time``) counts only when the patient owns or does it ("your work", "do you drink") or
  the sentence names a symptom or body part.

All word lists are data (``sense.yaml``, with their sources); the confidence that combines them
with the strength of the matched phrase is in :mod:`clinic_env.text.match`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

from clinic_env.text.match import _STOP, CatalogueMatcher, tokens

__all__ = ["THRESHOLD", "QuestionMatch", "Reading", "SenseData", "everyday_ok", "is_everyday", "match_question",
           "read", "sense_data"]

#: The lowest confidence at which a sentence is taken as a question about an item. Below it the
#: reply is re-asked (the parser never answers a guess with a fact). See :func:`match_question`.
THRESHOLD = 0.6
# Confidence of a phrase hit by its kind: curated phrase (aliases.yaml, synonyms, the id) of
# several words / of one word; label- or id-derived phrase of several words / of one word; a
# phrase shared by several items (resolved to the most generic). The word-overlap fallback
# scores 0.3 + its overlap (at most 0.85) and needs two content words in common.
_PHRASE_CONFIDENCE = {(2, True): 0.95, (2, False): 0.85, (1, True): 0.8, (1, False): 0.7, (0, True): 0.65,
                      (0, False): 0.6}
_OVERLAP_MIN_WORDS = 2
_OVERLAP_BASE, _OVERLAP_CAP = 0.3, 0.85
# The overlap fallback refuses when the runner-up scores above this share of the best.
_MARGIN = 0.8


@dataclass(frozen=True)
class SenseData:
    """The word lists of ``sense.yaml``, as normalised token tuples."""

    openers: frozenset[tuple[str, ...]]
    lead_ins: frozenset[str]
    complaint: tuple[tuple[str, ...], ...]
    doctor: frozenset[str]
    patient: frozenset[str]
    elliptical_max: int
    everyday: frozenset[str]
    anchors: frozenset[str]
    idioms: tuple[tuple[str, ...], ...]
    meta: tuple[tuple[str, ...], ...]


def _phrases(values: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    out = {tuple(tokens(str(v))) for v in values}
    return tuple(sorted((p for p in out if p), key=lambda p: (-len(p), p)))


@lru_cache(maxsize=1)
def sense_data() -> SenseData:
    """The bundled ``sense.yaml``, loaded once."""
    raw = yaml.safe_load(resources.files("clinic_env.text").joinpath("sense.yaml").read_text(encoding="utf-8"))

    def words(key: str) -> frozenset[str]:
        return frozenset(t for v in raw.get(key, []) for t in tokens(str(v)))

    return SenseData(
        openers=frozenset(_phrases(raw.get("question_openers", []))),
        lead_ins=words("lead_ins"),
        complaint=_phrases(raw.get("complaint_openers", [])),
        doctor=words("doctor_words"),
        patient=words("patient_words"),
        elliptical_max=int(raw.get("elliptical_max_tokens", 4)),
        everyday=words("everyday_words"),
        anchors=words("anchors"),
        idioms=_phrases(raw.get("idioms", [])),
        meta=_phrases(raw.get("meta", [])),
    )


@dataclass(frozen=True)
class Reading:
    """How one sentence reads (see the module docstring).

    Attributes:
        toks: Its normalised tokens.
        question: Put as a question or a request.
        meta: The meta phrase found (a request about the conversation), or None.
        masked: Token positions inside idioms.
        patient: A patient word ("you", "your") outside idioms.
        anchored: A symptom or body word outside idioms.
        complaint: Opens on the complaint ("Does it...", "Is the pain...").
        elliptical: Short, and not about the doctor ("Any allergies?").
    """

    toks: tuple[str, ...]
    question: bool
    meta: tuple[str, ...] | None
    masked: frozenset[int]
    patient: bool
    anchored: bool
    complaint: bool
    elliptical: bool

    @property
    def addressed(self) -> bool:
        """Put to or about the patient."""
        return self.patient or self.anchored or self.complaint or self.elliptical


def _positions(toks: Sequence[str], phrases: tuple[tuple[str, ...], ...]) -> list[tuple[int, tuple[str, ...]]]:
    """Where any of ``phrases`` occurs in ``toks``: one dictionary look-up per position and
    phrase length (not per phrase)."""
    table = _table(phrases)
    out = []
    for n in sorted({len(p) for p in phrases}, reverse=True):
        for i in range(len(toks) - n + 1):
            key = tuple(toks[i : i + n])
            if key in table:
                out.append((i, key))
    return out


@lru_cache(maxsize=8)
def _table(phrases: tuple[tuple[str, ...], ...]) -> frozenset[tuple[str, ...]]:
    return frozenset(phrases)


def read(sentence: str) -> Reading:
    """The :class:`Reading` of one sentence (linear in its length times the list sizes)."""
    data = sense_data()
    toks = tuple(tokens(sentence))
    metas = _positions(toks, data.meta)
    meta = metas[0][1] if metas else None
    masked: set[int] = set()
    for i, idiom in _positions(toks, data.idioms):
        masked.update(range(i, i + len(idiom)))
    first = 0
    while first < len(toks) and toks[first] in data.lead_ins:
        first += 1
    head = toks[first:]
    opener = any(tuple(head[:n]) in data.openers for n in (1, 2, 3, 4, 5))
    live = [t for i, t in enumerate(toks) if i not in masked]
    patient = any(t in data.patient for t in live)
    doctor = any(t in data.doctor for t in live)
    elliptical = len(toks) <= data.elliptical_max and not doctor and not masked
    # A short topic with no verb of the doctor's ("chest pain", "smoking history") is a question
    # as typed in the teaching session; anything longer needs a question form.
    question = sentence.rstrip().endswith("?") or opener or elliptical
    # "It" in a question is the complaint ("How long does it last?"), unless the doctor is the
    # subject ("Is it OK if we start?").
    complaint = any(tuple(head[: len(p)]) == p for p in data.complaint) or ("it" in live and not doctor)
    return Reading(toks, question, meta, frozenset(masked), patient, any(t in data.anchors for t in live), complaint,
                   elliptical)


def everyday_ok(reading: Reading, start: int, length: int) -> bool:
    """Whether the phrase at token ``start`` (``length`` tokens) may name an item although every
    token of it has an everyday sense: the patient owns or does it ("your job", "do you drink",
    "have you had a fall", "worse when you walk"), it is said of the complaint ("Is it there all
    the time?"), or the sentence names a symptom or body part."""
    if reading.anchored or reading.complaint:
        return True
    patient = sense_data().patient
    return any(t in patient for t in reading.toks[max(0, start - 3) : start + length])


def is_everyday(phrase: Sequence[str], stop: frozenset[str]) -> bool:
    """Whether every token of ``phrase`` is an everyday-sense word or a stop word."""
    data = sense_data()
    return all(t in data.everyday or t in stop for t in phrase)


@dataclass(frozen=True)
class QuestionMatch:
    """The history item a sentence asks about, with its confidence, or why none (``item`` None)."""

    item: str | None
    confidence: float
    reason: str


def match_question(matcher: CatalogueMatcher, sentence: str, allowed: Sequence[str] | None = None,
                   threshold: float = THRESHOLD) -> QuestionMatch:
    """The history item ``sentence`` asks the patient about, if the reading is confident.

    Confidence (0-1): 0 for a meta request, a sentence that is not a question or request, or one
    not put to the patient (:attr:`Reading.addressed`); else the phrase hit's confidence
    (``_PHRASE_CONFIDENCE``: curated multi-word 0.95 ... shared one-word 0.6; phrases are matched
    word for word, then on content words only) or, when no phrase names an item, 0.3 + the
    idf-weighted word overlap (at most 0.85; 0 when fewer than two content words are shared, or
    when the runner-up item scores over 0.8 of the best: the words fit two items). Phrases inside
    idioms are ignored; a phrase made only of everyday-sense words needs the patient as its owner
    or actor, the complaint as subject, or a symptom word (:func:`everyday_ok`).
    Taken when the confidence reaches ``threshold`` (:data:`THRESHOLD`); ``allowed`` (legal ids)
    only resolves phrases shared by several items: an illegal item found is returned as found, so
    the caller can say it is not allowed rather than guess another.
    """
    reading = read(sentence)
    if reading.meta is not None:
        return QuestionMatch(None, 0.0, f"a request about the conversation ('{' '.join(reading.meta)}'), not a question")
    if not reading.question:
        return QuestionMatch(None, 0.0, "not a question to the patient")
    if not reading.addressed:
        return QuestionMatch(None, 0.0, "not put to the patient")
    best = QuestionMatch(None, 0.0, "names no history item")
    # The hit naming the most content words first ("vomited any blood" over "vomited"), then by position.
    hits = [*matcher.find("history", sentence, allowed), *matcher.find_content("history", sentence, allowed)]
    hits.sort(key=lambda h: (-sum(t not in _STOP for t in h.phrase.split()), h.start))
    for hit in hits:
        words = hit.phrase.split()
        span = range(hit.start, hit.start + len(words))
        if any(i in reading.masked for i in span):
            continue
        if is_everyday(words, _STOP) and not everyday_ok(reading, hit.start, len(words)):
            best = QuestionMatch(None, 0.0, f"'{hit.phrase}' is used in its everyday sense")
            continue
        conf = _PHRASE_CONFIDENCE[(hit.strength, len(words) > 1)]
        if conf >= threshold:
            return QuestionMatch(hit.item, conf, "phrase")
        best = QuestionMatch(None, conf, f"'{hit.phrase}' alone is too weak a cue")
    if best.reason != "names no history item" or not (reading.patient or reading.anchored or reading.elliptical):
        return best
    data = sense_data()
    live = [t for i, t in enumerate(reading.toks) if i not in reading.masked and t not in data.everyday
            and t not in _STOP]
    item, score, second = matcher.best_scored("history", " ".join(live), allowed)
    if item is None:
        return best
    shared = set(live) & set(matcher.index["history"].docs.get(item, {}))
    if len(shared) < _OVERLAP_MIN_WORDS:
        return QuestionMatch(None, 0.0, "too few words in common with any history item")
    if second > _MARGIN * score:
        return QuestionMatch(None, 0.0, "the words fit several history items about equally")
    conf = round(min(_OVERLAP_CAP, _OVERLAP_BASE + score), 3)
    if conf >= threshold:
        return QuestionMatch(item, conf, "overlap")
    return QuestionMatch(None, conf, "no confident match")
