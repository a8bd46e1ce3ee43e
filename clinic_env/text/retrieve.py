"""Which catalogue items to suggest in a lean doctor prompt (instead of listing the whole catalogue).

The full catalogue (276 history items, 156 tests, 321 diagnoses: ~1,400 words) used to be listed
in every doctor prompt. A lean prompt lists a few legal items of the current segment, ranked by
what a clinician would think of from what is on the page (nothing the doctor cannot see):

- the work-up of the presenting complaint (the catalogue's ``presentations``: guideline history
  items, tests and differential for that complaint), in its order;
- the features (history items and tests with their likelihoods) of the diagnoses in play: the
  doctor's own differential, else the complaint's differential;
- the words of the last patient answers and results (word overlap with the items' names);
- in the differential and diagnosis segments, the doctor's differential first, then codes named
  in the transcript, then the complaint's differential.

Items already asked or ordered are not legal and so never suggested. Anything else stays
reachable: the doctor may name any id or write the question in words (the parser maps it), and
with structured output the full legal list goes in the ``response_format`` schema.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from clinic_env.core.engine import DIAGNOSIS, DOCTOR, HISTORY, TESTS, Consultation
from clinic_env.text.parse import matcher_for

__all__ = ["DEFAULT_SUGGESTIONS", "families", "suggestions"]

#: Items suggested per turn.
DEFAULT_SUGGESTIONS = 8
# Weights of the ranking signals (work-up order, feature likelihood, overlap with recent words).
_WORKUP, _FEATURE, _WORDS = 2.0, 1.0, 1.5
_RECENT_LINES = 4


def _recent_text(eng: Consultation) -> str:
    """The last few lines the doctor can read that are not its own."""
    lines = [ln for ln in eng.view_text(DOCTOR).splitlines() if ln and not ln.startswith("Doctor:")]
    return " ".join(lines[-_RECENT_LINES:])


def suggestions(eng: Consultation, k: int = DEFAULT_SUGGESTIONS) -> list[tuple[str, str]]:
    """Up to ``k`` legal items of the current segment as ``(id or code, label)``, best first."""
    cat, case, seg = eng.cat, eng.case, min(eng.segment, DIAGNOSIS)
    mask, t = eng.masks[DOCTOR], eng.table
    if seg == HISTORY:
        kind, ids, start = "history", t.history_ids, t.ask0
    elif seg == TESTS:
        kind, ids, start = "test", t.test_ids, t.order0
    else:
        kind, ids, start = "diagnosis", t.diagnosis_codes, t.dx0
    legal = {x for i, x in enumerate(ids) if mask[start + i]}
    if not legal:
        return []
    score: dict[str, float] = defaultdict(float)
    work = cat.presentations.get(case.presenting_complaint) if case is not None else None
    in_play = list(eng.differential) or (list(work.differential) if work else [])
    if kind == "diagnosis":
        for rank, code in enumerate(eng.differential):
            score[code] += 3.0 * _WORKUP - 0.01 * rank
        for m in matcher_for(cat).find("diagnosis", eng.view_text(DOCTOR)):
            score[m.item] += _WORKUP
        for rank, code in enumerate(work.differential if work else ()):
            score[code] += _WORKUP - 0.01 * rank
    else:
        workup = (work.history if kind == "history" else work.tests) if work else ()
        for rank, item in enumerate(workup):
            score[item] += _WORKUP - 0.01 * rank
        for code in in_play:
            dx = cat.diagnoses.get(code)
            for item, p in (dx.features.items() if dx else ()):
                score[item] = max(score[item], _FEATURE * p) if item not in workup else score[item] + _FEATURE * p
        recent = _recent_text(eng)
        if recent:
            for item, overlap in matcher_for(cat).overlap(kind, recent, legal).items():
                score[item] += _WORDS * overlap
    ranked = sorted((x for x in score if x in legal), key=lambda x: (-score[x], x))
    if len(ranked) < k:  # a complaint with no work-up: fill in catalogue order
        ranked += [x for x in ids if x in legal and x not in score][: k - len(ranked)]
    def label(x: str) -> str:
        return (cat.history[x] if kind == "history" else cat.tests[x] if kind == "test" else cat.diagnoses[x]).label

    return [(x, label(x)) for x in ranked[:k]]


def families(ids: Sequence[str]) -> str:
    """Id families with their sizes, largest first ("sx.* (127), pmh.* (43), ..."): what else may
    be asked or ordered by id."""
    counts: dict[str, int] = defaultdict(int)
    for x in ids:
        counts[x.split(".", 1)[0]] += 1
    return ", ".join(f"{k}.* ({n})" for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
