"""Synthetic patients for teaching: valid, clinically coherent cases drawn from the knowledge base.

``CaseGenerator().generate("appendicitis", seed=7, difficulty=2, age=19, sex="F", persona="low-literacy")``
draws one case; the same arguments always give the same case (a ``numpy`` generator seeded from
them, nothing global). What is drawn and how:

- **patient**: sex and age from the condition's prevalence (or given, and then checked against
  it and against the catalogue's age/sex limits for the diagnosis);
- **difficulty** 1 (classic: every feature with likelihood >= 0.5 present, the rest absent, no
  vague answers), 2 (typical: features drawn by their likelihoods, two vague answers) or 3
  (atypical: supporting features drawn at 70% of their likelihood, four vague answers, a scripted
  contradiction, a wider differential). At every difficulty a feature with likelihood >= 0.95 is
  present and one <= 0.05 is absent, so nothing contradicts the condition. What each level
  changes is tested (``tests/generate/test_coherence_rules.py``): the share of typical features
  shown falls (1.0, then drawn, then fewer), vague answers and contradictions rise (a symptom
  without vague wording takes a generic one from ``rules.yaml``), the differential widens;
- **coherence rules** (``data/coherence/rules.yaml``, checked by
  :func:`~clinic_env.generate.coherence.check_rules`) are applied while drawing: the brief
  (chief complaint, opening line) is drawn first and every symptom it names is forced present in
  the script; history items and wording a patient of this age and sex cannot have are never
  drawn (no COPD at 24, no "our two children" at 86); the initial assessment is essential (vital
  signs always, SpO2 and GCS when abnormal); wording that implies an injury (a leg in plaster)
  gets its backstory and its examination card; every duration is put the way people say it;
- **history**: the condition's features, the persona-independent background every patient has
  (social, family, drug history, age-appropriate comorbidities), in the patient's words, put into
  lay vocabulary for the persona's literacy;
- **exam and tests**: typical results with seeded values and the entry's grade (mild or marked);
  temperature follows the fever history; ``{other}`` is always the side opposite ``{side}``;
- **initial assessment**: every case lists pulse oximetry and the Glasgow Coma Scale, which the
  doctor may order from the first cycle, consistent with the case's own texts: the SpO2 and oxygen
  wording of the vital signs, flagged by the thresholds in ``results.yaml`` (abnormal below 94%,
  marked below 92%); the GCS any examination text states (else a cue word such as "drowsy", else
  15), with its E/V/M breakdown and, under 5, the paediatric verbal and motor wording. A condition
  profile's own entry for either wins (its flag follows its number);
- **confirmatory evidence**: the condition's alternatives whose items the case holds (history
  present; findings listed and abnormal, or listed where the condition leaves them normal), else
  each abnormal essential test alone;
- **differential, essential/optional tests, rubric, budget** from the condition and the catalogue.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from clinic_env.generate.coherence import GCS_STATED, SPO2_STATED, parse_vitals, vital_flags
from clinic_env.generate.knowledge import (
    BackgroundOption,
    Condition,
    FindingEntry,
    KnowledgeBase,
    load_knowledge,
)
from clinic_env.generate.rubric import budget, differential, rubric
from clinic_env.generate.rules import (
    brief_symptoms,
    conflicts,
    item_allowed,
    load_rules,
    natural_durations,
    text_allowed,
)
from clinic_env.generate.templates import draw_value, render
from clinic_env.patients.vocabulary import lay_text
from clinic_env.schema.case import Case
from clinic_env.schema.catalogue import Catalogue
from clinic_env.schema.errors import DataError
from clinic_env.schema.loading import check_case_references, load_catalogue, load_personas, parse_model
from clinic_env.schema.persona import COOPERATIVE, Persona

__all__ = ["CaseGenerator", "GeneratedCase", "GenerationError", "generate_case"]

_DIFFICULTY_P = (0.3, 0.5, 0.2)
#: Background items every patient is asked about when they apply (pregnancy and menstrual
#: questions for women of reproductive age are a safety matter); the rest fill the history up.
_CORE_BACKGROUND = frozenset({
    "social.smoking", "social.alcohol", "social.occupation", "social.living_situation", "allergy.drug",
    "pmh.previous_surgery", "obgyn.lmp", "obgyn.pregnancy_possible", "pmh.birth_history", "pmh.vaccinations",
    "pmh.development",
})
_VAGUE = {1: 0, 2: 2, 3: 4}
_PULSE_OX, _GCS = "bedside.pulse_oximetry", "exam.gcs"
_NEGATION = frozenset({"not", "no", "nor", "never", "without"})


class GenerationError(ValueError):
    """A request the knowledge base cannot satisfy (names the argument and its value)."""


@dataclass(frozen=True)
class GeneratedCase:
    """A generated case with what it was generated from."""

    case: Case
    persona: Persona
    condition: Condition
    seed: int
    difficulty: int


def _stable(text: str) -> int:
    return zlib.crc32(text.encode())


def _pick(options: list[str] | str | None, rng: np.random.Generator) -> str | None:
    if options is None:
        return None
    if isinstance(options, str):
        return options
    return options[int(rng.integers(len(options)))] if options else None


class CaseGenerator:
    """Draws cases from a knowledge base.

    Args:
        knowledge: The knowledge base (default: the shipped one).
        catalogue: The catalogue cases are checked against (default: bundled).
        personas: Personas that ``persona=`` ids refer to (default: bundled).
    """

    def __init__(self, knowledge: KnowledgeBase | None = None, catalogue: Catalogue | None = None,
                 personas: list[Persona] | None = None) -> None:
        self.cat = catalogue or load_catalogue()
        self.kb = knowledge or load_knowledge(catalogue=catalogue)
        self._personas = personas

    # ------------------------------------------------------------------------------- choices
    def _persona(self, persona: str | Persona | None, cond: Condition) -> Persona:
        if isinstance(persona, Persona):
            return persona
        if self._personas is None:
            self._personas = load_personas()
        personas = {p.id: p for p in self._personas}
        if persona is None:
            persona = "parent-proxy" if cond.informant == "parent" else "cooperative"
            return personas.get(persona, COOPERATIVE)
        if persona not in personas:
            raise GenerationError(f"persona={persona!r}: not a bundled persona id ({', '.join(sorted(personas))})")
        return personas[persona]

    def _demographics(self, cond: Condition, rng: np.random.Generator, age: float | None,
                      sex: str | None) -> tuple[float, str]:
        dx = self.cat.diagnoses[cond.code]
        weights = {s: w for s, w in cond.prevalence.sex.items() if w > 0 and dx.sex in ("any", s)}
        if sex is not None:
            if sex not in ("M", "F"):
                raise GenerationError(f"sex={sex!r}: must be 'M' or 'F'")
            if sex not in weights:
                raise GenerationError(f"sex={sex!r}: {cond.title} is not generated for this sex")
        else:
            keys = sorted(weights)
            p = np.array([weights[k] for k in keys]) / sum(weights.values())
            sex = keys[int(rng.choice(len(keys), p=p))]
        lo_dx, hi_dx = dx.age_min or 0.0, dx.age_max if dx.age_max is not None else 120.0
        bands = [(max(lo, lo_dx), min(hi, hi_dx), w) for lo, hi, w in cond.prevalence.bands()
                 if w > 0 and max(lo, lo_dx) <= min(hi, hi_dx)]
        if age is not None:
            if not any(lo <= age <= hi for lo, hi, _ in bands):
                raise GenerationError(f"age={age}: {cond.title} is generated for ages "
                                      f"{', '.join(f'{lo:g}-{hi:g}' for lo, hi, _ in bands)}")
            return float(age), sex
        p = np.array([w for *_, w in bands]) / sum(w for *_, w in bands)
        lo, hi, _ = bands[int(rng.choice(len(bands), p=p))]
        if hi < 2:  # infants: whole months
            months = int(rng.integers(max(1, round(lo * 12)), max(1, round(hi * 12)) + 1))
            return round(months / 12, 2), sex
        return float(rng.integers(int(np.ceil(lo)), int(hi) + 1)), sex

    # ------------------------------------------------------------------------------- drawing
    def generate(self, condition: str | Condition, seed: int = 0, difficulty: int | None = None,
                 age: float | None = None, sex: str | None = None, persona: str | Persona | None = None,
                 ) -> GeneratedCase:
        """Generate one case (see the module docstring).

        Args:
            condition: A condition id or ICD-10 code of the knowledge base (or a Condition).
            seed: Seed; the same arguments give the same case.
            difficulty: 1, 2 or 3 (default: drawn 30/50/20%).
            age: Age in years (default: drawn from the prevalence).
            sex: ``"M"`` or ``"F"`` (default: drawn from the prevalence).
            persona: Persona id or Persona (default: cooperative, or the parent proxy for young
                children); its literacy sets the vocabulary of the patient's words.

        Raises:
            GenerationError: For an unknown condition or persona, or an age/sex the condition
                does not occur in.
        """
        try:
            cond = condition if isinstance(condition, Condition) else self.kb.condition(condition)
        except KeyError as exc:
            raise GenerationError(str(exc.args[0])) from None
        if difficulty is not None and difficulty not in (1, 2, 3):
            raise GenerationError(f"difficulty={difficulty!r}: must be 1, 2 or 3")
        pers = self._persona(persona, cond)
        if seed < 0:
            raise GenerationError(f"seed={seed}: must be >= 0")
        key = [seed, _stable(cond.id), difficulty or 0, 0 if age is None else 1 + int(age * 100),
               {"M": 1, "F": 2}.get(sex or "", 0), _stable(pers.id)]
        rng = np.random.default_rng(np.random.SeedSequence(key))
        age_v, sex_v = self._demographics(cond, rng, age, sex)
        level = difficulty or int(rng.choice(3, p=_DIFFICULTY_P)) + 1
        case = _Draft(self, cond, rng, age_v, sex_v, level, pers, seed).build()
        return GeneratedCase(case, pers, cond, seed, level)

    def generate_many(self, n: int, seed: int = 0, conditions: list[str] | None = None,
                      **kwargs: Any) -> list[GeneratedCase]:
        """``n`` cases cycling through ``conditions`` (default: all), with seeds ``seed``, ``seed + 1``..."""
        keys = conditions or list(self.kb.conditions)
        return [self.generate(keys[i % len(keys)], seed=seed + i, **kwargs) for i in range(n)]


def generate_case(condition: str, seed: int = 0, **kwargs: Any) -> Case:
    """One generated :class:`Case` from the shipped knowledge base (see :meth:`CaseGenerator.generate`)."""
    return CaseGenerator().generate(condition, seed=seed, **kwargs).case


def _confirmatory(cond: Condition, history: dict[str, dict[str, Any]], exam: dict[str, dict[str, Any]],
                  tests: dict[str, dict[str, Any]], essential: list[str]) -> list[list[str]]:
    """The condition's confirmatory alternatives whose ids the case all holds: a history fact
    present, a finding listed and abnormal (or listed, for an item the condition leaves normal in
    most patients, e.g. the troponin of unstable angina); failing that, each abnormal essential
    test alone."""

    def holds(item: str) -> bool:
        if item in history:
            return bool(history[item]["present"])
        finding = exam.get(item) or tests.get(item)
        entry = cond.exam.get(item) or cond.tests.get(item)
        return finding is not None and (bool(finding["abnormal"]) or (entry is not None and entry.p < 0.5))

    kept = [list(alt) for alt in cond.confirmatory if all(holds(i) for i in alt)]
    if kept:
        return kept
    return [[t] for t in essential if (f := exam.get(t) or tests.get(t)) is not None and f["abnormal"]]


def _natural(data: dict[str, Any]) -> None:
    """Durations in every text of a case as people say them ("44 hours" -> "2 days")."""
    for key in ("chief_complaint", "opening_statement"):
        data[key] = natural_durations(data[key])
    for fact in data["history"].values():
        for key in ("text", "vague", "contradiction"):
            if fact.get(key):
                fact[key] = natural_durations(fact[key])
    for group in ("exam", "tests"):
        for finding in data[group].values():
            finding["text"] = natural_durations(finding["text"])


class _Draft:
    """The state of one case being drawn."""

    def __init__(self, gen: CaseGenerator, cond: Condition, rng: np.random.Generator, age: float, sex: str,
                 difficulty: int, persona: Persona, seed: int) -> None:
        self.gen, self.cat, self.kb, self.cond, self.rng = gen, gen.cat, gen.kb, cond, rng
        self._sinus_tachy: bool | None = None
        self._meds_crit = 1
        self.age, self.sex, self.difficulty, self.persona, self.seed = age, sex, difficulty, persona, seed
        self.rules = load_rules()
        self.said: list[str] = []  # the brief and the answers so far (conflicts)
        child = sex == "M"
        self.vars: dict[str, str] = {
            "he": "he" if child else "she", "him": "him" if child else "her", "his": "his" if child else "her",
            "age": f"{age:g}", "man": "man" if child else "woman", "boy": "boy" if child else "girl",
        }
        for name, ranges in self.kb.variables.items():
            spec = ranges.get(sex) or ranges.get("any")
            if spec:
                self.vars[name] = draw_value(spec, rng) or spec
        for name, spec in cond.vars.items():
            self.vars[name] = draw_value(spec, rng) or render(spec, rng, self.vars)
        if self.vars.get("side") in ("left", "right"):
            # {other} is the opposite side (the hemisphere of a stroke), never drawn on its own.
            self.vars["other"] = "right" if self.vars["side"] == "left" else "left"

    def text(self, options: list[str] | str | None, said: bool = False) -> str | None:
        """One option, rendered. ``said``: the patient's words, so an option this patient could
        not say (``text_limits``: "our two children" at 86) is never picked; None when none fits."""
        if said and options is not None:
            options = [o for o in ([options] if isinstance(options, str) else options) if self.sayable(o)]
        chosen = _pick(options, self.rng)
        return None if chosen is None else render(chosen, self.rng, self.vars)

    def sayable(self, template: str) -> bool:
        """Whether this patient may say ``template`` (its wording, placeholders aside), and it
        clashes with nothing said so far (``conflicts``)."""
        return (not text_allowed(template, self.age, self.sex, self.rules)
                and not conflicts([*self.said, template], self.rules))

    def lay(self, text: str | None) -> str | None:
        return None if text is None else lay_text(text, self.persona.literacy)

    def present(self, p: float, atypical: bool = True) -> bool:
        """Whether a feature of likelihood ``p`` is present: classic cases take the likely ones,
        others draw; an atypical (difficulty 3) history has fewer supporting features."""
        if p >= 0.95:
            return True
        if p <= 0.05:
            return False
        if self.difficulty == 1:
            return p >= 0.5
        return bool(self.rng.random() < (0.7 * p if atypical and self.difficulty == 3 else p))

    # ------------------------------------------------------------------------------- history
    def history(self, presenting: str, implied: list[str]) -> dict[str, dict[str, Any]]:
        facts: dict[str, dict[str, Any]] = {}
        for hid, entry in self.cond.history.items():
            if not entry.applies(self.age, self.sex):
                continue
            if not item_allowed(hid, self.age, self.sex, self.rules) and entry.neg is None and hid not in self.kb.lexicon:
                continue  # nothing to say for "no" (COPD is not asked of a child)
            if hid == "meds.current" and entry.pos is None:
                # The medicine list is composed from the condition's and the background's medicines.
                self._meds_crit = entry.crit
                continue
            yes = hid == presenting or hid in implied or self.present(entry.p)
            # No COPD at 24, no menopause at 30 (history_limits), whatever the draw.
            yes = yes and item_allowed(hid, self.age, self.sex, self.rules)
            # The generic lexicon speaks in the first person: a parent-voice condition words its own.
            words = self.kb.lexicon.get(hid, {}) if self.cond.informant == "patient" else {}
            if yes:
                text = self.text(entry.pos, said=True) or self.text(words.get("pos"), said=True)
                if text is None:  # nothing this patient could say for it: a plain no
                    yes = False
            if not yes:
                text = (self.text(entry.neg, said=True) or self.text(words.get("neg"), said=True)
                        or self.cat.history[hid].default_answer)
            fact: dict[str, Any] = {"text": text, "present": yes, "criticality": entry.crit}
            vague = self.text(entry.vague, said=True) or self.text(words.get("vague"), said=True)
            if yes and vague:
                fact["vague_option"] = vague
            facts[hid] = fact
        for hid in implied:
            # A symptom the brief names that the condition does not word: the lexicon's words.
            words = self.kb.lexicon.get(hid, {})
            if hid not in facts and hid in self.cat.history and self.cond.informant == "patient" and words.get("pos"):
                facts[hid] = {"text": self.text(words["pos"], said=True) or self.cat.history[hid].label,
                              "present": True, "criticality": 1}
        if presenting not in facts:
            facts[presenting] = {"text": self.text(self.kb.lexicon.get(presenting, {}).get("pos"))
                                 or self.cat.history[presenting].label, "present": True, "criticality": 1}
        return facts

    def background(self, facts: dict[str, dict[str, Any]]) -> list[str]:
        """Add the background items the condition does not define (the core ones always, others
        until the history holds 18-24 facts); returns the medicines they imply."""
        meds = [render(m, self.rng, self.vars) for m in self.cond.meds]
        category = self.cond.code.split(".")[0]
        target = int(self.rng.integers(18, 25))
        others = [h for h in self.kb.background if h not in _CORE_BACKGROUND]
        order = [h for h in self.kb.background if h in _CORE_BACKGROUND] + [others[i] for i in self.rng.permutation(len(others))]
        for hid in order:
            options = self.kb.background[hid]
            if hid in facts or hid == "meds.current" or (hid not in _CORE_BACKGROUND and len(facts) >= target):
                continue
            usable = [o for o in options if o.applies(self.age, self.sex)
                      and self.cond.code not in o.exclude_codes and category not in o.exclude_codes
                      and (not o.present or item_allowed(hid, self.age, self.sex, self.rules))
                      and any(self.sayable(t) for t in ([o.text] if isinstance(o.text, str) else o.text))]
            if not usable:
                continue
            option = self._choose(usable)
            fact: dict[str, Any] = {"text": self.text(option.text, said=True), "present": option.present,
                                    "criticality": 1}
            if option.vague and (vague := self.text(option.vague, said=True)):
                fact["vague_option"] = vague
            if option.contradiction and (contra := self.text(option.contradiction, said=True)):
                fact["contradiction_option"] = contra
            facts[hid] = fact
            self.said.append(fact["text"] or "")
            meds += [render(m, self.rng, self.vars) for m in option.meds]
        return meds

    def _choose(self, options: list[BackgroundOption]) -> BackgroundOption:
        if self.difficulty == 1 and len(options) > 1:
            return max(options, key=lambda o: o.weight)  # the commonest background for a classic case
        w = np.array([o.weight for o in options])
        return options[int(self.rng.choice(len(options), p=w / w.sum()))]

    def medicines(self, facts: dict[str, dict[str, Any]], meds: list[str]) -> None:
        if "meds.current" in facts:
            return
        meds = list(dict.fromkeys(meds))
        child = self.cond.informant == "parent"
        if meds:
            listing = meds[0] if len(meds) == 1 else ", ".join(meds[:-1]) + " and " + meds[-1]
            text = (f"{self.vars['he'].capitalize()} takes {listing}." if child else f"I take {listing}.")
            facts["meds.current"] = {"text": text, "present": True, "criticality": self._meds_crit}
        else:
            text = ("Nothing regular, just Calpol when {he} needs it." if child
                    else self.text(["I don't take any regular medicines.", "Nothing regular, no.",
                                    "No regular tablets or anything."]) or "Nothing regular, no.")
            facts["meds.current"] = {"text": render(text, self.rng, self.vars), "present": False,
                                     "criticality": self._meds_crit}

    def finalise_history(self, facts: dict[str, dict[str, Any]], presenting: str) -> dict[str, dict[str, Any]]:
        vague_n = _VAGUE[self.difficulty] + (1 if self.persona.noise.vague > 0.2 and self.difficulty > 1 else 0)
        candidates = [h for h, f in facts.items() if f.get("vague_option") and f["present"] and h != presenting]
        candidates.sort(key=lambda h: -facts[h]["criticality"])
        # Too few worded vague answers (an atypical case has fewer features): a generic one for
        # other symptoms, so that harder always means noisier.
        generic = [h for h, f in facts.items() if f["present"] and h != presenting and h not in candidates
                   and h.startswith(("sx.", "hx."))]
        for hid in generic[: max(0, vague_n - len(candidates))]:
            facts[hid]["vague_option"] = self.text(self.rules.generic_vague)
            candidates.append(hid)
        chosen = set(candidates[:vague_n])
        wants_contradiction = (self.difficulty == 3 or self.persona.noise.contradiction >= 0.1
                               or (self.difficulty == 2 and self.rng.random() < 0.3))
        contra = [h for h, f in facts.items() if f.get("contradiction_option") and f["criticality"] == 1]
        contra_id = contra[int(self.rng.integers(len(contra)))] if wants_contradiction and contra else None
        out: dict[str, dict[str, Any]] = {}
        for hid, f in facts.items():
            fact = {"text": self.lay(f["text"]), "present": f["present"], "criticality": f["criticality"]}
            if hid in chosen:
                fact["vague"] = self.lay(f["vague_option"])
            if hid == contra_id:
                fact["contradiction"] = self.lay(f["contradiction_option"])
            out[hid] = fact
        return out

    def implications(self, history: dict[str, dict[str, Any]], exam: dict[str, dict[str, Any]]) -> None:
        """History wording that implies more (rules.yaml ``implications``: a leg in plaster): add
        the backstory when no present fact tells it, and say it on the examination card."""
        side = self.vars.get("side", "left")
        variables = {**self.vars, "side": side, "other": "right" if side == "left" else "left"}
        for imp in self.rules.implications:
            present = [f["text"] for f in history.values() if f["present"]]
            if not any(re.search(imp.history, t, re.IGNORECASE) for t in present):
                continue
            if not any(re.search(imp.backstory, t, re.IGNORECASE) for t in present):
                story = self.lay(render(imp.add_backstory.text, self.rng, variables)) or ""
                history[imp.add_backstory.item] = {"text": story, "present": True, "criticality": 1}
            card = exam.get(imp.exam)
            if card is not None and not re.search(imp.exam_says, card["text"], re.IGNORECASE):
                wording = imp.exam_text.abnormal if card["abnormal"] else imp.exam_text.normal
                card["text"] = render(wording, self.rng, variables)

    # ------------------------------------------------------------------------------- findings
    def finding(self, tid: str, entry: FindingEntry) -> dict[str, Any]:
        abnormal = self.present(entry.p, atypical=False)
        self._sinus_tachy = None
        if abnormal:
            text = self._result(tid, entry.abnormal)
        else:
            text = (self._result(tid, entry.normal) or self._result(tid, "@normal")
                    or self.cat.tests[tid].normal_result)
        if text is None:
            raise GenerationError(f"condition {self.cond.id!r}: no result text for {tid} (abnormal={abnormal})")
        if self._sinus_tachy is not None:
            abnormal = self._sinus_tachy
        if tid == "exam.vitals":
            # The flag follows the numbers drawn, with age-appropriate limits.
            flags = vital_flags(text, self.age)
            abnormal = bool(flags) if flags is not None else abnormal
        out: dict[str, Any] = {"text": text, "abnormal": abnormal}
        if abnormal:
            out["grade"] = entry.grade
        return out

    def _result(self, tid: str, options: list[str] | str | None) -> str | None:
        chosen = _pick(options, self.rng)
        if chosen is None:
            return None
        if tid == "ecg.12lead" and chosen in ("@normal", "@sinus_tachycardia") and "hr" in self.vars:
            # A sinus ECG's rate is the rate in the vital signs.
            self._sinus_tachy = float(self.vars["hr"]) > 100
            chosen = "@sinus_tachycardia" if self._sinus_tachy else "@normal"
        if chosen.startswith("@"):
            patterns = self.kb.results.get(tid, {}).get(chosen[1:])
            if not patterns:
                return None
            chosen = _pick(patterns, self.rng)
        return render(chosen, self.rng, self.vars) if chosen else None

    # ------------------------------------------------------------------------ initial assessment
    def _pattern(self, tid: str, *names: str) -> str | None:
        """The first of the library patterns ``names`` of ``tid`` that exists (its first template)."""
        library = self.kb.results.get(tid, {})
        return next((library[n][0] for n in names if library.get(n)), None)

    def _threshold(self, name: str, default: float) -> float:
        try:
            return float(self.vars.get(name, default))
        except ValueError:
            raise GenerationError(f"results.yaml variables: {name}={self.vars[name]!r} is not a number") from None

    def pulse_oximetry(self, vitals: str) -> dict[str, Any]:
        """Pulse oximetry from the SpO2 and oxygen wording of the vital signs, flagged by the
        library's thresholds (the catalogue's normal result when the vital signs give no SpO2)."""
        m = SPO2_STATED.search(vitals)
        if m is None:
            return {"text": self.cat.tests[_PULSE_OX].normal_result, "abnormal": False}
        spo2 = int(m.group(1))
        template = (self._pattern(_PULSE_OX, "reading") if m.group(2)
                    else self._pattern(_PULSE_OX, "reading_unstated", "reading"))
        if template is None:
            raise GenerationError(f"results.yaml {_PULSE_OX}: no 'reading' pattern")
        variables = {**self.vars, "spo2": str(spo2), "spo2_on": m.group(2) or ""}
        return self._spo2_flag(render(template, self._own_rng(_PULSE_OX), variables), spo2)

    def _own_rng(self, tid: str) -> np.random.Generator:
        """A generator of its own for an initial-assessment result: the case's other draws do not
        move when its wording changes."""
        return np.random.default_rng([self.seed, _stable(self.cond.id), _stable(tid)])

    def _spo2_flag(self, text: str, spo2: float) -> dict[str, Any]:
        out: dict[str, Any] = {"text": text, "abnormal": spo2 < self._threshold("spo2_abnormal_below", 94)}
        if out["abnormal"]:
            out["grade"] = "mild" if spo2 >= self._threshold("spo2_marked_below", 92) else "marked"
        return out

    def stated_gcs(self, exam: dict[str, dict[str, Any]], tests: dict[str, dict[str, Any]],
                   ) -> tuple[int, tuple[int, int, int] | None] | None:
        """The GCS the case's other texts state (the first, in listing order) with its breakdown
        when given; else the total a cue word (``cue_<n>``) implies; else None."""
        texts = [f["text"] for t, f in (*exam.items(), *tests.items()) if t not in (_GCS, "exam.vitals")]
        for text in texts:
            m = GCS_STATED.search(text)
            if m:
                parts = (int(m.group(2)), int(m.group(3)), int(m.group(4))) if m.group(2) else None
                total = int(m.group(1))
                return total, parts if parts is not None and sum(parts) == total else None
        cues = {name: int(name[4:]) for name in self.kb.results.get(_GCS, {})
                if name.startswith("cue_") and name[4:].isdigit()}
        for text in texts:
            words = re.findall(r"[a-z]+", text.lower())
            for name, total in cues.items():
                for cue in self.kb.results[_GCS][name]:
                    if any(w == cue.lower() and (i == 0 or words[i - 1] not in _NEGATION) for i, w in enumerate(words)):
                        return total, None
        return None

    def gcs(self, total: int, parts: tuple[int, int, int] | None) -> dict[str, Any]:
        """A GCS result of ``total`` (3-15): the breakdown given, else the library's ``split_<n>``;
        component wording for the patient's age."""
        if parts is None:
            split = self._pattern(_GCS, f"split_{total}")
            found = re.fullmatch(r"E(\d) V(\d) M(\d)", split or "")
            if found is None:
                raise GenerationError(f"results.yaml {_GCS}: no split_{total} 'En Vn Mn' breakdown")
            parts = (int(found.group(1)), int(found.group(2)), int(found.group(3)))
        e, v, m = parts
        under5, infant = self.age < 5, self.age < 1
        ages = (["_infant"] if infant else []) + (["_under5"] if under5 else []) + [""]
        words = [self._pattern(_GCS, *(f"{kind}_{score}{a}" for a in ages))
                 for kind, score in (("eyes", e), ("verbal", v), ("motor", m))]
        template = self._pattern(_GCS, "reading_under5", "reading") if under5 else self._pattern(_GCS, "reading")
        if template is None or any(w is None for w in words):
            raise GenerationError(f"results.yaml {_GCS}: no wording for GCS {total} (E{e} V{v} M{m})")
        rng = self._own_rng(_GCS)
        variables = {**self.vars, "gcs": str(total), "gcs_parts": f"E{e} V{v} M{m}",
                     "gcs_words": ("; " if under5 else ", ").join(render(w, rng, self.vars) for w in words if w)}
        return self._gcs_flag(render(template, rng, variables), total)

    def _gcs_flag(self, text: str, total: int) -> dict[str, Any]:
        out: dict[str, Any] = {"text": text, "abnormal": total < 15}
        if out["abnormal"]:
            out["grade"] = "mild" if total >= self._threshold("gcs_marked_below", 13) else "marked"
        return out

    def initial_assessment(self, exam: dict[str, dict[str, Any]], tests: dict[str, dict[str, Any]],
                           ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """``exam`` and ``tests`` with the GCS listed after the vital signs and pulse oximetry
        first, each consistent with the case's texts (see the module docstring). A profile's own
        entry is kept, its flag following its number."""
        vitals = str(exam.get("exam.vitals", {}).get("text", ""))
        if _PULSE_OX in tests:
            m = SPO2_STATED.search(tests[_PULSE_OX]["text"])
            pulse = self._spo2_flag(tests[_PULSE_OX]["text"], int(m.group(1))) if m else tests[_PULSE_OX]
        else:
            pulse = self.pulse_oximetry(vitals)
        if _GCS in exam:
            m = GCS_STATED.search(exam[_GCS]["text"])
            gcs = self._gcs_flag(exam[_GCS]["text"], int(m.group(1))) if m else exam[_GCS]
        else:
            stated = self.stated_gcs(exam, tests)
            gcs = self.gcs(*(stated or (15, None)))
        new_exam: dict[str, dict[str, Any]] = {}
        for tid, finding in exam.items():
            if tid != _GCS:
                new_exam[tid] = finding
            if tid == "exam.vitals":
                new_exam[_GCS] = gcs
        new_exam.setdefault(_GCS, gcs)
        new_tests = {_PULSE_OX: pulse, **{t: f for t, f in tests.items() if t != _PULSE_OX}}
        return new_exam, new_tests

    # ------------------------------------------------------------------------------- assembly
    def build(self) -> Case:
        cond, cat = self.cond, self.cat
        weights = np.array([p.weight for p in cond.presentations])
        if self.difficulty == 1:
            pres = cond.presentations[int(np.argmax(weights))]
        else:
            pres = cond.presentations[int(self.rng.choice(len(weights), p=weights / weights.sum()))]
        # The brief first: every symptom it names is in the script, present (brief_symptoms).
        chief, opening = self.text(pres.chief) or "", self.lay(self.text(pres.opening)) or ""
        implied = list(dict.fromkeys([*pres.implies, *brief_symptoms(f"{chief} {opening}", self.rules)]))
        self.said = [chief, opening]
        facts = self.history(pres.symptom, implied)
        meds = self.background(facts)
        self.medicines(facts, meds)
        fever = facts.get("sx.fever", {}).get("present", False)
        self.vars["temp"] = draw_value("38.1-39.6:.1f" if fever else "36.4-37.4:.1f", self.rng) or "37.0"
        history = self.finalise_history(facts, pres.symptom)
        # Vital signs first: the heart rate drawn there is the {hr} an ECG template reports.
        vitals = self.finding("exam.vitals", cond.exam["exam.vitals"])
        self.vars.update({k: f"{v:g}" for k, v in parse_vitals(vitals["text"]).items()})
        if "hr" in self.vars:
            hr = float(self.vars["hr"])
            self.vars["sinus"] = "sinus tachycardia" if hr > 100 else "sinus bradycardia" if hr < 50 else "sinus rhythm"
        exam = {t: (vitals if t == "exam.vitals" else self.finding(t, e))
                for t, e in cond.exam.items() if e.applies(self.age, self.sex)}
        tests = {t: self.finding(t, e) for t, e in cond.tests.items() if e.applies(self.age, self.sex)}
        exam, tests = self.initial_assessment(exam, tests)
        self.implications(history, exam)
        listed = set(exam) | set(tests)
        essential = [t for t in cond.essential if t in listed]
        # The initial assessment the presentation calls for is never optional (vital signs always;
        # SpO2 in a hypoxic patient, GCS in a drowsy one): rules.yaml initial_assessment.
        ia = self.rules.initial_assessment
        essential += [t for t in ia.always if t in listed and t not in essential]
        essential += [t for t in ia.when_abnormal if t not in essential
                      and bool((exam.get(t) or tests.get(t) or {}).get("abnormal"))]
        confirmatory = _confirmatory(cond, history, exam, tests, essential)
        optional = [t for t in cond.optional if t in listed and t not in essential]
        diff = differential(cond, cat, self.age, self.sex, pres.symptom, self.difficulty, self.rng)
        setting = cond.settings[0] if self.difficulty == 1 else cond.settings[int(self.rng.integers(len(cond.settings)))]
        child = self.age < 16
        who = (f"{round(self.age * 12):d}-month-old {self.vars['boy']}" if self.age < 2 else
               f"{self.age:g}-year-old {self.vars['boy'] if child else self.vars['man']}")
        data = {
            "id": f"gen-{cond.id}-d{self.difficulty}-{self.sex.lower()}{self.age:g}".replace(".", "m")
                  + (f"-{self.persona.id}" if self.persona.id not in ("cooperative", "parent-proxy") else "")
                  + f"-s{self.seed}",
            "title": f"{cond.title} in a {who}",
            "specialty": cond.specialty,
            "setting": setting,
            "difficulty": self.difficulty,
            "demographics": {"age": self.age, "sex": self.sex},
            "informant": "parent" if cond.informant == "parent" else "patient",
            "presenting_complaint": pres.symptom,
            "chief_complaint": chief,
            "opening_statement": opening,
            "history": history,
            "exam": exam,
            "tests": tests,
            "essential_tests": essential,
            "optional_tests": optional,
            "contraindicated_tests": {t: r for t, r in cond.contraindicated.items() if t in cat.tests},
            "budget_usd": budget([*essential, *optional], cat),
            "gold_diagnosis": cond.code,
            "confirmatory": confirmatory,
            "differential": [d.model_dump() for d in diff],
            "rubric": [r.model_dump(exclude_none=True, by_alias=True) for r in
                       rubric(cond, cat, history, pres.symptom, essential, diff, listed)],
            "source": (f"Generated by clinic-env from its knowledge base (condition '{cond.id}', seed {self.seed}, "
                       f"difficulty {self.difficulty}, persona '{self.persona.id}'). Presentation and work-up follow "
                       f"{cond.source}. Simplified: a synthetic patient whose findings are drawn independently "
                       "from typical likelihoods and value ranges; not a real patient."),
        }
        _natural(data)
        case = parse_model(Case, data, f"<generated {cond.id} seed {self.seed}>")
        problems = check_case_references(case, cat, f"<generated {cond.id} seed {self.seed}>")
        if problems:
            raise DataError(problems)
        return case
