"""clinic-env's doctor consultation in verifiers' taskset API (``verifiers.v1``, 0.4+).

- :class:`ClinicTaskset` yields one task per (case, seed) of a named split
  (:mod:`clinic_env.splits`); a task's prompt is the doctor's opening messages.
- :class:`ClinicEnv` plays a task: the env engine is the run's *user*. Each doctor reply is
  parsed and played in a :class:`clinic_env.envs.text.TextDoctorEnv` (the built-in patient and
  examiner answer), and the env's next message to the doctor comes back as the next user turn,
  until the consultation ends. Rewards are recorded on the trace as named components:
  ``clinic_reward`` (the env's summed doctor reward, weight 1) and, with weight 0 (logged, not
  trained on), each SPAR segment score and the rubric score.

The role is named ``doctor`` (``--env.doctor.*`` on the command line).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import verifiers.v1 as vf

from clinic_env.envs.text import TextDoctorEnv
from clinic_env.rollout_async import _shared_kwargs
from clinic_env.splits import load_spec

__all__ = ["ClinicConfig", "ClinicData", "ClinicEnv", "ClinicEnvConfig", "ClinicTask", "ClinicTaskset"]

#: Scores logged with weight 0 next to the trained reward.
LOGGED = ("history", "differential", "tests", "diagnosis", "rubric")


class ClinicConfig(vf.TasksetConfig):
    """Which cases and seeds the taskset yields."""

    split: str = "bundled-v1:test"
    """A clinic-env split spec: ``NAME:PART`` (``bundled-v1:test``, ``generated-v1:train``...)."""
    seeds: list[int] = [0]
    """Episode seeds per case (persona and patient noise)."""
    max_steps: int = 200
    """A safety cap on doctor replies per episode (the env truncates well before)."""


class ClinicData(vf.TaskData):
    info: dict[str, Any]
    """The split, case id and seed the env replays the consultation from."""


class ClinicTask(vf.Task[ClinicData, vf.State, vf.TaskConfig]):
    pass


class ClinicEnvConfig(vf.EnvConfig):
    doctor: vf.AgentConfig = vf.AgentConfig()


_ENVS: dict[str, dict[str, Any]] = {}


def make_env(split: str) -> TextDoctorEnv:
    """A text-mode doctor env over a split's cases (files loaded once per split and process)."""
    shared = _ENVS.get(split)
    if shared is None:
        shared = _ENVS[split] = _shared_kwargs(load_spec(split), {})
    return TextDoctorEnv(**shared)


def opening(env: TextDoctorEnv, case_id: str, seed: int) -> tuple[str, str]:
    """``(system prompt, first user message)`` of a consultation."""
    env.reset(seed=seed, options={"case_id": case_id})
    messages = env.messages()
    return messages[0]["content"], messages[-1]["content"]


def feedback(env: TextDoctorEnv, segment_before: int, reask: str | None) -> str:
    """The next user turn: the env's latest message to the doctor, with the new segment's
    instructions (the system message) when the segment changed, and why a reply was not understood."""
    messages = env.messages()
    parts = []
    if reask:
        parts.append(f"Your reply could not be used: {reask}")
    if env.engine.segment != segment_before:
        parts.append(messages[0]["content"])
    parts.append(messages[-1]["content"])
    return "\n\n".join(parts)


class ClinicEnv(vf.Env[ClinicEnvConfig]):
    async def run(self, task: Any, agents: Any) -> None:
        info = task.data.info
        env = make_env(info["split"])
        opening(env, info["case_id"], int(info["seed"]))
        total = 0.0
        async with agents.doctor.interaction(task) as interaction:
            segment = await interaction.turn()
            for _ in range(int(info.get("max_steps", 200))):
                if segment.terminated:
                    break
                before = env.engine.segment
                _, reward, terminated, truncated, step_info = env.step(segment.last_reply)
                total += float(reward)
                if terminated or truncated:
                    break  # consultation over: end the exchange
                segment = await interaction.turn(feedback(env, before, step_info.get("reask")))
        trace = interaction.trace
        trace.record_reward("clinic_reward", total, 1.0)
        scores = env.engine.segment_scores
        for name in LOGGED:
            trace.record_reward(name, float(scores.get(name, 0.0)), 0.0)
        trace.info["end_reason"] = env.engine.end_reason
        trace.info["final_diagnosis"] = env.engine.final_dx


class ClinicTaskset(vf.Taskset[ClinicTask, ClinicConfig]):
    def load(self) -> Iterator[ClinicTask]:
        env = make_env(self.config.split)
        for case in load_spec(self.config.split):
            for seed in self.config.seeds:
                system, prompt = opening(env, case.id, seed)
                yield ClinicTask(
                    ClinicData(name=f"{case.id}#{seed}", prompt=prompt, system_prompt=system,
                               info={"split": self.config.split, "case_id": case.id, "seed": seed,
                                     "max_steps": self.config.max_steps}),
                    self.config.task,
                )
