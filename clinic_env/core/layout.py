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

from dataclasses import dataclass

__all__ = ["ObservationLayout"]


@dataclass(frozen=True)
class ObservationLayout:
    """Offsets of every section in the observation vector."""

    n_history: int
    n_tests: int
    n_dx: int

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

    @property
    def hx_asked(self) -> int:
        return self.COMMON

    @property
    def hx_answer(self) -> int:
        return self.hx_asked + self.n_history

    @property
    def hx_unclear(self) -> int:
        return self.hx_answer + self.n_history

    @property
    def test_ordered(self) -> int:
        return self.hx_unclear + self.n_history

    @property
    def test_abnormal(self) -> int:
        return self.test_ordered + self.n_tests

    @property
    def dx_listed(self) -> int:
        return self.test_abnormal + self.n_tests

    @property
    def public_end(self) -> int:
        return self.dx_listed + self.n_dx

    @property
    def pending_item(self) -> int:
        return self.public_end

    @property
    def case_present(self) -> int:
        return self.pending_item + self.n_history

    @property
    def pending_flags(self) -> int:
        return self.case_present + self.n_history

    @property
    def persona(self) -> int:
        return self.pending_flags + 4

    @property
    def examiner(self) -> int:
        return self.persona + 8

    @property
    def size(self) -> int:
        return self.examiner + 9
