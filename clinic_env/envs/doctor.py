"""Single-agent Gymnasium wrapper: train a doctor against the built-in patient and examiner."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

from clinic_env.core.actions import WAIT
from clinic_env.core.engine import AGENTS, DOCTOR, EXAMINER, PATIENT
from clinic_env.envs.setup import EnvInfo, check_render_mode, resolve_setup

__all__ = ["DoctorEnv"]


class DoctorEnv(gymnasium.Env):
    """The consultation from the doctor's seat, as a plain ``gymnasium.Env``.

    The patient (:class:`~clinic_env.policies.simple.PersonaPatient` by default) and the examiner
    (:class:`~clinic_env.policies.simple.RubricExaminer`) are built in and seeded from the env's
    generator; cycles in which the doctor can only wait (the patient is answering, the examiner is
    grading) are played through inside ``step``.

    **Action space.** ``Discrete(N - 1 - 8)``: the doctor's actions of the multi-agent table
    without ``wait`` (``end_segment``, ``commit_differential``, ``ask:*``, ``order:*``, ``dx:*``);
    action ``a`` is the multi-agent action ``a + 1``. ``action_names[a]`` names it.

    **Observation space.** ``Dict(observation=Box(0, 1, (M,), float32), action_mask=MultiBinary(n))``:
    numeric only, so Stable-Baselines3 (``MultiInputPolicy``) and sb3-contrib's ``MaskablePPO``
    accept it; :meth:`action_masks` returns the mask as sb3-contrib expects.

    **Rewards, episode end, arguments.** As :class:`~clinic_env.envs.aec.ConsultationEnv` (the
    doctor's reward; ``info["reward_components"]`` names its parts). An illegal action is a
    no-op with the illegal penalty and ``info["illegal_action"] = True``. Extra arguments:
    ``patient`` and ``examiner`` policy names (default ``persona`` and ``rubric``).
    """

    metadata = {"render_modes": ["ansi", "human"]}

    def __init__(self, render_mode: str | None = None, patient: str = "persona", examiner: str = "rubric",
                 **kwargs: Any) -> None:
        from clinic_env.policies import make_policy

        self.render_mode = check_render_mode(render_mode, self.metadata["render_modes"])
        self.setup = resolve_setup(**kwargs)
        self.engine = self.setup.engine()
        self.info: EnvInfo = self.setup.info(self.engine)
        t = self.engine.table
        self._actions = np.arange(1, t.answer0)
        self.action_names = tuple(t.names[1 : t.answer0])
        n = len(self._actions)
        self.action_space = gymnasium.spaces.Discrete(n)
        self.observation_space = gymnasium.spaces.Dict({
            "observation": gymnasium.spaces.Box(0.0, 1.0, (self.engine.layout.size,), np.float32),
            "action_mask": gymnasium.spaces.MultiBinary(n),
        })
        self.patient = make_policy(patient, self.info)
        self.examiner = make_policy(examiner, self.info)

    def _obs(self) -> dict[str, np.ndarray]:
        eng = self.engine
        return {"observation": eng.observe(DOCTOR), "action_mask": eng.masks[DOCTOR][1 : eng.table.answer0].copy()}

    def action_masks(self) -> np.ndarray:
        """Boolean mask of the legal actions (sb3-contrib's ``MaskablePPO`` calls this)."""
        eng = self.engine
        return eng.masks[DOCTOR][1 : eng.table.answer0].astype(bool)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        case, persona = self.setup.choose(self.np_random, options)
        self.engine.reset(case, persona, self.np_random)
        policy_seed = int(self.np_random.integers(2**31))
        self.patient.reset(policy_seed)
        self.examiner.reset(policy_seed + 1)
        return self._obs(), {"case_id": case.id, "persona": persona.id, "segment": "history"}

    def _others(self, comps: dict[str, float]) -> None:
        """Let the patient and the examiner act, then close the cycle."""
        eng = self.engine
        for idx, policy in ((PATIENT, self.patient), (EXAMINER, self.examiner)):
            mask = eng.masks[idx]
            if mask[WAIT] and mask.sum() == 1:
                continue
            obs = {"observation": eng.observe(idx), "action_mask": mask}
            eng.act(idx, policy.act(obs, AGENTS[idx]))
        for key, value in eng.end_cycle().items():
            comps[key] = comps.get(key, 0.0) + value

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        eng = self.engine
        if eng.terminated or eng.truncated:
            raise RuntimeError("step() called after the episode ended; call reset()")
        try:
            a = int(action)
            full = int(self._actions[a]) if 0 <= a < len(self._actions) else -1
        except (TypeError, ValueError):
            full = -1
        comps, illegal = eng.act(DOCTOR, full)
        comps = dict(comps)
        violations = eng.step_violations
        self._others(comps)
        while not (eng.terminated or eng.truncated) and eng.masks[DOCTOR][WAIT]:
            self._others(comps)
        reward = self.setup.config.scalar(comps)
        info: dict[str, Any] = {**eng.step_info(comps, illegal), "violations": violations}
        if self.render_mode == "human":
            self.render()
        return self._obs(), reward, eng.terminated, eng.truncated, info

    def render(self) -> str | None:
        out = self.engine.render_text()
        if self.render_mode == "human":
            print(out)
            return None
        return out
