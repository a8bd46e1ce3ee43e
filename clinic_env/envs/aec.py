"""The AEC (turn-based) consultation environment. Its class docstring is the env's specification."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium.utils import seeding
from pettingzoo import AECEnv

from clinic_env.core.engine import AGENTS, DOCTOR, EXAMINER
from clinic_env.core.text import CHARSET
from clinic_env.core.transcript import MAX_TRANSCRIPT_CHARS
from clinic_env.envs.setup import EnvInfo, check_render_mode, resolve_setup

__all__ = ["ConsultationEnv", "build_spaces"]

_INDEX = {a: i for i, a in enumerate(AGENTS)}


def build_spaces(n_obs: int, n_actions: int) -> tuple[gymnasium.spaces.Dict, gymnasium.spaces.Discrete]:
    """The observation and action spaces every agent shares."""
    obs = gymnasium.spaces.Dict({
        "observation": gymnasium.spaces.Box(0.0, 1.0, (n_obs,), np.float32),
        "transcript": gymnasium.spaces.Text(MAX_TRANSCRIPT_CHARS, min_length=0, charset=CHARSET),
        "action_mask": gymnasium.spaces.Box(0, 1, (n_actions,), np.int8),
    })
    return obs, gymnasium.spaces.Discrete(n_actions)


class ConsultationEnv(AECEnv):
    """A clinical consultation between a doctor, a simulated patient and an examiner.

    **Agents.** ``doctor_0`` (usually the learner), ``patient_0`` (answers from the case, in the
    manner of a persona) and ``examiner_0`` (grades rubric items). They act in a fixed cycle
    doctor -> patient -> examiner; each acts exactly once per cycle, and an agent with nothing to
    do has only ``wait`` legal. The legal actions of a cycle are fixed when it starts, so the
    native :class:`~clinic_env.envs.parallel.ConsultationParallelEnv` (one step = one cycle) is
    equivalent. Speech alternates: a question asked in cycle t is answered in cycle t+1 while the
    doctor waits.

    **Segments** (as in Baichuan-M3's SPAR): ``history`` (ask questions; ``end_segment`` closes it)
    -> ``differential`` (add diagnoses in rank order, at most ``differential_max``;
    ``commit_differential`` closes it once it holds one) -> ``tests`` (order examinations and
    investigations, each once; ``end_segment``) -> ``diagnosis`` (one ``dx:`` action gives the final
    diagnosis). The examiner then grades the remaining rubric items, one per cycle.

    **Action space.** ``Discrete(N)`` shared by all agents; the layout is
    :class:`~clinic_env.core.actions.ActionTable` (``wait``, ``end_segment``,
    ``commit_differential``, ``ask:<history id>``, ``order:<test id>``, ``dx:<ICD-10>``,
    ``answer:<truthful|vague|withhold|deny|contradict>``, ``verdict:<met|not_met|abstain>``).
    ``env.unwrapped.info.table.names[i]`` names action ``i``.

    **Observation space.** ``Dict(observation=Box(0, 1, (M,), float32), transcript=Text,
    action_mask=Box(0, 1, (N,), int8))``, the same for all agents. The vector layout is
    :class:`~clinic_env.core.layout.ObservationLayout`; fields an agent may not see are 0 (the
    doctor never sees the case's truth or the rule verdicts). ``transcript`` is the dialogue the
    agent may read (the newest 16,384 characters; the doctor also sees the patient's anxious
    asides, the examiner its verdicts).

    **Rewards** (doctor; the patient and examiner receive 0 in v0 unless they act illegally).
    Named components in ``infos[agent]["reward_components"]`` (summed since the agent last
    acted); the scalar is ``sum(weights[c] * value)`` with
    :class:`~clinic_env.rewards.config.RewardConfig` weights (history 1, differential 1, tests 1,
    diagnosis 2, rubric 1, step 1, illegal 1):

    - ``history`` (when history closes): elicited fact weight / total (criticality 2 or 1, vague
      answers half), presenting complaint excluded, in [0, 1];
    - ``differential`` (when committed): 1 if the gold diagnosis is in the top k (=5), + 0.5 x
      must-not-miss share, - 0.05 per entry beyond k, in [0, 1];
    - ``tests`` (when tests close): weighted F1 (recall (2 R_ess + R_opt) / 3) - 0.2 x min(cost /
      budget, 2), in [-0.4, 1];
    - ``diagnosis`` (final call): exact ICD-10 1.0, same category 0.6, same block 0.3, else 0;
    - ``rubric`` (when the episode ends): HealthBench score of the judged rubric items, in [0, 1];
    - ``step``: -0.01 per doctor action other than ``wait``; ``illegal``: -0.05 per action outside
      the mask (any agent; the action is then a no-op and ``infos[agent]["illegal_action"]`` is
      True);
    - optional: ``violation`` (a plain per-violation cost, ``reward_config.violation_cost``),
      ``dynamic_rubric`` (evolved rubric items met at episode end, points / 10; see
      :mod:`clinic_env.rewards.evolution`) and ``fact`` (the gated fact-aware reward in text mode;
      :mod:`clinic_env.rewards.facts`).

    Every doctor step is also checked by the step verifier; ``infos["doctor_0"]["violations"]``
    lists its violations (repeated question or test, irrelevant question, premature diagnosis,
    unsafe test, over-long text), the inputs of SPAR (:mod:`clinic_env.rewards.spar`).

    **Starting state.** ``reset(seed, options)`` picks a case and a persona with the env's own
    generator (or ``options["case_id"]`` / ``options["persona_id"]``); the presenting complaint is
    known from the opening statement.

    **Episode end.** Terminated when the final diagnosis is given and every rubric item is graded
    (``end_reason`` ``final_diagnosis``), or when a persona with a ``patience`` of P cycles is still
    without a diagnosis after P cycles (``patient_left``); truncated after ``max_cycles`` cycles
    (``max_cycles``). ``infos[agent]["end_reason"]`` says which; when cut short, the segment in
    progress is scored as it stands.

    **Arguments.** ``cases``/``case`` (a case id, a path, a Case or a list; default the bundled
    library), ``persona`` (an id, a path, a Persona or a list; default every bundled persona),
    ``rubrics`` (rubric bank folder or banks; default ``rubrics/``), ``catalogue``,
    ``reward_config`` (a RewardConfig or dict), ``principles`` (global principles applied where
    they fit; default the bundled ``rubrics/principles.yaml``, False for none), ``dynamic_rubric``
    (a dynamic bank or its YAML path), ``fact_judge`` (decides claims that name no catalogue item),
    ``max_cycles`` (default 150), ``interruption_share`` (share of patient turns with an anxious
    aside to the doctor, overriding every persona's rate; default None: each persona's own rate, 25%
    for a persona that lists asides without a rate), ``render_mode`` (``"ansi"`` returns the
    transcript, ``"human"`` prints it).

    **Patient.** A persona withholds an item only until it is asked a second time or directly (the
    doctor's own words name it); then ``answer:withhold`` is not legal. Every patient text that is
    not the asked fact's own words (an LLM reply, a tangent, an aside) passes the leak guard
    (:class:`~clinic_env.patients.leak_guard.LeakGuard`); each patient turn in ``engine.turns``
    records the item answered, the facts disclosed and anything the guard blocked.

    **Version history.** v0 (0.1.0): initial release (segments, rewards, verifier, principles,
    dynamic rubrics, fact-aware reward, patients who leave).
    """

    metadata = {"name": "clinic_consultation_v0", "render_modes": ["ansi", "human"], "is_parallelizable": True}

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        super().__init__()
        self.render_mode = check_render_mode(render_mode, self.metadata["render_modes"])
        self.setup = resolve_setup(**kwargs)
        self.engine = self.setup.engine()
        self.info: EnvInfo = self.setup.info(self.engine)
        self.possible_agents = list(AGENTS)
        self.agents = list(AGENTS)
        self._obs_space, self._act_space = build_spaces(self.engine.layout.size, self.engine.table.n)
        self.np_random, _ = seeding.np_random(None)
        self.episode_seed: int | None = None

    def observation_space(self, agent: str) -> gymnasium.spaces.Dict:
        return self._obs_space

    def action_space(self, agent: str) -> gymnasium.spaces.Discrete:
        return self._act_space

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> None:
        if seed is not None:
            self.np_random, _ = seeding.np_random(seed)
        self.episode_seed = seed
        case, persona = self.setup.choose(self.np_random, options)
        self.engine.reset(case, persona, self.np_random)
        self.agents = list(AGENTS)
        self.rewards = dict.fromkeys(self.agents, 0.0)
        self._cumulative_rewards = dict.fromkeys(self.agents, 0.0)
        self.terminations = dict.fromkeys(self.agents, False)
        self.truncations = dict.fromkeys(self.agents, False)
        self.infos = {a: self.engine.step_info({}, False) for a in self.agents}
        self._components: dict[str, dict[str, float]] = {a: {} for a in self.agents}
        self.agent_selection = AGENTS[0]
        if self.render_mode == "human":
            self.render()

    def observe(self, agent: str) -> dict[str, Any]:
        i = _INDEX[agent]
        eng = self.engine
        return {"observation": eng.observe(i), "transcript": eng.view_text(i), "action_mask": eng.masks[i].copy()}

    def _credit(self, agent: str, components: dict[str, float]) -> None:
        acc = self._components[agent]
        for key, value in components.items():
            acc[key] = acc.get(key, 0.0) + value
        self.rewards[agent] += self.setup.config.scalar(components)

    def step(self, action: Any) -> None:
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            self._was_dead_step(action)
            return
        idx = _INDEX[agent]
        self._cumulative_rewards[agent] = 0.0
        self._components[agent] = {}
        self.rewards = dict.fromkeys(self.agents, 0.0)
        components, illegal = self.engine.act(idx, action)
        if components:
            self._credit(agent, components)
        illegal_flags = {agent: illegal}
        if idx == EXAMINER:
            end = self.engine.end_cycle()
            if end:
                self._credit(AGENTS[DOCTOR], end)
            if self.engine.terminated or self.engine.truncated:
                for a in self.agents:
                    self.terminations[a] = self.engine.terminated
                    self.truncations[a] = self.engine.truncated
                    self.infos[a] = self.engine.step_info(self._components[a], illegal_flags.get(a, False))
        self.infos[agent] = self.engine.step_info(self._components[agent], illegal)
        if idx == DOCTOR:
            self.infos[agent]["violations"] = self.engine.step_violations
        for a in self.agents:
            if a != agent and self.rewards[a]:
                self.infos[a]["reward_components"] = self._components[a]
        self.agent_selection = AGENTS[(idx + 1) % 3]
        self._accumulate_rewards()
        if self.render_mode == "human":
            self.render()

    def render(self) -> str | None:
        out = self.engine.render_text()
        if self.render_mode == "human":
            print(out)
            return None
        return out

    def close(self) -> None:
        pass
