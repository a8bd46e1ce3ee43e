"""Feedback as Markdown and as one self-contained HTML page (:class:`~clinic_env.teaching.feedback.Feedback`).

Both are built from the same sections (title, rows), so they say the same things; HTML escapes
every text and loads nothing from outside.
"""

from __future__ import annotations

import html as _html
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clinic_env.teaching.feedback import Feedback, ItemCheck

__all__ = ["html", "markdown", "sections"]

Section = tuple[str, list[str], list[list[str]]]
"""A section: its title, a few sentences, and table rows (the first row is the header)."""


def _mark(done: bool | None) -> str:
    return "yes" if done else "not judged" if done is None else "NO"


def _items(rows: tuple[ItemCheck, ...], yes: str) -> list[list[str]]:
    return [["item", yes, "detail"], *([i.label, _mark(i.done), i.detail] for i in rows)]


def _money(x: float) -> str:
    return f"${x:,.0f}"


def sections(fb: Feedback) -> list[Section]:
    """The feedback's sections, in reading order."""
    out: list[Section] = []
    verdict = ("correct" if fb.diagnosis_correct else "not the gold diagnosis") if fb.final_diagnosis else "none given"
    summary = [
        f"Gold diagnosis: {fb.gold_label} ({fb.gold}).",
        f"Your final diagnosis: {fb.final_label}" + (f" ({fb.final_diagnosis})" if fb.final_diagnosis else "")
        + f": {verdict}.",
        f"Your differential: {', '.join(fb.differential) or 'none'}.",
        f"Total cost of tests: {_money(fb.cost_usd)} (case budget {_money(fb.budget_usd)}).",
        "Score: " + (f"{fb.score:.3f}" if fb.score is not None else
                     f"not scored (the consultation ended without a diagnosis: {fb.end_reason})") + ".",
    ]
    if fb.components:
        summary.append("Segment scores (0-1): " + ", ".join(f"{k} {v:.2f}" for k, v in fb.components.items()) + ".")
    out.append(("Summary", summary, []))
    if fb.dangerous or fb.must_not_miss_missing:
        rows = [["must-not-miss diagnosis", "in your differential"],
                *([f"{m.label} ({m.id})", "NO"] for m in fb.must_not_miss_missing)]
        out.append(("Safety", list(fb.dangerous), rows if fb.must_not_miss_missing else []))
    got = sum(e.done for e in fb.evidence)
    out.append(("Evidence that confirms the diagnosis",
                [f"You obtained {got} of {len(fb.evidence)} items of the confirmatory evidence."],
                _items(fb.evidence, "obtained")))
    missed_q = len(fb.missed_questions)
    out.append(("Essential questions", [f"Asked {len(fb.questions) - missed_q} of {len(fb.questions)}; "
                                        f"missed {missed_q}."], _items(fb.questions, "asked")))
    missed_t = len(fb.missed_tests)
    out.append(("Essential tests", [f"Ordered {len(fb.tests) - missed_t} of {len(fb.tests)}; missed {missed_t}."],
                _items(fb.tests, "ordered")))
    waste = sum(float(i.detail.split(";")[0].strip("$").replace(",", "")) for i in fb.unnecessary)
    out.append(("Tests this case did not need",
                [f"{len(fb.unnecessary)} test(s), {_money(waste)}." if fb.unnecessary else "None: well done."],
                [["test", "cost"], *([i.label, i.detail] for i in fb.unnecessary)] if fb.unnecessary else []))
    if fb.timing:
        rows = [["action", "cycle done", "due by cycle", "in time"],
                *([t.label, "not done" if t.cycle is None else str(t.cycle),
                   "-" if t.within is None else str(t.within), "yes" if t.met else "NO"] for t in fb.timing)]
        out.append(("Timing of time-critical actions",
                    ["The clock is the cycle number: a question and its answer take two cycles, about a minute."],
                    rows))
    met = sum(1 for r in fb.rubric if r.met and r.points > 0)
    positive = sum(1 for r in fb.rubric if r.points > 0)
    out.append(("Rubric", [f"Met {met} of {positive} positive items; negative items met are penalties."],
                [["criterion", "points", "met", "why"],
                 *([r.criterion, f"{r.points:+d}", _mark(r.met), r.reason] for r in fb.rubric)]))
    if fb.said:
        out.append(("What you said to the patient", list(fb.said), []))
    if len(fb.comparison) > 1:
        rows = [["doctor", "score", "final diagnosis", "correct", "questions", "tests", "cost"]]
        for r in fb.comparison:
            rows.append([r.doctor, "-" if r.score is None else f"{r.score:.3f}",
                         f"{r.diagnosis_label} ({r.final_diagnosis})" if r.final_diagnosis else "none",
                         "yes" if r.correct else "no", str(r.questions), str(len(r.tests)), _money(r.cost_usd)])
        out.append(("The same case played by the scripted doctors (same seed, same patient)", [], rows))
    return out


def markdown(fb: Feedback) -> str:
    """The feedback as Markdown."""
    lines = [f"# Feedback: {fb.case_id}", "", f"*{fb.chief_complaint}* (seed {fb.seed}, persona {fb.persona})", ""]
    for title, sentences, rows in sections(fb):
        lines += [f"## {title}", ""]
        lines += [f"- {s}" for s in sentences]
        if sentences:
            lines.append("")
        if rows:
            cells = [[c.replace("|", "\\|").replace("\n", " ") for c in row] for row in rows]
            lines.append("| " + " | ".join(cells[0]) + " |")
            lines.append("|" + "---|" * len(cells[0]))
            lines += ["| " + " | ".join(row) + " |" for row in cells[1:]]
            lines.append("")
    return "\n".join(lines)


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%;font-size:.92em}td,th{border:1px solid #ddd;padding:4px 6px;
vertical-align:top;text-align:left}th{background:#f4f4f4}.NO{color:#a00;font-weight:600}.yes{color:#070}"""


def html(fb: Feedback) -> str:
    """The feedback as one self-contained HTML page."""
    esc = _html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>Feedback: {esc(fb.case_id)}</title><style>{_CSS}</style></head><body>",
             f"<h1>Feedback: {esc(fb.case_id)}</h1>",
             f"<p><em>{esc(fb.chief_complaint)}</em> (seed {fb.seed}, persona {esc(fb.persona or '-')})</p>"]
    for title, sentences, rows in sections(fb):
        parts.append(f"<section><h2>{esc(title)}</h2>")
        if sentences:
            parts.append("<ul>" + "".join(f"<li>{esc(s)}</li>" for s in sentences) + "</ul>")
        if rows:
            head = "".join(f"<th>{esc(c)}</th>" for c in rows[0])
            body = "".join("<tr>" + "".join(f'<td class="{esc(c)}">{esc(c)}</td>' if c in ("yes", "NO")
                                            else f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows[1:])
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
