"""The observation vector layout shared by all agents (fields an agent may not see stay 0).

Sections, in order (N_h history items, N_t tests, N_d diagnoses; every value in [0, 1]):

- common (15): ``SEGMENT`` one-hot (4: history, differential, tests, diagnosis), ``ROLE`` one-hot
  (3: doctor, patient, examiner), ``PROGRESS`` cycle / max_cycles, ``AGE`` age / 100 (capped at 1),
  ``SEX`` one-hot (2: M, F; both 0 when the source does not state the sex), ``PENDING`` a question
  awaits its answer, ``GRADING`` the final diagnosis was given, ``COST`` min(cost / budget,
  cost_cap) / cost_cap, ``DIFF_SIZE`` differential entries / differential_max.
- public consultation state, seen by all agents, one section per answer state so that a learner
  sees what a doctor knows: ``hx_yes`` (N_h: the patient said yes / described it; the presenting
  complaint starts at 1), ``hx_no`` (N_h: said no), ``hx_vague`` (N_h: the last answer was vague or
  contradicted an earlier one), ``hx_withheld`` (N_h: the patient would not say); an item not yet
  answered is 0 in all four. Then ``test_normal``, ``test_mild``, ``test_marked`` (N_t each: the
  result of an ordered test graded normal, mildly or markedly abnormal, from the result data; all
  0 while not ordered) and ``dx_listed`` (N_d: in the differential).
- patient only: ``pending_item`` (N_h one-hot), ``case_present`` (N_h: the patient's own truth),
  pending-fact flags (4: listed in the case, times asked / 3, scripted contradiction available,
  sensitive item), persona (8: vague, withholding, contradiction, tangential, anxiety, trust,
  verbosity, literacy 0/0.5/1).
- examiner only (9): item has a rule check, the rule says met, (points + 10) / 20, segment
  one-hot (5: history, differential, tests, diagnosis, whole episode), items queued / total.

The doctor's own numeric view (``doctor_env`` and ``observation="numeric"`` for the doctor in
single-agent use) is :attr:`ObservationLayout.doctor_index`: the common fields without the role,
pending and grading flags (constant for a doctor that is asked to act), then the public sections.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["HX_STATES", "TEST_GRADES", "ObservationLayout"]

#: Answer states of a history item, in section order.
HX_STATES = ("yes", "no", "vague", "withheld")
#: Result grades of a test, in section order.
TEST_GRADES = ("normal", "mild", "marked")


@dataclass(frozen=True)
class ObservationLayout:
    """Offsets of every section in the observation vector (computed once: they sit on the hot path)."""

    n_history: int
    n_tests: int
    n_dx: int
    hx_yes: int = field(init=False)
    hx_no: int = field(init=False)
    hx_vague: int = field(init=False)
    hx_withheld: int = field(init=False)
    test_normal: int = field(init=False)
    test_mild: int = field(init=False)
    test_marked: int = field(init=False)
    dx_listed: int = field(init=False)
    public_end: int = field(init=False)
    pending_item: int = field(init=False)
    case_present: int = field(init=False)
    pending_flags: int = field(init=False)
    persona: int = field(init=False)
    examiner: int = field(init=False)
    size: int = field(init=False)
    doctor_index: np.ndarray = field(init=False, repr=False, compare=False)

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
        n_h, n_t = self.n_history, self.n_tests
        sections = [
            ("hx_yes", n_h), ("hx_no", n_h), ("hx_vague", n_h), ("hx_withheld", n_h),
            ("test_normal", n_t), ("test_mild", n_t), ("test_marked", n_t), ("dx_listed", self.n_dx),
            ("public_end", 0), ("pending_item", n_h), ("case_present", n_h),
            ("pending_flags", 4), ("persona", 8), ("examiner", 9), ("size", 0),
        ]
        offset = self.COMMON
        for name, width in sections:
            object.__setattr__(self, name, offset)
            offset += width
        common = [*range(self.SEGMENT, self.SEGMENT + 4), self.PROGRESS, self.AGE, self.SEX, self.SEX + 1,
                  self.COST, self.DIFF_SIZE]
        index = np.concatenate([np.array(common, np.intp), np.arange(self.COMMON, self.public_end, dtype=np.intp)])
        object.__setattr__(self, "doctor_index", index)

    @property
    def doctor_size(self) -> int:
        """Length of the doctor's numeric view."""
        return len(self.doctor_index)

    # Readers of a full observation vector (policies use these rather than raw offsets).
    def hx_states(self, v: np.ndarray) -> np.ndarray:
        """A (4, N_h) view: rows yes, no, vague, withheld."""
        return v[self.hx_yes : self.hx_yes + 4 * self.n_history].reshape(4, self.n_history)

    def asked(self, v: np.ndarray) -> np.ndarray:
        """Boolean (N_h,): the item has been answered in some way (or is the presenting complaint)."""
        out: np.ndarray = np.any(self.hx_states(v), axis=0)
        return out

    def test_grades(self, v: np.ndarray) -> np.ndarray:
        """A (3, N_t) view: rows normal, mildly abnormal, markedly abnormal."""
        return v[self.test_normal : self.test_normal + 3 * self.n_tests].reshape(3, self.n_tests)

    def ordered(self, v: np.ndarray) -> np.ndarray:
        """Boolean (N_t,): the test has been ordered (its result is back)."""
        out: np.ndarray = np.any(self.test_grades(v), axis=0)
        return out

    def abnormal(self, v: np.ndarray) -> np.ndarray:
        """Boolean (N_t,): the result is mildly or markedly abnormal."""
        g = self.test_grades(v)
        out: np.ndarray = (g[1] > 0) | (g[2] > 0)
        return out

    def listed(self, v: np.ndarray) -> np.ndarray:
        """(N_d,): 1 where the diagnosis is in the differential."""
        out: np.ndarray = v[self.dx_listed : self.dx_listed + self.n_dx]
        return out
