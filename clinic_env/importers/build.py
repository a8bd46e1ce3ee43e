"""Assembling an imported case and the import report (shared by the AgentClinic and MediQ importers)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from clinic_env.generate.rubric import budget
from clinic_env.importers.mapping import CatalogueMapper
from clinic_env.importers.negation import assertion
from clinic_env.importers.results import result_abnormal
from clinic_env.importers.voice import first_person, own_pronouns
from clinic_env.patients.leak_guard import LeakGuard
from clinic_env.schema.case import Case, Demographics
from clinic_env.schema.catalogue import Catalogue, with_diagnoses
from clinic_env.schema.errors import DataError
from clinic_env.schema.loading import check_case_references, parse_model

__all__ = ["CaseDraft", "ImportReport", "age_band", "catalogue_for", "gold_for", "map_gold", "parse_demographics", "parse_sex", "source_id", "specialty_for", "unique"]

_AGE = re.compile(r"(\d+(?:\.\d+)?)[\s-]*(year|yr|y/o|yo|month|mo|week|wk|day)s?[\s-]*(?:old)?", re.IGNORECASE)
#: The patient's own sex nouns (the first one in a demographics text describes the patient).
_SEX_NOUN = re.compile(r"\b(?:(female|woman|girl|lady|f)|(male|man|boy|gentleman|m))\b", re.IGNORECASE)
_GESTATION = re.compile(r"[\s'’]*(?:of\s+)?gestation", re.IGNORECASE)
_PRONOUN = re.compile(r"\b(?:(she|her|hers|herself)|(he|him|his|himself))\b", re.IGNORECASE)
#: Sentences about relatives or partners say nothing of the patient's sex ("the mother had diabetes").
_KIN = re.compile(r"\b(?:mother|father|mom|mum|dad|parents?|wife|husband|sister|brother|daughter|son|partners?|"
                  r"aunt|uncle|grand\w+|family|boyfriend|girlfriend|sibling|cousin|niece|nephew)\b", re.IGNORECASE)
_SPECIALTY = (
    ("A", "infectious_disease"), ("B", "infectious_disease"), ("C", "haematology"), ("D5", "haematology"),
    ("D6", "haematology"), ("D7", "haematology"), ("D8", "allergy_immunology"), ("D", "haematology"),
    ("E", "endocrinology"), ("F", "psychiatry"), ("G", "neurology"), ("H6", "ent"), ("H7", "ent"),
    ("H8", "ent"), ("H9", "ent"), ("H", "ophthalmology"), ("I", "cardiology"), ("J0", "ent"), ("J3", "ent"),
    ("J", "pulmonology"), ("K", "gastroenterology"), ("L", "dermatology"), ("M", "rheumatology"),
    ("N4", "urology"), ("N2", "urology"), ("N3", "urology"), ("N7", "obstetrics_gynaecology"),
    ("N8", "obstetrics_gynaecology"), ("N9", "obstetrics_gynaecology"), ("N", "nephrology"),
    ("O", "obstetrics_gynaecology"), ("P", "paediatrics"), ("Q", "paediatrics"), ("R", "general_medicine"), ("S", "orthopaedics"),
    ("T78", "allergy_immunology"), ("T", "toxicology"),
)


#: Complaints the symptom terms miss, by the words vignettes use (checked in order).
_COMPLAINT_FALLBACK = (
    (r"lesion|papul|plaque|nodul|macul|patch|spots|blister|bullae|pustul|vesic|ulcer|discolou?ration|pigment", "sx.skin_lesion"),
    (r"\b(?:toe|knee|ankle|wrist|elbow|hip|shoulder|finger|joint)s?\b", "sx.joint_pain"),
    (r"\bneck (?:mass|lump|swelling)|lymph node", "sx.lymph_node_swelling"),
)


#: Words a demographics-only sentence is made of besides the age and sex ("Patient is a 3-year-old male.").
_DEMOGRAPHIC_WORDS = {"a", "an", "the", "patient", "is", "was", "this", "he", "she", "old", "aged", "of", "age", "who", "origin", "descent"}
#: A sentence's opening noun phrase with the age ("A 30-year-old male biology student was ..."): the patient.
_SUBJECT_AGE = re.compile(r"^(?:an?|the|this)\s+\d+(?:\.\d+)?[\s-]*(?:year|month|week|day)s?[\s-]*old\b"
                          r"(?:(?!\b(?:with|who|of|from|and|in)\b)[^,.;])*?\s+"
                          r"(?=(?:was|is|has|had|\w+[^su\W]s|\w+ed)\b)", re.IGNORECASE)


def _demographics_only(text: str) -> bool:
    """Whether a sentence only says who the patient is (age, sex, origin): no complaint in it."""
    if not _AGE.search(text) and not _SEX_NOUN.search(text):
        return False
    words = re.findall(r"[A-Za-z][\w'-]*", _SEX_NOUN.sub(" ", _AGE.sub(" ", text)))
    # Capitalised words after the first are origins or names ("a Cuban-American boy").
    return all(w.lower() in _DEMOGRAPHIC_WORDS or (i and w[0].isupper()) for i, w in enumerate(words))


def specialty_for(code: str) -> str:
    """A specialty for an ICD-10 code (by chapter and block)."""
    for prefix, specialty in _SPECIALTY:
        if code.startswith(prefix):
            return specialty
    return "general_medicine"


def parse_demographics(text: str) -> tuple[float | None, str | None]:
    """Age in years and sex from text such as ``"A 6-month-old boy"`` or ``"45 y/o M"``."""
    age = None
    # "born at 33 weeks of gestation", "31 weeks' gestation": the pregnancy's length, not the age.
    m = next((a for a in _AGE.finditer(text) if not _GESTATION.match(text, a.end())
              and not re.search(r"\bborn (?:at|after)\s*$", text[:a.start()], re.IGNORECASE)), None)
    if m:
        value, unit = float(m.group(1)), m.group(2).lower()
        age = value if unit.startswith("y") else value / 12 if unit.startswith("mo") else \
            value / 52 if unit.startswith("w") else value / 365
        age = round(age, 2)
    elif re.search(r"\b(?:newborn|neonate|new-born)\b", text, re.IGNORECASE):
        age = 0.0
    return age, parse_sex(text)


def parse_sex(text: str, narrative: bool = False) -> str | None:
    """The patient's sex from a demographics text ("A 5-year-old boy brought by his mother": the
    first sex noun) or, with ``narrative``, from a history, where only sentences that name no
    relative or partner count ("the mother had diabetes", "two female partners" say nothing of the
    patient); None when the text does not say (never guessed)."""
    m = None if narrative else _SEX_NOUN.search(text)
    if m:
        return "F" if m.group(1) else "M"
    female = male = 0
    for sentence in re.split(r"(?<=[.!?;])\s+", text):
        if _KIN.search(sentence):
            continue
        noun = _SEX_NOUN.search(sentence) if narrative else None
        if noun and len(noun.group(0)) > 1:
            female, male = female + bool(noun.group(1)), male + bool(noun.group(2))
        for p in _PRONOUN.finditer(sentence):
            female, male = female + bool(p.group(1)), male + bool(p.group(2))
    return "F" if female > male else "M" if male > female else None


_FIELDS = ("history", "exam", "tests", "diagnoses")


@dataclass
class ImportReport:
    """What an import did, per field: items mapped onto the catalogue, kept as case-specific items
    (``src.*``, the source's own name and words), or unmapped (diagnoses only: no code found).
    Diagnoses also count ``vocabulary`` (a code outside the curated catalogue). Skipped records
    are listed with their line and field."""

    source_format: str
    records: int = 0
    imported: int = 0
    skipped: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: {
        **{f"{k}_{v}": 0 for k in _FIELDS for v in ("mapped", "case_specific", "unmapped")},
        "diagnoses_vocabulary": 0, "openings_rewritten": 0, "not_diagnosis_questions": 0})
    unmapped: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in _FIELDS})
    #: Imported cases whose gold has no code (kept as free text, open mode only), with line and text.
    unmapped_golds: list[str] = field(default_factory=list)
    #: Imported cases whose source does not state the patient's sex (kept as ``U``, never guessed).
    sex_not_stated: list[str] = field(default_factory=list)

    def add(self, kind: str, mapped: bool | str, item: str = "") -> None:
        """Count one item of ``kind``: ``mapped`` True, False (unmapped) or a status name
        (``"case_specific"``, ``"vocabulary"``)."""
        status = "mapped" if mapped is True else "unmapped" if mapped is False else mapped
        self.counts[f"{kind}_{status}"] = self.counts.get(f"{kind}_{status}", 0) + 1
        if status != "mapped" and item and len(self.unmapped[kind]) < 200:
            self.unmapped[kind].append(item)

    def skip(self, line: int, field_name: str, problem: str) -> None:
        """Report a broken or unusable record (it is skipped; the rest import)."""
        self.skipped.append(f"line {line}: {field_name}: {problem}")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"format": self.source_format, "records": self.records, "imported": self.imported,
                "skipped": self.skipped, "counts": self.counts, "unmapped": self.unmapped,
                "unmapped_golds": self.unmapped_golds, "sex_not_stated": self.sex_not_stated}

    def summary(self) -> str:
        """A few lines for the terminal."""
        c = self.counts
        lines = [f"{self.source_format}: {self.records} record(s) read, {self.imported} case(s) imported, "
                 f"{len(self.skipped)} skipped"]
        if c["not_diagnosis_questions"]:
            lines.append(f"  not diagnosis questions (skipped): {c['not_diagnosis_questions']}")
        for kind in _FIELDS:
            extra = f"   other ICD-10 codes {c['diagnoses_vocabulary']:>4}" if kind == "diagnoses" else ""
            lines.append(f"  {kind:<10} mapped {c[f'{kind}_mapped']:>4}   case-specific {c[f'{kind}_case_specific']:>4}"
                         f"   unmapped {c[f'{kind}_unmapped']:>4}{extra}")
        lines += [f"  diagnosis unmapped (gold kept as free text, open mode only): {u}" for u in self.unmapped_golds]
        lines += [f"  sex not stated in the source (imported as U, not guessed): {s}" for s in self.sex_not_stated]
        if c["openings_rewritten"]:
            lines.append(f"  opening statements rewritten (named the diagnosis): {c['openings_rewritten']}")
        lines += [f"  skipped: {s}" for s in self.skipped]
        return "\n".join(lines)


def source_id(name: str, taken: dict[str, Any]) -> str:
    """A case-specific item id ``src.<name>`` for a source name, unique among ``taken``."""
    base = "src." + (re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:48] or "item")
    key, n = base, 2
    while key in taken:
        key, n = f"{base}_{n}", n + 1
    return key


def age_band(age: float | None) -> str:
    """The age words the vocabulary's curated ambiguous names are resolved by
    (:attr:`Demographics.age_band`); empty when the age is unknown."""
    return "" if age is None else Demographics(age=min(max(age, 0.0), 120.0), sex="U").age_band


def map_gold(mapper: CatalogueMapper, text: str, context: str = "") -> tuple[str | None, str]:
    """A source diagnosis's ICD-10 code and how it was found: ``"mapped"`` (a curated catalogue
    code), ``"vocabulary"`` (a WHO code outside the catalogue) or ``"unmapped"`` (the mapper refused
    to guess; see :func:`clinic_env.importers.mapping.map_diagnosis`)."""
    from clinic_env.importers.mapping import map_diagnosis

    code = map_diagnosis(text, context).code
    if not code:
        return None, "unmapped"
    return code, "mapped" if code in mapper.cat.diagnoses else "vocabulary"


def gold_for(mapper: CatalogueMapper, text: str, report: ImportReport, line: int,
             field_name: str, context: str = "") -> tuple[str, Catalogue]:
    """Map a record's diagnosis text, count it, and return its code with the catalogue that holds
    it (the WHO vocabulary's entry added when the curated catalogue lacks it). When no code fits,
    the code is ``""``: the case keeps the source's words as its gold (``gold_status: unmapped``,
    open mode only) and the report lists it with its line. ``context`` (the patient's
    :func:`age_band`) resolves names that mean different entities by age (respiratory distress
    syndrome: P22.0 or J80)."""
    gold, status = map_gold(mapper, text, context)
    report.add("diagnoses", status, text)
    if gold is None:
        report.unmapped_golds.append(f"line {line}: {field_name}: {text!r}")
        return "", mapper.cat
    return gold, with_diagnoses(mapper.cat, [gold])


def catalogue_for(cases: list[Case], base: Catalogue) -> Catalogue:
    """``base`` plus the gold and differential codes of imported ``cases`` that lie outside it (the
    structured env's diagnosis actions for these cases: the curated catalogue and the loaded golds)."""
    return with_diagnoses(base, [c for case in cases for c in (case.gold_diagnosis, *(d.code for d in case.differential)) if c])


def unique(case: Case, seen: set[str]) -> Case:
    """``case`` with an id not in ``seen`` (a suffix added if needed); the id is added to ``seen``."""
    cid, n = case.id, 2
    while cid in seen:
        cid, n = f"{case.id}-{n}", n + 1
    seen.add(cid)
    return case if cid == case.id else case.model_copy(update={"id": cid})


@dataclass
class CaseDraft:
    """What an importer has gathered for one case before validation."""

    id: str
    age: float
    sex: str  # M, F or U (not stated in the source)
    gold: str  # "" when the mapper refused: the case keeps gold_text (gold_status unmapped)
    chief: str
    primary: str
    setting: str = "emergency department"
    history: dict[str, dict[str, Any]] = field(default_factory=dict)
    exam: dict[str, list[str]] = field(default_factory=dict)
    tests: dict[str, list[str]] = field(default_factory=dict)
    free_text: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)
    source: str = ""
    extra: dict[str, dict[str, Any]] = field(default_factory=dict)
    source_text: str = ""
    image_url: str | None = None
    gold_text: str = ""

    def add_extra(self, name: str, kind: str, text: str, report: ImportReport) -> None:
        """Keep a finding, result or history sentence no catalogue item covers as a case-specific item."""
        counter = "tests" if kind == "test" else kind
        name = re.sub(r"[_]+", " ", name).strip() or text[:40]
        abnormal = result_abnormal(text, self.age) if kind != "history" else False
        self.extra[source_id(name, self.extra)] = {"name": name, "kind": kind, "text": text, "abnormal": abnormal}
        report.add(counter, "case_specific", f"{name}: {text}"[:100])

    def add_history(self, mapper: CatalogueMapper, sentence: str, report: ImportReport,
                    default_present: bool | None = None) -> None:
        """Map one sentence (or symptom name) onto history items, negation and experiencer by the
        ConText rules (:mod:`clinic_env.importers.negation`); keep it as a case-specific item if none."""
        hits = mapper.map_history(sentence)
        if not hits:
            self.add_extra(sentence[:40], "history", sentence, report)
            return
        for hit in hits:
            present = assertion(sentence, hit.phrase) != "negated"
            if default_present is not None:
                present = default_present and present
            item = mapper.cat.history[hit.hid]
            text = first_person(sentence) if present else item.default_answer
            if not present and hit.hid == "social.smoking":
                text = "No, I don't smoke."
            old = self.history.get(hit.hid)
            if old is None or (present and not old["present"]):
                self.history[hit.hid] = {"text": text, "present": present, "criticality": 1}
            report.add("history", True)

    def _own_complaint(self) -> str | None:
        """The id of the record's own first complaint-like history item (a case-specific item kept
        in the source's words, not negated, not about a relative), or None when it has none."""
        for key, item in self.extra.items():
            text = item["text"]
            if item["kind"] == "history" and not _demographics_only(text) and assertion(text, text) == "affirmed":
                return key
        return None

    def build_or_skip(self, mapper: CatalogueMapper, report: ImportReport, source: str, line: int,
                      catalogue: Catalogue | None = None) -> Case | None:
        """:meth:`build`, or None with the record's first problem reported as skipped (line, field)."""
        try:
            return self.build(mapper, report, source, catalogue)
        except DataError as exc:
            problem = exc.problems[0] if exc.problems else None
            report.skip(line, problem.field if problem else "(case)", problem.message if problem else str(exc))
            return None

    def build(self, mapper: CatalogueMapper, report: ImportReport, source: str, catalogue: Catalogue | None = None) -> Case:
        """The validated case (raises :class:`DataError` if it cannot be made valid); ``catalogue``
        is the mapper's, extended with the gold when it lies outside it (:func:`with_diagnosis`)."""
        cat: Catalogue = catalogue or mapper.cat
        presenting = None
        for hit in mapper.map_history(self.primary):
            if hit.present:
                presenting = hit.hid
                break
        if presenting is None:
            presenting = next((h for h, f in self.history.items() if f["present"] and h.startswith("sx.")), None)
        words = self.primary + " " + self.chief
        for pattern, hid in _COMPLAINT_FALLBACK:
            if presenting is None and hid in cat.history and re.search(pattern, words, re.I):
                presenting = hid
        if presenting is None:  # no symptom named: the first affirmed history item (the source's words stay the chief complaint)
            presenting = next((h for h, f in self.history.items() if f["present"]), None)
        if presenting is None:
            # Nothing the catalogue codes: the record's own first complaint-like history item (a
            # case-specific ``src.*`` item, the source's words) is the complaint. The structured
            # observation has no slot for it; text and open modes hear it in the opening statement.
            presenting = self._own_complaint()
        if presenting is None:
            raise DataError.single(source, "presenting_complaint", "no symptom could be mapped", self.primary)
        if presenting.startswith("src."):
            own = self.extra[presenting]["text"]
            self.extra[presenting] = {**self.extra[presenting], "abnormal": True}
            if not self.chief or self.primary != own:  # the opening and chief complaint tell this complaint
                self.chief, self.primary = own, own
        else:
            fact = self.history.setdefault(presenting, {"text": first_person(self.primary), "present": True, "criticality": 2})
            fact.update(present=True, criticality=2)
        exam = {t: {"text": "; ".join(parts), "abnormal": any(result_abnormal(p, self.age) for p in parts)}
                for t, parts in self.exam.items()}
        if "exam.vitals" in exam:
            # Vital signs in the standard form, so their numbers can be read (and flagged) reliably.
            from clinic_env.importers.mediq import standard_vitals

            recorded = "; ".join(self.exam["exam.vitals"])
            std = standard_vitals(recorded.replace("_", " "))
            if std:
                # The standard form first (its numbers are read and flagged), then the source's own
                # words, so nothing it recorded is lost (weight, "normal for age", a fetal trace).
                exam["exam.vitals"] = {"text": f"{std} (as recorded: {recorded})", "abnormal": result_abnormal(std, self.age)}
        tests = {t: {"text": "; ".join(parts), "abnormal": any(result_abnormal(p, self.age) for p in parts)}
                 for t, parts in self.tests.items()}
        abnormal = [t for t, f in {**exam, **tests}.items() if f["abnormal"] and t != "exam.vitals"]
        listed = list(exam) + list(tests)
        essential = (abnormal or [t for t in listed if t != "exam.vitals"] or listed)[:4]
        optional = [t for t in listed if t not in essential][:6]
        diff_codes = ([self.gold] if self.gold else []) + [c for c in self.options if c != self.gold]
        pres = cat.presentations.get(presenting)
        diff_codes += [c for c in (pres.differential if pres else ()) if c not in diff_codes]
        # Top up with diagnoses that commonly present with this complaint (catalogue likelihoods).
        by_feature = sorted(((dx.features.get(presenting, 0.0) * dx.prior, code) for code, dx in cat.diagnoses.items()
                             if dx.features.get(presenting, 0.0) >= 0.5), reverse=True)
        diff_codes += [code for _, code in by_feature if code not in diff_codes]
        diff = []
        for code in dict.fromkeys(diff_codes):
            dx = cat.diagnoses.get(code)
            if dx is not None and (code == self.gold or dx.plausible_for(self.age, self.sex)):
                diff.append({"code": code, "must_not_miss": dx.must_not_miss})
            if len(diff) >= 6:
                break
        # An unmapped gold (no code): the source's words name the case; no rubric item checks a code.
        label = cat.diagnoses[self.gold].label if self.gold else self.gold_text
        rubric = [{"criterion": f"Final diagnosis is {label}", "points": 6, "tags": ["axis:accuracy", "segment:diagnosis"],
                   "check": {"final_dx_in": [self.gold]}},
                  {"criterion": f"Includes {label} in the differential", "points": 3,
                   "tags": ["axis:accuracy", "segment:differential"], "check": {"differential_includes": self.gold}}
                  ] if self.gold else []
        rubric += [{"criterion": f"Orders {cat.tests[t].label}", "points": 4, "tags": ["axis:accuracy", "segment:tests"],
                    "check": {"ordered": t}} for t in essential[:2]]
        opening = f"I've come in because of {own_pronouns(self.primary.strip().rstrip('.'))[:1].lower()}" \
                  f"{own_pronouns(self.primary.strip().rstrip('.'))[1:]}."
        if presenting.startswith("src."):  # a whole sentence of the source, in the patient's voice
            opening = first_person(_SUBJECT_AGE.sub("The patient ", self.primary.strip(), count=1))
        draft = {"id": self.id, "title": f"{label} ({'imported'})", "specialty": specialty_for(self.gold) if self.gold
                 else "paediatrics" if self.age < 16 else "general_medicine",
                 "setting": self.setting, "difficulty": 2, "demographics": {"age": self.age, "sex": self.sex},
                 "informant": "parent" if self.age < 12 else "patient", "presenting_complaint": presenting,
                 "chief_complaint": self.chief or self.primary, "opening_statement": opening,
                 "history": self.history, "exam": exam, "tests": tests, "essential_tests": essential,
                 "optional_tests": optional, "budget_usd": budget([*essential, *optional], cat) if listed else 100.0,
                 "gold_diagnosis": self.gold, "gold_status": "coded" if self.gold else "unmapped",
                 "differential": diff, "rubric": rubric,
                 "source": self.source + (" Free-text facts not mapped to the catalogue (kept here for LLM patients): "
                                          + " | ".join(self.free_text) if self.free_text else ""),
                 "extra_items": self.extra, "unlisted": "not_available", "source_text": self.source_text or None,
                 "image_url": self.image_url, "gold_text": self.gold_text or None}
        case = parse_model(Case, draft, source)
        guard = LeakGuard(case, cat, () if case.coded else [self.gold_text])
        if guard.leaks(case.opening_statement) or guard.leaks(case.chief_complaint):
            report.counts["openings_rewritten"] += 1
            case = case.model_copy(update={"opening_statement": "I haven't been feeling right and I'd like you to have a look at me.",
                                           "chief_complaint": "Presenting problem (see history)"})
        problems = check_case_references(case, cat, source)
        if problems:
            raise DataError(problems)
        return case
