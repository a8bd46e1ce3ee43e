"""Plug your own doctor into the rollout loop and compare it with the built-in baselines.

A policy is any object with ``reset(seed)`` and ``act(observation, agent) -> int``. This one asks
the ten most informative questions of a naive-Bayes belief, orders the three cheapest legal tests,
and names the likeliest diagnosis: a starting point to edit. It relies on what the env guarantees
(see ``clinic_env.ConsultationEnv``): the action mask hides questions already answered and tests
already resulted (``allow_repeats=True`` restores repeats), samples whose procedure was not done,
and everything outside the segment; any action outside the mask is a penalised no-op; every
action but ``wait`` costs the step penalty; outcome rewards arrive when the episode ends, and a
consultation cut short without a diagnosis scores as a failed one.

Usage: python examples/custom_doctor.py
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import numpy as np

import clinic_env
from clinic_env.core.actions import COMMIT_DIFFERENTIAL, END_SEGMENT, WAIT
from clinic_env.leaderboard import leaderboard
from clinic_env.policies import Belief, make_policy
from clinic_env.rollout import episode_seed, play_episode


class FrugalDoctor:
    """Ten best questions, three cheapest tests, the likeliest diagnosis."""

    def __init__(self, info: clinic_env.EnvInfo) -> None:
        self.info = info
        self.belief = Belief(info)
        cat = info.catalogue
        self.cheap = np.argsort([cat.tests[t].cost_usd for t in cat.test_ids], kind="stable")

    def reset(self, seed: int | None = None) -> None:
        pass

    def act(self, observation: dict[str, Any], agent: str) -> int:
        mask, v = observation["action_mask"], observation["observation"]
        lay, t = self.info.layout, self.info.table
        if mask[WAIT]:
            return WAIT
        post = self.belief.posterior(v)
        segment = int(np.argmax(v[lay.SEGMENT : lay.SEGMENT + 4]))
        if segment == 0:
            asked = lay.asked(v)  # answered yes / no / vague / withheld (the mask hides answered questions)
            if asked.sum() < 10:
                legal = mask[t.ask0 : t.order0] > 0
                cols = np.flatnonzero(legal & ~asked & self.belief.informative[: lay.n_history])
                if len(cols):
                    return t.ask0 + int(cols[np.argmax(self.belief.information_gain(post, cols))])
            return END_SEGMENT
        if segment == 1:
            best = int(np.argmax(post))
            return t.dx0 + best if mask[t.dx0 + best] else COMMIT_DIFFERENTIAL
        if segment == 2:
            ordered = lay.ordered(v)
            if ordered.sum() < 3:
                return t.order0 + int(next(i for i in self.cheap if mask[t.order0 + i]))
            return END_SEGMENT
        return t.dx0 + int(np.argmax(np.where(mask[t.dx0 : t.answer0] > 0, post, -1)))


def main() -> None:
    env = clinic_env.raw_env()
    patient, examiner = make_policy("persona", env.info), make_policy("rubric", env.info)
    doctors = {"frugal": FrugalDoctor(env.info), "info-gain": make_policy("info-gain", env.info)}
    records = []
    for name, doctor in doctors.items():
        policies = {"doctor_0": doctor, "patient_0": patient, "examiner_0": examiner}
        for i, case in enumerate(env.setup.cases[:20]):
            records.append(play_episode(env, policies, episode_seed(0, i, 0), {"case_id": case.id}, doctor_name=name))
    for row in leaderboard(records):
        print(f"{row['doctor']:10s} reward {row['reward'][0]:.3f} ± {row['reward'][1]:.3f}"
              f"  diagnosis {row['diagnosis'][0]:.3f}  cost ${row['cost_usd'][0]:.0f}")


if __name__ == "__main__":
    main()
