"""Patient-simulation quality per episode, after Baichuan-M2's patient simulator evaluation.

Three scores in [0, 1], computed from the patient's turns in ``engine.turns`` (the fields the
:class:`~clinic_env.patients.session.PatientSession` records), the case and the persona:

- **fact score**: the share of judged answers consistent with the case. A structured answer is
  inconsistent when it denies a fact the case lists as present; the scripted contradiction is
  flagged in the ground truth and counts as consistent. A free-text (LLM) answer is judged by its
  polarity (a leading "yes"/"no") against the fact; answers whose polarity cannot be read, and
  withheld answers, are not judged.
- **privacy score**: 1 minus the share of answers that tried to disclose something not asked for
  (anything the leak guard blocked: the diagnosis, script talk, unasked facts) or that disclosed
  a fact other than the one asked.
- **persona consistency**: the mean agreement (1 - |observed - expected|) between the behaviour
  and the persona: vague first answers vs the vague rate, withheld first asks of sensitive items
  vs the withholding rate, tangents vs the tangential rate, asides vs the interruption rate, and,
  for low and medium literacy, the share of answers free of clinical jargon.

These are heuristics without an LLM judge; small episodes give noisy rates. Documented in
``details`` with the counts behind each figure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from clinic_env.patients.session import interruption_rate
from clinic_env.patients.vocabulary import jargon
from clinic_env.schema.case import Case
from clinic_env.schema.catalogue import Catalogue
from clinic_env.schema.persona import Persona

__all__ = ["SimulationQuality", "episode_quality", "polarity", "simulation_quality"]

_NO = re.compile(r"^\W*(?:no\b|nope|nah\b|never\b|not\b|none\b|nothing\b|i (?:do not|don't|haven't|have not|"
                 r"didn't|did not|am not|'m not|can't say i have)|i've not|i'm not|can't say)", re.IGNORECASE)
_YES = re.compile(r"^\W*(?:yes\b|yeah\b|yep\b|definitely\b|i do\b|i have\b|i've (?:had|got|been|noticed)|"
                  r"i get\b|i take\b|it does\b|sometimes\b|a bit\b|quite\b|actually,? yes)", re.IGNORECASE)


def polarity(text: str) -> int:
    """+1 when an answer starts by affirming, -1 when it starts by denying, 0 when unclear."""
    if _NO.match(text):
        return -1
    if _YES.match(text):
        return 1
    return 0


@dataclass(frozen=True)
class SimulationQuality:
    """Patient-simulation quality of one episode.

    Attributes:
        fact_score: Share of judged answers consistent with the case.
        privacy_score: 1 - share of answers that tried to disclose something not asked for.
        persona_consistency: Mean agreement of the behaviour with the persona.
        answers: Number of patient answers.
        details: Counts and component scores behind the three figures.
    """

    fact_score: float
    privacy_score: float
    persona_consistency: float
    answers: int
    details: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for episode records)."""
        return asdict(self)


def _agreement(observed: int, total: int, expected: float) -> float | None:
    return None if total == 0 else 1.0 - abs(observed / total - expected)


def simulation_quality(
    turns: Iterable[Mapping[str, Any]],
    case: Case,
    persona: Persona,
    catalogue: Catalogue | None = None,
    interruption_share: float | None = None,
) -> SimulationQuality:
    """Score the patient of one episode (see the module docstring).

    Args:
        turns: The episode's turns (``engine.turns`` or a record's ``turns``).
        case: The episode's case.
        persona: The episode's persona.
        catalogue: Needed to know which items are sensitive (withholding); optional.
        interruption_share: The env's interruption override, if any.
    """
    answers = [t for t in turns if t.get("agent") == "patient_0" and str(t.get("action", "")).startswith("answer:")]
    judged = consistent = undue = scripted = 0
    seen: set[str] = set()
    first_listed = first_vague = sensitive_first = withheld = 0
    tangents = asides = structured = plain_answers = 0
    for turn in answers:
        hid = str(turn.get("fact", ""))
        mode = str(turn.get("mode") or str(turn["action"]).split(":", 1)[1])
        fact = case.history.get(hid)
        text = str(turn.get("text") or "")
        free = bool(turn.get("free_text"))
        disclosed = turn.get("disclosed") or {}
        if turn.get("guard") or any(h != hid for h in disclosed):
            undue += 1
        if turn.get("contradiction"):
            scripted += 1
            judged += 1
            consistent += 1
        elif mode != "withhold":
            if free:
                pol = polarity(text)
                truth = fact.present if fact is not None else False
                if pol:
                    judged += 1
                    consistent += int((pol > 0) == truth)
            else:
                judged += 1
                consistent += int(not (mode == "deny" and fact is not None and fact.present))
        first = hid not in seen
        seen.add(hid)
        if first and fact is not None:
            first_listed += 1
            first_vague += mode == "vague"
        if first and catalogue is not None and hid in catalogue.history and catalogue.history[hid].sensitive:
            sensitive_first += 1
            withheld += mode == "withhold"
        if not free:
            structured += 1
            tangents += bool(turn.get("tangent"))
        asides += bool(turn.get("interruption"))
        if persona.literacy != "high" and text:
            plain_answers += not jargon(text, persona.literacy)
    n = len(answers)
    parts = {
        "vague": _agreement(first_vague, first_listed, persona.noise.vague),
        "withholding": _agreement(withheld, sensitive_first, persona.noise.withholding),
        "tangential": _agreement(tangents, structured, persona.noise.tangential) if persona.phrases.tangents else None,
        "interruption": _agreement(asides, n, interruption_rate(persona, interruption_share)),
        "register": (plain_answers / n if n else None) if persona.literacy != "high" else None,
    }
    scores = [v for v in parts.values() if v is not None]
    details: dict[str, float] = {f"consistency_{k}": v for k, v in parts.items() if v is not None}
    details.update({"judged_answers": judged, "consistent_answers": consistent, "undue_disclosures": undue,
                    "scripted_contradictions": scripted, "tangents": tangents, "interruptions": asides})
    return SimulationQuality(
        fact_score=consistent / judged if judged else 1.0,
        privacy_score=1.0 - undue / n if n else 1.0,
        persona_consistency=sum(scores) / len(scores) if scores else 1.0,
        answers=n,
        details=details,
    )


def episode_quality(engine: Any) -> SimulationQuality:
    """:func:`simulation_quality` of the episode an engine (``env.unwrapped.engine``) just played."""
    return simulation_quality(engine.turns, engine.case, engine.persona, engine.cat, engine.interruption_share)
