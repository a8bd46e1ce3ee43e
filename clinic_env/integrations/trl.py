"""TRL hand-off: an ``environment_factory`` for GRPOTrainer's tool-calling loop, reward functions for
single-turn GRPO, and a dataset built from a named split.

Multi-turn (TRL >= 1.16, experimental ``environment_factory``; transformers >= 5.2 and a chat
template with tool calling)::

    from trl import GRPOConfig, GRPOTrainer
    from clinic_env.integrations.trl import ClinicDoctorTools, dataset_from_split

    trainer = GRPOTrainer(model=..., args=GRPOConfig(...),
                          train_dataset=dataset_from_split("bundled-v1:train"),
                          environment_factory=ClinicDoctorTools.factory("bundled-v1:train"))

TRL makes one :class:`ClinicDoctorTools` per rollout, calls ``reset(**row)`` with the dataset row
(``case_id``, ``seed``; the returned text is appended to the prompt), exposes the public typed
methods (``ask``, ``order``, ``propose_diagnosis``, ``commit_differential``, ``end_segment``,
``diagnose``) as tools, and scores the rollout with ``get_reward()``: the env's summed doctor
reward. Each tool call is one doctor action played in a
:class:`~clinic_env.envs.text.TextDoctorEnv` (the built-in patient and examiner answer), and its
return value is the env's next message to the doctor.

Single-turn: :func:`first_move_reward` plays the completion as the doctor's first reply and
returns the env's reward; :func:`format_reward` gives partial credit for the reply's form (1 a
JSON object with a known action verb, 0.5 one with another ``action``, 0.25 a brace, else 0), which is what lets an
untrained model's group differ. Both follow TRL's reward-function signature
``f(prompts, completions, **columns) -> list[float]``.

Needs ``pip install "clinic-env[trl]"`` only for :func:`dataset_from_split` (``datasets``); the
rest is plain Python that TRL calls.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from clinic_env.envs.text import TextDoctorEnv
from clinic_env.rollout_async import _shared_kwargs
from clinic_env.schema.case import Case
from clinic_env.splits import load_spec

__all__ = ["INSTRUCTION", "ClinicDoctorTools", "dataset_from_split", "first_move_reward", "format_reward",
           "rows_from_split"]

#: The user message of every dataset row (the env's own prompt follows it, from ``reset``).
INSTRUCTION = ("You are the doctor in a consultation. Use the tools to take a history (ask), order tests "
               "(order), list differential diagnoses (propose_diagnosis, then commit_differential), move on "
               "(end_segment) and give a final diagnosis (diagnose). The consultation so far:\n\n")


@cache
def _shared(spec: str) -> dict[str, Any]:
    """Loaded env arguments for a split spec (built once per process)."""
    return _shared_kwargs(load_spec(spec), {})


def _env_for(spec: str | None, cases: Sequence[Case] | None) -> TextDoctorEnv:
    if cases is not None:
        return TextDoctorEnv(**_shared_kwargs(list(cases), {}))
    return TextDoctorEnv(**_shared(spec or "bundled-v1:all"))


def _prompt(env: TextDoctorEnv) -> str:
    """The doctor's current messages as one text (system instructions, then the consultation)."""
    return "\n\n".join(m["content"] for m in env.messages())


class ClinicDoctorTools:
    """One consultation for TRL's ``environment_factory`` (see the module docstring).

    Args:
        split: A split spec (``"bundled-v1:train"``, ``"generated-v1:test"``...) whose cases the
            dataset rows name.
        cases: Cases to use instead of a split.
    """

    def __init__(self, split: str | None = "bundled-v1:all", cases: Sequence[Case] | None = None) -> None:
        self.env = _env_for(split, cases)
        self.total = 0.0
        self.done = True

    @classmethod
    def factory(cls, split: str = "bundled-v1:all") -> Callable[[], ClinicDoctorTools]:
        """A zero-argument constructor for ``GRPOTrainer(environment_factory=...)``."""
        return lambda: cls(split)

    def reset(self, **row: Any) -> str:
        """Start the consultation named by a dataset row (``case_id``, ``seed``); returns its prompt text."""
        case_id = row.get("case_id")
        options = {"case_id": case_id} if case_id else None
        self.env.reset(seed=int(row.get("seed") or 0), options=options)
        self.total, self.done = 0.0, False
        return _prompt(self.env)

    def _act(self, action: str, item: str = "", text: str = "") -> str:
        if self.done:
            raise ValueError("the consultation has ended; no more actions")
        reply = json.dumps({"action": action, "item": item, "text": text})
        _, reward, terminated, truncated, info = self.env.step(reply)
        self.total += float(reward)
        self.done = bool(terminated or truncated)
        if self.done:
            return f"The consultation has ended ({self.env.engine.end_reason})."
        note = f"Not understood: {info['reask']}\n\n" if info.get("reask") else ""
        return note + self.env.messages()[-1]["content"]

    def ask(self, item: str, question: str = "") -> str:
        """Ask the patient about one history item.

        Args:
            item: The history item's id as listed in the prompt, e.g. "hx.onset".
            question: The question in your own words (optional).

        Returns:
            The patient's answer and the consultation's state.
        """
        return self._act("ask", item, question)

    def order(self, test: str) -> str:
        """Order one test or examination.

        Args:
            test: The test's id as listed in the prompt, e.g. "lab.troponin".

        Returns:
            The result and the consultation's state.
        """
        return self._act("order", test)

    def propose_diagnosis(self, code: str) -> str:
        """Add a diagnosis to the differential (differential segment).

        Args:
            code: The ICD-10 code as listed in the prompt, e.g. "I21.0".

        Returns:
            The consultation's state.
        """
        return self._act("dx", code)

    def commit_differential(self) -> str:
        """Close the differential and move on to ordering tests.

        Returns:
            The consultation's state.
        """
        return self._act("commit_differential")

    def end_segment(self) -> str:
        """End the current segment (history taking or tests) and move on.

        Returns:
            The consultation's state.
        """
        return self._act("end_segment")

    def diagnose(self, code: str) -> str:
        """Give the final diagnosis, which ends the consultation.

        Args:
            code: The ICD-10 code as listed in the prompt, e.g. "I21.0".

        Returns:
            How the consultation ended.
        """
        return self._act("dx", code)

    def get_reward(self) -> float:
        """The doctor's summed reward so far (TRL calls it once per finished rollout)."""
        return self.total


def rows_from_split(split: str, seeds: Sequence[int] = (0,), limit: int | None = None) -> list[dict[str, Any]]:
    """Dataset rows for a split spec: one per case and seed (``prompt``, ``case_id``, ``seed``, ``split``)."""
    cases = load_spec(split)[:limit] if limit is not None else load_spec(split)
    return [{"prompt": [{"role": "user", "content": INSTRUCTION}], "case_id": c.id, "seed": int(s), "split": split}
            for c in cases for s in seeds]


def dataset_from_split(split: str, seeds: Sequence[int] = (0,), limit: int | None = None) -> Any:
    """A ``datasets.Dataset`` of :func:`rows_from_split` (needs ``datasets``, a TRL dependency).

    Raises:
        ImportError: ``datasets`` is not installed (``pip install "clinic-env[trl]"``).
    """
    try:
        from datasets import Dataset
    except ImportError as exc:
        raise ImportError('dataset_from_split needs datasets: pip install "clinic-env[trl]"') from exc
    return Dataset.from_list(rows_from_split(split, seeds, limit))


def _text(completion: Any) -> str:
    """A completion's text: a string, or the last assistant message of a conversational one."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        texts = [str(m.get("content") or "") for m in completion if isinstance(m, dict) and m.get("role") == "assistant"]
        return texts[-1] if texts else ""
    return str(completion)


def format_reward(prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list[float]:
    """Partial credit for the reply's form: 1 a JSON object with a known action verb, 0.5 with another
    "action", 0.25 a brace, else 0 (a shaping term: it says nothing of the action's clinical worth)."""
    out = []
    for completion in completions:
        text = _text(completion).strip()
        score = 0.25 if "{" in text else 0.0
        start, end = text.find("{"), text.rfind("}")
        if 0 <= start < end:
            try:
                obj = json.loads(text[start:end + 1])
            except json.JSONDecodeError:
                obj = None
            if isinstance(obj, dict) and "action" in obj:
                score = 1.0 if obj["action"] in ("ask", "order", "dx", "end_segment", "commit_differential") else 0.5
        out.append(score)
    return out


_ENVS: dict[str, TextDoctorEnv] = {}


def first_move_reward(prompts: Sequence[Any], completions: Sequence[Any], case_id: Sequence[str],
                      seed: Sequence[int], split: Sequence[str] | None = None, **columns: Any) -> list[float]:
    """The env's reward for playing each completion as the doctor's first reply of its row's case."""
    out = []
    for i, completion in enumerate(completions):
        spec = split[i] if split is not None else "bundled-v1:all"
        env = _ENVS.get(spec)
        if env is None:
            env = _ENVS[spec] = _env_for(spec, None)
        env.reset(seed=int(seed[i]), options={"case_id": case_id[i]})
        _, reward, *_ = env.step(_text(completion))
        out.append(float(reward))
    return out
