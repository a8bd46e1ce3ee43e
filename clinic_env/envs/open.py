"""Open mode: the AgentClinic protocol as a PettingZoo AEC env (``clinic_env.env(mode="open")``).

The doctor speaks freely. Its words go, in this order of precedence, to:

1. the grader, when they hold ``DIAGNOSIS READY: X`` (or ``FINAL DIAGNOSIS: X``): X is mapped to
   ICD-10 and compared with the gold, or, when X or the gold's own words do not map, the moderator
   says Yes or No (:mod:`clinic_env.open.grading`); the examiner then judges history coverage and
   the episode ends;
2. the measurement reader, when they hold ``REQUEST TEST: X``: a catalogue test or exam or a
   case-specific item gets the case's result; a name the case lacks goes to the measurement role
   (an LLM answering from the case's findings; the scripted reader gives the knowledge-base
   consistent result or "not available");
3. the patient otherwise (the scripted patient answers from the case facts the words ask about;
   an LLM patient answers from the prompt of :func:`clinic_env.open.prompts.patient_system`).

**Agents** ``doctor``, ``patient``, ``examiner``. Each role is either played by the agent (its
turn comes, the observation's ``task`` says what to do, ``step(text)`` answers) or built in:
``patient="case"`` (default) / ``"agent"``; ``measurement="case"`` / ``"agent"``;
``moderator="icd10"`` / ``"agent"``; ``examiner="rubric"`` (coverage by parser mapping, rubric
items by their rule checks) / ``"agent"`` (one ``coverage`` call, then one ``grade`` call for the
rubric items only an LLM can judge, when there are any). Measurement, moderator, coverage and
grade tasks all fall to the ``examiner`` agent.

**Observations** ``{"messages": (chat messages for that agent), "task": str}``. Messages are
role-structured: the doctor sees the patient's replies and results as ``user`` messages and its
own words as ``assistant``; the patient the reverse. The doctor's text is passed through
:func:`clinic_env.core.text.sanitise` before anyone else sees it. For a case with an
``image_url`` the doctor's first user message is a list of content parts with an ``image_url``
part; that one message lies outside the declared ``Text`` space (a gymnasium space cannot hold a
union of text and parts), so the PettingZoo API test is run on text-only cases.

**Guard.** Every patient reply (and every reply of an agent-played measurement reader) passes the
leak guard (the patient's after its earlier replies, so a name spread over turns is caught). A
reply with something blocked is asked for once more (the agent's turn stays, with a note that does
not say what was blocked); a second blocked reply is replaced by a neutral answer. Every blocked
reply is kept in :attr:`guard_log` (record field ``guard``).

**Turns and rewards.** ``max_doctor_turns`` doctor turns (default 20); the last one carries a note
asking for the diagnosis; a doctor still without one after it ends the episode with
``end_reason="turn_limit"`` (a failed diagnosis). The doctor pays ``step_cost`` per turn and gets
the registry's ``diagnosis``, ``history``, ``tests``, ``rubric`` (the rule-checkable items),
``incomplete`` and ``safety`` components when the episode ends (:func:`clinic_env.open.grading.open_components`); the other agents get 0.
:meth:`fail` ends an episode from outside (``llm_error``: a server that stopped answering).
"""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium
import numpy as np
from pettingzoo import AECEnv

from clinic_env.core.text import CHARSET, neutralise_roles, sanitise
from clinic_env.envs.setup import check_render_mode, resolve_setup
from clinic_env.open import prompts, views
from clinic_env.open.biases import bias_text
from clinic_env.open.grading import (
    Verdict,
    find_diagnosis,
    find_test_request,
    split_test_names,
)
from clinic_env.open.judging import JudgingMixin
from clinic_env.open.roles import CasePatient, asked_items, case_result, resolve_test, whole_exam
from clinic_env.patients.leak_guard import FALLBACK_FACT, LeakGuard
from clinic_env.schema.case import Case
from clinic_env.text.parse import DEFAULT_MAX_CHARS, matcher_for

__all__ = ["OPEN_AGENTS", "OPEN_ENV_VERSION", "OpenConsultationEnv"]

OPEN_AGENTS = ("doctor", "patient", "examiner")
#: Version of open mode's behaviour, recorded in every open-mode episode record.
OPEN_ENV_VERSION = "open-v0"
_ROLE_KINDS = {"patient": ("case", "agent"), "measurement": ("case", "agent"),
               "moderator": ("icd10", "agent"), "examiner": ("rubric", "agent")}
_MAX_CONTENT = 200_000


def _conversation_guard(guard: LeakGuard) -> Any:
    """A conversation-level guard over ``guard`` (None when that module is not installed)."""
    try:
        module = importlib.import_module("clinic_env.patients.conversation")
    except ImportError:
        return None
    return module.ConversationGuard(guard)


class OpenConsultationEnv(JudgingMixin, AECEnv):  # type: ignore[misc]  # pettingzoo ships no type information
    """Open-mode consultation (see the module docstring for the protocol).

    Args:
        cases, case: Cases to draw from (objects, a path, a bundled id; default the bundled library).
        persona: Persona(s) shaping the LLM patient's style.
        catalogue: Catalogue (path or object; default bundled).
        rubrics: Accepted for interface symmetry with the structured env (open mode scores no rubric).
        max_doctor_turns: Doctor turns before the episode ends without a diagnosis.
        doctor_bias, patient_bias: Bias ids of ``clinic_env/data/open/biases.yaml``.
        protocol: ``"clinic"`` or ``"agentclinic"`` (prompt wording, see :mod:`clinic_env.open.prompts`).
        reward_config: :class:`~clinic_env.rewards.config.RewardConfig` or a dict of its fields.
        render_mode: ``"ansi"`` (render returns the transcript) or ``"human"`` (prints it).
        patient, measurement, moderator, examiner: Who plays each role (see the module docstring).
        max_reply_chars: Longer actions are cut to this length.
    """

    metadata: dict[str, Any] = {"name": "clinic_open_v0", "render_modes": ["ansi", "human"],
                                "is_parallelizable": False}

    def __init__(self, *, cases: Any = None, case: Any = None, persona: Any = None, catalogue: Any = None,
                 rubrics: Any = None, max_doctor_turns: int = 20, doctor_bias: str | None = None,
                 patient_bias: str | None = None, protocol: str = "clinic", reward_config: Any = None,
                 render_mode: str | None = None, patient: str = "case", measurement: str = "case",
                 moderator: str = "icd10", examiner: str = "rubric",
                 max_reply_chars: int = DEFAULT_MAX_CHARS) -> None:
        super().__init__()
        if protocol not in prompts.PROTOCOLS:
            raise ValueError(f"protocol must be one of {list(prompts.PROTOCOLS)}, got {protocol!r}")
        if max_doctor_turns < 1:
            raise ValueError(f"max_doctor_turns must be >= 1, got {max_doctor_turns}")
        self.roles = {"patient": patient, "measurement": measurement, "moderator": moderator, "examiner": examiner}
        for role, kind in self.roles.items():
            if kind not in _ROLE_KINDS[role]:
                raise ValueError(f"{role} must be one of {list(_ROLE_KINDS[role])}, got {kind!r}")
        bias_text(doctor_bias, "doctor")  # unknown ids fail here, not mid-episode
        bias_text(patient_bias, "patient")
        self.render_mode = check_render_mode(render_mode, self.metadata["render_modes"])
        self.setup = resolve_setup(case=case, cases=cases, persona=persona, catalogue=catalogue,
                                   rubrics=[] if rubrics is None else rubrics, reward_config=reward_config,
                                   principles=False, uncoded="keep")
        self.catalogue = self.setup.catalogue
        self.config = self.setup.config
        self.matcher = matcher_for(self.catalogue)
        self.max_doctor_turns, self.protocol = max_doctor_turns, protocol
        self.doctor_bias, self.patient_bias = doctor_bias, patient_bias
        self.max_reply_chars = max_reply_chars
        self.possible_agents = list(OPEN_AGENTS)
        text = gymnasium.spaces.Text(_MAX_CONTENT, min_length=0, charset=CHARSET)
        message = gymnasium.spaces.Dict({"role": gymnasium.spaces.Text(16), "content": text})
        self._obs_space = gymnasium.spaces.Dict({
            "messages": gymnasium.spaces.Sequence(message, stack=False),
            "task": gymnasium.spaces.Text(16),
        })
        self._act_space = gymnasium.spaces.Text(max_reply_chars, min_length=0, charset=CHARSET)
        self._rng = np.random.default_rng()
        self.case: Case | None = None
        self._per_case: dict[str, tuple[Case, LeakGuard, str, str, list[str], list[str]]] = {}

    # ------------------------------------------------------------------------------ spaces
    def observation_space(self, agent: str) -> gymnasium.spaces.Dict:
        """Every agent: ``{"messages", "task"}``."""
        return self._obs_space

    def action_space(self, agent: str) -> gymnasium.spaces.Text:
        """Every agent: free text."""
        return self._act_space

    # ------------------------------------------------------------------------------- reset
    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> None:
        """Start an episode (``options``: ``case_id``, ``persona_id``)."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        opts = {k: v for k, v in (options or {}).items() if k in ("case_id", "persona_id")}
        self.case, self.persona = self.setup.choose(self._rng, opts)
        case, cat = self.case, self.catalogue
        known = self._per_case.get(case.id)
        if known is None or known[0] is not case:
            # What each role knows depends on the case only: worked out once per case.
            gold = prompts.GoldFilter(case, cat)
            known = self._per_case[case.id] = (
                # An uncoded gold has no catalogue names: the guard blocks the source's own words for it.
                case, LeakGuard(case, cat, () if case.coded else [case.gold_text or ""]),
                prompts.presentation(case, cat),
                prompts.anchor_for(case.gold_diagnosis, gold.names_gold), prompts.patient_knowledge(case, cat),
                prompts.measurement_knowledge(case, cat))
        _, self.guard, self.presentation, self.anchor, self.patient_facts, self.measurement_facts = known
        self._conversation = _conversation_guard(self.guard)
        self.scripted_patient = CasePatient(case)
        self.transcript: list[dict[str, Any]] = [{"role": "patient", "name": "case", "content": case.opening_statement}]
        self.asked: list[str] = []
        self.ordered: list[str] = []
        self._order_turn: dict[str, int] = {}
        self.rubric_counts: dict[str, int] = {}
        self._judged: dict[int, bool] = {}
        self._elicited: tuple[list[str], str] = ([], "parser")
        self.guard_log: list[dict[str, Any]] = []
        self.doctor_turns = 0
        self.diagnosis_text: str | None = None
        self.diagnosis_code: str | None = None
        self.verdict: Verdict | None = None
        self.coverage: dict[str, Any] = {}
        self.end_reason: str | None = None
        self.errors: list[str] = []
        self.components: dict[str, float] = {}
        self.parts: dict[str, float] = {}
        self.task = "consult"
        self._reask: str | None = None
        self._known: list[str] = []
        self._request = ""
        self.agents = list(self.possible_agents)
        self.rewards = dict.fromkeys(self.agents, 0.0)
        self._cumulative_rewards = dict.fromkeys(self.agents, 0.0)
        self.terminations = dict.fromkeys(self.agents, False)
        self.truncations = dict.fromkeys(self.agents, False)
        self.infos: dict[str, dict[str, Any]] = {a: {} for a in self.agents}
        self.agent_selection = "doctor"
        self._set_infos()

    # ------------------------------------------------------------------------- observations
    def _examiner_messages(self) -> list[dict[str, Any]]:
        assert self.case is not None
        if self.task == "measurement":
            system = prompts.measurement_system(self.protocol, self.measurement_facts)
            return views.measurement_view(system, self.transcript, self._request, self._reask)
        if self.task == "moderator":
            gold = self.catalogue.diagnoses.get(self.case.gold_diagnosis)
            gold_text = self.case.gold_text or (gold.label if gold else self.case.gold_diagnosis)
            msgs = prompts.moderator_messages(gold_text, self.diagnosis_text or "")
            if self._reask is not None:
                msgs.append({"role": "user", "content": self._reask})
            return views.merge(msgs)
        if self.task == "grade":
            return prompts.grade_messages(views.dialogue(self.transcript), self.judge_items())
        return prompts.coverage_messages(views.dialogue(self.transcript), self.fact_texts())

    def observe(self, agent: str) -> dict[str, Any]:
        """``{"messages", "task"}`` for ``agent`` (empty messages and task ``idle`` when it is not its turn)."""
        if self.case is None:
            raise RuntimeError("call reset() before observe()")
        done = not self.agents or self.end_reason is not None
        if done or agent != self.agent_selection:
            return {"messages": (), "task": "idle"}
        case = self.case
        if agent == "doctor":
            system = prompts.doctor_system(self.protocol, self.max_doctor_turns, self.doctor_bias,
                                           bool(case.image_url), self.anchor)
            last = self.task == "consult" and self.doctor_turns == self.max_doctor_turns - 1
            msgs = views.doctor_view(system, self.presentation, self.transcript, case.image_url,
                                     prompts.final_turn_note() if last else None)
        elif agent == "patient":
            system = prompts.patient_system(self.protocol, self.patient_facts, self.persona, self.patient_bias,
                                            self.anchor)
            msgs = views.patient_view(system, self.transcript, self._reask)
        else:
            msgs = self._examiner_messages()
        return {"messages": tuple(msgs), "task": self.task}

    def messages(self, agent: str = "doctor") -> list[dict[str, Any]]:
        """The chat messages ``agent`` would get now."""
        return list(self.observe(agent)["messages"])

    # --------------------------------------------------------------------------------- step
    def _set_infos(self) -> None:
        for a in self.agents:
            self.infos[a] = {"task": self.task if a == self.agent_selection and self.end_reason is None else "idle"}
        if self.end_reason is not None:
            for a in self.agents:
                self.infos[a].update(end_reason=self.end_reason)
            if "doctor" in self.infos:
                self.infos["doctor"].update(components=dict(self.components), **self.record_fields(brief=True))

    def _log(self, role: str, name: str, content: str) -> None:
        self.transcript.append({"role": role, "name": name, "content": content})

    def step(self, action: Any) -> None:
        """Play ``action`` (text) for the selected agent; ``None`` for an agent that is done."""
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            self._was_dead_step(action)
            return
        if self.case is None:
            raise RuntimeError("call reset() before step()")
        text = sanitise(str(action if action is not None else ""), roles=False)[: self.max_reply_chars]
        # Words another agent will read: every imitated role line ("Patient: ...", "Examiner: [met]",
        # chat-template tokens) is defanged, with no leading label kept; grader replies (verdicts,
        # grades) keep their line structure.
        spoken = agent != "examiner" or self.task == "measurement"
        text = (neutralise_roles(text) if spoken else sanitise(text)).strip()
        self._cumulative_rewards[agent] = 0.0
        self.rewards = dict.fromkeys(self.agents, 0.0)
        if agent == "doctor":
            self._doctor(text)
        elif agent == "patient":
            self._patient(text)
        elif self.task == "measurement":
            self._measurement(text)
        elif self.task == "moderator":
            self._moderator(text)
        elif self.task == "grade":
            self._grade(text)
        else:
            self._coverage(text)
        self._set_infos()
        self._accumulate_rewards()
        if self.render_mode == "human":
            self.render()

    def _select(self, agent: str, task: str) -> None:
        self.agent_selection, self.task, self._reask = agent, task, None

    def _doctor(self, text: str) -> None:
        assert self.case is not None
        self.doctor_turns += 1
        cost = -self.config.step_cost
        self.components["step"] = self.components.get("step", 0.0) + cost
        self.rewards["doctor"] += self.config.scalar({"step": cost})
        self._log("doctor", "doctor", text)
        dx = find_diagnosis(text)
        if dx is not None:
            self.diagnosis_text = dx
            self._judge()
            return
        request = find_test_request(text)
        if request is not None:
            self._tests(request)
            return
        items = asked_items(self.matcher, text)
        self.asked += [h for h in items if h not in self.asked]
        if self.roles["patient"] == "agent":
            self._select("patient", "answer")
            return
        self._log("patient", "case", self.scripted_patient.answer(items))
        self._doctor_next()

    def _doctor_next(self) -> None:
        if self.doctor_turns >= self.max_doctor_turns:
            self.verdict = Verdict("unmapped", False, 0.0, None, "no diagnosis within the turn limit")
            self._after_verdict(diagnosed=False)
        else:
            self._select("doctor", "consult")

    # ------------------------------------------------------------------------ measurement
    def _tests(self, request: str) -> None:
        assert self.case is not None
        case, cat, m = self.case, self.catalogue, self.matcher
        names = [request] if resolve_test(case, cat, m, request) is not None else split_test_names(request)
        # "Physical examination" as a whole: every examination finding the case lists.
        names = [x for n in names for x in (self._exam_ids() if whole_exam(n) else [n])]
        known: list[str] = []
        unknown: list[str] = []
        llm = self.roles["measurement"] == "agent"
        for name in names:
            res = case_result(case, cat, m, name)
            if res.item is not None and res.item not in self.ordered:
                self.ordered.append(res.item)
                self._order_turn[res.item] = self.doctor_turns
            if llm and not res.listed:
                unknown.append(name)
            else:
                known.append(f"{res.name}: {res.finding.text}")
        if unknown:
            self._known, self._request = known, ", ".join(unknown)
            self._select("examiner", "measurement")
            return
        self._log("measurement", "case", "RESULTS: " + "; ".join(known))
        self._doctor_next()

    def _exam_ids(self) -> list[str]:
        assert self.case is not None
        ids = [*self.case.exam, *(k for k, v in self.case.extra_items.items() if v.kind == "exam")]
        return ids or ["exam.vitals"]

    def _guarded(self, role: str, text: str, asked: list[str]) -> str | None:
        """The text to show for ``text``, or None when the agent is asked once more.

        Regenerate once, then neutral: a first blocked reply is asked again (the note says neither
        what was blocked nor why); a second one is replaced by a neutral answer. The patient's
        replies are checked after the ones already shown (multi-turn check of the conversation
        guard, when :mod:`clinic_env.patients.conversation` is present)."""
        conv = self._conversation if role == "patient" else None
        result = conv.check(text, asked, commit=False) if conv is not None else self.guard.check(text, asked)
        attempt = 2 if self._reask is not None else 1
        if not result.blocked:
            if conv is not None:
                conv.remember(result.text)
            return str(result.text)
        self.guard_log.append({"role": role, "doctor_turn": self.doctor_turns, "attempt": attempt,
                               "reasons": list(result.blocked), "text": text[:1000],
                               "outcome": "regenerate" if attempt == 1 else "neutral"})
        if attempt == 1:
            self._reask = prompts.reask_note()
            return None
        return FALLBACK_FACT if role == "patient" else "not available"

    def _measurement(self, text: str) -> None:
        assert self.case is not None
        safe = self._guarded("measurement", text or "NORMAL READINGS", list(self.case.history))
        if safe is None:
            return
        reply = safe.strip()
        if reply.upper().startswith("RESULTS:"):
            reply = reply[len("RESULTS:"):].strip()
        self._log("measurement", "examiner", "RESULTS: " + "; ".join([*self._known, reply]))
        self._known = []
        self._doctor_next()

    def _patient(self, text: str) -> None:
        safe = self._guarded("patient", text, self.asked)
        if safe is None:
            return
        self._log("patient", "patient", safe)
        self._doctor_next()

    # ---------------------------------------------------------------------------- grading
    def fail(self, end_reason: str, message: str) -> None:
        """End the episode from outside (``llm_error`` or ``error``): every agent truncated, no reward."""
        self.errors.append(message)
        self.end_reason = end_reason
        self.truncations = dict.fromkeys(self.agents, True)
        self.agent_selection = self.agents[0] if self.agents else "doctor"
        self._set_infos()

    # ---------------------------------------------------------------------------- records
    # ----------------------------------------------------------------------------- render
    def render(self) -> str | None:
        """The transcript as text (``ansi``), or printed (``human``)."""
        if self.case is None:
            return None
        text = "\n".join(f"{e['role'].upper()}: {e['content']}" for e in self.transcript)
        if self.render_mode == "human":
            print(text)
            return None
        return text

    def close(self) -> None:
        """Nothing to release."""
