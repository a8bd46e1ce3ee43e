"""Clinical coherence checks of a generated case against the condition it came from.

:func:`check_coherence` lists every way a case contradicts its condition or its patient: a
feature the condition always has that is missing, one it never has that is present, findings for
the wrong sex or age, a temperature that disagrees with the fever history, vital signs outside
physiological limits, a positive pregnancy test outside pregnancy, an implausible gold diagnosis,
an initial assessment (pulse oximetry, Glasgow Coma Scale) missing or disagreeing with the vital
signs or with a GCS stated elsewhere, and every rule of ``data/coherence/rules.yaml``
(:func:`check_rules`: laterality, who may have or say what, brief vs script vs vital signs,
essential initial assessment, implied backstories and examination cards, units, natural durations).
The generator is built never to produce these; the tests run the check over many cases.
"""

from __future__ import annotations

import re

from clinic_env.generate.knowledge import Condition
from clinic_env.generate.rules import (
    CoherenceRules,
    brief_symptoms,
    conflicts,
    item_allowed,
    lateral_mentions,
    load_rules,
    mentions,
    text_allowed,
    unnatural_durations,
)
from clinic_env.schema.case import Case
from clinic_env.schema.catalogue import Catalogue

__all__ = ["check_coherence", "check_rules", "initial_assessment_problems", "parse_vitals", "vital_flags"]

_VITAL = {
    "hr": re.compile(r"\bHR (\d+)"),
    "sbp": re.compile(r"\bBP (\d+)/(\d+)"),
    "rr": re.compile(r"\bRR (\d+)"),
    "spo2": re.compile(r"\bSpO2 (\d+)%"),
    "temp": re.compile(r"\bT (\d+(?:\.\d)?) ?°C"),
}
#: A stated SpO2 and its oxygen wording ("on air", "on 2 L oxygen").
SPO2_STATED = re.compile(r"\bSpO2 (\d+)%(?:\s*(on [^,;()]*[^,;()\s]))?")
#: A stated GCS total, with its E/V/M breakdown when given ("GCS 13 (E3 V4 M6)", "GCS 15/15").
GCS_STATED = re.compile(r"\bGCS (\d+)(?:/15)?(?:\s*\(E(\d)\s*V(\d)\s*M(\d)\))?")
_MALE_ONLY = ("exam.testicular", "img.us_testicular", "sx.scrotal_pain", "sx.urethral_discharge", "sx.erectile_dysfunction")
_FEMALE_ONLY_PREFIX = ("obgyn.",)
_FEMALE_ONLY = ("exam.pelvic", "img.us_pelvis", "bedside.urine_hcg", "lab.serum_hcg", "sx.vaginal_bleeding",
                "sx.vaginal_discharge", "micro.vaginal_swab", "meds.oral_contraceptive", "bedside.ctg")
#: (age limit, HR high, RR high) for children: above these a value is abnormal for age.
_CHILD_LIMITS = ((1, 160, 50), (5, 140, 40), (12, 120, 25))


def parse_vitals(text: str) -> dict[str, float]:
    """Numbers in a vital-signs line: ``hr``, ``sbp``, ``dbp``, ``rr``, ``spo2``, ``temp``."""
    out: dict[str, float] = {}
    for name, pattern in _VITAL.items():
        m = pattern.search(text)
        if not m:
            continue
        out[name] = float(m.group(1))
        if name == "sbp":
            out["dbp"] = float(m.group(2))
    return out


def vital_flags(text: str, age: float) -> list[str] | None:
    """Abnormal vital signs in ``text`` for a patient of ``age`` (None when none could be read)."""
    v = parse_vitals(text)
    if not v:
        return None
    hr_hi, rr_hi = 100, 20
    for limit, hr, rr in _CHILD_LIMITS:
        if age < limit:
            hr_hi, rr_hi = hr, rr
            break
    flags = []
    if "hr" in v and not 50 <= v["hr"] <= hr_hi:
        flags.append("hr")
    if "sbp" in v and not (90 if age >= 12 else 70) <= v["sbp"] <= 160:
        flags.append("bp")
    if "rr" in v and not 10 <= v["rr"] <= rr_hi:
        flags.append("rr")
    if "spo2" in v and v["spo2"] < 94:
        flags.append("spo2")
    if "temp" in v and not 35.5 <= v["temp"] < 38.0:
        flags.append("temp")
    return flags


def check_coherence(case: Case, cond: Condition, cat: Catalogue) -> list[str]:
    """Every incoherence of ``case`` as generated from ``cond`` (empty when coherent)."""
    problems: list[str] = []
    age, sex = case.demographics.age, case.demographics.sex
    dx = cat.diagnoses.get(case.gold_diagnosis)
    if dx is None or not dx.plausible_for(age, sex):
        problems.append(f"gold diagnosis {case.gold_diagnosis} implausible for a {age:g}-year-old {sex}")
    if case.presenting_complaint not in case.history or not case.history[case.presenting_complaint].present:
        problems.append("presenting complaint missing or absent from the history")
    for hid, entry in cond.history.items():
        fact = case.history.get(hid)
        if fact is None or fact.contradiction is not None:
            continue
        if entry.p >= 0.95 and not fact.present:
            problems.append(f"{hid}: always present in {cond.id} but absent")
        if entry.p <= 0.05 and fact.present and hid != case.presenting_complaint:
            problems.append(f"{hid}: never present in {cond.id} but present")
    for key in (*case.history, *case.exam, *case.tests):
        if sex == "F" and key in _MALE_ONLY:
            problems.append(f"{key}: male-only item for a female patient")
        if sex == "M" and (key in _FEMALE_ONLY or key.startswith(_FEMALE_ONLY_PREFIX)):
            problems.append(f"{key}: female-only item for a male patient")
    for tid, finding in {**cond.exam, **cond.tests}.items():
        found = case.result(tid)
        if found is None or tid == "exam.vitals":
            continue
        if finding.p >= 0.95 and not found.abnormal:
            problems.append(f"{tid}: always abnormal in {cond.id} but normal")
        # A sinus tachycardia on the ECG follows the heart rate, not the condition.
        if finding.p <= 0.05 and found.abnormal and not found.text.lower().startswith("sinus tachycardia"):
            problems.append(f"{tid}: never abnormal in {cond.id} but abnormal")
    vitals = case.exam.get("exam.vitals")
    if vitals is None:
        problems.append("no vital signs")
    else:
        v = parse_vitals(vitals.text)
        limits = {"hr": (30, 220), "sbp": (50, 250), "rr": (6, 80), "spo2": (60, 100), "temp": (34.0, 42.0)}
        problems += [f"vital sign {k}={v[k]:g} outside physiological limits" for k, (lo, hi) in limits.items()
                     if k in v and not lo <= v[k] <= hi]
        fever = case.history.get("sx.fever")
        # A fever at home with a normal temperature now is plausible (antipyretics); the reverse
        # (no fever, but febrile on arrival) is an inconsistency.
        if fever is not None and fever.contradiction is None and "temp" in v and not fever.present and v["temp"] >= 38.0:
            problems.append(f"no fever reported but temperature {v['temp']:g} °C")
        ecg = case.tests.get("ecg.12lead")
        m = re.search(r"(?:[Ss]inus (?:rhythm|tachycardia|bradycardia)|rate of|rate) (\d+)/min", ecg.text) if ecg else None
        if m and "hr" in v and abs(float(m.group(1)) - v["hr"]) > 10:
            problems.append(f"ECG rate {m.group(1)}/min but heart rate {v['hr']:g}/min in the vital signs")
        if ecg is not None and re.search(r"[Ss]inus rhythm (\d+)", ecg.text):
            rate = float(re.search(r"[Ss]inus rhythm (\d+)", ecg.text).group(1))  # type: ignore[union-attr]
            if rate > 100:
                problems.append(f"'sinus rhythm' at {rate:g}/min is a sinus tachycardia")
        flags = vital_flags(vitals.text, age)
        if flags is not None and bool(flags) != vitals.abnormal:
            problems.append(f"vital signs flagged abnormal={vitals.abnormal} but out-of-range values are {flags}")
    cbc = case.tests.get("lab.cbc")
    if cbc is not None:
        wcc = re.search(r"WCC (\d+(?:\.\d+)?)", cbc.text)
        parts = [float(x) for x in re.findall(r"(?:neutrophils|lymphocytes) (\d+(?:\.\d+)?)", cbc.text)]
        if wcc and parts and sum(parts) > float(wcc.group(1)):
            problems.append(f"white cell differential {sum(parts):g} exceeds the total count {wcc.group(1)}")
    hcg = case.tests.get("bedside.urine_hcg") or case.tests.get("lab.serum_hcg")
    if hcg is not None and hcg.abnormal and not case.gold_diagnosis.startswith("O"):
        problems.append("positive pregnancy test in a non-pregnancy diagnosis")
    if case.gold_diagnosis not in {d.code for d in case.differential}:
        problems.append("gold diagnosis not in the differential")
    problems += initial_assessment_problems(case)
    problems += check_rules(case)
    missing = [t for t in case.essential_tests if case.result(t) is None]
    if missing:
        problems.append(f"essential tests without a result: {missing}")
    return problems


def initial_assessment_problems(case: Case) -> list[str]:
    """Pulse oximetry and the GCS against the rest of the case: both listed; the pulse-oximetry
    SpO2 (and its "on air"/"on N L oxygen" wording) that of the vital signs, flagged abnormal as
    the vital signs flag it (below 94%); the GCS total the one any other text states, its E/V/M
    breakdown summing to it, abnormal below 15."""
    problems: list[str] = []
    pulse, gcs, vitals = case.tests.get("bedside.pulse_oximetry"), case.exam.get("exam.gcs"), case.exam.get("exam.vitals")
    if pulse is None:
        problems.append("bedside.pulse_oximetry not listed")
    elif vitals is not None and (said := SPO2_STATED.search(vitals.text)) is not None:
        found = SPO2_STATED.search(pulse.text)
        if found is None or found.group(1) != said.group(1):
            problems.append(f"pulse oximetry {pulse.text!r} but SpO2 {said.group(1)}% in the vital signs")
        elif said.group(2) and found.group(2) != said.group(2):
            problems.append(f"pulse oximetry {found.group(2) or 'without oxygen wording'} but the vital signs "
                            f"say {said.group(2)}")
        elif pulse.abnormal != ("spo2" in (vital_flags(vitals.text, case.demographics.age) or [])):
            problems.append(f"pulse oximetry SpO2 {found.group(1)}% flagged abnormal={pulse.abnormal}")
    if gcs is None:
        problems.append("exam.gcs not listed")
        return problems
    own = GCS_STATED.search(gcs.text)
    if own is None:
        problems.append(f"exam.gcs states no GCS: {gcs.text!r}")
        return problems
    total = int(own.group(1))
    if own.group(2) and sum(int(own.group(i)) for i in (2, 3, 4)) != total:
        problems.append(f"GCS {total} but its breakdown sums to {sum(int(own.group(i)) for i in (2, 3, 4))}")
    if gcs.abnormal != (total < 15):
        problems.append(f"GCS {total} flagged abnormal={gcs.abnormal}")
    for tid, finding in {**case.exam, **case.tests}.items():
        if tid == "exam.gcs":
            continue
        problems += [f"exam.gcs says GCS {total} but {tid} says GCS {m.group(1)}"
                     for m in GCS_STATED.finditer(finding.text) if int(m.group(1)) != total]
    return problems


# ---------------------------------------------------------------------------------- rules as data
def _texts(case: Case) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[tuple[str, str]]]:
    """(where, text) of the brief, of the script (history answers, vague versions included; the
    scripted contradiction is inconsistent by design) and of the cards."""
    brief = [("chief complaint", case.chief_complaint), ("opening statement", case.opening_statement)]
    script = [(hid, t) for hid, f in case.history.items() for t in (f.text, f.vague) if t]
    cards = [(tid, f.text) for tid, f in (*case.exam.items(), *case.tests.items())]
    return brief, script, cards


def _laterality(case: Case, rules: CoherenceRules) -> list[str]:
    brief, _, cards = _texts(case)
    present = [(hid, f.text) for hid, f in case.history.items() if f.present]
    seen: dict[str, dict[str, str]] = {}
    for where, text in (*brief, *present, *cards):
        for region, sides in lateral_mentions(text, rules).items():
            for side in sides:
                seen.setdefault(region, {}).setdefault(side, where)
    return [f"laterality: {region}: left in {by['left']} but right in {by['right']}"
            for region, by in seen.items() if len(by) > 1]


def _who(case: Case, rules: CoherenceRules) -> list[str]:
    age, sex = case.demographics.age, case.demographics.sex
    out = [f"history-limits: {hid} present in a {age:g}-year-old {sex}" for hid, f in case.history.items()
           if f.present and not item_allowed(hid, age, sex, rules)]
    for hid, f in case.history.items():
        for text in (f.text, f.vague, f.contradiction):
            broken = text_allowed(text, age, sex, rules) if text else []
            out += [f"text-limits: {rid}: {hid} says {text!r} for a {age:g}-year-old {sex}" for rid in broken]
    brief, script, _ = _texts(case)
    out += [f"conflicts: {cid}: the brief and script say both" for cid in conflicts([t for _, t in (*brief, *script)], rules)]
    # A placeholder left in a text ("I take {gliclazide|glimepiride}") is a template not filled.
    out += [f"placeholders: {where} says {t!r}" for where, t in (*brief, *script, *_texts(case)[2])
            if re.search(r"\{[^{}]*\}", t)]
    return out


def _brief_and_vitals(case: Case, rules: CoherenceRules) -> list[str]:
    brief, script, _ = _texts(case)
    brief_text = " ".join(t for _, t in brief)
    out = []
    for hid in brief_symptoms(brief_text, rules):
        fact = case.history.get(hid)
        if fact is None or not fact.present:
            out.append(f"brief-symptoms: the brief names {hid} but the script "
                       f"{'lacks it' if fact is None else 'denies it: ' + repr(fact.text)}")
    vitals = case.exam.get("exam.vitals")
    temp = parse_vitals(vitals.text).get("temp") if vitals is not None else None
    for st in rules.vital_statements:
        if st.where == "fact_absent":
            fact = case.history.get(st.item or "")
            hits = [f"{st.item} absent"] if fact is not None and not fact.present and fact.contradiction is None else []
        else:
            where = [(w, t) for w, t in (brief if st.where == "brief" else script)]
            hits = [w for w, t in where if st.pattern and mentions(st.pattern, t, rules)]
            if st.where == "script":  # "no fever" is itself a negation: match it literally
                hits = [w for w, t in where if st.pattern and re.search(st.pattern, t, re.IGNORECASE)]
        if not hits:
            continue
        req = st.requires
        reported = req.or_history is not None and (f := case.history.get(req.or_history)) is not None and f.present
        if temp is None:
            out.append(f"{st.id}: {hits[0]} speaks of the temperature but no temperature is recorded")
        elif req.temp_min is not None and temp < req.temp_min and not reported:
            out.append(f"{st.id}: {hits[0]} claims a fever but T {temp:g} °C and no fever reported")
        elif req.temp_max is not None and temp > req.temp_max:
            out.append(f"{st.id}: {hits[0]} denies a fever but T {temp:g} °C")
    return out


def _assessment_and_implications(case: Case, rules: CoherenceRules) -> list[str]:
    out = []
    ia = rules.initial_assessment
    for tid in ia.always:
        if tid not in case.essential_tests:
            out.append(f"initial-assessment: {tid} is {'optional' if tid in case.optional_tests else 'not essential'}")
    for tid in ia.when_abnormal:
        found = case.result(tid)
        if found is not None and found.abnormal and tid not in case.essential_tests:
            out.append(f"initial-assessment: {tid} is abnormal ({found.text!r}) but not essential")
    present = [(hid, f.text) for hid, f in case.history.items() if f.present]
    for imp in rules.implications:
        hits = [hid for hid, t in present if re.search(imp.history, t, re.IGNORECASE)]
        if not hits:
            continue
        if not any(re.search(imp.backstory, t, re.IGNORECASE) for _, t in present):
            out.append(f"{imp.id}: {hits[0]} implies an injury the history never tells")
        card = case.exam.get(imp.exam)
        if card is not None and not re.search(imp.exam_says, card.text, re.IGNORECASE):
            out.append(f"{imp.id}: {hits[0]} but {imp.exam} says {card.text!r}")
    return out


def _units_and_durations(case: Case, rules: CoherenceRules) -> list[str]:
    brief, script, cards = _texts(case)
    out = [f"units: {u.id}: {tid} {m.group(0)!r} ({u.says})" for tid, t in cards for u in rules.units
           if (m := re.search(u.pattern, t))]
    out += [f"durations: {where} says {d!r}" for where, t in (*brief, *script, *cards)
            for d in unnatural_durations(t, rules)]
    return out


def check_rules(case: Case, rules: CoherenceRules | None = None) -> list[str]:
    """Every violation of the coherence rules (``data/coherence/rules.yaml``) by ``case``, each
    prefixed with the rule's id (empty when coherent). Works on any case, bundled or generated.

    Args:
        case: The case to check.
        rules: The rules (default: the shipped file).
    """
    r = rules or load_rules()
    return [*_laterality(case, r), *_who(case, r), *_brief_and_vitals(case, r),
            *_assessment_and_implications(case, r), *_units_and_durations(case, r)]
