"""The leak guard: every patient text passes it before the doctor sees it.

The guard knows the case (its gold diagnosis and facts) and which history items the doctor has
asked about. It removes from a patient's reply every sentence that

- names the gold diagnosis: its ICD-10 code or category (also said in words), its catalogue label,
  the label's distinctive words and abbreviations, a shipped synonym (lay words and names in other
  languages, ``data/leak/foreign.yaml``) or a drug, test or procedure that gives it away
  (``data/leak/giveaways.yaml``), found through every encoding of
  :mod:`~clinic_env.patients.encodings` (spaced, dotted or spelled-out letters, phonetic
  alphabets, Morse, Caesar shifts, reversal, acrostics and initials, base-N and character codes,
  URL/HTML escapes, look-alike, fullwidth, zero-width and combining characters, leetspeak);
- talks about the script rather than the illness ("the correct diagnosis is...", "my case file");
- discloses a case fact the doctor has not asked about (by the history item's cue words, by
  repeating the fact's own wording, or by paraphrasing it: :mod:`~clinic_env.patients.disclosure`).

With ``history`` (the patient's earlier replies as shown), a reply that completes a name spread
over several turns is blocked whole; :class:`~clinic_env.patients.conversation.ConversationGuard`
keeps that history for a consultation.

A name of the diagnosis that the case itself puts in the patient's mouth for something the doctor
asked about (a known asthmatic saying "my asthma") or that the opening statement already used is
allowed. The result keeps the safe sentences, says what was blocked and whether anything leaked.

``LeakGuard(case, catalogue).check(text, asked, history=())`` is the interface LLM patients call
on every reply.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from clinic_env.patients.disclosure import WEAK, concepts
from clinic_env.patients.encodings import decoded_payloads, spoken_codes
from clinic_env.patients.normalise import STOPWORDS, TextViews, content_tokens, views, word_set
from clinic_env.patients.terms import (
    Term,
    TermIndex,
    code_mentions,
    diagnosis_terms,
    giveaway_terms,
    make_term,
    term_in,
)
from clinic_env.schema.case import Case
from clinic_env.schema.catalogue import Catalogue

__all__ = ["DIAGNOSIS", "META", "GuardResult", "LeakGuard", "split_sentences"]

#: Reason recorded when a sentence names the gold diagnosis (or its code).
DIAGNOSIS = "diagnosis"
#: Reason recorded when a sentence talks about the script, the answer or the simulation.
META = "meta"

FALLBACK_DIAGNOSIS = "I really don't know what's wrong with me, doctor. That's why I came."
FALLBACK_FACT = "Sorry, I'm not sure what you're asking me."

_SPLIT = re.compile(r"(?<=[.!?。！？])\s+|\n+")
_META = re.compile(
    r"\b(?:gold|correct|true|real|actual|final|official|hidden|secret|right)\s+(?:diagnos\w*|answer|label|code)\b"
    r"|\b(?:answer key|case (?:file|notes|sheet|description|card)|(?:my|the) script|system prompt"
    r"|(?:my|the|your) instructions|(?:my|the) prompt|ground truth|icd[\s-]*(?:10|code)|rubric|examiner'?s? checklist)\b"
    r"|\bi(?:'m| am) (?:just )?(?:an? )?(?:ai|a\.i\.|language model|assistant|chatbot|bot|simulat\w*|actor"
    r"|standardi[sz]ed patient|role-?play\w*)\b"
    r"|\b(?:the|my|your|this)\s+diagnosis\s+(?:is|was|will be|would be|should be)\s+(?!not\b|unknown\b|unclear\b)[\w\"'(]"
    r"|\b(?:i have|i've got|i am suffering from|it's|it is|you have|this is)\s+(?:been\s+)?diagnosed\b"
)
#: Cue words too general to show that a particular history item was talked about.
_CUE_GENERIC = word_set(
    """pattern timing time day days week start started long ago how when what where problem history family
    previous recent current other symptom symptoms feel feeling like get got go going worse better make
    made take taking use using thing things anything something much many often ever never well ill unwell
    sick issue issues trouble concern concerns worry worries"""
)


def split_sentences(text: str) -> list[str]:
    """Split a reply into sentences (and lines)."""
    return [s.strip() for s in _SPLIT.split(text) if s and s.strip()]


@dataclass(frozen=True)
class GuardResult:
    """What the guard let through.

    Attributes:
        text: The safe text to show the doctor (the reply without its blocked sentences, or a
            neutral line when nothing was left).
        blocked: Why sentences were removed: ``"diagnosis"``, ``"meta"`` and the ids of case facts
            not yet asked for, each once, in order of discovery. Empty when nothing was blocked.
        leaked: True when the reply tried to disclose something it must not (so ``blocked`` is
            not empty); the returned ``text`` itself never leaks.
        disclosed: Ids of the asked case facts the safe text talks about.
    """

    text: str
    blocked: list[str] = field(default_factory=list)
    leaked: bool = False
    disclosed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Analysis:
    """What one sentence mentions: the gold code, script talk, names of the diagnosis (indices into
    the guard's terms), cue words of facts ({fact id: cue indices}) and wording overlap with facts."""

    code: bool
    meta: bool
    terms: frozenset[int]
    cues: dict[str, frozenset[int]]
    overlaps: dict[str, float]
    #: Terms used on their own at least once (not only as the modifier of a compound such as "flu
    #: jab"), or found only through an encoding.
    bare: frozenset[int] = frozenset()


#: History items about other people or habits: their words ("my neighbour had flu", "my dad had a
#: heart attack") never license the patient naming the diagnosis for themselves.
_ABOUT_OTHERS = ("fam.", "social.", "hx.sick_contacts")

#: Words that make a name of the diagnosis the modifier of something else: a case's "flu jab" or
#: "flu-like" licenses those compounds, never a bare "I've got the flu" (stems, as tokenised).
_COMPOUND_HEADS = frozenset({"jab", "jabs", "vaccine", "vaccin", "vaccination", "shot", "shots", "injection",
                             "test", "screen", "screening", "like", "season", "clinic", "leaflet", "poster"})


def _following(term: Term, tokens: tuple[str, ...]) -> list[str] | None:
    """The token after each exact occurrence of ``term`` in ``tokens`` ("" at the end); None when
    the term's words never occur there in sequence (found another way, or not at all)."""
    n = len(term.words)
    if not n:
        return None
    found = [tokens[i + n] if i + n < len(tokens) else "" for i in range(len(tokens) - n + 1)
             if tokens[i:i + n] == term.words]
    return found or None


def _compound_only(term: Term, tokens: tuple[str, ...]) -> bool:
    """Whether every occurrence of ``term`` in ``tokens`` modifies a compound head ("flu jab")."""
    after = _following(term, tokens)
    return after is not None and all(w in _COMPOUND_HEADS for w in after)


def _fact_cues(hid: str, catalogue: Catalogue) -> list[Term]:
    """Words showing that a reply talks about history item ``hid`` (none for the ``hx.`` items,
    which describe the presenting complaint and are found by their wording only)."""
    item = catalogue.history.get(hid)
    if item is None or hid.startswith("hx."):
        return []
    cues: dict[tuple[str, ...], Term] = {}
    for phrase in (item.label, *item.synonyms):
        term = make_term(re.sub(r"\([^)]*\)", " ", phrase))
        if term is None or not term.words or all(w in _CUE_GENERIC for w in term.words):
            continue
        if sum(len(w) for w in term.words) < 4:
            continue
        cues.setdefault(term.words, term)
    return list(cues.values())


class LeakGuard:
    """Checks patient replies for one case.

    Args:
        case: The case (gold diagnosis, facts, opening statement).
        catalogue: The catalogue (diagnosis label, history items' cue words).
        extra_terms: More names of the diagnosis to block.
        min_overlap: Share of a fact's content words a sentence must repeat to count as telling it.
    """

    def __init__(self, case: Case, catalogue: Catalogue, extra_terms: Iterable[str] = (),
                 min_overlap: float = 0.6) -> None:
        self.case = case
        dx = catalogue.diagnoses.get(case.gold_diagnosis)
        self.code = case.gold_diagnosis
        self.category = case.gold_diagnosis.split(".")[0]
        # The diagnosis's names (label, synonyms, other languages) and the drugs, tests and
        # procedures that give it away (allowed, like names, where the case's own words use them).
        self.terms = diagnosis_terms(case.gold_diagnosis, dx.label if dx else None,
                                     [*giveaway_terms(case.gold_diagnosis), *extra_terms])
        self.min_overlap = min_overlap
        self.presenting = case.presenting_complaint
        base = [case.opening_statement, case.chief_complaint]
        if self.presenting in case.history:
            base.append(case.history[self.presenting].text)
        elif self.presenting in case.extra_items:  # a case-specific complaint, in the source's words
            base.append(case.extra_items[self.presenting].text)
        self._base_views = [(t, views(t)) for t in base]
        self._base_words = {w for t in base for w in content_tokens(t)}
        self._texts = {hid: self._fact_texts(hid) for hid in case.history}
        self.facts = [h for h in case.history if h != self.presenting]
        # Content words of each fact, whole and sentence by sentence (a reply may repeat one sentence).
        self.fact_words = {h: [set(content_tokens(t)) for t in (case.history[h].text, *split_sentences(case.history[h].text))]
                           for h in self.facts}
        self.cues = {h: _fact_cues(h, catalogue) for h in self.facts}
        # The same facts as concepts (paraphrases: lay synonyms, numbers in words, stems), less
        # what the opening already told the doctor.
        known = concepts(" ".join([case.opening_statement, case.chief_complaint]))
        self.fact_concepts = {h: [c - known for c in map(concepts, (case.history[h].text,
                                                                  *split_sentences(case.history[h].text)))]
                              for h in self.facts}
        self._term_index = TermIndex(self.terms)
        self._cue_owner = [(h, j) for h in self.facts for j in range(len(self.cues[h]))]
        self._cue_index = TermIndex([self.cues[h][j] for h, j in self._cue_owner], fuzzy=False)
        # Names of the diagnosis or cue words that the case's own wording uses are allowed once the
        # doctor has asked the item whose answer uses them (or always, if the opening uses them).
        # Worked out on first need: most replies mention neither.
        self._term_sources: dict[int, frozenset[str]] = {}
        self._compound: dict[tuple[int, str], bool] = {}
        self._cue_sources: dict[tuple[str, int], frozenset[str]] = {}
        self._cache: dict[str, _Analysis] = {}
        self._clean: dict[str, bool] = {}

    def _fact_texts(self, hid: str) -> list[tuple[str, TextViews]]:
        fact = self.case.history[hid]
        return [(t, views(t)) for t in (fact.text, fact.vague, fact.contradiction) if t]

    def _sources(self, term: Term, fuzzy: bool = True, own_only: bool = False) -> frozenset[str]:
        """Where the case's own words use ``term``: ``{"*"}`` (the opening) or fact ids. With
        ``own_only``, facts about other people or habits (family, social history, sick contacts) do not count:
        "my dad had a heart attack" does not license "I've got a heart attack"."""
        if any(term_in(term, v, raw, fuzzy) for raw, v in self._base_views):
            return frozenset({"*"})
        return frozenset(h for h, pairs in self._texts.items()
                         if not (own_only and h.startswith(_ABOUT_OTHERS))
                         and any(term_in(term, v, raw, fuzzy) for raw, v in pairs))

    def _term_allowed(self, i: int, asked: set[str], bare: bool = True) -> bool:
        """Whether a name of the diagnosis is licensed by the case's own words for what was asked.
        A source that uses it only as a modifier ("flu jab") licenses only such uses (``bare``
        False), never the name on its own."""
        src = self._term_sources.get(i)
        if src is None:
            # Exact words only: "anaemic" in an asked answer does not license "anaemia".
            src = self._term_sources[i] = self._sources(self.terms[i], fuzzy=False, own_only=True)
        licensed = {h for h in src if h == "*" or h in asked}
        if not licensed:
            return False
        if not bare:
            return True
        return any(not self._compound_source(i, h) for h in licensed)

    def _compound_source(self, i: int, hid: str) -> bool:
        """Whether every use of term ``i`` in source ``hid`` ("*": the opening) is a compound's modifier."""
        key = (i, hid)
        hit = self._compound.get(key)
        if hit is None:
            pairs = self._base_views if hid == "*" else self._texts.get(hid, [])
            uses = [_following(self.terms[i], v.token_lists[0]) for _, v in pairs]
            found = [u for u in uses if u is not None]
            hit = self._compound[key] = bool(found) and all(w in _COMPOUND_HEADS for u in found for w in u)
        return hit

    def _cue_allowed(self, hid: str, j: int, asked: set[str]) -> bool:
        src = self._cue_sources.get((hid, j))
        if src is None:
            src = self._cue_sources[(hid, j)] = self._sources(self.cues[hid][j], fuzzy=False)
        return "*" in src or bool(src & asked)

    # ------------------------------------------------------------------------------------ checks
    def _analyse(self, sentence: str) -> _Analysis:
        """What a sentence mentions, before looking at what was asked (cached per guard)."""
        hit = self._cache.get(sentence)
        if hit is not None:
            return hit
        v = views(sentence)
        meta = bool(_META.search(v.folded))
        code = self._has_code(sentence)
        terms = frozenset(self._term_index.find(sentence, v))
        cues: dict[str, frozenset[int]] = {}
        for k in self._cue_index.find(sentence, v):
            hid, j = self._cue_owner[k]
            cues[hid] = cues.get(hid, frozenset()) | {j}
        words = {w for w in v.token_lists[0] if w not in STOPWORDS and len(w) > 2}
        # A sentence that only repeats the opening (known to the doctor) tells no new fact.
        novel = words - self._base_words
        said = concepts(sentence)
        overlaps = ({h: o for h in self.facts if (o := max(self._overlap(words, h), self._paraphrase(said, h))) > 0}
                    if len(novel) > 0.2 * max(len(words), 1) else {})
        bare = frozenset(i for i in terms if not _compound_only(self.terms[i], v.token_lists[0]))
        result = _Analysis(code, meta, terms, cues, overlaps, bare)
        if len(self._cache) > 2048:
            self._cache.clear()
        self._cache[sentence] = result
        return result

    def _paraphrase(self, said: frozenset[str], hid: str) -> float:
        """Share of a fact's concepts a sentence repeats (3 at least, or all of a short fact's)."""
        best = 0.0
        for fact in self.fact_concepts[hid]:
            shared = said & fact
            common = len(shared) if len(shared - WEAK) >= 2 else min(len(shared), 2)
            if common >= 3 or (common >= 2 and len(fact) <= 3):
                share = common / max(len(fact), 1)
                # Four shared concepts tell the fact whatever its length, three most of a short one.
                told = common >= 4 or (common == 3 and share >= 0.45)
                best = max(best, share, self.min_overlap if told else 0.0)
        return best

    def _has_code(self, text: str) -> bool:
        """Whether ``text`` gives the gold's ICD-10 category: written, in words, or encoded."""
        found = code_mentions(text) + code_mentions(spoken_codes(text)) + code_mentions(spoken_codes(text, True))
        for hidden in decoded_payloads(text):
            found += code_mentions(hidden)
        return any(c.split(".")[0] == self.category for c in found)

    def _flagged(self, text: str, asked: set[str]) -> frozenset[str]:
        """What names the diagnosis in ``text`` as a whole (not allowed by what was asked):
        ``"code"`` and the indices of the terms found."""
        a = self._analyse(text)
        out = {str(i) for i in a.terms if not self._term_allowed(i, asked, i in a.bare)}
        return frozenset(out | ({"code"} if a.code else set()))

    def _overlap(self, words: set[str], hid: str) -> float:
        best = 0.0
        for fact in self.fact_words[hid]:
            common = len(words & fact)
            if len(fact) >= 3 and common >= 3:
                best = max(best, common / len(fact))
            # A short fact ("Penicillin.", "I'm an electrician.") is told by its long words alone.
            elif 0 < len(fact) < 3 and common == len(fact) and all(len(w) >= 7 for w in fact):
                best = max(best, 1.0)
        return best

    def _names_diagnosis(self, a: _Analysis, asked: set[str]) -> bool:
        return a.code or any(not self._term_allowed(i, asked, i in a.bare) for i in a.terms)

    @staticmethod
    def _restates(a: _Analysis, asked: set[str]) -> bool:
        return max((o for h, o in a.overlaps.items() if h in asked), default=0.0) >= 0.8

    def _flags_diagnosis(self, a: _Analysis, asked: set[str]) -> bool:
        # A sentence that restates the case's own answer to an asked item may use its words.
        return a.code or (self._names_diagnosis(a, asked) and not self._restates(a, asked))

    def _reasons(self, a: _Analysis, asked: set[str]) -> list[str]:
        reasons: list[str] = []
        if self._flags_diagnosis(a, asked):
            reasons.append(DIAGNOSIS)
        if a.meta:
            reasons.append(META)
        best_asked = max((o for h, o in a.overlaps.items() if h in asked), default=0.0)
        for hid in self.facts:
            if hid in asked:
                continue
            said = any(not self._cue_allowed(hid, j, asked) for j in a.cues.get(hid, ()))
            share = a.overlaps.get(hid, 0.0)
            if said or (share >= self.min_overlap and share > best_asked):
                reasons.append(hid)
        return reasons

    def scan(self, text: str, asked: Iterable[str] = ()) -> list[tuple[str, list[str]]]:
        """Every sentence of ``text`` with the reasons it would be blocked (empty list: safe)."""
        asked_set = set(asked) | {self.presenting}
        return [(s, self._reasons(self._analyse(s), asked_set)) for s in split_sentences(text)]

    def check(self, text: str, asked: Iterable[str] = (), history: Sequence[str] = ()) -> GuardResult:
        """Filter a patient reply.

        Args:
            text: What the patient (for example an LLM) said.
            asked: Ids of the history items the doctor has asked about so far (the presenting
                complaint counts as asked).
            history: The patient's earlier replies as the doctor saw them (oldest first). A reply
                that, read after them, completes a name of the diagnosis (a word split over turns,
                spelled a letter a turn, an acrostic over replies) is blocked whole.

        Returns:
            A :class:`GuardResult` whose ``text`` is safe to show the doctor.
        """
        asked_set = set(asked) | {self.presenting}
        scanned = self.scan(text, asked_set)
        blocked: list[str] = []
        kept: list[str] = []
        for sentence, reasons in scanned:
            if reasons:
                blocked += [r for r in reasons if r not in blocked]
            else:
                kept.append(sentence)
        safe = " ".join(kept)
        # A name spread over several "sentences" ("A. P. P. E. N. ...") only shows in the whole:
        # drop the letter-sized fragments, and everything if that is not enough.
        own = [k for k in kept if not self._restates(self._analyse(k), asked_set)]
        if len(own) > 1 and self._names_diagnosis(self._analyse(" ".join(own)), asked_set):
            blocked = [DIAGNOSIS, *[b for b in blocked if b != DIAGNOSIS]]
            kept = [k for k in kept if len(re.sub(r"\W", "", k)) > 2]
            own = [k for k in own if len(re.sub(r"\W", "", k)) > 2]
            safe = "" if own and self._names_diagnosis(self._analyse(" ".join(own)), asked_set) else " ".join(kept)
        # The reply read after the earlier ones (its sentences that restate an asked fact may use
        # the case's own words, as above).
        new = " ".join(k for k in own if k in kept)
        if safe and history and new:
            before = " ".join(history)
            if self._flagged(f"{before} {new}", asked_set) - self._flagged(before, asked_set) \
                    or self._flagged("\n".join([*history, new]), asked_set) - self._flagged("\n".join(history), asked_set):
                blocked = [DIAGNOSIS, *[b for b in blocked if b != DIAGNOSIS]]
                safe = ""
        if not safe:
            safe = FALLBACK_DIAGNOSIS if (DIAGNOSIS in blocked or META in blocked) else FALLBACK_FACT
        disclosed = self._disclosed(safe, asked_set) if safe not in (FALLBACK_DIAGNOSIS, FALLBACK_FACT) else []
        return GuardResult(safe, blocked, bool(blocked), disclosed)

    def _disclosed(self, text: str, asked: set[str]) -> list[str]:
        found: list[str] = []
        for sentence in split_sentences(text):
            a = self._analyse(sentence)
            found += [h for h in self.facts if h in asked and h not in found
                      and (h in a.cues or a.overlaps.get(h, 0.0) >= 0.5)]
        return found

    def is_clean(self, text: str) -> bool:
        """True when ``text`` mentions nothing the guard looks for, whatever was asked (cached)."""
        clean = self._clean.get(text)
        if clean is None:
            clean = all(not (a.code or a.meta or a.terms or a.cues or a.overlaps)
                        for a in map(self._analyse, split_sentences(text)))
            self._clean[text] = clean
        return clean

    def leaks(self, text: str, asked: Iterable[str] = ()) -> bool:
        """Whether ``text`` would have anything blocked."""
        return any(reasons for _, reasons in self.scan(text, asked))
