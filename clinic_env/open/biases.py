"""Bias prompts of open mode (AgentClinic's cognitive and implicit biases, arXiv:2405.07960).

The data lives in ``clinic_env/data/open/biases.yaml`` (ids, kind, the paragraph added to the
doctor's or the patient's system prompt, the source). :func:`bias_text` returns the paragraph for
one role, with the anchor diagnosis filled in; an unknown id or a bias the role cannot take is a
clear ``ValueError`` naming the known ids. :func:`anchor_for` picks an anchor diagnosis that is not
the case's own gold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

__all__ = ["BIAS_IDS", "Bias", "anchor_for", "bias_text", "load_biases"]


@dataclass(frozen=True)
class Bias:
    """One bias: its id, ``cognitive`` or ``implicit``, the paragraph per role, and the source."""

    id: str
    kind: str
    doctor: str | None
    patient: str | None
    source: str
    aliases: tuple[str, ...] = ()


def _clean(value: Any) -> str | None:
    return " ".join(str(value).split()) if value else None


@lru_cache(maxsize=1)
def _load() -> tuple[dict[str, Bias], tuple[tuple[str, str, str], ...]]:
    raw = resources.files("clinic_env").joinpath("data/open/biases.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(raw) or {}
    default_source = str(data.get("source", ""))
    out: dict[str, Bias] = {}
    for bid, entry in (data.get("biases") or {}).items():
        out[str(bid)] = Bias(str(bid), str(entry.get("kind", "cognitive")), _clean(entry.get("doctor")),
                             _clean(entry.get("patient")), str(entry.get("source", default_source)),
                             tuple(str(a) for a in entry.get("aliases", ()) or ()))
    anchors = []
    for entry in data.get("anchors") or ({"name": "cancer", "avoid": "C00-D48"},):
        low, _, high = str(entry.get("avoid", "-")).partition("-")
        anchors.append((str(entry["name"]), low.strip(), high.strip()))
    return out, tuple(anchors)


def load_biases() -> dict[str, Bias]:
    """Every bias, by id (aliases not included)."""
    return dict(_load()[0])


BIAS_IDS: tuple[str, ...] = tuple(_load()[0])


def _find(bias_id: str) -> Bias | None:
    biases = _load()[0]
    if bias_id in biases:
        return biases[bias_id]
    return next((b for b in biases.values() if bias_id in b.aliases), None)


def bias_text(bias_id: str | None, role: str, anchor: str | None = None) -> str:
    """The paragraph ``role`` (``doctor`` or ``patient``) gets for ``bias_id`` ('' for None / 'none').

    Raises:
        ValueError: Unknown bias id, or a bias that ``role`` cannot take (e.g. ``self_diagnosis``
            for the doctor).
    """
    if bias_id is None or bias_id.lower() in ("", "none"):
        return ""
    bias = _find(bias_id)
    if bias is None:
        raise ValueError(f"unknown bias {bias_id!r}; known: {', '.join(BIAS_IDS)}")
    text = bias.doctor if role == "doctor" else bias.patient
    if text is None:
        takes = [b.id for b in _load()[0].values() if (b.doctor if role == "doctor" else b.patient)]
        raise ValueError(f"bias {bias_id!r} has no {role} prompt; {role} biases: {', '.join(takes)}")
    return text.replace("{anchor}", anchor or _load()[1][0][0])


def anchor_for(gold_code: str, names_gold: Callable[[str], bool]) -> str:
    """The first anchor diagnosis whose ICD-10 range does not hold ``gold_code`` and that
    ``names_gold`` does not flag (so a bias never names the case's own diagnosis)."""
    category = gold_code.split(".")[0].upper()
    anchors = _load()[1]
    for name, low, high in anchors:
        if not (low and high and low <= category <= high) and not names_gold(name):
            return name
    return anchors[-1][0]
