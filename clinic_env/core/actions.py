"""The action table: one ``Discrete`` space shared by all three agents, with per-agent masks.

Index layout (derived from the sorted catalogue, so it is stable for a given catalogue):

====================  =========================================================
``0``                 ``wait`` (the only legal action of an agent with nothing to do)
``1``                 ``end_segment`` (doctor: close history or tests)
``2``                 ``commit_differential`` (doctor: close the differential)
``ask:<history id>``  doctor, history segment
``order:<test id>``   doctor, tests segment
``dx:<ICD-10>``       doctor: add to the differential (segment 2) or give the final diagnosis (4)
``answer:<mode>``     patient: truthful, vague, withhold, deny, contradict
``verdict:<v>``       examiner: met, not_met, abstain (for the rubric item at the head of its queue)
====================  =========================================================

All agents share one space because SuperSuit's vectorisers and Tianshou require identical spaces.
"""

from __future__ import annotations

from dataclasses import dataclass

from clinic_env.schema.catalogue import Catalogue

__all__ = ["COMMIT_DIFFERENTIAL", "END_SEGMENT", "PATIENT_MODES", "VERDICTS", "WAIT", "ActionTable"]

WAIT, END_SEGMENT, COMMIT_DIFFERENTIAL = 0, 1, 2
PATIENT_MODES = ("truthful", "vague", "withhold", "deny", "contradict")
VERDICTS = ("met", "not_met", "abstain")


@dataclass(frozen=True)
class ActionTable:
    """Maps action indices to ``(kind, argument)`` and back."""

    names: tuple[str, ...]
    ask0: int
    order0: int
    dx0: int
    answer0: int
    verdict0: int
    history_ids: tuple[str, ...]
    test_ids: tuple[str, ...]
    diagnosis_codes: tuple[str, ...]

    @classmethod
    def from_catalogue(cls, cat: Catalogue) -> ActionTable:
        """Build the table for a catalogue."""
        names = ["wait", "end_segment", "commit_differential"]
        ask0 = len(names)
        names += [f"ask:{h}" for h in cat.history_ids]
        order0 = len(names)
        names += [f"order:{t}" for t in cat.test_ids]
        dx0 = len(names)
        names += [f"dx:{c}" for c in cat.diagnosis_codes]
        answer0 = len(names)
        names += [f"answer:{m}" for m in PATIENT_MODES]
        verdict0 = len(names)
        names += [f"verdict:{v}" for v in VERDICTS]
        return cls(tuple(names), ask0, order0, dx0, answer0, verdict0,
                   cat.history_ids, cat.test_ids, cat.diagnosis_codes)

    @property
    def n(self) -> int:
        """Number of actions."""
        return len(self.names)

    @property
    def doctor_actions(self) -> range:
        """The doctor's actions other than ``wait`` (the single-agent wrapper's action space)."""
        return range(END_SEGMENT, self.answer0)

    def index(self, name: str) -> int:
        """Index of an action name such as ``ask:hx.onset`` (raises KeyError if unknown)."""
        index: dict[str, int] | None = self.__dict__.get("_index")
        if index is None:
            index = {n: i for i, n in enumerate(self.names)}
            object.__setattr__(self, "_index", index)
        return index[name]

    def ask(self, history_id: str) -> int:
        """Index of ``ask:<history_id>``."""
        return self.index(f"ask:{history_id}")

    def order(self, test_id: str) -> int:
        """Index of ``order:<test_id>``."""
        return self.index(f"order:{test_id}")

    def dx(self, code: str) -> int:
        """Index of ``dx:<code>``."""
        return self.index(f"dx:{code}")

    def answer(self, mode: str) -> int:
        """Index of ``answer:<mode>``."""
        return self.answer0 + PATIENT_MODES.index(mode)

    def verdict(self, verdict: str) -> int:
        """Index of ``verdict:<verdict>``."""
        return self.verdict0 + VERDICTS.index(verdict)
