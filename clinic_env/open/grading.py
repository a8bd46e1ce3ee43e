"""Reading the doctor's free text and grading an open-mode episode.

- Markers: ``DIAGNOSIS READY: X`` (also ``FINAL DIAGNOSIS: X``) ends the consultation with X;
  ``REQUEST TEST: X`` (also ``REQUEST TESTS:`` / ``ORDER TEST:``) asks for one or more results
  (names separated by commas, semicolons or "and"). Markers are case-insensitive and may sit in a
  longer reply; the first diagnosis marker wins over a test request in the same turn.
- Verdicts: the doctor's words are mapped to ICD-10 with
  :func:`clinic_env.schema.vocabulary.map_diagnosis` (which refuses to guess), then, if they do not
  map, without hedges and trailing qualifiers (:func:`diagnosis_variants`). A mapped diagnosis
  is compared with the gold by :func:`clinic_env.rewards.segment.diagnosis_match` (method
  ``icd10``; correct when the match is 1: the gold or a consistent, more specific code). When the
  words do not map, the moderator decides (method ``moderator``, tolerant yes/no reading,
  :func:`parse_yes_no`); with no moderator the verdict is ``unmapped`` and not correct.
- Rewards (:func:`open_components`): the registry's components, computed from what happened:
  ``diagnosis`` (match x share of a confirmatory evidence set obtained), ``history`` (share of the
  case's fact weight elicited), ``tests`` (weighted F1 of the catalogue tests requested minus the
  cost term), ``step`` (-step_cost per doctor turn, paid as it happens), ``incomplete`` (-1 when the
  turns ran out) and ``safety`` (-1 for a dangerous miss: a must-not-miss gold not diagnosed).
- Rubric (:func:`rubric_verdicts`): the case's rubric items whose rule check can be decided from an
  open transcript (questions asked, items requested, the final code; a request at doctor turn t
  counts as cycle 2t, a question and its answer being two cycles of the structured env). Items
  about the differential (open mode keeps none) are left unjudged, so they count in neither sum of
  the HealthBench score; items with no rule check are judged by an LLM examiner when there is one
  (one batched ``grade`` call), else left unjudged too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from clinic_env.rewards.checks import EpisodeView, evaluate_check
from clinic_env.rewards.config import RewardConfig
from clinic_env.rewards.segment import (
    diagnosis_match,
    diagnosis_reward,
    evidence_share,
    history_reward,
    rubric_score,
    tests_reward,
)
from clinic_env.schema.case import Case
from clinic_env.schema.catalogue import Catalogue
from clinic_env.schema.rubric import Check, RubricItem
from clinic_env.schema.vocabulary import map_diagnosis
from clinic_env.text.parse import extract_json

__all__ = ["Verdict", "diagnosis_variants", "find_diagnosis", "find_test_request", "icd10_verdict", "needs_judge", "open_components",
           "parse_coverage",
           "parse_yes_no", "rubric_result", "rubric_verdicts", "split_test_names"]

_DX = re.compile(r"\b(?:DIAGNOSIS\s+READY|FINAL\s+DIAGNOSIS)\s*[:\-]\s*(.+)", re.I)
_TEST = re.compile(r"\b(?:REQUEST|ORDER)\s+TESTS?\s*[:\-]\s*(.+)", re.I)
_TRAIL = re.compile(r"[\s\"'*_`.]+$")
_LEAD = re.compile(r"^[\s\"'*_`\[(]+")


def _clean(text: str) -> str:
    out = _TRAIL.sub("", _LEAD.sub("", text)).strip()
    while out.endswith(("]", ")")) and out.count(out[-1]) > out.count("(" if out[-1] == ")" else "["):
        out = _TRAIL.sub("", out[:-1]).strip()
    return out


def find_diagnosis(text: str) -> str | None:
    """The diagnosis after ``DIAGNOSIS READY:`` (or ``FINAL DIAGNOSIS:``), up to the end of its line
    or sentence; None when the reply has no such marker (or names nothing after it)."""
    m = _DX.search(text)
    if m is None:
        return None
    words = re.split(r"\n|(?<=[a-z)])\.\s", m.group(1))[0]
    words = _clean(words)
    return words or None


def find_test_request(text: str) -> str | None:
    """The words after ``REQUEST TEST:`` (to the end of the line), or None."""
    m = _TEST.search(text)
    if m is None:
        return None
    words = _clean(m.group(1).split("\n")[0])
    return words or None


def split_test_names(request: str) -> list[str]:
    """``"CBC, CRP and chest X-ray"`` -> three names (underscores read as spaces)."""
    parts = re.split(r"\s*(?:,|;|/|\band\b|\bplus\b|&)\s*", request.replace("_", " "))
    return [p.strip(" .") for p in parts if p.strip(" .")]


_YES = re.compile(r"\b(yes|yeah|yep|same|correct|match(?:es)?|equivalent|identical)\b", re.I)
_NO = re.compile(r"\b(no|not|different|incorrect|wrong|mismatch|distinct)\b", re.I)


def parse_yes_no(text: str | None) -> bool | None:
    """A moderator's verdict: ``"Yes."``, ``"yes - same condition"``, ``"**No**"``, ``"The answer is
    yes"``, ``{"verdict": "no"}``; None when it says neither (or both with no clear first word)."""
    if not isinstance(text, str) or not text.strip():
        return None
    value = extract_json(text)
    if isinstance(value, dict):
        for key in ("verdict", "answer", "same", "match", "correct"):
            v = value.get(key)
            if isinstance(v, bool):
                return v
            if isinstance(v, str):
                return parse_yes_no(v)
    plain = re.sub(r"[*_`#>\"']", " ", text).strip()
    if re.search(r"\bnot\s+(?:the\s+)?(?:same|equivalent|a match)\b", plain, re.I):
        return False
    first = re.match(r"\W*(\w+)", plain)
    if first:
        word = first.group(1).lower()
        if word in ("yes", "yeah", "yep", "correct", "same"):
            return True
        if word in ("no", "nope", "incorrect", "different"):
            return False
    m = re.search(r"\b(?:answer|verdict)\s+(?:is|:)\s*\W*(yes|no)\b", plain, re.I)
    if m:
        return m.group(1).lower() == "yes"
    yes, no = bool(re.search(r"\byes\b", plain, re.I)), bool(re.search(r"\bno\b", plain, re.I))
    if yes != no:
        return yes
    if not yes and not no:
        y, n = bool(_YES.search(plain)), bool(_NO.search(plain))
        if y != n:
            return y
    return None


def parse_coverage(text: str | None, fact_ids: Iterable[str]) -> set[str] | None:
    """The fact ids an examiner's coverage reply marks as elicited: a JSON object ``{id: true}``, a
    JSON list of ids, or lines ``id: yes``. None when nothing in the reply can be read."""
    if not isinstance(text, str) or not text.strip():
        return None
    ids = list(fact_ids)
    value = extract_json(text)
    if isinstance(value, dict):
        out = set()
        for key, v in value.items():
            if key in ids and (v is True or (isinstance(v, str) and parse_yes_no(v) is True)):
                out.add(key)
        return out
    if isinstance(value, list):
        return {str(v) for v in value if str(v) in ids}
    found: set[str] = set()
    seen = False
    for line in text.splitlines():
        for fid in ids:
            m = re.match(rf"\W*{re.escape(fid)}\W+(.*)", line.strip())
            if m:
                seen = True
                if parse_yes_no(m.group(1)):
                    found.add(fid)
    return found if seen else None


_HEDGE = re.compile(r"^(?:(?:the\s+)?(?:most\s+)?(?:likely|probable|probably|possible|suspected|presumed|"
                   r"working\s+diagnosis(?:\s+is|:)?|i\s+(?:think|believe)\s+(?:it\s+is|this\s+is|it's))\s+)+", re.I)
_TAIL = re.compile(r"\s*(?:[,;:]|\s-\s|\.\s|\b(?:with|secondary\s+to|due\s+to|caused\s+by|likely|probably|"
                   r"provoked|complicated\s+by|in\s+the\s+setting\s+of)\b).*$", re.I)


def diagnosis_variants(text: str) -> list[str]:
    """The doctor's words, then the same without hedges ("most likely ...") and without a trailing
    qualifier (", provoked by ...", "secondary to ...", "with ..."): mapped in turn, first hit wins.
    "X or Y" is never split (a hedge between two diagnoses names neither)."""
    out = [text.strip()]
    bare = _HEDGE.sub("", text.strip())
    head = _TAIL.sub("", bare).strip()
    for v in (bare, head):
        if v and v not in out:
            out.append(v)
    return out


@dataclass(frozen=True)
class Verdict:
    """How the final diagnosis was judged.

    Attributes:
        method: ``icd10``, ``moderator`` or ``unmapped``.
        correct: Whether it counts as the right diagnosis.
        match: The diagnosis match in [0, 1] (before the evidence factor).
        code: The mapped ICD-10 code, or None.
        detail: One line: the mapping's evidence, the moderator's reply, or why neither applied.
    """

    method: str
    correct: bool
    match: float
    code: str | None
    detail: str


def icd10_verdict(text: str, case: Case, catalogue: Catalogue) -> tuple[Verdict | None, str | None, str]:
    """Grade ``text`` by ICD-10 mapping.

    Returns:
        ``(verdict, code, detail)``: the verdict when both the doctor's words and the gold map
        (method ``icd10``), else None (the moderator or ``unmapped`` decides; always for a case whose
        gold is unmapped, ``case.coded`` False); the mapped code
        (None when the words do not map) and the mapping's evidence.
    """
    context = case.demographics.age_band  # the patient's age decides names such as "RDS" (P22.0 / J80)
    mapping = map_diagnosis(text, context)
    for variant in diagnosis_variants(text)[1:]:
        if mapping.mapped:
            break
        mapping = map_diagnosis(variant, context)
    if not mapping.mapped or mapping.code is None:
        return None, None, f"unmapped: {mapping.evidence}"
    code = mapping.code
    if not case.coded:  # no code to compare with: the moderator (or the unmapped verdict) decides
        return None, code, f"{text!r} -> {code}; gold unmapped ({case.gold_text!r}): no ICD-10 code to compare"
    gold = case.gold_diagnosis
    blocks = {c: d.block for c, d in catalogue.diagnoses.items()}
    distinct = {d.code for d in case.differential} - {gold}
    match = diagnosis_match(code, gold, blocks, gold in case.must_not_miss, distinct)
    detail = f"{text!r} -> {code} ({mapping.status}: {mapping.evidence}); gold {gold}"
    return Verdict("icd10", match >= 1.0, match, code, detail), code, detail


def open_components(case: Case, catalogue: Catalogue, config: RewardConfig, *, elicited: Collection[str],
                    ordered: Iterable[str], match: float, correct: bool, diagnosed: bool) -> tuple[dict[str, float],
                                                                                              dict[str, float]]:
    """The episode-end reward components (the per-turn ``step`` cost is paid as it happens).

    Args:
        elicited: History item ids the doctor found out.
        ordered: Item ids obtained by test requests (catalogue tests and exams, ``src.*`` items).
        match: The diagnosis match (0 when none was given).
        correct: Whether the diagnosis counts as right.
        diagnosed: False when the turns ran out before a diagnosis.

    Returns:
        ``(components, parts)``: the components by registry name, and diagnostics (``evidence``,
        ``coverage``, ``tests_recall``, ``tests_precision``, ``cost_usd``).
    """
    ordered_ids = list(dict.fromkeys(ordered))
    catalogue_tests = [t for t in ordered_ids if t in catalogue.tests]
    cost = sum(catalogue.tests[t].cost_usd for t in catalogue_tests)
    credit = {h: 1.0 for h in elicited}
    history = history_reward(case.history, credit, exclude=(case.presenting_complaint,))
    tests, tparts = tests_reward(catalogue_tests, case.essential_tests, case.optional_tests, cost, case.budget_usd,
                                 config.cost_weight, config.cost_cap, config.tests_metric)
    obtained = set(ordered_ids) | set(elicited)
    evidence = evidence_share(case.confirmatory_evidence(), obtained)
    comps = {"history": history, "tests": tests,
             "diagnosis": diagnosis_reward(match, evidence, config.evidence_floor) if diagnosed else 0.0}
    if not diagnosed:
        comps["incomplete"] = -1.0
    if case.gold_diagnosis in case.must_not_miss and not correct:
        comps["safety"] = -1.0
    parts = {"evidence": evidence, "coverage": history, "tests_recall": tparts["recall"],
             "tests_precision": tparts["precision"], "cost_usd": cost}
    return comps, parts


_NO_DIFFERENTIAL = ("differential_size_gt", "differential_includes")


def _about_differential(check: Check) -> bool:
    op, arg = check.operator
    if op in _NO_DIFFERENTIAL:
        return True
    if op in ("all_of", "any_of"):
        return any(_about_differential(c) for c in arg)
    return op == "not" and _about_differential(arg)


def needs_judge(item: RubricItem) -> bool:
    """Whether only an LLM can judge ``item`` in open mode (no rule check, and not about the differential)."""
    return item.check is None and not any(t == "segment:differential" for t in item.tags)


def rubric_verdicts(items: Sequence[RubricItem], view: EpisodeView) -> dict[int, bool | None]:
    """Item index -> met / not met for the rule-checkable items, None for the others."""
    return {i: (evaluate_check(item.check, view) if item.check is not None and not _about_differential(item.check)
                else None) for i, item in enumerate(items)}


def rubric_result(items: Sequence[RubricItem], asked: Sequence[str], ordered: Sequence[str],
                  order_turn: dict[str, int], cost_usd: float, final_code: str | None,
                  judged: Mapping[int, bool] | None = None) -> tuple[float, dict[str, int]]:
    """The rubric component and its counts (met, not_met, failed = not judgeable here); ``judged``
    holds an LLM examiner's verdicts on the items :func:`needs_judge` flags."""
    view = EpisodeView(asked=list(asked), ordered=list(ordered), cost_usd=cost_usd, differential=[],
                       final_dx=final_code, order_cycle={k: 2 * t for k, t in order_turn.items()})
    verdicts = rubric_verdicts(items, view)
    for i, met in (judged or {}).items():
        if 0 <= i < len(items) and needs_judge(items[i]):
            verdicts[i] = met
    return rubric_score(items, verdicts)


def coverage_json(elicited: Iterable[str]) -> str:
    """A canonical coverage reply (for scripted examiners and tests)."""
    return json.dumps({e: True for e in elicited})
