"""A run as one self-contained HTML page, plus CSV and Parquet exports of its episodes.

:func:`write_report` reads a run folder (``results.jsonl``, and ``summary.json`` when present),
computes :func:`clinic_env.competition.stats.summarise` and writes one HTML file that opens offline:
inline CSS, inline SVG charts drawn here, one small inline script (the replay filter). A
Content-Security-Policy allows only that style and that script (by hash) and ``data:`` images, so the
page can load nothing from the network and a record's text can never run as code; every text taken
from a record is HTML-escaped as well.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from clinic_env.competition.stats import MEANS, RATES, summarise
from clinic_env.records import EpisodeRecord, flatten

__all__ = ["Report", "ReportError", "load_run", "render_html", "write_exports", "write_report"]

PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")
SEGMENTS = {"history": "History taking", "differential": "Differential diagnosis", "tests": "Tests",
            "diagnosis": "Final diagnosis"}
_VIRIDIS = ((68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37))


class ReportError(ValueError):
    """A run folder that cannot be reported on (missing, no results, a malformed line)."""


@dataclass
class Report:
    """What :func:`write_report` wrote."""

    html: Path
    csv: Path
    parquet: Path | None
    notes: list[str] = field(default_factory=list)


def e(value: object) -> str:
    """HTML-escaped text (quotes too, so it is safe in attributes)."""
    return escape(str(value), quote=True)


# ------------------------------------------------------------------------------------------ input

def load_run(run_dir: str | Path) -> tuple[list[EpisodeRecord], dict[str, Any]]:
    """The records and the summary (``{}`` when absent) of a run folder.

    Raises:
        ReportError: The folder or its ``results.jsonl`` is missing, empty or has a malformed line
            (the message names the file, line and field).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir}: {'not a folder' if run_dir.exists() else 'no such folder'} "
                          "(give the run folder that holds results.jsonl)")
    path = run_dir / "results.jsonl"
    if not path.is_file():
        raise ReportError(f"{path}: missing (is {run_dir} a clinic-env run folder?)")
    records = []
    try:
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        records.append(EpisodeRecord.model_validate_json(line.strip()))
                    except ValidationError as exc:
                        err = exc.errors()[0]
                        where = ".".join(str(p) for p in err["loc"]) or "line"
                        raise ReportError(f"{path}:{lineno}: not an episode record ({where}: {err['msg']})") from None
    except UnicodeDecodeError as exc:
        raise ReportError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not records:
        raise ReportError(f"{path}: no episode records")
    summary: dict[str, Any] = {}
    summary_path = run_dir / "summary.json"
    if summary_path.is_file():
        try:
            loaded = json.loads(summary_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ReportError(f"{summary_path}: not valid JSON ({exc})") from None
        summary = loaded if isinstance(loaded, dict) else {}
    return records, summary


# ---------------------------------------------------------------------------------------- numbers

def _num(x: float | None, digits: int = 2) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:,.{digits}f}"


def _interval(iv: dict[str, Any], digits: int = 2, pct: bool = False) -> str:
    if iv.get("estimate") is None:
        return "–"
    k, d = (100.0, 1) if pct else (1.0, digits)
    unit = "%" if pct else ""
    return (f"{iv['estimate'] * k:,.{d}f}{unit} <small>[{iv['low'] * k:,.{d}f}, "
            f"{iv['high'] * k:,.{d}f}]</small>")


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    span = hi - lo or 1.0
    raw = span / n
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if step * m >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 10) for i in range(int((hi - first) / step + 1e-9) + 1)]


def _viridis(t: float) -> tuple[str, bool]:
    """Colour for t in [0, 1] and whether text on it should be dark."""
    t = min(max(t, 0.0), 1.0) * (len(_VIRIDIS) - 1)
    i = min(int(t), len(_VIRIDIS) - 2)
    f = t - i
    r, g, b = (round(a + (b - a) * f) for a, b in zip(_VIRIDIS[i], _VIRIDIS[i + 1], strict=True))
    return f"#{r:02x}{g:02x}{b:02x}", 0.299 * r + 0.587 * g + 0.114 * b > 140


class _Axis:
    """Linear map from data [lo, hi] to pixels [a, b]."""

    def __init__(self, lo: float, hi: float, a: float, b: float) -> None:
        pad = (hi - lo) * 0.04 or 1.0
        self.lo, self.hi, self.a, self.b = lo - pad, hi + pad, a, b

    def __call__(self, v: float) -> float:
        return self.a + (v - self.lo) / (self.hi - self.lo) * (self.b - self.a)


def _svg(width: float, height: float, body: Iterable[str], label: str) -> str:
    return (f'<svg viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" height="{height:.0f}" '
            f'role="img" aria-label="{e(label)}" font-size="11">' + "".join(body) + "</svg>")


def _x_axis(x: _Axis, y: float, top: float, label: str) -> list[str]:
    out = [f'<line x1="{x.a}" x2="{x.b}" y1="{y}" y2="{y}" stroke="#888"/>']
    for t in _ticks(x.lo, x.hi):
        px = x(t)
        out.append(f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{top}" y2="{y}" stroke="#eee"/>'
                   f'<text x="{px:.1f}" y="{y + 14}" text-anchor="middle" fill="#555">{t:g}</text>')
    out.append(f'<text x="{(x.a + x.b) / 2:.0f}" y="{y + 30}" text-anchor="middle" fill="#333">{e(label)}</text>')
    return out


# ----------------------------------------------------------------------------------------- charts

def chart_distributions(rewards: dict[str, np.ndarray], doctors: Sequence[dict[str, Any]]) -> str:
    """Reward per episode for each doctor: dots, quartile box, mean with its bootstrap CI."""
    everything = np.concatenate([v for v in rewards.values() if len(v)] or [np.zeros(1)])
    x = _Axis(float(everything.min()), float(everything.max()), 120, 640)
    row, top = 46, 10
    height = top + row * len(doctors) + 40
    out = _x_axis(x, height - 36, top, "reward per episode")
    for i, d in enumerate(doctors):
        vals, cy, colour = rewards.get(d["doctor"], np.zeros(0)), top + row * i + row / 2, PALETTE[i % len(PALETTE)]
        out.append(f'<text x="112" y="{cy + 4:.0f}" text-anchor="end" fill="#222">{e(d["doctor"])}</text>')
        for j, v in enumerate(vals):  # deterministic jitter (golden-ratio sequence)
            jy = cy + ((j * 0.618034) % 1.0 - 0.5) * row * 0.6
            out.append(f'<circle cx="{x(float(v)):.1f}" cy="{jy:.1f}" r="2.4" fill="{colour}" fill-opacity="0.45"/>')
        if len(vals):
            q1, med, q3 = (float(q) for q in np.quantile(vals, [0.25, 0.5, 0.75]))
            out.append(f'<rect x="{x(q1):.1f}" y="{cy - 11:.1f}" width="{max(x(q3) - x(q1), 1):.1f}" height="22" '
                       f'fill="none" stroke="{colour}" stroke-width="1.5"/>'
                       f'<line x1="{x(med):.1f}" x2="{x(med):.1f}" y1="{cy - 11:.1f}" y2="{cy + 11:.1f}" '
                       f'stroke="{colour}" stroke-width="2"/>')
        iv = d["means"]["reward"]
        if iv["estimate"] is not None:
            m = x(iv["estimate"])
            out.append(f'<line x1="{x(iv["low"]):.1f}" x2="{x(iv["high"]):.1f}" y1="{cy:.1f}" y2="{cy:.1f}" '
                       f'stroke="#111" stroke-width="2.5"/><path d="M{m:.1f} {cy - 6:.1f}l6 6-6 6-6-6z" fill="#111">'
                       f'<title>{e(d["doctor"])}: mean {iv["estimate"]:.3f} [{iv["low"]:.3f}, {iv["high"]:.3f}]'
                       f'</title></path>')
    return _svg(660, height, out, "reward distributions per doctor")


def chart_heatmap(by_specialty: Sequence[dict[str, Any]], doctors: Sequence[str]) -> str:
    """Mean reward per doctor (rows) and specialty (columns)."""
    specialties = sorted({str(s["specialty"]) for s in by_specialty})
    cells = {(s["doctor"], s["specialty"]): s for s in by_specialty}
    means = [s["reward"]["estimate"] for s in by_specialty if s["reward"]["estimate"] is not None] or [0.0]
    lo, hi = min(means), max(means)
    cw, ch, left, top = 34, 28, 110, 120
    width, height = left + cw * len(specialties) + 10, top + ch * len(doctors) + 10
    out = []
    for j, spec in enumerate(specialties):
        cx = left + cw * j + cw / 2
        out.append(f'<text transform="translate({cx + 4:.0f},{top - 6}) rotate(-55)" fill="#333">'
                   f'{e(spec.replace("_", " "))}</text>')
    for i, doctor in enumerate(doctors):
        y = top + ch * i
        out.append(f'<text x="{left - 6}" y="{y + ch / 2 + 4:.0f}" text-anchor="end" fill="#222">{e(doctor)}</text>')
        for j, spec in enumerate(specialties):
            cell = cells.get((doctor, spec))
            x0 = left + cw * j
            if cell is None or cell["reward"]["estimate"] is None:
                out.append(f'<rect x="{x0}" y="{y}" width="{cw - 2}" height="{ch - 2}" fill="#f3f3f3"/>')
                continue
            mean = cell["reward"]["estimate"]
            colour, dark = _viridis((mean - lo) / (hi - lo) if hi > lo else 0.5)
            rate = cell["exact_dx"]
            out.append(f'<rect x="{x0}" y="{y}" width="{cw - 2}" height="{ch - 2}" fill="{colour}"><title>'
                       f'{e(doctor)} · {e(spec)}: mean reward {mean:.2f} [{cell["reward"]["low"]:.2f}, '
                       f'{cell["reward"]["high"]:.2f}], exact diagnosis {rate["successes"]}/{rate["n"]}, '
                       f'n={cell["n"]}</title></rect><text x="{x0 + (cw - 2) / 2:.0f}" y="{y + ch / 2 + 3:.0f}" '
                       f'text-anchor="middle" font-size="9.5" fill="{"#111" if dark else "#fff"}">{mean:.1f}</text>')
    return _svg(width, height, out, "mean reward per specialty heat map")


def chart_cost_accuracy(cost_accuracy: dict[str, Any]) -> str:
    """Mean cost vs exact-diagnosis rate, with both intervals and the Pareto frontier (as in SDBench)."""
    points = [p for p in cost_accuracy["points"] if p["cost_usd"]["estimate"] is not None]
    highs = [p["cost_usd"]["high"] for p in points] or [1.0]
    x, y = _Axis(0.0, max(highs), 60, 640), _Axis(0.0, 1.0, 300, 20)
    out = _x_axis(x, 310, 10, "mean cost per episode (USD)")
    for t in _ticks(0, 1):
        out.append(f'<line x1="60" x2="640" y1="{y(t):.1f}" y2="{y(t):.1f}" stroke="#eee"/>'
                   f'<text x="54" y="{y(t) + 4:.1f}" text-anchor="end" fill="#555">{t * 100:.0f}%</text>')
    out.append('<text transform="translate(14,165) rotate(-90)" text-anchor="middle" fill="#333">'
               'exact diagnosis rate</text>')
    front = sorted((p for p in points if p["pareto"]), key=lambda p: p["cost_usd"]["estimate"])
    if front:
        path = f'M{x(front[0]["cost_usd"]["estimate"]):.1f} {y(front[0]["accuracy"]["estimate"]):.1f}'
        for p in front[1:]:  # a step: the accuracy one can buy at each cost
            path += f'H{x(p["cost_usd"]["estimate"]):.1f}V{y(p["accuracy"]["estimate"]):.1f}'
        out.append(f'<path d="{path}" fill="none" stroke="#444" stroke-dasharray="5 4"/>')
    for i, p in enumerate(points):
        c, a, colour = p["cost_usd"], p["accuracy"], PALETTE[i % len(PALETTE)]
        cx, cy = x(c["estimate"]), y(a["estimate"])
        out.append(f'<line x1="{x(c["low"]):.1f}" x2="{x(c["high"]):.1f}" y1="{cy:.1f}" y2="{cy:.1f}" stroke="{colour}"/>'
                   f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{y(a["low"]):.1f}" y2="{y(a["high"]):.1f}" stroke="{colour}"/>'
                   f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{6 if p["pareto"] else 4.5}" fill="{colour}" '
                   f'stroke="#111" stroke-width="{1.5 if p["pareto"] else 0}"><title>{e(p["doctor"])}: '
                   f'${c["estimate"]:.0f}, {a["estimate"] * 100:.1f}%</title></circle>'
                   f'<text x="{cx + 8:.1f}" y="{cy - 8:.1f}" fill="#222">{e(p["doctor"])}</text>')
    return _svg(660, 350, out, "cost versus accuracy")


def chart_rates(doctors: Sequence[dict[str, Any]]) -> str:
    """Exact diagnosis, dangerous miss and unsupported diagnosis rates per doctor, Wilson intervals."""
    x, row, top = _Axis(0.0, 1.0, 150, 640), 16, 10
    groups = [(name, i) for name, _ in RATES for i in range(len(doctors))]
    height = top + row * len(groups) + 6 * len(RATES) + 40
    out = _x_axis(x, height - 36, top, "rate (Wilson 95% interval)")
    y = float(top)
    for k, (name, _) in enumerate(RATES):
        out.append(f'<text x="4" y="{y + row * len(doctors) / 2 + 4:.0f}" fill="#222" font-weight="600">'
                   f'{e(name.replace("_", " "))}</text>')
        for i, d in enumerate(doctors):
            iv, colour, cy = d["rates"][name], PALETTE[i % len(PALETTE)], y + row / 2
            if iv["estimate"] is not None:
                out.append(f'<rect x="{x(0):.1f}" y="{cy - 5:.1f}" width="{x(iv["estimate"]) - x(0):.1f}" height="10" '
                           f'fill="{colour}"><title>{e(d["doctor"])}: {iv["successes"]}/{iv["n"]}</title></rect>'
                           f'<line x1="{x(iv["low"]):.1f}" x2="{x(iv["high"]):.1f}" y1="{cy:.1f}" y2="{cy:.1f}" '
                           f'stroke="#111"/><text x="{x(iv["high"]) + 5:.1f}" y="{cy + 4:.1f}" fill="#555" '
                           f'font-size="10">{e(d["doctor"])}</text>')
            y += row
        y += 6 if k < len(RATES) - 1 else 0
    return _svg(660, height, out, "rates per doctor")


def chart_forest(paired: Sequence[dict[str, Any]], metric: str = "reward") -> str:
    """Paired differences A - B (mean with bootstrap CI) for every pair of doctors."""
    rows = [p for p in paired if p["differences"][metric]["estimate"] is not None]
    lows = [p["differences"][metric]["low"] for p in rows] + [0.0]
    highs = [p["differences"][metric]["high"] for p in rows] + [0.0]
    x, row, top = _Axis(min(lows), max(highs), 170, 440), 30, 10
    height = top + row * len(rows) + 40
    out = _x_axis(x, height - 36, top, f"paired difference in {metric} (A − B)")
    out.append(f'<line x1="{x(0):.1f}" x2="{x(0):.1f}" y1="{top}" y2="{height - 36}" stroke="#c00" '
               'stroke-dasharray="3 3"/>')
    for i, p in enumerate(rows):
        d, cy = p["differences"][metric], top + row * i + row / 2
        out.append(f'<text x="172" y="{cy + 4:.0f}" text-anchor="end" fill="#222">{e(p["a"])} − {e(p["b"])}</text>'
                   f'<line x1="{x(d["low"]):.1f}" x2="{x(d["high"]):.1f}" y1="{cy:.1f}" y2="{cy:.1f}" '
                   f'stroke="#222" stroke-width="2"/><rect x="{x(d["estimate"]) - 4:.1f}" y="{cy - 4:.1f}" '
                   f'width="8" height="8" fill="#4e79a7"/><text x="452" y="{cy + 4:.0f}" fill="#333">'
                   f'{d["estimate"]:+.2f} [{d["low"]:+.2f}, {d["high"]:+.2f}] · {p["wins"]}/{p["n"]} wins'
                   f'</text>')
    return _svg(660, height, out, "paired differences forest plot")


# ----------------------------------------------------------------------------------------- tables

def _leaderboard(doctors: Sequence[dict[str, Any]]) -> str:
    shown = [(n, c) for n, c in MEANS if any(not d["means"][n].get("degenerate") or d["means"][n]["estimate"]
                                             for d in doctors)]
    head = "".join(f"<th>{e(n.replace('_', ' '))}</th>" for n, _ in (*shown, *RATES))
    body = []
    for rank, d in enumerate(doctors, 1):
        cells = "".join(f"<td>{_interval(d['means'][n], 0 if n in ('cost_usd', 'doctor_turns') else 2)}</td>"
                        for n, _ in shown)
        cells += "".join(f"<td>{_interval(d['rates'][n], pct=True)}</td>" for n, _ in RATES)
        body.append(f"<tr><td>{rank}</td><th>{e(d['doctor'])}</th><td>{d['episodes']}</td>"
                    f"<td>{d['errors']}</td>{cells}</tr>")
    return (f'<table class="num"><tr><th>#</th><th>doctor</th><th>n</th><th>errors</th>{head}</tr>'
            + "".join(body) + "</table>")


def _paired_table(paired: Sequence[dict[str, Any]]) -> str:
    rows = "".join(
        f"<tr><th>{e(p['a'])} vs {e(p['b'])}</th><td>{p['n']}</td><td>{_interval(p['differences']['reward'])}</td>"
        f"<td>{_interval(p['differences']['exact_dx'], pct=True)}</td>"
        f"<td>{_interval(p['differences']['cost_usd'], 0)}</td><td>{p['wins']} / {p['ties']} / {p['losses']}</td>"
        f"<td>{_interval(p['win_rate'], pct=True)}</td></tr>" for p in paired)
    return ('<table class="num"><tr><th>A vs B</th><th>pairs</th><th>Δ reward</th><th>Δ exact dx</th>'
            '<th>Δ cost (USD)</th><th>A wins / ties / losses</th><th>A win rate (ties ½)</th></tr>'
            f"{rows}</table>")


HIT = ' class="hit"'


def _case_table(by_case: Sequence[dict[str, Any]], doctors: Sequence[str]) -> str:
    cases: dict[str, dict[str, Any]] = {}
    for c in by_case:
        cases.setdefault(c["case_id"], {})[c["doctor"]] = c
    head = "".join(f"<th>{e(d)}</th>" for d in doctors)
    body = []
    for case_id, per in sorted(cases.items()):
        first = next(iter(per.values()))
        cells = "".join(
            "<td>–</td>" if d not in per else
            f"<td{HIT if per[d]['exact_dx']['successes'] else ''}>{per[d]['reward_mean']:.2f} "
            f"<small>{per[d]['exact_dx']['successes']}/{per[d]['n']} exact</small></td>"
            for d in doctors)
        body.append(f"<tr><th>{e(case_id)}</th><td class=\"l\">{e(first['specialty'])}</td>"
                    f"<td class=\"l\">{e(first['gold_diagnosis'])}</td>"
                    f"{cells}</tr>")
    return (f'<table class="num cases"><tr><th>case</th><th>specialty</th><th>gold</th>{head}</tr>'
            + "".join(body) + "</table>")


def _meta_table(summary: dict[str, Any], n_records: int) -> str:
    rows = [f"<tr><th>episodes</th><td>{n_records}</td></tr>"]
    for key, value in summary.items():
        if key in ("leaderboard", "statistics"):
            continue
        text = value if isinstance(value, (str, int, float, bool)) else json.dumps(value, ensure_ascii=False)
        text = str(text)
        rows.append(f"<tr><th>{e(key)}</th><td><code>{e(text[:400] + ('…' if len(text) > 400 else ''))}</code></td></tr>")
    return '<table class="meta">' + "".join(rows) + "</table>"


# ---------------------------------------------------------------------------------------- replays

def _turn_row(turn: Any) -> str:
    agent = str(turn.agent).split("_")[0]
    kind, _, item = str(turn.action).partition(":")
    notes = []
    if agent == "examiner":
        action = f'<span class="v v-{e(item)}">{e(item.replace("_", " "))}</span>'
    else:
        action = f"<b>{e(kind)}</b>" + (f" <code>{e(item)}</code>" if item else "")
    if turn.reward_components:
        notes.append(" ".join(f"{e(k)} {v:+.2f}" for k, v in turn.reward_components.items()))
    if turn.violations:
        notes.append('<span class="bad">' + e(", ".join(turn.violations)) + "</span>")
    if turn.mode and turn.mode != "truthful":
        notes.append(e(turn.mode))
    if turn.disclosed:
        notes.append("disclosed " + e(", ".join(turn.disclosed)))
    said = f'<div class="said">“{e(turn.said)}”</div>' if turn.said else ""
    aside = f'<div class="aside">aside: {e(turn.interruption)}</div>' if turn.interruption else ""
    return (f'<tr class="{e(agent)}"><td>{turn.cycle}</td><td>{e(agent)}</td><td>{action}</td>'
            f"<td>{e(turn.text or '')}{said}{aside}</td><td>{'<br>'.join(notes)}</td></tr>")


def _replay(r: EpisodeRecord, open_: bool = False) -> str:
    exact = r.final_diagnosis is not None and r.final_diagnosis == r.gold_diagnosis
    flags = "".join(f'<span class="flag">{e(f.replace("_", " "))}</span>' for f in r.flags)
    if r.errors:
        flags += '<span class="flag">error</span>'
    reward = r.totals.get("reward", 0.0)
    search = " ".join(str(x) for x in (r.doctor, r.case_id, r.specialty, r.persona, r.gold_diagnosis,
                                       r.final_diagnosis, *r.flags)).lower()
    head = (f'<summary><span class="mark {"ok" if exact else "no"}">{"✓" if exact else "✗"}</span> '
            f"<b>{e(r.doctor)}</b> · {e(r.case_id)} <small>({e(r.specialty or '')}, {e(r.persona or '')}, "
            f"seed {r.seed})</small> · reward {reward:.2f} · gold <code>{e(r.gold_diagnosis or '–')}</code> "
            f"final <code>{e(r.final_diagnosis or '–')}</code> {flags}</summary>")
    facts = {"differential": ", ".join(r.differential) or "–", "tests ordered": ", ".join(r.tests_ordered) or "–",
             "cost": f"${r.cost_usd:,.0f}", "evidence": _num(r.evidence), "end": r.end_reason or "–",
             "totals": ", ".join(f"{k} {v:.2f}" for k, v in r.totals.items() if v),
             "errors": "; ".join(r.errors) or "–"}
    body = ['<dl>' + "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in facts.items()) + "</dl>",
            '<table class="replay"><tr><th>cycle</th><th>agent</th><th>action</th><th>text / result / verdict</th>'
            "<th>reward, notes</th></tr>"]
    segment = None
    for turn in r.turns:
        if turn.segment != segment:
            segment = turn.segment
            body.append(f'<tr class="seg"><th colspan="5">{e(SEGMENTS.get(segment, segment))}</th></tr>')
        body.append(_turn_row(turn))
    body.append("</table>")
    return f'<details class="ep"{" open" if open_ else ""} data-search="{e(search)}">{head}{"".join(body)}</details>'


def _pick_replays(records: Sequence[EpisodeRecord], limit: int) -> list[EpisodeRecord]:
    """Up to ``limit`` episodes, whole keys at a time so every doctor's play of a case is shown."""
    by_key: dict[tuple[str, str, int], list[EpisodeRecord]] = {}
    for r in records:
        by_key.setdefault((r.case_id, r.persona or "", r.seed), []).append(r)
    out: list[EpisodeRecord] = []
    for key in sorted(by_key):
        if len(out) + len(by_key[key]) > limit:
            break
        out.extend(sorted(by_key[key], key=lambda r: r.doctor))
    return out


# ------------------------------------------------------------------------------------------- page

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1f3a5f;color:#fff;padding:14px 28px}header h1{margin:0;font-size:22px}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid #ddd;padding:8px 28px;z-index:2}
nav a{margin-right:18px;color:#1f3a5f;text-decoration:none;font-weight:600}
main{padding:8px 28px 40px}section{margin:22px 0}h2{font-size:18px;border-bottom:2px solid #1f3a5f;padding-bottom:4px}
table{border-collapse:collapse;font-size:13px;background:#fff}td,th{border:1px solid #e2e2e2;padding:4px 7px;text-align:left}
table.num td{text-align:right;white-space:nowrap}small{color:#666}table.num td small{display:block}
.wide{grid-column:1/-1}.scroll{overflow-x:auto}table.num th{white-space:normal}
table.cases td small{display:inline}table.cases td.l{text-align:left}table.cases td.hit{background:#e3f3e3}
table.replay td:nth-child(3){white-space:nowrap}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(660px,1fr));gap:18px}
.card{background:#fff;border:1px solid #e2e2e2;border-radius:6px;padding:10px 14px;overflow-x:auto}
.card h3{margin:2px 0 8px;font-size:14px}.note{color:#555;font-size:12px}
details.ep{background:#fff;border:1px solid #e2e2e2;border-radius:4px;margin:4px 0;padding:4px 10px}
details.ep summary{cursor:pointer;font-size:13px}.mark.ok{color:#2a7d2a;font-weight:700}.mark.no{color:#b22;font-weight:700}
.flag{background:#b22;color:#fff;border-radius:3px;padding:0 5px;margin-left:5px;font-size:11px}
dl{display:grid;grid-template-columns:110px 1fr;font-size:12px;gap:2px 8px}dt{color:#666}dd{margin:0}
table.replay{width:100%;font-size:12px}tr.seg th{background:#1f3a5f;color:#fff}
tr.patient td{background:#f6f9ff}tr.examiner td{background:#fbfbf3;color:#444}
.v{border-radius:3px;padding:0 5px;color:#fff;background:#888}.v-met{background:#2a7d2a}.v-not_met{background:#b22}
.bad{color:#b22}.said{font-style:italic}.aside{color:#7a5}#q{padding:5px;width:340px}
"""
SCRIPT = ("var q=document.getElementById('q');q.addEventListener('input',function(){var s=q.value.toLowerCase();"
          "document.querySelectorAll('details.ep').forEach(function(d){d.hidden=s!==''&&"
          "d.getAttribute('data-search').indexOf(s)<0;});});document.body.setAttribute('data-ready','1');")


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def render_html(records: Sequence[EpisodeRecord], summary: dict[str, Any] | None = None, *,
                stats: dict[str, Any] | None = None, title: str = "clinic-env run", replays: int = 200,
                resamples: int = 2000, seed: int = 0) -> str:
    """The report page.

    Args:
        records: The run's episode records.
        summary: The run's ``summary.json`` (shown as run settings).
        stats: :func:`~clinic_env.competition.stats.summarise` of the records (computed when None).
        title: Page title.
        replays: Most episodes replayed (whole (case, persona, seed) groups, in case order).
        resamples: Bootstrap resamples when ``stats`` is computed here.
        seed: Bootstrap seed when ``stats`` is computed here.
    """
    stats = stats if stats is not None else summarise(records, resamples=resamples, seed=seed)
    doctors = stats["doctors"]
    names = [d["doctor"] for d in doctors]
    rewards = {n: np.array([r.totals.get("reward", 0.0) for r in records if r.doctor == n and not r.errors])
               for n in names}
    shown = _pick_replays(records, replays)
    method = stats["method"]
    csp = (f"default-src 'none'; style-src '{_sha256(CSS)}'; script-src '{_sha256(SCRIPT)}'; img-src data:; "
           "base-uri 'none'; form-action 'none'")
    cards = [
        ("Score distributions", chart_distributions(rewards, doctors), ""),
        ("Paired differences (reward, same case, persona and seed)", chart_forest(stats["paired"]), ""),
        ("Cost vs accuracy (dashed: Pareto frontier, ringed points on it)",
         chart_cost_accuracy(stats["cost_accuracy"]), ""),
        ("Rates per doctor", chart_rates(doctors), ""),
        ("Mean reward per specialty (hover a cell for its interval and exact diagnoses)",
         chart_heatmap(stats["by_specialty"], names), " wide"),
    ]
    plots = "".join(f'<div class="card{w}"><h3>{e(t)}</h3>{svg}</div>' for t, svg, w in cards)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)}</title><style>{CSS}</style></head>
<body><header><h1>{e(title)}</h1><div>{len(records)} episodes · {len(names)} doctors ·
{len({r.case_id for r in records})} cases</div></header>
<nav><a href="#leaderboard">Leaderboard</a><a href="#plots">Plots</a><a href="#paired">Paired</a>
<a href="#cases">Cases</a><a href="#replays">Replays</a><a href="#run">Run</a></nav><main>
<section id="leaderboard"><h2>Leaderboard</h2><div class="scroll">{_leaderboard(doctors)}</div>
<p class="note">Means with {method['confidence']:.0%} {e(method['means'])} intervals ({method['resamples']:,}
resamples, seed {method['seed']}); rates with {e(method['rates'])} intervals. Episodes with errors are left out
of every statistic. Columns that are 0 in every episode are hidden.</p></section>
<section id="plots"><h2>Plots</h2><div class="grid">{plots}</div></section>
<section id="paired"><h2>Paired comparisons</h2>{_paired_table(stats["paired"])}
<p class="note">Over the episodes both doctors finished with the same case, persona and seed; wins on reward
(ties within {method['tie_tolerance']:g} count ½, Wilson interval); differences with bootstrap intervals.
Intervals are not adjusted for multiple comparisons.</p></section>
<section id="cases"><h2>Per case</h2><details><summary>Mean reward and exact diagnoses per case and doctor
({len({c["case_id"] for c in stats["by_case"]})} cases)</summary>{_case_table(stats["by_case"], names)}</details></section>
<section id="replays"><h2>Episode replays</h2><p><input id="q" type="search"
placeholder="filter: doctor, case, specialty, diagnosis, flag"> <small>{len(shown)} of {len(records)}
episodes</small></p>{"".join(_replay(r, i == 0) for i, r in enumerate(shown))}</section>
<section id="run"><h2>Run</h2>{_meta_table(summary or {}, len(records))}</section>
</main><script>{SCRIPT}</script></body></html>
"""


# ---------------------------------------------------------------------------------------- exports

def write_exports(records: Sequence[EpisodeRecord], csv_path: Path, parquet_path: Path) -> tuple[Path | None, str]:
    """One flat row per episode (:func:`clinic_env.records.flatten`) as CSV, and as Parquet when
    pandas and pyarrow are installed. Returns the Parquet path (or None) and a note."""
    rows = [flatten(r) for r in records]
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    try:
        import pandas as pd
        import pyarrow  # noqa: F401  (pandas' Parquet engine)
    except ImportError:
        return None, 'Parquet export skipped: needs pandas and pyarrow (pip install "clinic-env[report]")'
    pd.DataFrame(rows, columns=columns).to_parquet(parquet_path, index=False)
    return parquet_path, f"wrote {parquet_path}"


def write_report(run_dir: str | Path, out: str | Path | None = None, *, replays: int = 200,
                 resamples: int | None = None, seed: int | None = None) -> Report:
    """Write the HTML report of a run folder and its CSV/Parquet exports next to it.

    Args:
        run_dir: Folder with ``results.jsonl`` (and ``summary.json``).
        out: The HTML file (default ``RUN_DIR/report.html``); exports are ``<stem>_episodes.csv`` and
            ``<stem>_episodes.parquet`` beside it.
        replays: Most episodes replayed in the page.
        resamples: Bootstrap resamples (default: as in ``summary.json``'s statistics, else 2,000).
        seed: Bootstrap seed (default: as in ``summary.json``'s statistics, else 0), so the page shows
            the figures the tournament wrote.

    Raises:
        ReportError: The run folder cannot be read (see :func:`load_run`).
    """
    records, summary = load_run(run_dir)
    method = summary.get("statistics", {}).get("method", {}) if isinstance(summary.get("statistics"), dict) else {}
    resamples = resamples if resamples is not None else int(method.get("resamples", 2000))
    seed = seed if seed is not None else int(method.get("seed", 0))
    html_path = Path(out) if out is not None else Path(run_dir) / "report.html"
    html_path.parent.mkdir(parents=True, exist_ok=True)
    page = render_html(records, summary, title=f"clinic-env run: {Path(run_dir).resolve().name}",
                       replays=replays, resamples=resamples, seed=seed)
    html_path.write_text(page, encoding="utf-8")
    stem = html_path.with_suffix("").name
    csv_path = html_path.with_name(f"{stem}_episodes.csv")
    parquet, note = write_exports(records, csv_path, html_path.with_name(f"{stem}_episodes.parquet"))
    return Report(html_path, csv_path, parquet, [note])
