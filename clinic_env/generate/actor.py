"""What an actor needs beyond the case's answers (``data/knowledge/actor.yaml``): the backstory of
every positive history item, how to answer what the script does not cover, acting notes for the
vital signs, the checklist items for the risk factors and pertinent negatives this patient has,
and the legend of the answer key. Pure functions of the case; :mod:`clinic_env.generate.script`
lays them out.
"""

from __future__ import annotations

import re
import zlib
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from clinic_env.generate.coherence import GCS_STATED, parse_vitals
from clinic_env.generate.knowledge import KNOWLEDGE_DIR
from clinic_env.generate.profile import case_profile
from clinic_env.schema.case import Case
from clinic_env.schema.catalogue import Catalogue
from clinic_env.schema.errors import DataError
from clinic_env.schema.loading import parse_model

__all__ = ["ActorNotes", "backstories", "checklist_extras", "load_actor_notes", "unlisted_rules", "vital_notes"]

_PAIN = re.compile(r"\b(\d{1,2}) ?(?:out of 10|/10)\b")


class VitalNote(BaseModel):
    """An acting note for a vital sign past a threshold."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    vital: str = Field(pattern=r"^(hr|sbp|rr|spo2|temp|gcs|pain)$")
    above: float | None = None
    below: float | None = None
    note: str

    def applies(self, value: float) -> bool:
        """Whether ``value`` meets this row's test."""
        return (self.above is not None and value >= self.above) or (self.below is not None and value <= self.below)


class ActorNotes(BaseModel):
    """``actor.yaml`` (see the file for each table's meaning)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: int
    backstories: dict[str, list[str]]
    unlisted: list[str]
    vitals: list[VitalNote]
    risk_prefixes: list[str]
    legend: list[str]


@lru_cache(maxsize=2)
def load_actor_notes(path: str | None = None) -> ActorNotes:
    """The actor tables (default: the shipped ``actor.yaml``). Cached.

    Raises:
        DataError: When the file cannot be read or does not match :class:`ActorNotes`.
    """
    file = Path(path) if path else KNOWLEDGE_DIR / "actor.yaml"
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DataError.single(file, "", f"cannot read actor notes: {exc}") from None
    return parse_model(ActorNotes, raw, str(file))


def _who(case: Case) -> str:
    age = case.demographics.age
    if age < 2:
        return f"{round(age * 12)}-month-old {case.demographics.noun(2)}"
    return f"{age:g}-year-old {case.demographics.noun(16)}"


def _label(hid: str, cat: Catalogue) -> str:
    item = cat.history.get(hid)
    return item.label if item else hid


def _template(hid: str, notes: ActorNotes) -> str | None:
    for key in (hid, *(k for k in notes.backstories if k.endswith(".") and hid.startswith(k))):
        options = notes.backstories.get(key)
        if options:
            return options[0]
    return None


def backstories(case: Case, cat: Catalogue, notes: ActorNotes | None = None) -> list[tuple[str, str, str]]:
    """(topic, scripted answer, backstory) for every positive history item but the presenting complaint (told in
    the opening line): how it happened, what the patient was told."""
    n = notes or load_actor_notes()
    age = case.demographics.age
    out = []
    for hid, fact in case.history.items():
        if not fact.present or hid == case.presenting_complaint:
            continue
        template = _template(hid, n)
        if template is None:
            continue
        span = max(1, min(15, int(age / 4)))
        years = 1 + zlib.crc32(f"{case.id}\x00{hid}".encode()) % span
        sex = case.demographics.sex
        he = {"M": "he", "F": "she"}.get(sex, "they")
        text = (template.replace("{label}", _label(hid, cat))
                .replace("{age}", f"{age:g}").replace("{years}", str(years)).replace("{he}", he)
                .replace("{his}", {"M": "his", "F": "her"}.get(sex, "their")))
        out.append((_label(hid, cat), fact.text, text))
    return out


def unlisted_rules(case: Case, cat: Catalogue, notes: ActorNotes | None = None) -> list[str]:
    """How to answer what the script does not cover: as a healthy person of this age, except on
    the topics of this case; never deny a positive item."""
    n = notes or load_actor_notes()
    areas = [_label(case.presenting_complaint, cat).lower()]
    areas += [_label(h, cat).lower() for h, f in case.history.items() if f.criticality == 2 and h != case.presenting_complaint]
    areas.append(f"anything to do with {case.specialty.replace('_', ' ')}")
    never = [f"{_label(h, cat).lower()} ({f.text.rstrip('.')})" for h, f in case.history.items() if f.present]
    fill = {"{who}": _who(case), "{areas}": "; ".join(dict.fromkeys(areas)),
            "{never_deny}": "; ".join(never) or "-"}
    out = []
    for line in n.unlisted:
        for k, v in fill.items():
            line = line.replace(k, v)
        out.append(line)
    return out


def _values(case: Case) -> dict[str, float]:
    values: dict[str, float] = {}
    vitals = case.exam.get("exam.vitals")
    if vitals is not None:
        values.update(parse_vitals(vitals.text))
    gcs = case.exam.get("exam.gcs")
    m = GCS_STATED.search(gcs.text) if gcs is not None else None
    if m:
        values["gcs"] = float(m.group(1))
    severity = case.history.get("hx.severity")
    p = _PAIN.search(severity.text) if severity is not None and severity.present else None
    if p:
        values["pain"] = float(p.group(1))
    return values


def vital_notes(case: Case, notes: ActorNotes | None = None) -> list[str]:
    """Acting notes for the vital signs, GCS and pain score this case records (first matching
    row of each vital)."""
    n = notes or load_actor_notes()
    values = _values(case)
    out, done = [], set()
    for row in n.vitals:
        value = values.get(row.vital)
        if value is None or row.vital in done or not row.applies(value):
            continue
        done.add(row.vital)
        out.append(row.note.replace("{value}", f"{value:g}"))
    return out


def checklist_extras(case: Case, cat: Catalogue, notes: ActorNotes | None = None) -> list[str]:
    """Checklist items for the risk factors this patient has and the pertinent negatives (key
    items that are absent), one point each, unless the case rubric already asks for the item."""
    n = notes or load_actor_notes()
    asked = {r.check.asked for r in case.rubric if r.check is not None and getattr(r.check, "asked", None)}
    cond = case_profile(case)
    relevant = set(cond.history) if cond is not None else set()
    out = []
    for hid, fact in case.history.items():
        if hid in asked or hid == case.presenting_complaint:
            continue
        label = _label(hid, cat)
        label = label[:1].lower() + label[1:]
        risk = hid.startswith(tuple(n.risk_prefixes)) and (hid in relevant or fact.criticality == 2)
        if fact.present and risk:
            out.append(f"[+1] Elicits {label} (risk factor: \"{fact.text}\")")
        elif not fact.present and fact.criticality == 2:
            out.append(f"[+1] Asks about {label} (pertinent negative: \"{fact.text}\")")
    return out
