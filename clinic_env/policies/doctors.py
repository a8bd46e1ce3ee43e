"""Scripted doctor baselines: a guideline-style ``thorough`` doctor and an ``info-gain`` doctor.

Both read only the doctor's observation vector and keep a naive-Bayes
:class:`~clinic_env.policies.belief.Belief` over the diagnoses. They differ in what they ask and
order:

- :class:`ThoroughDoctor` works through the presentation's guideline checklist
  (``presentations.yaml``): every listed question, the listed work-up, then the most likely
  diagnosis. Complete but not economical.
- :class:`InfoGainDoctor` asks the question (and orders the test, per dollar) with the largest
  expected reduction of entropy over the differential, and stops when no question is worth
  asking or the leading diagnosis is probable enough.
- :class:`ShotgunDoctor` games coverage rewards: every question, every test, a long
  differential. It is the adversary rubric evolution must learn to catch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from clinic_env.core.actions import COMMIT_DIFFERENTIAL, END_SEGMENT, WAIT
from clinic_env.envs.setup import EnvInfo
from clinic_env.policies.base import segment_of
from clinic_env.policies.belief import Belief

__all__ = ["InfoGainDoctor", "ShotgunDoctor", "ThoroughDoctor"]

#: Questions a clinician asks in every consultation, whatever the complaint.
CORE_QUESTIONS = (
    "hx.onset", "hx.duration", "hx.severity", "hx.progression", "pmh.previous_surgery", "meds.current",
    "allergy.drug", "social.smoking", "social.alcohol", "social.occupation", "fam.cad",
)


class _ScriptedDoctor:
    """Shared machinery: decoding the observation and the differential and diagnosis steps."""

    def __init__(self, info: EnvInfo, seed: int | None = None, differential_size: int = 5,
                 must_not_miss_floor: float = 0.01) -> None:
        self.info = info
        self.belief = Belief(info)
        self.differential_size = differential_size
        self.must_not_miss_floor = must_not_miss_floor
        cat = info.catalogue
        self._mnm = np.array([cat.diagnoses[c].must_not_miss for c in cat.diagnosis_codes])
        self._hx_col = {h: i for i, h in enumerate(cat.history_ids)}
        self._test_col = {t: i for i, t in enumerate(cat.test_ids)}
        self.reset(seed)

    def reset(self, seed: int | None = None) -> None:
        self.reasked: set[int] = set()
        self.presenting: int | None = None
        self.extras = 0

    def act(self, observation: dict[str, Any], agent: str) -> int:
        mask = observation["action_mask"]
        if mask[WAIT]:
            return WAIT
        v = observation["observation"]
        lay, t = self.info.layout, self.info.table
        asked = lay.asked(v)
        seg = segment_of(v, self.info)
        if asked.sum() <= 1 and seg == 0 and not lay.ordered(v).any():
            self.reset()  # a new episode: only the presenting complaint is known
        if self.presenting is None:
            known = np.flatnonzero(lay.hx_states(v)[0] > 0)
            self.presenting = int(known[0]) if len(known) else -1
        post = self.belief.posterior(v)
        if seg == 0:
            action = self._history(v, mask, post)
        elif seg == 1:
            action = self._differential(v, mask, post)
        elif seg == 2:
            action = self._tests(v, mask, post)
        else:
            action = t.dx0 + self._best_legal(post, mask[t.dx0 : t.answer0])
        return int(action) if mask[action] else self._fallback(mask)

    def _fallback(self, mask: np.ndarray) -> int:
        for a in (END_SEGMENT, COMMIT_DIFFERENTIAL):
            if mask[a]:
                return a
        return int(np.flatnonzero(mask)[0])

    @staticmethod
    def _best_legal(post: np.ndarray, legal: np.ndarray) -> int:
        return int(np.argmax(np.where(legal > 0, post, -1.0)))

    def _plan_differential(self, post: np.ndarray) -> list[int]:
        order = np.argsort(-post, kind="stable")
        plan = [int(d) for d in order[: self.differential_size] if post[d] > 0]
        plan += [int(d) for d in order[self.differential_size :]
                 if self._mnm[d] and post[d] >= self.must_not_miss_floor][:2]
        return plan

    def _differential(self, v: np.ndarray, mask: np.ndarray, post: np.ndarray) -> int:
        lay, t = self.info.layout, self.info.table
        listed = lay.listed(v)
        for d in self._plan_differential(post):
            if not listed[d] and mask[t.dx0 + d]:
                return t.dx0 + d
        return COMMIT_DIFFERENTIAL

    def _ask(self, i: int) -> int:
        return self.info.table.ask0 + i

    def _unasked(self, v: np.ndarray, ids: tuple[str, ...] | list[str], mask: np.ndarray | None = None) -> list[int]:
        lay = self.info.layout
        asked = lay.asked(v)
        cols = [self._hx_col[h] for h in ids if h in self._hx_col]
        ask0 = self.info.table.ask0
        return [c for c in cols if not asked[c] and c != self.presenting and (mask is None or mask[ask0 + c])]

    def _initial(self, v: np.ndarray, mask: np.ndarray, ids: tuple[str, ...]) -> int | None:
        """The first of ``ids`` that is a legal initial assessment not yet done (order it first)."""
        ordered, t = self.info.layout.ordered(v), self.info.table
        for tid in ids:
            col = self._test_col.get(tid)
            if col is not None and not ordered[col] and mask[t.order0 + col]:
                return t.order0 + col
        return None

    def _history(self, v: np.ndarray, mask: np.ndarray, post: np.ndarray) -> int:
        raise NotImplementedError

    def _tests(self, v: np.ndarray, mask: np.ndarray, post: np.ndarray) -> int:
        raise NotImplementedError

    def _test_gains(self, v: np.ndarray, mask: np.ndarray, post: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Legal test columns and their information gain per cost-weighted unit."""
        t, cat, lay = self.info.table, self.info.catalogue, self.info.layout
        ordered = lay.ordered(v)
        legal = np.flatnonzero((mask[t.order0 : t.dx0] > 0) & (ordered == 0))
        if not len(legal):
            return legal, np.zeros(0)
        gain = self.belief.information_gain(post, legal + self.belief.n_h)
        cost = np.array([cat.tests[cat.test_ids[i]].cost_usd for i in legal])
        return legal, gain / (1.0 + cost / 250.0)


class InfoGainDoctor(_ScriptedDoctor):
    """Greedy expected-information-gain questioning and test ordering.

    Args:
        info: The env's description.
        seed: Unused (the policy is deterministic); accepted for a uniform constructor.
        max_questions: Most history questions asked.
        min_gain: A question must be expected to remove at least this many bits of uncertainty.
        max_tests: Most tests ordered.
        min_tests: Tests ordered before the doctor may stop; when no test discriminates any more,
            the one that best confirms the leading diagnosis is ordered.
        confident: Stop testing once the leading diagnosis has this posterior probability.
        always_ask: Safety questions asked before history closes (allergies, medication).
        always_order: Free bedside checks done first (vital signs).
    """

    def __init__(self, info: EnvInfo, seed: int | None = None, max_questions: int = 18,
                 min_gain: float = 0.03, max_tests: int = 6, min_tests: int = 2, confident: float = 0.9,
                 always_ask: tuple[str, ...] = ("allergy.drug", "meds.current"),
                 always_order: tuple[str, ...] = ("exam.vitals",)) -> None:
        super().__init__(info, seed)
        self.max_questions = max_questions
        self.min_gain = min_gain
        self.max_tests = max_tests
        self.min_tests = min_tests
        self.confident = confident
        self.always_ask = always_ask
        self.always_order = always_order
        self._hx_informative = np.flatnonzero(self.belief.informative[: self.belief.n_h])

    def _history(self, v: np.ndarray, mask: np.ndarray, post: np.ndarray) -> int:
        lay = self.info.layout
        first = self._initial(v, mask, self.always_order)
        if first is not None:
            return first
        asked = lay.asked(v)
        states = lay.hx_states(v)
        unclear = (states[2] > 0) | (states[3] > 0)
        n_asked = int(asked.sum())
        if n_asked < self.max_questions:
            ask0 = self.info.table.ask0
            cand = [c for c in self._hx_informative
                    if c != self.presenting and mask[ask0 + c]
                    and (not asked[c] or (unclear[c] and c not in self.reasked))]
            if cand:
                cols = np.array(cand)
                gain = self.belief.information_gain(post, cols)
                best = int(np.argmax(gain))
                if gain[best] >= self.min_gain:
                    col = int(cols[best])
                    if asked[col]:
                        self.reasked.add(col)
                    return self._ask(col)
        rest = self._unasked(v, self.always_ask, mask)
        return self._ask(rest[0]) if rest else END_SEGMENT

    def _tests(self, v: np.ndarray, mask: np.ndarray, post: np.ndarray) -> int:
        lay, t = self.info.layout, self.info.table
        ordered = lay.ordered(v)
        n_ordered = int(ordered.sum())
        if n_ordered >= self.max_tests:
            return END_SEGMENT
        for tid in self.always_order:
            col = self._test_col.get(tid)
            if col is not None and mask[t.order0 + col] and not ordered[col]:
                return t.order0 + col
        if n_ordered >= self.min_tests and post.max() >= self.confident:
            return END_SEGMENT
        legal, score = self._test_gains(v, mask, post)
        if not len(legal):
            return END_SEGMENT
        if score.max() >= self.min_gain:
            return t.order0 + int(legal[int(np.argmax(score))])
        if n_ordered < self.min_tests:
            # Nothing left to discriminate: confirm the leading diagnosis with the test whose
            # result it changes most.
            lead = int(np.argmax(post))
            lift = self.belief.lik[lead, legal + self.belief.n_h] - self.belief.lik[:, legal + self.belief.n_h].mean(axis=0)
            if lift.max() > 0:
                return t.order0 + int(legal[int(np.argmax(lift))])
        return END_SEGMENT


class ThoroughDoctor(_ScriptedDoctor):
    """Guideline-checklist doctor: the presentation's questions and work-up, then the likeliest diagnosis.

    Args:
        info: The env's description.
        seed: Unused (deterministic).
        extra_tests: Information-gain tests added after the checklist while the leading diagnosis
            is below ``confident``.
        confident: See ``extra_tests``.
    """

    def __init__(self, info: EnvInfo, seed: int | None = None, extra_tests: int = 2, confident: float = 0.8) -> None:
        super().__init__(info, seed)
        self.extra_tests = extra_tests
        self.confident = confident

    def _presentation(self) -> Any:
        if self.presenting is None or self.presenting < 0:
            return None
        symptom = self.info.catalogue.history_ids[self.presenting]
        return self.info.catalogue.presentations.get(symptom)

    def _history(self, v: np.ndarray, mask: np.ndarray, post: np.ndarray) -> int:
        pres = self._presentation()
        first = self._initial(v, mask, ("exam.vitals", *(pres.tests if pres else ())))
        if first is not None:
            return first
        checklist = list(pres.history) if pres else []
        rest = self._unasked(v, checklist + list(CORE_QUESTIONS), mask)
        return self._ask(rest[0]) if rest else END_SEGMENT

    def _tests(self, v: np.ndarray, mask: np.ndarray, post: np.ndarray) -> int:
        lay, t = self.info.layout, self.info.table
        pres = self._presentation()
        ordered = lay.ordered(v)
        for tid in (("exam.vitals",) + (pres.tests if pres else ())):
            col = self._test_col.get(tid)
            if col is not None and not ordered[col] and mask[t.order0 + col]:
                return t.order0 + col
        if self.extras < self.extra_tests and post.max() < self.confident:
            legal, score = self._test_gains(v, mask, post)
            if len(legal) and score.max() > 0.01:
                self.extras += 1
                return t.order0 + int(legal[int(np.argmax(score))])
        return END_SEGMENT


class ShotgunDoctor(_ScriptedDoctor):
    """Asks every question, orders every test, lists as many diagnoses as allowed, then names the
    likeliest. Scores well under coverage-and-recall rewards; rubric evolution should catch it.

    Args:
        info: The env's description.
        seed: Unused (deterministic).
    """

    def __init__(self, info: EnvInfo, seed: int | None = None) -> None:
        super().__init__(info, seed, differential_size=info.config.differential_max, must_not_miss_floor=1.1)

    def _history(self, v: np.ndarray, mask: np.ndarray, post: np.ndarray) -> int:
        lay, t = self.info.layout, self.info.table
        asked = lay.asked(v)
        todo = np.flatnonzero((asked == 0) & (mask[t.ask0 : t.order0] > 0))
        todo = todo[todo != self.presenting]
        return self._ask(int(todo[0])) if len(todo) else END_SEGMENT

    def _tests(self, v: np.ndarray, mask: np.ndarray, post: np.ndarray) -> int:
        lay, t = self.info.layout, self.info.table
        ordered = lay.ordered(v)
        todo = np.flatnonzero((ordered == 0) & (mask[t.order0 : t.dx0] > 0))
        return t.order0 + int(todo[0]) if len(todo) else END_SEGMENT
