"""Single-agent Gymnasium wrapper: train a doctor against the built-in patient and examiner."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

from clinic_env.core.actions import WAIT
from clinic_env.core.engine import AGENTS, DOCTOR, EXAMINER, PATIENT, action_index
from clinic_env.envs.aec import check_modes
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
    accept it; :meth:`action_masks` returns the mask as sb3-contrib expects. ``observation`` is the
    doctor's own view (:attr:`~clinic_env.core.layout.ObservationLayout.doctor_index`), field by
    field: segment one-hot (4), cycle / max_cycles, age / 100, sex one-hot (2: M, F; both 0: not
    stated), cost / budget (scaled), differential size / max; then per history item the answer state yes, no, vague,
    withheld (4 x N_h; all 0 while unasked); per test the result normal, mildly, markedly abnormal
    (3 x N_t; all 0 while not ordered); per diagnosis listed in the differential (N_d). No field is
    constant for the doctor (role and waiting flags are left out).

    **Rewards, episode end, arguments.** As :class:`~clinic_env.envs.aec.ConsultationEnv` (the
    doctor's reward; outcome components paid at the end). An illegal action (outside the mask, or
    not an integer) is a no-op with the illegal penalty and ``info["illegal_action"] = True``.
    ``infos="flat"`` (default) gives ``reward/<component>``, ``n_violations``, ``illegal_action``,
    ``segment``, ``cycle`` (plus ``case_id`` and ``persona`` at reset); ``infos="full"`` the dicts.
    Extra arguments: ``patient`` and ``examiner`` policy names (default ``persona`` and ``rubric``).
    ``step`` after the end raises RuntimeError (call ``reset``).
    """

    metadata = {"render_modes": ["ansi", "human"], "render_fps": 1}

    def __init__(self, render_mode: str | None = None, patient: str = "persona", examiner: str = "rubric",
                 infos: str = "flat", **kwargs: Any) -> None:
        from clinic_env.policies import make_policy

        check_modes("numeric", infos)
        self.info_mode = infos
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
            "observation": gymnasium.spaces.Box(0.0, 1.0, (self.engine.layout.doctor_size,), np.float32),
            "action_mask": gymnasium.spaces.MultiBinary(n),
        })
        self.patient = make_policy(patient, self.info)
        self.examiner = make_policy(examiner, self.info)

    def _obs(self) -> dict[str, np.ndarray]:
        eng = self.engine
        return {"observation": eng.observe_doctor(), "action_mask": eng.masks[DOCTOR][1 : eng.table.answer0].copy()}

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
        return self._obs(), {**self._info({}, False, 0), "case_id": case.id, "persona": persona.id}

    def _info(self, comps: dict[str, float], illegal: bool, n_violations: int) -> dict[str, Any]:
        eng = self.engine
        if self.info_mode == "flat":
            return eng.flat_info(comps, illegal, n_violations)
        return {**eng.step_info(comps, illegal), "violations": list(eng.step_violations)}

    def _others(self, comps: dict[str, float]) -> None:
        """Let the patient and the examiner act, then close the cycle."""
        eng = self.engine
        for idx, policy in ((PATIENT, self.patient), (EXAMINER, self.examiner)):
            if eng.idle(idx):
                continue
            obs = {"observation": eng.observe(idx), "action_mask": eng.masks[idx]}
            eng.act(idx, policy.act(obs, AGENTS[idx]))
        for key, value in eng.end_cycle().items():
            comps[key] = comps.get(key, 0.0) + value

    def play(self, action: Any) -> tuple[dict[str, float], bool, list[str]]:
        """Apply one doctor action and play the others until the doctor must act again (or the end).

        Returns:
            The components the doctor earned, whether the action was illegal, and its violations.
        """
        eng = self.engine
        if eng.terminated or eng.truncated:
            raise RuntimeError("step() called after the episode ended; call reset()")
        a = action_index(action)
        full = int(self._actions[a]) if 0 <= a < len(self._actions) else -1
        comps, illegal = eng.act(DOCTOR, full)
        comps = dict(comps)
        violations = list(eng.step_violations)
        self._others(comps)
        while not (eng.terminated or eng.truncated) and eng.masks[DOCTOR][WAIT]:
            self._others(comps)
        return comps, illegal, violations

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        eng = self.engine
        comps, illegal, violations = self.play(action)
        reward = self.setup.config.scalar(comps)
        info = self._info(comps, illegal, len(violations))
        if self.info_mode == "full":
            info["violations"] = violations
        if self.render_mode == "human":
            self.render()
        return self._obs(), reward, eng.terminated, eng.truncated, info

    def render(self) -> str | None:
        out = self.engine.render_text()
        if self.render_mode == "human":
            print(out)
            return None
        return out
