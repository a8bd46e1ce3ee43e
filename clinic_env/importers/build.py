"""Assembling an imported case and the import report (shared by the AgentClinic and MediQ importers)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from clinic_env.generate.rubric import budget
from clinic_env.importers.mapping import CatalogueMapper, looks_abnormal
from clinic_env.importers.voice import first_person, own_pronouns
from clinic_env.patients.leak_guard import LeakGuard
from clinic_env.schema.case import Case
from clinic_env.schema.catalogue import Catalogue
from clinic_env.schema.errors import DataError
from clinic_env.schema.loading import check_case_references, parse_model

__all__ = ["CaseDraft", "ImportReport", "parse_demographics", "specialty_for"]

_AGE = re.compile(r"(\d+(?:\.\d+)?)[\s-]*(year|yr|y/o|yo|month|mo|week|wk|day)s?[\s-]*(?:old)?", re.IGNORECASE)
_FEMALE = re.compile(r"\b(?:female|woman|girl|lady|mother|she|her|f)\b", re.IGNORECASE)
_MALE = re.compile(r"\b(?:male|man|boy|gentleman|father|he|his|m)\b", re.IGNORECASE)
_SPECIALTY = (
    ("A", "infectious_disease"), ("B", "infectious_disease"), ("C", "haematology"), ("D5", "haematology"),
    ("D6", "haematology"), ("D7", "haematology"), ("D8", "allergy_immunology"), ("D", "haematology"),
    ("E", "endocrinology"), ("F", "psychiatry"), ("G", "neurology"), ("H6", "ent"), ("H7", "ent"),
    ("H8", "ent"), ("H9", "ent"), ("H", "ophthalmology"), ("I", "cardiology"), ("J0", "ent"), ("J3", "ent"),
    ("J", "pulmonology"), ("K", "gastroenterology"), ("L", "dermatology"), ("M", "rheumatology"),
    ("N4", "urology"), ("N2", "urology"), ("N3", "urology"), ("N7", "obstetrics_gynaecology"),
    ("N8", "obstetrics_gynaecology"), ("N9", "obstetrics_gynaecology"), ("N", "nephrology"),
    ("O", "obstetrics_gynaecology"), ("Q", "paediatrics"), ("R", "general_medicine"), ("S", "orthopaedics"),
    ("T78", "allergy_immunology"), ("T", "toxicology"),
)


def specialty_for(code: str) -> str:
    """A specialty for an ICD-10 code (by chapter and block)."""
    for prefix, specialty in _SPECIALTY:
        if code.startswith(prefix):
            return specialty
    return "general_medicine"


def parse_demographics(text: str) -> tuple[float | None, str | None]:
    """Age in years and sex from text such as ``"A 6-month-old boy"`` or ``"45 y/o M"``."""
    age = None
    m = _AGE.search(text)
    if m:
        value, unit = float(m.group(1)), m.group(2).lower()
        age = value if unit.startswith("y") else value / 12 if unit.startswith("mo") else \
            value / 52 if unit.startswith("w") else value / 365
        age = round(age, 2)
    sex = "F" if _FEMALE.search(text) else "M" if _MALE.search(text) else None
    return age, sex


@dataclass
class ImportReport:
    """Counts of what an import mapped and what it kept as free text (printed by the CLI)."""

    source_format: str
    records: int = 0
    imported: int = 0
    skipped: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("history_mapped", "history_unmapped", "exam_mapped", "exam_unmapped", "tests_mapped", "tests_unmapped",
         "diagnoses_mapped", "diagnoses_unmapped", "openings_rewritten"), 0))
    unmapped: dict[str, list[str]] = field(default_factory=lambda: {"history": [], "exam": [], "tests": [], "diagnoses": []})

    def add(self, kind: str, mapped: bool, item: str = "") -> None:
        """Count one item of ``kind`` (history, exam, tests, diagnoses)."""
        self.counts[f"{kind}_{'mapped' if mapped else 'unmapped'}"] += 1
        if not mapped and item and len(self.unmapped[kind]) < 200:
            self.unmapped[kind].append(item)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"format": self.source_format, "records": self.records, "imported": self.imported,
                "skipped": self.skipped, "counts": self.counts, "unmapped": self.unmapped}

    def summary(self) -> str:
        """A few lines for the terminal."""
        c = self.counts
        lines = [f"{self.source_format}: {self.records} record(s) read, {self.imported} case(s) imported, "
                 f"{len(self.skipped)} skipped"]
        for kind in ("history", "exam", "tests", "diagnoses"):
            lines.append(f"  {kind:<10} mapped {c[f'{kind}_mapped']:>4}   unmapped (kept as free text) {c[f'{kind}_unmapped']:>4}")
        if c["openings_rewritten"]:
            lines.append(f"  opening statements rewritten (named the diagnosis): {c['openings_rewritten']}")
        lines += [f"  skipped: {s}" for s in self.skipped]
        return "\n".join(lines)


@dataclass
class CaseDraft:
    """What an importer has gathered for one case before validation."""

    id: str
    age: float
    sex: str
    gold: str
    chief: str
    primary: str
    setting: str = "emergency department"
    history: dict[str, dict[str, Any]] = field(default_factory=dict)
    exam: dict[str, list[str]] = field(default_factory=dict)
    tests: dict[str, list[str]] = field(default_factory=dict)
    free_text: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)
    source: str = ""

    def add_history(self, mapper: CatalogueMapper, sentence: str, report: ImportReport,
                    default_present: bool | None = None) -> None:
        """Map one sentence (or symptom name) onto history items; keep it as free text if none."""
        hits = mapper.map_history(sentence)
        if not hits:
            self.free_text.append(sentence)
            report.add("history", False, sentence)
            return
        for hit in hits:
            present = hit.present if default_present is None else default_present and hit.present
            item = mapper.cat.history[hit.hid]
            text = first_person(sentence) if present else item.default_answer
            old = self.history.get(hit.hid)
            if old is None or (present and not old["present"]):
                self.history[hit.hid] = {"text": text, "present": present, "criticality": 1}
            report.add("history", True)

    def build(self, mapper: CatalogueMapper, report: ImportReport, source: str) -> Case:
        """The validated case (raises :class:`DataError` if it cannot be made valid)."""
        cat: Catalogue = mapper.cat
        presenting = None
        for hit in mapper.map_history(self.primary):
            if hit.present:
                presenting = hit.hid
                break
        if presenting is None:
            presenting = next((h for h, f in self.history.items() if f["present"] and h.startswith("sx.")), None)
        if presenting is None:
            raise DataError.single(source, "presenting_complaint", "no symptom could be mapped", self.primary)
        fact = self.history.setdefault(presenting, {"text": first_person(self.primary), "present": True, "criticality": 2})
        fact.update(present=True, criticality=2)
        exam = {t: {"text": "; ".join(parts), "abnormal": any(looks_abnormal(p, self.age) for p in parts)}
                for t, parts in self.exam.items()}
        if "exam.vitals" in exam:
            # Vital signs in the standard form, so their numbers can be read (and flagged) reliably.
            from clinic_env.importers.mediq import standard_vitals

            std = standard_vitals(" ".join(self.exam["exam.vitals"]).replace("_", " "))
            if std:
                exam["exam.vitals"] = {"text": std, "abnormal": looks_abnormal(std, self.age)}
        tests = {t: {"text": "; ".join(parts), "abnormal": any(looks_abnormal(p, self.age) for p in parts)}
                 for t, parts in self.tests.items()}
        abnormal = [t for t, f in {**exam, **tests}.items() if f["abnormal"] and t != "exam.vitals"]
        listed = list(exam) + list(tests)
        essential = (abnormal or [t for t in listed if t != "exam.vitals"] or listed)[:4]
        optional = [t for t in listed if t not in essential][:6]
        diff_codes = [self.gold] + [c for c in self.options if c != self.gold]
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
        label = cat.diagnoses[self.gold].label
        rubric = [{"criterion": f"Final diagnosis is {label}", "points": 6, "tags": ["axis:accuracy", "segment:diagnosis"],
                   "check": {"final_dx_in": [self.gold]}},
                  {"criterion": f"Includes {label} in the differential", "points": 3,
                   "tags": ["axis:accuracy", "segment:differential"], "check": {"differential_includes": self.gold}}]
        rubric += [{"criterion": f"Orders {cat.tests[t].label}", "points": 4, "tags": ["axis:accuracy", "segment:tests"],
                    "check": {"ordered": t}} for t in essential[:2]]
        opening = f"I've come in because of {own_pronouns(self.primary.strip().rstrip('.'))[:1].lower()}" \
                  f"{own_pronouns(self.primary.strip().rstrip('.'))[1:]}."
        draft = {"id": self.id, "title": f"{label} ({'imported'})", "specialty": specialty_for(self.gold),
                 "setting": self.setting, "difficulty": 2, "demographics": {"age": self.age, "sex": self.sex},
                 "informant": "parent" if self.age < 12 else "patient", "presenting_complaint": presenting,
                 "chief_complaint": self.chief or self.primary, "opening_statement": opening,
                 "history": self.history, "exam": exam, "tests": tests, "essential_tests": essential,
                 "optional_tests": optional, "budget_usd": budget([*essential, *optional], cat) if listed else 100.0,
                 "gold_diagnosis": self.gold, "differential": diff, "rubric": rubric,
                 "source": self.source + (" Free-text facts not mapped to the catalogue (kept here for LLM patients): "
                                          + " | ".join(self.free_text) if self.free_text else "")}
        case = parse_model(Case, draft, source)
        guard = LeakGuard(case, cat)
        if guard.leaks(case.opening_statement) or guard.leaks(case.chief_complaint):
            report.counts["openings_rewritten"] += 1
            case = case.model_copy(update={"opening_statement": "I haven't been feeling right and I'd like you to have a look at me.",
                                           "chief_complaint": "Presenting problem (see history)"})
        problems = check_case_references(case, cat, source)
        if problems:
            raise DataError(problems)
        return case
