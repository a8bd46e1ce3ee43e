"""A consultation a person plays in plain English: the API of ``clinic-env play`` and the web page.

    from clinic_env.teaching import PlaySession
    s = PlaySession("card-nstemi", seed=0)
    print(s.opening.text)                 # setting, demographics, opening statement, what to do
    print(s.say("when did it start?").text)
    s.say("done"); s.say("heart attack"); s.say("done"); s.say("ECG and troponin"); s.say("done")
    s.say("say: this looks like a heart attack; we will treat it straight away")
    s.say("NSTEMI")
    print(s.feedback().markdown())

The doctor's seat is the student's; the patient and the examiner are the built-in ``persona`` and
``rubric`` policies, seeded as :func:`clinic_env.rollout.play_episode` seeds them, so a session is
deterministic given (case, persona, seed, inputs), and a scripted doctor playing the same case with
the same seed meets the same patient. Typed lines are read by
:class:`clinic_env.text.plain.PlainReader`; words to the patient are kept and given to the engine
as the doctor's words (``said``) with the next action, as text mode does, so they are in the
episode record for graders. Prompts, hints, status lines and case choice are in :mod:`clinic_env.teaching.guide`.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clinic_env.core.engine import AGENTS, DIAGNOSIS, DOCTOR, HISTORY, SEGMENTS
from clinic_env.envs.aec import ConsultationEnv
from clinic_env.envs.text import speaking
from clinic_env.policies import Policy, make_policy
from clinic_env.records import EpisodeRecord
from clinic_env.rollout import episode_record, next_decision
from clinic_env.schema.case import Case
from clinic_env.schema.persona import Persona
from clinic_env.teaching.guide import (
    CaseSource,
    Guide,
    Line,
    LineKind,
    SessionError,
    classify,
    ending,
    prompt,
    resolve_case,
)
from clinic_env.text.plain import PlainReader, describe_action

if TYPE_CHECKING:
    from clinic_env.teaching.feedback import Feedback

__all__ = ["Line", "LineKind", "PlaySession", "Reply", "SessionError", "SessionState"]

#: Version of the ``session.json`` layout.
SESSION_FORMAT = 1


@dataclass(frozen=True)
class SessionState:
    """Where the consultation stands.

    Attributes:
        segment: ``history``, ``differential``, ``tests``, ``diagnosis`` or ``finished``.
        cycle: Cycles played (a question and its answer take two).
        max_cycles: The cycle budget.
        questions: Distinct history items asked.
        tests: Test and examination ids ordered, in order.
        cost_usd: What the tests cost so far.
        differential: ICD-10 codes listed, in order.
        final_diagnosis: The final code, once given.
        done: Over (diagnosis given and graded, patient left, out of cycles) or quit.
        end_reason: ``final_diagnosis``, ``patient_left``, ``max_cycles``, ``quit`` or None.
        patience_left: Cycles before the patient leaves (None: this patient stays).
    """

    segment: str
    cycle: int
    max_cycles: int
    questions: int
    tests: tuple[str, ...]
    cost_usd: float
    differential: tuple[str, ...]
    final_diagnosis: str | None
    done: bool
    end_reason: str | None
    patience_left: int | None


@dataclass(frozen=True)
class Reply:
    """What one input produced.

    Attributes:
        entries: The lines to show, typed (:class:`Line`).
        state: The state after the input.
        actions: Engine actions applied (``ask:hx.onset``, ``order:lab.troponin``...).
        understood: False when the input named nothing usable (nothing happened).
        saved: Where the session was written (``quit``).
    """

    entries: tuple[Line, ...]
    state: SessionState
    actions: tuple[str, ...] = ()
    understood: bool = True
    saved: Path | None = None

    @property
    def lines(self) -> tuple[str, ...]:
        """The entries' texts."""
        return tuple(e.text for e in self.entries)

    @property
    def text(self) -> str:
        """The entries as one text, a line each."""
        return "\n".join(self.lines)


class PlaySession:
    """One consultation played through :meth:`say` (see the module docstring).

    Args:
        case: A bundled case id, a case file (holding one case, or the case with id ``case_id``...
            pass the file as ``cases`` and the id as ``case``), or a :class:`Case`. Leave it out to
            generate a case with ``condition``.
        condition: A knowledge-base condition id or ICD-10 code: the case is generated on the fly
            (:meth:`clinic_env.generate.CaseGenerator.generate` with ``seed`` and ``difficulty``).
        difficulty: 1, 2 or 3 for a generated case (default: drawn from the seed).
        persona: Persona id, file or :class:`Persona` (default: drawn from the seed, as in
            ``clinic-env run``; a generated case plays the persona it was generated for).
        seed: Seeds the episode (persona draw, the patient's noise) and a generated case.
        cases: A case file or folder in which ``case`` is an id.
        save_dir: Folder of ``session.json`` (:meth:`save`, ``quit``); default
            ``runs/play-<timestamp>/``, chosen when first saved.
        max_cycles: Cycle budget.

    Raises:
        SessionError: An unknown case id (the closest ids are named), a file with several cases
            and no id, both or neither of ``case`` and ``condition``, an unknown condition or persona.
    """

    def __init__(self, case: str | Path | Case | None = None, *, condition: str | None = None,
                 difficulty: int | None = None, persona: str | Persona | None = None, seed: int = 0,
                 cases: str | Path | None = None, save_dir: str | Path | None = None, max_cycles: int = 150) -> None:
        self.source: CaseSource = resolve_case(case, condition=condition, difficulty=difficulty, persona=persona,
                                               seed=seed, cases=cases)
        self.case: Case = self.source.case
        self.seed, self.max_cycles = seed, max_cycles
        self.save_dir = Path(save_dir) if save_dir is not None else None
        self.env = self.make_env()
        self.env.reset(seed=seed, options=self.options)
        self.engine = self.env.engine
        self.persona: Persona = self.engine.persona
        info = self.env.info
        self._policies: dict[str, Policy] = {AGENTS[1]: make_policy("persona", info),
                                             AGENTS[2]: make_policy("rubric", info)}
        for offset in (1, 2):  # the seeds play_episode gives them
            self._policies[AGENTS[offset]].reset(seed + offset + 1)
        self._totals = dict.fromkeys(AGENTS, 0.0)
        self.reader = PlainReader(info.catalogue, info.table)
        self.guide = Guide(self.engine, info)
        self.inputs: list[str] = []
        self.pending_speech: list[str] = []
        self.spoken: list[str] = []
        self.quit_requested = False
        self._offered: tuple[int, ...] = ()
        self._shown = 0
        self._advance()
        self.opening: Reply = self._opening()

    # ------------------------------------------------------------------------------------------ set-up
    def make_env(self) -> ConsultationEnv:
        """A fresh env set up like this session's (the feedback's scripted doctors play in one)."""
        kwargs: dict[str, Any] = {"persona": self.source.persona} if self.source.persona is not None else {}
        return ConsultationEnv(cases=[self.case], infos="full", max_cycles=self.max_cycles, **kwargs)

    @property
    def options(self) -> dict[str, Any]:
        """The ``reset`` options that give this session's case."""
        return {"case_id": self.case.id}

    # ------------------------------------------------------------------------------------------ state
    @property
    def done(self) -> bool:
        """Whether the consultation is over (diagnosis given and graded, patient left, out of
        cycles) or was quit."""
        return self.quit_requested or self.engine.terminated or self.engine.truncated

    @property
    def segment(self) -> str:
        """The current segment's name, or ``finished``."""
        eng = self.engine
        if self.done or eng.segment > DIAGNOSIS:
            return "finished"
        return SEGMENTS[eng.segment]

    def state(self) -> SessionState:
        """Where the consultation stands now."""
        eng = self.engine
        patience = self.persona.patience
        left = None if patience is None or eng.emergency else max(patience - eng.cycle, 0)
        reason = eng.end_reason or ("quit" if self.quit_requested else None)
        return SessionState(self.segment, eng.cycle, eng.max_cycles, len(eng.asked), tuple(eng.ordered),
                            float(eng.cost), tuple(eng.differential), eng.final_dx, self.done, reason, left)

    @property
    def record(self) -> EpisodeRecord:
        """The episode record so far; a session quit before its end is marked truncated with
        ``end_reason`` ``quit`` (its outcome components were never paid)."""
        record = episode_record(self.env, self.seed, "student", self._totals, [])
        if self.quit_requested and not (self.engine.terminated or self.engine.truncated):
            record.update(truncated=True, end_reason="quit")
        return record

    # ------------------------------------------------------------------------------------------ playing
    def _advance(self) -> None:
        """The patient and the examiner act until the doctor must decide or the episode ends
        (the loop of :func:`clinic_env.rollout.play_episode`, with the doctor's seat left open)."""
        while (turn := next_decision(self.env, self._totals)) is not None:
            agent, obs = turn
            if agent == AGENTS[DOCTOR]:
                return
            self.env.step(self._policies[agent].act(obs, agent))

    def _new_lines(self) -> list[Line]:
        """Transcript lines the doctor may read, added since the last call."""
        lines = self.engine.transcript.lines
        out = [classify(text, visibility, self.guide.grades()) for visibility, text in lines[self._shown:]
               if visibility in ("all", "doctor")]
        self._shown = len(lines)
        return out

    def _opening(self) -> Reply:
        lines = [Line("opening", self.guide.title())]
        lines += [Line("opening", text) for _, text in self.engine.transcript.lines]
        self._shown = len(self.engine.transcript.lines)
        lines.append(Line("note", f"Patient persona: {self.persona.name}. Seed {self.seed}."))
        lines.append(Line("prompt", prompt(HISTORY, self.engine.differential_max)))
        return Reply(tuple(lines), self.state())

    def say(self, text: str) -> Reply:
        """Act on one typed line: a command (``help``, ``hint``, ``status``, ``quit``), a closing
        word (``done``, ``next``, ``ready for tests``), a question, an examination or test, a
        diagnosis by name or ICD-10 code, a number choosing an offered option, or words to the
        patient (``say: ...`` or a plain statement), kept and recorded with the next action.

        Returns:
            The lines to show and the state. A line that names nothing usable gets the reason or
            the closest options and ``understood=False``; nothing happens in the consultation then.
        """
        if self.done:
            return Reply((Line("end", "The consultation is over: see the feedback."),), self.state(), understood=False)
        self.inputs.append(text)
        eng = self.engine
        plan = self.reader.read(text, eng.masks[DOCTOR], eng.segment, eng.asked, eng.ordered, self._offered)
        self._offered = plan.options
        if plan.command == "quit":
            return self.quit()
        if plan.command is not None:
            lines = self.guide.command(plan.command, self.state(), self.pending_speech)
            return Reply(tuple(lines), self.state())
        if plan.error is not None:
            table, cat = self.env.info.table, self.env.info.catalogue
            lines = [Line("error", plan.error)]
            lines += [Line("option", f"{n}. {describe_action(i, table, cat)}") for n, i in enumerate(plan.options, 1)]
            return Reply(tuple(lines), self.state(), understood=False)
        if plan.speech is not None:
            self.pending_speech.append(plan.speech)
            self.spoken.append(plan.speech)
            return Reply((Line("speech", f"You (to the patient): {plan.speech}"),
                          Line("note", "Noted: your words are recorded with your next action.")), self.state())
        return self._act(plan.actions, plan.notes)

    def _act(self, actions: tuple[tuple[int, str | None], ...], notes: tuple[str, ...]) -> Reply:
        lines: list[Line] = [Line("note", n) for n in notes]
        applied: list[str] = []
        before = self.engine.segment
        table = self.env.info.table
        for index, said in actions:
            if self.done:
                break
            if not self.engine.masks[DOCTOR][index]:
                lines.append(Line("note", f"Skipped {describe_action(index, table, self.env.info.catalogue)}: "
                                          "not possible any more."))
                continue
            words = " ".join([*self.pending_speech, said or ""]).strip() or None
            self.pending_speech.clear()
            with speaking(self.engine, DOCTOR, words):
                self.env.step(index)
            self._advance()
            applied.append(table.names[index])
            lines.extend(self._new_lines())
            if self.engine.segment != before:
                break  # actions queued for the old segment do not carry over
        lines.extend(self._after(before))
        return Reply(tuple(lines), self.state(), tuple(applied))

    def _after(self, before: int) -> list[Line]:
        eng = self.engine
        if eng.terminated or eng.truncated:
            return [Line("end", ending(eng.end_reason))]
        if eng.segment != before and eng.segment <= DIAGNOSIS:
            return [Line("prompt", prompt(eng.segment, eng.differential_max))]
        return []

    # ------------------------------------------------------------------------------------------ commands
    def help(self) -> Reply:
        """What can be typed now (the same as ``say("help")``)."""
        return self.say("help")

    def hint(self) -> Reply:
        """A next step from the guideline checklist, never the diagnosis (``say("hint")``)."""
        return self.say("hint")

    def status(self) -> Reply:
        """Segment, questions, tests, cost and cycle (``say("status")``)."""
        return self.say("status")

    def quit(self) -> Reply:
        """End the consultation now and save it (:meth:`save`); nothing typed is lost."""
        self.quit_requested = True
        path = self.save()
        return Reply((Line("end", f"Consultation ended; saved to {path}."),), self.state(), saved=path)

    # ------------------------------------------------------------------------------------------ saving
    def to_json(self) -> dict[str, Any]:
        """What :meth:`load` needs to rebuild the session, and what it was: the case's source,
        persona, seed, the lines typed, words not yet recorded, and the episode record."""
        src = self.source
        return {
            "format": SESSION_FORMAT, "case_id": self.case.id, "case_file": src.path, "condition": src.condition,
            "difficulty": src.difficulty, "persona": self.persona.id,
            "persona_given": self.source.persona is not None, "seed": self.seed, "max_cycles": self.max_cycles,
            "inputs": list(self.inputs), "pending_speech": list(self.pending_speech), "done": self.done,
            "saved_at": datetime.datetime.now().isoformat(timespec="seconds"),
            "record": self.record.model_dump(mode="json", exclude_none=True),
        }

    def save(self, path: str | Path | None = None) -> Path:
        """Write :meth:`to_json` to ``path`` (default ``save_dir/session.json``); returns the path."""
        if path is None:
            if self.save_dir is None:
                self.save_dir = Path("runs") / f"play-{datetime.datetime.now():%Y%m%d-%H%M%S}"
            path = self.save_dir / "session.json"
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> PlaySession:
        """Rebuild a saved session by replaying its typed lines (sessions are deterministic); one
        that was quit comes back open, to go on with."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("format") != SESSION_FORMAT:
            raise SessionError(f"{path}: not a session file of format {SESSION_FORMAT}")
        persona = data["persona"] if data["persona_given"] else None
        if data["condition"]:
            session = cls(condition=data["condition"], difficulty=data["difficulty"], persona=persona,
                          seed=data["seed"], max_cycles=data["max_cycles"], save_dir=Path(path).parent)
        else:
            session = cls(data["case_id"], cases=data["case_file"], persona=persona, seed=data["seed"],
                          max_cycles=data["max_cycles"], save_dir=Path(path).parent)
        for text in data["inputs"]:
            if session.reader.read(text, session.engine.masks[DOCTOR], 0).command != "quit" and not session.done:
                session.say(text)
        return session

    def feedback(self, compare: bool = True) -> Feedback:
        """What the student can learn from this consultation
        (:class:`~clinic_env.teaching.feedback.Feedback`); ``compare`` also plays the ``thorough``
        and ``info-gain`` doctors on the same case with the same seed."""
        from clinic_env.teaching.feedback import Feedback

        return Feedback.from_session(self, compare=compare)
