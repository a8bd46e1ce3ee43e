"""Printable standardised-patient scripts for OSCE teaching (Markdown and HTML).

:func:`export_script` turns any case (bundled, generated or imported) into one actor-ready
document: the candidate's instructions (the brief, checked against the script: a symptom the
brief names that the script lacks or denies is reported in an examiner's note), the patient's
script (who to be, acting notes for the persona and for the vital signs, the opening line, what
to say when asked about each item, the backstory of every positive item, how to answer what the
script does not cover), the examination and results cards the examiner hands out, the examiner's
checklist (the case rubric plus the risk factors this patient has and the pertinent negatives),
and the answer key with its legend. Both formats are rendered from the same list of blocks, so
they always say the same thing; the HTML page is self-contained (inline styles) and escaped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from clinic_env.generate.actor import (
    backstories,
    checklist_extras,
    load_actor_notes,
    unlisted_rules,
    vital_notes,
)
from clinic_env.generate.coherence import check_rules
from clinic_env.generate.profile import case_profile, unlisted_result
from clinic_env.generate.rubric import short_label
from clinic_env.patients.leak_guard import LeakGuard
from clinic_env.patients.session import interruption_rate
from clinic_env.schema.case import Case, Fact, Finding
from clinic_env.schema.catalogue import Catalogue
from clinic_env.schema.loading import load_catalogue, load_personas
from clinic_env.schema.persona import COOPERATIVE, Persona

__all__ = ["FORMATS", "export_script", "script_blocks"]

FORMATS = ("md", "html")
_CATEGORY_ORDER = ("presenting", "symptom", "pmh", "meds", "allergy", "social", "family", "obgyn")
_CATEGORY_TITLE = {
    "presenting": "The presenting complaint", "symptom": "Other symptoms", "pmh": "Past medical history",
    "meds": "Medicines", "allergy": "Allergies", "social": "Social history", "family": "Family history",
    "obgyn": "Obstetric and gynaecological history",
}


@dataclass
class _Block:
    kind: str  # h1, h2, p, list, table, checklist
    text: str = ""
    items: list[str] = field(default_factory=list)
    header: Sequence[str] = ()
    rows: list[Sequence[str]] = field(default_factory=list)


def _flag(finding: Finding) -> str:
    return ("mildly abnormal" if finding.grade == "mild" else "abnormal") if finding.abnormal else "normal"


def _profile_abnormal(case: Case) -> list[str]:
    """Tests the case does not list that its gold's profile makes abnormal in most patients."""
    cond = case_profile(case)
    if cond is None:
        return []
    age, sex = case.demographics.age, case.demographics.sex
    return [t for t, e in {**cond.exam, **cond.tests}.items()
            if e.p >= 0.5 and e.applies(age, sex) and case.result(t) is None]


def _persona_of(case: Case, persona: Persona | str | None) -> Persona:
    if isinstance(persona, Persona):
        return persona
    wanted = persona
    if wanted is None:
        m = re.search(r"persona '([a-z0-9-]+)'", case.source)
        wanted = m.group(1) if m else ("parent-proxy" if case.informant == "parent" else "cooperative")
    try:
        found = {p.id: p for p in load_personas()}
    except (FileNotFoundError, ValueError):
        found = {}
    return found.get(wanted, COOPERATIVE)


def _who(case: Case) -> str:
    age = case.demographics.age
    if age < 2:
        return f"{round(age * 12)}-month-old {case.demographics.noun(2)}"
    return f"{age:g}-year-old {case.demographics.noun(16)}"


def _acting_notes(case: Case, persona: Persona, catalogue: Catalogue) -> list[str]:
    notes = [f"Persona: {persona.name}. {persona.description}".strip()]
    n = persona.noise
    notes.append(f"Health literacy {persona.literacy}; speak in a {persona.language_register} register; "
                 f"anxiety {persona.anxiety:.0%}, trust in the doctor {persona.trust:.0%}.")
    if case.informant == "parent":
        notes.append("You are the parent: describe what you have seen; you cannot say what the child feels.")
    if n.vague:
        notes.append(f"About {n.vague:.0%} of first answers are vague: use the vague wording where one is given.")
    if n.withholding:
        notes.append("Sensitive topics (alcohol, drugs, sex, mood, self-harm): hold back the first time unless "
                     "the question is direct and tactful; answer when asked again.")
    if any(f.contradiction for f in case.history.values()):
        notes.append("One scripted inconsistency is marked below: give it if asked that item a second time. "
                     "Candidates are not penalised for it; credit those who notice and clarify.")
    # An aside that would hint at this case's diagnosis is left out (the leak guard decides).
    guard = LeakGuard(case, catalogue)
    questions = [q for q in persona.interruption.questions if not guard.leaks(q)] if interruption_rate(persona) else []
    if questions:
        asks = "; ".join(f'"{q}"' for q in questions[:3])
        notes.append(f"Now and then interrupt with an anxious question, e.g. {asks}.")
    if persona.patience:
        notes.append(f"You are impatient: if the consultation drags on (about {persona.patience} exchanges), say you are leaving.")
    notes.append("Never name a diagnosis, even if asked directly: say you don't know, that is why you came.")
    return notes


def script_blocks(case: Case, persona: Persona | str | None = None, catalogue: Catalogue | None = None) -> list[_Block]:
    """The document as a list of blocks (headings, paragraphs, lists, tables)."""
    cat = catalogue or load_catalogue()
    pers = _persona_of(case, persona)
    who = _who(case)
    dx = cat.diagnoses.get(case.gold_diagnosis)
    blocks = [_Block("h1", f"OSCE station: {case.title}"),
              _Block("p", f"Case {case.id} · {case.specialty.replace('_', ' ')} · {case.setting} · difficulty "
                          f"{case.difficulty}/3 · suggested time 10 minutes")]
    actor = load_actor_notes()
    blocks += [_Block("h2", "1. Candidate instructions"),
               _Block("p", f"You are the doctor in the {case.setting}. A {who} "
                           f"{'is brought by a parent ' if case.informant == 'parent' else ''}with: {case.chief_complaint}. "
                           "Take a focused history, say which examinations and investigations you want, give a "
                           "ranked differential diagnosis and your final diagnosis.")]
    # The brief against the script and the vital signs: what a candidate reads must be what the
    # actor says (generated cases are built so; an imported case may not be).
    clash = [p for p in check_rules(case) if p.split(":")[0] in ("brief-symptoms", "fever-claimed")]
    if clash:
        blocks.append(_Block("p", "Examiner's note: the brief and the script disagree (" + "; ".join(clash)
                                  + "). Follow the script and correct the brief before the station."))
    acting = _acting_notes(case, pers, cat) + vital_notes(case, actor)
    blocks += [_Block("h2", "2. Standardised patient script"),
               _Block("p", f"You are a {who}" + (" (played by the parent)" if case.informant == "parent" else "") + "."),
               _Block("list", items=acting),
               _Block("p", f'Opening line (say this first, unprompted): "{case.opening_statement}"'),
               _Block("p", "Say the following only when asked about the topic, in your own words.")]
    by_cat: dict[str, list[tuple[str, Fact]]] = {}
    for hid, fact in case.history.items():
        item = cat.history.get(hid)
        by_cat.setdefault(item.category if item else "symptom", []).append((hid, fact))
    for category in _CATEGORY_ORDER:
        rows: list[Sequence[str]] = []
        for hid, fact in by_cat.get(category, []):
            item = cat.history.get(hid)
            notes = []
            if fact.criticality == 2:
                notes.append("key")
            if fact.vague:
                notes.append(f'vague version: "{fact.vague}"')
            if fact.contradiction:
                notes.append(f'SCRIPTED INCONSISTENCY on re-asking: "{fact.contradiction}"')
            if hid == case.presenting_complaint:
                notes.append("presenting complaint")
            rows.append((item.label if item else hid, fact.text, "; ".join(notes)))
        if rows:
            blocks += [_Block("h3", _CATEGORY_TITLE[category]), _Block("table", header=("Topic", "What you say", "Notes"), rows=rows)]
    stories: list[Sequence[str]] = list(backstories(case, cat, actor))
    if stories:
        blocks += [_Block("h3", "Your backstory (the story behind each thing you have)"),
                   _Block("table", header=("Topic", "You said", "The story behind it"), rows=stories)]
    blocks += [_Block("h3", "Questions this script does not cover"), _Block("list", items=unlisted_rules(case, cat, actor))]
    cards: list[Sequence[str]] = [(cat.tests[t].label if t in cat.tests else t, f.text, _flag(f))
                                  for t, f in (*case.exam.items(), *case.tests.items())]
    # Tests the case does not list but its diagnosis makes abnormal: the same result the env gives.
    cards += [(cat.tests[t].label, f.text, _flag(f)) for t in _profile_abnormal(case)
              if (f := unlisted_result(case, t, cat)).abnormal]
    blocks += [_Block("h2", "3. Examination and results cards (hand out only when requested)"),
               _Block("table", header=("Examination / test", "Finding", ""), rows=cards),
               _Block("p", "Any other examination or test: give the normal result.")]
    checklist = [f"[{r.points:+d}] {r.criterion}" for r in case.rubric] + checklist_extras(case, cat, actor)
    blocks += [_Block("h2", "4. Examiner's checklist"),
               _Block("checklist", items=checklist or ["(no case rubric: use the general OSCE mark scheme)"]),
               _Block("p", "Negative points mark undesirable actions. Score = points met / positive points available.")]
    diff = [f"{short_label(cat.diagnoses[d.code].label) if d.code in cat.diagnoses else d.code} ({d.code})"
            + (" — must not miss" if d.must_not_miss else "") + (" — the diagnosis" if d.code == case.gold_diagnosis else "")
            for d in case.differential]
    keys = [f"{cat.history[h].label if h in cat.history else h}: {f.text}" for h, f in case.history.items()
            if f.criticality == 2 and h != case.presenting_complaint]
    test_label = {t: (cat.tests[t].label if t in cat.tests else t) for t in (*case.essential_tests, *case.optional_tests)}
    blocks += [_Block("h2", "5. Answer key"),
               _Block("p", f"Diagnosis: {dx.label if dx else case.gold_diagnosis} (ICD-10 {case.gold_diagnosis})."
                      if case.coded else f"Diagnosis: {case.gold_text} (no ICD-10 code: unmapped)."),
               _Block("h3", "Differential"), _Block("list", items=diff),
               _Block("h3", "Key history findings"), _Block("list", items=keys or ["-"]),
               _Block("h3", "Investigations"),
               _Block("list", items=[f"Essential: {', '.join(test_label[t] for t in case.essential_tests) or '-'}",
                                     f"Optional: {', '.join(test_label[t] for t in case.optional_tests) or '-'}",
                                     f"Guideline work-up budget: ${case.budget_usd:,.0f}"]
                      + [f"Avoid: {cat.tests[t].label if t in cat.tests else t} ({why})"
                         for t, why in case.contraindicated_tests.items()]),
               _Block("h3", "Legend"), _Block("list", items=list(actor.legend)),
               _Block("p", f"Source: {case.source}")]
    return blocks


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _render_md(blocks: list[_Block]) -> str:
    out: list[str] = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            out.append(f"{'#' * int(b.kind[1])} {b.text}")
        elif b.kind == "p":
            out.append(b.text)
        elif b.kind == "list":
            out.append("\n".join(f"- {i}" for i in b.items))
        elif b.kind == "checklist":
            out.append("\n".join(f"- [ ] {i}" for i in b.items))
        elif b.kind == "table":
            lines = ["| " + " | ".join(b.header) + " |", "|" + "---|" * len(b.header)]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b.rows]
            out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


_CSS = """body{font-family:Georgia,serif;max-width:60em;margin:2em auto;color:#111;line-height:1.4}
h1{font-size:1.5em;border-bottom:2px solid #333}h2{font-size:1.2em;margin-top:1.6em;page-break-after:avoid}
h3{font-size:1em;margin-bottom:.3em}table{border-collapse:collapse;width:100%;margin:.4em 0 1em}
th,td{border:1px solid #999;padding:.3em .5em;text-align:left;vertical-align:top}th{background:#eee}
ul.checklist{list-style:none;padding-left:0}ul.checklist li:before{content:"\\2610  "}
@media print{h2{page-break-before:always}h2:first-of-type{page-break-before:auto}body{margin:0}}"""


def _render_html(blocks: list[_Block], title: str) -> str:
    e = html.escape
    out = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{e(title)}</title>"
           f"<style>{_CSS}</style></head><body>"]
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            out.append(f"<{b.kind}>{e(b.text)}</{b.kind}>")
        elif b.kind == "p":
            out.append(f"<p>{e(b.text)}</p>")
        elif b.kind in ("list", "checklist"):
            cls = ' class="checklist"' if b.kind == "checklist" else ""
            out.append(f"<ul{cls}>" + "".join(f"<li>{e(i)}</li>" for i in b.items) + "</ul>")
        elif b.kind == "table":
            head = "".join(f"<th>{e(h)}</th>" for h in b.header)
            rows = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in b.rows)
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    out.append("</body></html>\n")
    return "\n".join(out)


def export_script(case: Case, fmt: str = "md", persona: Persona | str | None = None,
                  catalogue: Catalogue | None = None) -> str:
    """A printable standardised-patient script for ``case``.

    Args:
        case: Any valid case.
        fmt: ``"md"`` (Markdown) or ``"html"`` (a standalone page with print styles).
        persona: The persona to act (id or Persona); default the one a generated case was made
            for, else cooperative (parent proxy for a child).
        catalogue: For labels (default bundled).

    Raises:
        ValueError: For an unknown format.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    blocks = script_blocks(case, persona, catalogue)
    return _render_md(blocks) if fmt == "md" else _render_html(blocks, case.title)
