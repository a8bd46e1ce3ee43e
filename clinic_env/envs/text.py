"""Text-mode envs (``mode="text"``): the structured envs, with chat messages in and text out.

Each class subclasses its structured env and leaves its behaviour untouched for integer actions;
a string action goes through :class:`~clinic_env.text.turns.TextTurns` (parse, re-ask once, then
a penalised no-op; several doctor actions queued; the LLM patient's reply through the leak guard).

- :class:`TextConsultationEnv` (AEC): observations gain ``"messages"`` (the acting agent's chat
  messages; empty for an agent that can only wait). ``step(str)`` parses; a re-ask keeps the turn
  with the same agent (``infos[agent]["reask"]`` says why). Queued doctor actions are played at the
  doctor's next turns without asking it (its reward for them arrives with its next ``last()``).
- :class:`TextParallelEnv`: the same per cycle. If any agent's reply must be re-asked, nothing of
  that cycle is applied. A doctor entry of ``None`` plays the next queued action
  (``infos["doctor_0"]["queued"]`` lists them); a new reply replaces the queue.
- :class:`TextDoctorEnv` (Gymnasium): ``step(str)`` plays every action the reply names (the built-in
  patient and examiner answering in between) and returns the summed reward; the observation has
  ``"transcript"`` and ``"messages"``. ``patient=``/``examiner=`` also take text policies (objects
  with ``act_text(messages) -> str``, e.g. :class:`~clinic_env.llm.LLMPolicy`); when such a
  policy's server fails after its retries, the episode ends truncated (``end_reason``
  ``"llm_error"``, the message in ``info["errors"]``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import gymnasium

from clinic_env.core.actions import WAIT
from clinic_env.core.engine import AGENTS, DOCTOR, EXAMINER, PATIENT, Consultation
from clinic_env.core.text import CHARSET
from clinic_env.core.transcript import MAX_TRANSCRIPT_CHARS
from clinic_env.envs.aec import ConsultationEnv
from clinic_env.envs.doctor import DoctorEnv
from clinic_env.envs.parallel import ConsultationParallelEnv
from clinic_env.llm.client import LLMCallError
from clinic_env.text.parse import DEFAULT_MAX_CHARS
from clinic_env.text.turns import Resolution, TextTurns

__all__ = ["TextConsultationEnv", "TextDoctorEnv", "TextParallelEnv", "messages_space", "speaking"]

_INDEX = {a: i for i, a in enumerate(AGENTS)}


def messages_space() -> gymnasium.spaces.Sequence:
    """The space of a chat-message list: a sequence of ``{"role", "content"}`` dicts."""
    return gymnasium.spaces.Sequence(gymnasium.spaces.Dict({
        "role": gymnasium.spaces.Text(16),
        "content": gymnasium.spaces.Text(4 * MAX_TRANSCRIPT_CHARS + 65536, min_length=0, charset=CHARSET),
    }), stack=False)


@contextmanager
def speaking(engine: Consultation, agent: int, said: str | None) -> Iterator[None]:
    """Within the block, ``agent``'s next action carries ``said`` as its words.

    The structured envs call ``engine.act(agent, action)`` without text; setting the words on the
    engine first (:meth:`Consultation.say`) lets the text envs reuse their ``step`` unchanged.
    """
    engine.say(agent, said)
    try:
        yield
    finally:
        engine.say(agent, None)


def _text_kwargs(kwargs: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, Any]]:
    kwargs = dict(kwargs)
    kwargs.pop("mode", None)
    max_chars = int(kwargs.pop("max_reply_chars", DEFAULT_MAX_CHARS))
    # TextTurns options: full catalogue listing in the doctor's prompt (default lean), examiner grading.
    turns = {"list_items": bool(kwargs.pop("list_items", False)), "grading": str(kwargs.pop("grading", "batch"))}
    # Text-mode users (LLM rollouts, trainers) read the named components: full infos by default.
    kwargs.setdefault("infos", "full")
    return kwargs, max_chars, turns


class TextConsultationEnv(ConsultationEnv):
    """AEC env in text mode (see the module docstring; extra arguments ``max_reply_chars`` and
    ``list_items``, whether the doctor's system prompt lists the segment's catalogue items (default:
    lean prompts), and ``grading``, ``"batch"`` (default) or ``"per_item"`` for the LLM examiner)."""

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        kwargs, max_chars, turns = _text_kwargs(kwargs)
        super().__init__(render_mode=render_mode, **kwargs)
        self.turns = TextTurns(self.engine, self.engine.table, max_chars, **turns)
        self._obs_space = gymnasium.spaces.Dict({**self._obs_space.spaces, "messages": messages_space()})

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> None:
        self.turns.reset()
        super().reset(seed=seed, options=options)

    def observe(self, agent: str) -> dict[str, Any]:
        obs = super().observe(agent)
        obs["messages"] = tuple(self.turns.messages(_INDEX[agent]))
        return obs

    def _apply(self, res: Resolution) -> None:
        with speaking(self.engine, _INDEX[self.agent_selection], res.said):
            super().step(res.index)

    def step(self, action: Any) -> None:
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            super().step(action)
            return
        idx = _INDEX[agent]
        res = self.turns.resolve(idx, action)
        if res.reask is not None:
            # The agent is asked again; an unusable doctor reply costs a step like any action.
            cost = {"step": -self.setup.config.step_cost} if idx == DOCTOR else {}
            self.rewards = dict.fromkeys(self.agents, 0.0)
            self._cumulative_rewards[agent] = 0.0
            self.rewards[agent] = self.setup.config.scalar(cost)
            self.infos[agent] = {**self._info(agent, cost, False), "reask": res.reask}
            self._accumulate_rewards()
            return
        self._apply(res)
        # Queued doctor actions are played at the doctor's own turns, without asking it again.
        while (self.agent_selection == AGENTS[DOCTOR] and self.turns.queue
               and not (self.terminations[self.agent_selection] or self.truncations[self.agent_selection])):
            nxt = self.turns.next_queued()
            if nxt is None:
                break
            cumulative = self._cumulative_rewards[AGENTS[DOCTOR]]
            self._apply(Resolution(nxt.index, nxt.said))
            self._cumulative_rewards[AGENTS[DOCTOR]] += cumulative


class TextParallelEnv(ConsultationParallelEnv):
    """Parallel env in text mode (see the module docstring)."""

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        kwargs, max_chars, turns = _text_kwargs(kwargs)
        super().__init__(render_mode=render_mode, **kwargs)
        self.turns = TextTurns(self.engine, self.engine.table, max_chars, **turns)
        self._obs_space = gymnasium.spaces.Dict({**self._obs_space.spaces, "messages": messages_space()})

    def _observe(self, i: int) -> dict[str, Any]:
        obs = super()._observe(i)
        obs["messages"] = tuple(self.turns.messages(i))
        return obs

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        self.turns.reset()
        return super().reset(seed=seed, options=options)

    def step(self, actions: dict[str, Any]) -> tuple[dict[str, Any], dict[str, float], dict[str, bool], dict[str, bool], dict[str, Any]]:
        turns, eng = self.turns, self.engine
        resolved: dict[int, Resolution] = {}
        for i, agent in enumerate(AGENTS):
            action = actions.get(agent)
            if i == DOCTOR and action is None and turns.queue and not turns.idle(DOCTOR):
                nxt = turns.next_queued()
                resolved[i] = Resolution(nxt.index, nxt.said) if nxt is not None else Resolution(-1)
            elif action is None and turns.idle(i):
                resolved[i] = Resolution(WAIT)
            else:
                if i == DOCTOR and isinstance(action, (str, list, tuple)) and not turns.idle(DOCTOR):
                    turns.queue.clear()
                resolved[i] = turns.resolve(i, action)
        reasks = {AGENTS[i]: r.reask for i, r in resolved.items() if r.reask is not None}
        if reasks:
            obs = {a: self._observe(i) for i, a in enumerate(AGENTS)}
            # An unusable doctor reply costs the step penalty (garbage never beats a legal action).
            cost = {"step": -self.setup.config.step_cost} if AGENTS[DOCTOR] in reasks else {}
            comps = [cost if i == DOCTOR else {} for i in range(len(AGENTS))]
            infos = {a: {**self._info(i, comps[i], False), **({"reask": reasks[a]} if a in reasks else {})}
                     for i, a in enumerate(AGENTS)}
            rewards = {a: self.setup.config.scalar(comps[i]) for i, a in enumerate(AGENTS)}
            zero = dict.fromkeys(AGENTS, False)
            return obs, rewards, zero, dict(zero), infos
        for i, r in resolved.items():
            eng.say(i, r.said)
        try:
            out = super().step({AGENTS[i]: r.index for i, r in resolved.items()})
        finally:
            for i in resolved:
                eng.say(i, None)
        if turns.queue and out[4]:
            out[4][AGENTS[DOCTOR]]["queued"] = [a.name for a in turns.queue]
        return out


class TextDoctorEnv(DoctorEnv):
    """Single-agent Gymnasium env in text mode (see the module docstring)."""

    def __init__(self, render_mode: str | None = None, patient: Any = "persona", examiner: Any = "rubric",
                 **kwargs: Any) -> None:
        kwargs, max_chars, turns = _text_kwargs(kwargs)
        text_patient = patient if not isinstance(patient, str) else None
        text_examiner = examiner if not isinstance(examiner, str) else None
        super().__init__(render_mode=render_mode, patient=patient if text_patient is None else "persona",
                         examiner=examiner if text_examiner is None else "rubric", **kwargs)
        if text_patient is not None:
            self.patient = text_patient
        if text_examiner is not None:
            self.examiner = text_examiner
        self.turns = TextTurns(self.engine, self.engine.table, max_chars, **turns)
        assert isinstance(self.observation_space, gymnasium.spaces.Dict)
        spaces = dict(self.observation_space.spaces)
        spaces["transcript"] = gymnasium.spaces.Text(MAX_TRANSCRIPT_CHARS, min_length=0, charset=CHARSET)
        spaces["messages"] = messages_space()
        self.observation_space = gymnasium.spaces.Dict(spaces)

    def _obs(self) -> dict[str, Any]:
        obs: dict[str, Any] = super()._obs()
        obs["transcript"] = self.engine.view_text(DOCTOR)
        obs["messages"] = tuple(self.turns.messages(DOCTOR))
        return obs

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        self.turns.reset()
        self.llm_errors: list[str] = []
        obs, info = super().reset(seed=seed, options=options)
        info["messages"] = obs["messages"]
        return obs, info

    def _others(self, comps: dict[str, float]) -> None:
        """As the structured env, but a text policy answers from its messages (re-asked once)."""
        eng = self.engine
        for idx, policy in ((PATIENT, self.patient), (EXAMINER, self.examiner)):
            if self.turns.idle(idx):
                continue
            if not hasattr(policy, "act_text"):
                obs = {"observation": eng.observe(idx), "action_mask": eng.masks[idx]}
                eng.act(idx, policy.act(obs, AGENTS[idx]))
                continue
            try:
                res = self.turns.resolve(idx, policy.act_text(self.turns.messages(idx), AGENTS[idx]))
                if res.reask is not None:
                    res = self.turns.resolve(idx, policy.act_text(self.turns.messages(idx), AGENTS[idx]))
            except LLMCallError as exc:
                # The server gave up after its retries: end the episode as truncated, say why.
                eng.truncated, eng.end_reason = True, "llm_error"
                self.llm_errors.append(f"{AGENTS[idx]}: {exc}")
                return
            eng.act(idx, res.index, text=res.said)
        for key, value in eng.end_cycle().items():
            comps[key] = comps.get(key, 0.0) + value

    def step(self, action: Any) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        eng = self.engine
        if not isinstance(action, (str, list, tuple)):
            return super().step(action)
        if eng.terminated or eng.truncated:
            raise RuntimeError("step() called after the episode ended; call reset()")
        res = self.turns.resolve(DOCTOR, action)
        if res.reask is not None:
            # An unusable reply is re-asked, but it costs a step like any action: garbage never
            # scores above a legal question.
            cost = {"step": -self.setup.config.step_cost}
            info = {**self._info(cost, False, 0), "reask": res.reask}
            if self.info_mode == "full":
                info["violations"] = []
            return self._obs(), self.setup.config.scalar(cost), False, False, info
        comps: dict[str, float] = {}
        actions: list[str] = []
        illegal, violations = False, []
        while True:
            with speaking(eng, DOCTOR, res.said):
                c, bad, v = self.play(res.index - 1 if res.index > 0 else -1)
            illegal |= bad
            violations += v
            actions.append(eng.table.names[res.index] if res.index >= 0 else "no-op")
            for key, value in c.items():
                comps[key] = comps.get(key, 0.0) + value
            done = eng.terminated or eng.truncated
            nxt = self.turns.next_queued() if not done and self.turns.queue else None
            if nxt is None:
                break
            res = Resolution(nxt.index, nxt.said)
        total = self.setup.config.scalar(comps)
        info = self._info(comps, illegal, len(violations))
        if self.info_mode == "full":
            info["violations"] = violations
        info["actions"] = actions
        obs, terminated, truncated = self._obs(), eng.terminated, eng.truncated
        if self.render_mode == "human":
            self.render()
        if self.llm_errors:
            info["errors"] = list(self.llm_errors)
        return obs, total, terminated, truncated, info

    def messages(self) -> list[dict[str, str]]:
        """The doctor's chat messages now."""
        return self.turns.messages(DOCTOR)
