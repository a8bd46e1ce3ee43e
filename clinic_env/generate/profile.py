"""What a test the case does not list shows: the result its gold diagnosis's profile implies.

A case lists the results its author wrote; the doctor may order any test of the catalogue. The
engine calls :func:`unlisted_result` for a test the case does not list, so that the world never
contradicts the case (an MRI brain in a subarachnoid haemorrhage shows the blood; a CT abdomen in
an aortic dissection reaching the renal arteries shows the flap). The rules:

1. **Profile.** The knowledge-base condition whose ICD-10 code is the case's gold diagnosis
   (:meth:`KnowledgeBase.condition`). When several conditions share the code, the one whose id
   and title share most words with the case's id and title (ties: knowledge-base order). When
   none has the code, the condition whose code the gold extends (``I21.01`` -> ``I21.0``, the
   longest such code); failing that, a condition in the gold's 3-character category whose
   catalogue label shares a content word with the gold's label (``I60.2`` subarachnoid
   haemorrhage from the anterior communicating artery -> ``I60.9`` subarachnoid haemorrhage; most
   shared words wins). No condition: no profile.
2. **Entry.** The profile's exam or test entry for the test, if it applies to the patient's age
   and sex.
3. **Entry found.** Abnormal iff its likelihood ``p >= 0.5`` (the result most patients with the
   condition have). Abnormal: one of the entry's abnormal templates (a ``@pattern`` is looked up
   in ``results.yaml``), with the entry's ``grade``. Normal: the entry's normal template, else the
   library's ``@normal`` pattern for the test, else the catalogue's normal result. Vital signs are
   flagged abnormal by their numbers (age-appropriate limits), as in the generator.
4. **No entry, or no profile.** The catalogue's normal result, not abnormal: a profile lists every
   test its condition makes abnormal that a doctor might order (the knowledge base is tested for
   this against the bundled cases), so a test it does not list is one the condition leaves normal.
5. **Template filling** is deterministic and consistent with the case: a local
   ``numpy.random.Generator`` seeded from ``case.id`` and the test id (never a global RNG) chooses
   the template and draws the numbers; pronouns follow the patient's sex, sex-specific ranges come
   from ``results.yaml``; ``{hr}``, ``{temp}`` and ``{sinus}`` come from the case's listed vital
   signs (else from the profile's vital signs, and a temperature from the fever history).
   Laterality: ``{side}`` (and ``{left|right}``) is the side the case's own texts name — first the
   chief complaint and opening statement, then the history, then the listed findings — and
   ``{other}`` is the opposite side. When the case names no side, or both at the same level, a
   template without side words is preferred; failing that, the side words become neutral
   ("affected", "contralateral").

Results are cached per case (id, gold, demographics) and test id, so the engine can call this in
``step()``.
"""

from __future__ import annotations

import re
import zlib
from functools import lru_cache

import numpy as np

from clinic_env.generate.coherence import parse_vitals, vital_flags
from clinic_env.generate.knowledge import Condition, FindingEntry, KnowledgeBase, load_knowledge
from clinic_env.generate.templates import draw_value, render
from clinic_env.schema.case import Case, Finding
from clinic_env.schema.catalogue import Catalogue
from clinic_env.schema.loading import load_catalogue

__all__ = ["case_profile", "case_side", "unlisted_result"]

_WORD = re.compile(r"[a-z0-9]+")
_SIDE_SLOT = re.compile(r"\{(?:side|Side|other|Other|left\|right|right\|left)\}")
_CHOICE_SIDE = re.compile(r"\{(?:left\|right|right\|left)\}")
#: A side word counts when it qualifies a body part ("my right knee", "left-sided") or a direction
#: ("on the left"), not in "all right", "the right words" or "I left work".
_BODY = ("leg|legs|arm|arms|knee|hip|ankle|foot|feet|calf|thigh|shoulder|elbow|wrist|hand|finger|toe|big|heel|eye|"
         "ear|side|sided|chest|lung|hemithorax|flank|loin|testis|testicle|scrotum|scrotal|ovary|ovarian|adnexa|"
         "adnexal|iliac|upper|lower|face|facial|kidney|renal|ureter|ureteric|tonsil|tonsillar|peritonsillar|temple|"
         "temporal|groin|buttock|breast|shin|pupil|fossa|hemisphere|parietal|frontal|occipital|mca|middle|internal|"
         "common|femoral|popliteal|carotid|half|sciatic|inguinal|axillary|patella|jaw|neck|back|base|basal|"
         "vesicoureteric|hemiparesis|hemiplegia|weakness|cheek|nostril|tympanic")
_LATERAL = re.compile(
    rf"\b(?:on|to|towards) the\s+(left|right)\b(?!\s+(?:of|thing|way|time|answer|one)\b)"
    rf"|\b(left|right)(?:[- ](?:{_BODY}))\b",
    re.IGNORECASE)
_GENERIC = frozenset({"unspecified", "other", "without", "mention", "including", "acute", "chronic", "specified"})
_NEUTRAL = {"{side}": "affected", "{Side}": "Affected", "{other}": "contralateral", "{Other}": "Contralateral",
            "{left|right}": "affected", "{right|left}": "affected"}


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def _label_words(label: str) -> set[str]:
    return {w for w in _words(label) if len(w) >= 5 and w not in _GENERIC}


def _same_category(gold: str, kb: KnowledgeBase, cat: Catalogue) -> list[Condition]:
    """Conditions in the gold's 3-character category whose catalogue label shares most content
    words with the gold's label (none shared: none)."""
    dx = cat.diagnoses.get(gold)
    if dx is None:
        return []
    words = _label_words(dx.label)
    scored = [(len(words & _label_words(cat.diagnoses[c.code].label)), c) for c in kb.conditions.values()
              if c.code[:3] == gold[:3] and c.code in cat.diagnoses]
    best = max((n for n, _ in scored), default=0)
    return [c for n, c in scored if n == best] if best > 0 else []


def case_profile(case: Case, kb: KnowledgeBase | None = None, catalogue: Catalogue | None = None) -> Condition | None:
    """The knowledge-base condition that profiles ``case``'s gold diagnosis (rule 1), or None."""
    kb = kb or load_knowledge()
    gold = case.gold_diagnosis
    same = [c for c in kb.conditions.values() if c.code == gold]
    if not same:
        parents = [c for c in kb.conditions.values() if gold.startswith(c.code)]
        if parents:
            longest = max(len(c.code) for c in parents)
            same = [c for c in parents if len(c.code) == longest]
        else:
            same = _same_category(gold, kb, catalogue or load_catalogue())
    if not same:
        return None
    if len(same) == 1:
        return same[0]
    words = _words(f"{case.id.replace('-', ' ')} {case.title}")
    # max() keeps the first of equals: knowledge-base order breaks ties.
    return max(same, key=lambda c: len(words & _words(f"{c.id.replace('-', ' ')} {c.title}")))


def _sides(text: str) -> set[str]:
    return {(m.group(1) or m.group(2)).lower() for m in _LATERAL.finditer(text)}


def case_side(case: Case) -> str | None:
    """The side (``"left"``/``"right"``) the case's own texts name, or None when they name none or
    both at the same level (see rule 5)."""
    levels = (
        [case.chief_complaint, case.opening_statement],
        [f.text for f in case.history.values() if f.present],
        [f.text for f in (*case.exam.values(), *case.tests.values())],
    )
    for texts in levels:
        found = set().union(*(_sides(t) for t in texts))
        if len(found) == 1:
            return found.pop()
        if found:
            return None
    return None


def _options(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _both_sexes(ranges: dict[str, str]) -> str | None:
    """For a patient whose sex is not stated: the part of the male and female ranges (``"lo-hi"``)
    that holds for both (Hb 134-162 and 122-148: 134-148), so the value fits either sex; None when
    they do not overlap or are not ranges."""
    found = [re.fullmatch(r"\s*(-?[\d.]+)\s*-\s*(-?[\d.]+)\s*", ranges.get(s, "")) for s in ("M", "F")]
    if not all(found):
        return None
    lows, highs = [float(m.group(1)) for m in found if m], [float(m.group(2)) for m in found if m]
    low, high = max(lows), min(highs)
    return f"{low:g}-{high:g}" if low <= high else None


class _Filler:
    """Chooses and fills a template for one (case, test) from its own seeded generator."""

    def __init__(self, case: Case, test_id: str, cond: Condition, kb: KnowledgeBase) -> None:
        self.case, self.kb, self.cond = case, kb, cond
        self.rng = np.random.default_rng(zlib.crc32(f"{case.id}\x00{test_id}".encode()))
        age, sex = case.demographics.age, case.demographics.sex
        male = sex == "M"
        self.vars: dict[str, str] = {
            "he": "he" if male else "she", "him": "him" if male else "her", "his": "his" if male else "her",
            "age": f"{age:g}", "man": "man" if male else "woman", "boy": "boy" if male else "girl",
        }
        if sex == "U":  # the source does not state the sex: neutral words, neither sex's ranges assumed
            self.vars.update(he="the patient", him="the patient", his="the patient's", man="person", boy="child")
        for name, ranges in kb.variables.items():
            spec = (_both_sexes(ranges) if sex == "U" else ranges.get(sex)) or ranges.get("any")
            if spec:
                self.vars[name] = draw_value(spec, self.rng) or spec
        for name, spec in cond.vars.items():
            if name not in ("side", "other"):
                self.vars[name] = draw_value(spec, self.rng) or spec
        self.side = case_side(case)
        if self.side is not None:
            self.vars["side"] = self.side
            self.vars["other"] = "right" if self.side == "left" else "left"
        self._vitals()

    def _vitals(self) -> None:
        listed = self.case.exam.get("exam.vitals")
        fever = self.case.history.get("sx.fever")
        self.vars["temp"] = draw_value("38.1-39.6:.1f" if fever is not None and fever.present
                                       else "36.4-37.4:.1f", self.rng) or "37.0"
        if listed is not None:
            text = listed.text
        else:
            entry = self.cond.exam.get("exam.vitals")
            text = (self.fill(entry.abnormal if entry.p >= 0.5 else entry.normal, "exam.vitals") or ""
                    if entry is not None else "")
        self.vars.update({k: f"{v:g}" for k, v in parse_vitals(text).items()})
        if "hr" in self.vars:
            hr = float(self.vars["hr"])
            self.vars["sinus"] = ("sinus tachycardia" if hr > 100 else "sinus bradycardia" if hr < 50
                                  else "sinus rhythm")

    def choose(self, test_id: str, value: str | list[str] | None) -> str | None:
        """One option, resolved through the results library, side-safe (rule 5)."""
        options = _options(value)
        if self.side is None and len(options) > 1:
            options = [o for o in options if not _SIDE_SLOT.search(o)] or options
        if not options:
            return None
        chosen = options[int(self.rng.integers(len(options)))]
        if chosen.startswith("@"):
            if test_id == "ecg.12lead" and chosen in ("@normal", "@sinus_tachycardia") and "hr" in self.vars:
                chosen = "@sinus_tachycardia" if float(self.vars["hr"]) > 100 else "@normal"
            patterns = self.kb.results.get(test_id, {}).get(chosen[1:])
            if not patterns:
                return None
            return self.choose(test_id, patterns)
        return chosen

    def fill(self, value: str | list[str] | None, test_id: str = "") -> str | None:
        chosen = self.choose(test_id, value)
        if chosen is None:
            return None
        if self.side is None:
            for slot, word in _NEUTRAL.items():
                chosen = chosen.replace(slot, word)
        else:
            chosen = _CHOICE_SIDE.sub("{side}", chosen)
        return render(chosen, self.rng, self.vars)


@lru_cache(maxsize=1)
def _bundled_kb() -> KnowledgeBase:
    return load_knowledge()


class _Key:
    """A case in the cache: equal when id, gold and demographics are (the case object is kept)."""

    __slots__ = ("case", "key")

    def __init__(self, case: Case, catalogue: Catalogue) -> None:
        self.case = case
        self.key = (case.id, case.gold_diagnosis, case.demographics.age, case.demographics.sex, id(catalogue))

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Key) and other.key == self.key


def _entry(cond: Condition, test_id: str, case: Case) -> FindingEntry | None:
    entry = cond.exam.get(test_id) or cond.tests.get(test_id)
    if entry is None or not entry.applies(case.demographics.age, case.demographics.sex):
        return None
    return entry


_CATALOGUES: dict[int, Catalogue] = {}


@lru_cache(maxsize=8192)
def _cached(key: _Key, test_id: str) -> Finding:
    case, cat = key.case, _CATALOGUES[key.key[-1]]
    if test_id not in cat.tests:
        raise KeyError(f"unlisted_result: unknown test id {test_id!r} (case {case.id!r})")
    normal = Finding(text=cat.tests[test_id].normal_result, abnormal=False)
    kb = _bundled_kb()
    cond = case_profile(case, kb, cat)
    entry = _entry(cond, test_id, case) if cond is not None else None
    if cond is None or entry is None:
        return normal
    filler = _Filler(case, test_id, cond, kb)
    if entry.p >= 0.5:
        text = filler.fill(entry.abnormal, test_id)
        abnormal = text is not None
    else:
        text, abnormal = None, False
    if text is None:
        text = filler.fill(entry.normal, test_id) or filler.fill("@normal", test_id)
    if text is None:
        return normal
    if test_id == "exam.vitals":
        flags = vital_flags(text, case.demographics.age)
        abnormal = bool(flags) if flags is not None else abnormal
    return Finding(text=text, abnormal=abnormal, grade=entry.grade if abnormal else None)


def unlisted_result(case: Case, test_id: str, catalogue: Catalogue | None = None) -> Finding:
    """The result of a test ``case`` does not list, consistent with its gold diagnosis.

    See the module docstring for the rules. Deterministic: the same case and test always give the
    same finding; cached per (case, test).

    Args:
        case: The case being played.
        test_id: A test or examination id of the catalogue.
        catalogue: The catalogue whose normal results are used (default: the bundled one). The
            profiles always come from the shipped knowledge base.

    Returns:
        A :class:`Finding`: abnormal (with ``grade``) when the gold's profile makes the test
        abnormal in most patients, otherwise the profile's or the catalogue's normal result.

    Raises:
        KeyError: When ``test_id`` is not in the catalogue.
    """
    cat = catalogue if catalogue is not None else load_catalogue()
    _CATALOGUES.setdefault(id(cat), cat)
    return _cached(_Key(case, cat), test_id)
