"""The LLM miner of Dynamic Rubric Evolution (text mode).

It shows a model the transcripts of high-reward episodes and the criteria the rubric already has,
and asks for up to ``max_items`` new rubric items describing failure modes the rubric misses
(negative points). Each proposal is validated as a :class:`RubricItem`; proposals with a rule
``check`` are verified by rules, the others by the :class:`~clinic_env.rewards.grader.LLMGrader`
on every episode of the batch. The candidates then go through the same admission test as the
rule miners' (:func:`clinic_env.rewards.evolution.evolve_step`).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from clinic_env.records import RecordLike
from clinic_env.rewards.checks import evaluate_check
from clinic_env.rewards.evolution import Candidate, episode_view
from clinic_env.rewards.grader import LLMGrader, complete
from clinic_env.schema.rubric import RubricItem

__all__ = ["LLMMiner", "parse_proposals", "record_transcript"]

_PROMPT = """You audit the reward of a reinforcement-learning doctor in simulated clinical consultations.
The consultations below scored HIGH under the current rubric. Find behaviours in them that a good
clinician would criticise but that the rubric does not penalise yet (for example asking many
irrelevant questions, ordering tests without indication, hedging the differential, repeating
itself, closing without essential tests, unsafe choices).

Criteria the rubric already has:
{existing}

High-reward consultations:
{transcripts}

Propose at most {n} new rubric items as a JSON list. Each item: {{"criterion": "<what the doctor did
wrong, one sentence>", "points": <integer from -10 to -1>, "tags": ["axis:<accuracy|completeness|
communication|context_awareness|instruction_following>", "segment:<history|differential|tests|diagnosis>"]}}
and, only when the behaviour can be checked from what was asked/ordered, a "check" using one operator
of: asked_count_gt, ordered_count_gt, differential_size_gt, repeats_gt, cost_gt (integers/USD).
Reply with the JSON list only."""

_LIST = re.compile(r"\[.*\]", re.DOTALL)


def record_transcript(record: RecordLike, max_chars: int = 6000) -> str:
    """The doctor-patient dialogue of an episode record, as plain text (newest part kept)."""
    lines = []
    for turn in record.get("turns", ()):
        agent, text = turn.get("agent"), turn.get("text")
        if agent == "doctor_0":
            lines.append(f"Doctor [{turn.get('action')}]: {text or ''}")
        elif agent == "patient_0" and text:
            lines.append(f"Patient: {text}")
    text = "\n".join(lines)
    return text if len(text) <= max_chars else "...\n" + text[-max_chars:]


def parse_proposals(reply: str) -> list[RubricItem]:
    """Valid rubric items in a miner reply (invalid entries are dropped, not fatal)."""
    match = _LIST.search(reply or "")
    if match is None:
        return []
    try:
        data = json.loads(match.group(0))
    except json.JSONDecodeError:
        return []
    items = []
    for raw in data if isinstance(data, list) else []:
        if not isinstance(raw, dict):
            continue
        try:
            item = RubricItem.model_validate({k: raw[k] for k in ("criterion", "points", "tags", "check") if k in raw})
        except (ValidationError, TypeError):
            continue
        if item.points < 0:
            items.append(item.model_copy(update={"tags": (*item.tags, "dynamic:llm")}))
    return items


@dataclass
class LLMMiner:
    """Proposes dynamic rubric items with an LLM through litellm.

    Args:
        model: litellm model string (e.g. ``hosted_vllm/Qwen3-8B-AWQ``).
        api_base: Server URL for local servers.
        api_key: Key (placeholder used for local servers).
        max_items: Most proposals per round.
        max_transcripts: Top episodes shown to the model.
        timeout: Seconds per call.
        retries: Extra tries when the reply holds no valid proposal.
        grader: Judges proposals without a rule check (default: same model and server).
    """

    model: str
    api_base: str | None = None
    api_key: str | None = None
    max_items: int = 3
    max_transcripts: int = 4
    timeout: float = 60.0
    retries: int = 1
    grader: LLMGrader | None = None

    async def _ask(self, prompt: str) -> str:
        return await complete(self.model, prompt, self.api_base, self.api_key, self.timeout)

    async def apropose(self, top_records: Sequence[RecordLike], existing: Sequence[str]) -> list[RubricItem]:
        """Ask for new items given the top episodes and the existing criteria."""
        shown = "\n\n".join(f"--- consultation {i + 1} (reward {r.get('totals', {}).get('reward', 0):.2f})\n"
                            f"{record_transcript(r)}" for i, r in enumerate(top_records[: self.max_transcripts]))
        prompt = _PROMPT.format(existing="\n".join(f"- {c}" for c in existing) or "- (none)",
                                transcripts=shown, n=self.max_items)
        for _ in range(self.retries + 1):
            try:
                items = parse_proposals(await self._ask(prompt))
            except Exception:  # a failed call is retried like an empty reply
                items = []
            if items:
                return items[: self.max_items]
        return []

    async def amine(self, records: Sequence[RecordLike], top: Sequence[int], existing: Sequence[str]) -> list[Candidate]:
        """Candidates (scope ``*``) with per-episode violation verdicts over ``records``."""
        items = await self.apropose([records[i] for i in top], existing)
        grader = self.grader or LLMGrader(self.model, self.api_base, self.api_key)
        out = []
        for n, item in enumerate(items):
            item = item.model_copy(update={"id": f"llm-{n}"})
            if item.check is not None:
                violated = {i: evaluate_check(item.check, episode_view(r)) for i, r in enumerate(records)}
            else:
                grades = await asyncio.gather(*(grader.agrade_item(record_transcript(r), item) for r in records))
                violated = {i: bool(g.met) for i, g in enumerate(grades) if g.met is not None}
            out.append(Candidate(f"llm:{item.criterion[:48]}", "*", item, violated))
        return out

    def mine(self, records: Sequence[RecordLike], top: Sequence[int], existing: Sequence[str]) -> list[Candidate]:
        """Synchronous :meth:`amine`."""
        return asyncio.run(self.amine(records, top, existing))
