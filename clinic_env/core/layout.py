"""The observation vector layout shared by all agents (fields an agent may not see stay 0).

Sections, in order (N_h history items, N_t tests, N_d diagnoses):

- common (15): segment one-hot (4: history, differential, tests, diagnosis), role one-hot (3:
  doctor, patient, examiner), cycle / max_cycles, age / 100 (capped at 1), sex one-hot (M, F),
  question pending, grading phase (final diagnosis given), cost / budget / cost_cap,
  differential size / differential_max.
- public consultation state, seen by all: ``hx_asked`` (N_h), ``hx_answer`` (N_h: 1 yes, 0.5 vague
  yes, 0 no or not said; the presenting complaint starts at 1), ``hx_unclear`` (N_h: the last
  answer was vague, withheld or contradicted an earlier one), ``test_ordered`` (N_t),
  ``test_abnormal`` (N_t), ``dx_listed`` (N_d: in the differential).
- patient only: ``pending_item`` (N_h one-hot), ``case_present`` (N_h: the patient's own truth),
  pending-fact flags (4: listed in the case, times asked / 3, scripted contradiction available,
  sensitive item), persona (8: vague, withholding, contradiction, tangential, anxiety, trust,
  verbosity, literacy 0/0.5/1).
- examiner only (9): item has a rule check, the rule says met, (points + 10) / 20, segment
  one-hot (5: history, differential, tests, diagnosis, whole episode), items queued / total.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ObservationLayout"]


@dataclass(frozen=True)
class ObservationLayout:
    """Offsets of every section in the observation vector (computed once: they sit on the hot path)."""

    n_history: int
    n_tests: int
    n_dx: int
    hx_asked: int = field(init=False)
    hx_answer: int = field(init=False)
    hx_unclear: int = field(init=False)
    test_ordered: int = field(init=False)
    test_abnormal: int = field(init=False)
    dx_listed: int = field(init=False)
    public_end: int = field(init=False)
    pending_item: int = field(init=False)
    case_present: int = field(init=False)
    pending_flags: int = field(init=False)
    persona: int = field(init=False)
    examiner: int = field(init=False)
    size: int = field(init=False)

    SEGMENT = 0
    ROLE = 4
    PROGRESS = 7
    AGE = 8
    SEX = 9
    PENDING = 11
    GRADING = 12
    COST = 13
    DIFF_SIZE = 14
    COMMON = 15

    def __post_init__(self) -> None:
        sections = [
            ("hx_asked", self.n_history), ("hx_answer", self.n_history), ("hx_unclear", self.n_history),
            ("test_ordered", self.n_tests), ("test_abnormal", self.n_tests), ("dx_listed", self.n_dx),
            ("public_end", 0), ("pending_item", self.n_history), ("case_present", self.n_history),
            ("pending_flags", 4), ("persona", 8), ("examiner", 9), ("size", 0),
        ]
        offset = self.COMMON
        for name, width in sections:
            object.__setattr__(self, name, offset)
            offset += width
