"""The native Parallel consultation environment: one step is one cycle of all three agents."""

from __future__ import annotations

from typing import Any

import gymnasium
from gymnasium.utils import seeding
from pettingzoo import ParallelEnv

from clinic_env.core.engine import AGENTS, DOCTOR
from clinic_env.envs.aec import build_spaces, check_modes
from clinic_env.envs.setup import EnvInfo, check_render_mode, resolve_setup

__all__ = ["ConsultationParallelEnv"]


class ConsultationParallelEnv(ParallelEnv):  # type: ignore[misc]  # pettingzoo ships no type information
    """Parallel form of :class:`~clinic_env.envs.aec.ConsultationEnv` (same arguments, spaces,
    rewards and episode end).

    ``step(actions)`` applies the doctor's, the patient's and the examiner's actions in that order
    and closes the cycle. Because each cycle's legal actions are fixed when it starts, this is the
    same episode the AEC env produces from the same actions. A missing action of a live agent is
    treated as illegal (a penalised no-op). ``step`` after the episode ended returns empty dicts:
    no agent receives anything after the end.
    """

    metadata: dict[str, Any] = {"name": "clinic_consultation_v1", "render_modes": ["ansi", "human"],
                                "is_parallelizable": True, "render_fps": 1}

    def __init__(self, render_mode: str | None = None, observation: str = "hybrid", infos: str = "flat",
                 obs_key: str = "observation", **kwargs: Any) -> None:
        check_modes(observation, infos, obs_key)
        self.render_mode = check_render_mode(render_mode, self.metadata["render_modes"])
        self.observation_mode, self.info_mode, self.obs_key = observation, infos, obs_key
        self.setup = resolve_setup(**kwargs)
        self.engine = self.setup.engine()
        self.info: EnvInfo = self.setup.info(self.engine)
        self.possible_agents = list(AGENTS)
        self.agents = list(AGENTS)
        self._obs_space, self._act_space = build_spaces(self.engine.layout.size, self.engine.table.n, observation, obs_key)
        self.np_random, _ = seeding.np_random(None)

    def observation_space(self, agent: str) -> gymnasium.spaces.Dict:
        return self._obs_space

    def action_space(self, agent: str) -> gymnasium.spaces.Discrete:
        return self._act_space

    def _observe(self, i: int) -> dict[str, Any]:
        eng = self.engine
        if self.observation_mode == "numeric":
            return {self.obs_key: eng.observe(i), "action_mask": eng.masks[i].copy()}
        return {"observation": eng.observe(i), "transcript": eng.view_text(i), "action_mask": eng.masks[i].copy()}

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        if seed is not None:
            self.np_random, _ = seeding.np_random(seed)
        case, persona = self.setup.choose(self.np_random, options)
        self.engine.reset(case, persona, self.np_random)
        self.agents = list(AGENTS)
        obs = {a: self._observe(i) for i, a in enumerate(AGENTS)}
        return obs, {a: self._info(i, {}, False) for i, a in enumerate(AGENTS)}

    def _info(self, i: int, components: dict[str, float], illegal: bool) -> dict[str, Any]:
        eng = self.engine
        if self.info_mode == "flat":
            return eng.flat_info(components, illegal, len(eng.step_violations) if i == DOCTOR else 0)
        info = eng.step_info(components, illegal)
        if i == DOCTOR:
            info["violations"] = list(eng.step_violations)
        return info

    def step(self, actions: dict[str, Any]) -> tuple[dict[str, Any], dict[str, float], dict[str, bool], dict[str, bool], dict[str, Any]]:
        eng = self.engine
        if not self.agents:
            return {}, {}, {}, {}, {}
        comps: list[dict[str, float]] = []
        illegal: list[bool] = []
        for i, agent in enumerate(AGENTS):
            c, bad = eng.act(i, actions.get(agent))
            comps.append(dict(c))
            illegal.append(bad)
        for key, value in eng.end_cycle().items():
            comps[DOCTOR][key] = comps[DOCTOR].get(key, 0.0) + value
        scalar = self.setup.config.scalar
        rewards = {a: scalar(comps[i]) for i, a in enumerate(AGENTS)}
        done_t, done_u = eng.terminated, eng.truncated
        obs = {a: self._observe(i) for i, a in enumerate(AGENTS)}
        infos = {a: self._info(i, comps[i], illegal[i]) for i, a in enumerate(AGENTS)}
        terminations = dict.fromkeys(AGENTS, done_t)
        truncations = dict.fromkeys(AGENTS, done_u)
        if done_t or done_u:
            self.agents = []
        if self.render_mode == "human":
            self.render()
        return obs, rewards, terminations, truncations, infos

    def render(self) -> str | None:
        out = self.engine.render_text()
        if self.render_mode == "human":
            print(out)
            return None
        return out

    def close(self) -> None:
        pass
