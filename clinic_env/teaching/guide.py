"""What a playing student is told: case choice, segment prompts, help, hints, status, line kinds.

Pure helpers and one small :class:`Guide` that reads the engine (never writes it), used by
:class:`~clinic_env.teaching.session.PlaySession`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from clinic_env.core.actions import COMMIT_DIFFERENTIAL, END_SEGMENT
from clinic_env.core.engine import DIAGNOSIS, DIFFERENTIAL, DOCTOR, HISTORY, TESTS, Consultation
from clinic_env.envs.setup import EnvInfo
from clinic_env.policies.doctors import ThoroughDoctor
from clinic_env.schema.case import Case
from clinic_env.schema.errors import DataError
from clinic_env.schema.persona import Persona

if TYPE_CHECKING:
    from clinic_env.teaching.session import SessionState

__all__ = ["CaseSource", "Guide", "Line", "LineKind", "SessionError", "classify", "ending", "prompt", "resolve_case"]

#: What a line of a reply is, so a page can style it.
LineKind = Literal["opening", "patient", "aside", "result", "action", "doctor", "speech", "prompt", "help",
                   "hint", "status", "error", "option", "note", "end"]
_GRADES = ("normal", "mildly abnormal", "markedly abnormal")


class SessionError(ValueError):
    """A session that cannot start: the message names the argument, its value and what would do."""


@dataclass(frozen=True)
class Line:
    """One line to show: its ``kind`` and ``text``; a result also has its ``grade`` (``normal``,
    ``mildly abnormal`` or ``markedly abnormal``, as the doctor's observation shows it)."""

    kind: LineKind
    text: str
    grade: str | None = None


@dataclass(frozen=True)
class CaseSource:
    """The case a session plays and where it came from (saved with the session)."""

    case: Case
    persona: str | Persona | None = None
    path: str | None = None
    condition: str | None = None
    difficulty: int | None = None

    def __post_init__(self) -> None:
        if not self.case.coded:  # feedback scores the diagnosis against a code
            raise SessionError(f"case {self.case.id!r}: its gold ({self.case.gold_text!r}) has no ICD-10 code "
                               "(gold_status unmapped); play it in open mode: clinic-env run --mode open")

    @property
    def generated(self) -> bool:
        """Whether the case was generated on the fly."""
        return self.condition is not None


def resolve_case(case: str | Path | Case | None, *, condition: str | None, difficulty: int | None,
                 persona: str | Persona | None, seed: int, cases: str | Path | None) -> CaseSource:
    """The case to play: a bundled id, an id in ``cases``, a case file, a Case, or one generated
    from ``condition`` (see :class:`~clinic_env.teaching.session.PlaySession`)."""
    from clinic_env.schema.loading import load_cases, load_personas

    if (case is None) == (condition is None):
        raise SessionError("give a case (an id, a case file or a Case) or a condition to generate one, not both")
    if isinstance(persona, str) and not Path(persona).exists() and persona not in {p.id for p in load_personas()}:
        known = sorted(p.id for p in load_personas())
        raise SessionError(f"persona={persona!r}: not a persona file or bundled persona id ({', '.join(known)})")
    if condition is not None:
        from clinic_env.generate import CaseGenerator, GenerationError

        try:
            gen = CaseGenerator().generate(condition, seed=seed, difficulty=difficulty,
                                           persona=persona if isinstance(persona, (str, Persona)) else None)
        except GenerationError as exc:
            raise SessionError(str(exc)) from None
        return CaseSource(gen.case, gen.persona, None, condition, gen.difficulty)
    if isinstance(case, Case):
        return CaseSource(case, persona)
    assert case is not None
    try:
        if cases is not None:
            library = load_cases(cases)
            found = [c for c in library if c.id == str(case)]
            return _one(found, str(case), [c.id for c in library], persona, str(cases))
        if Path(case).exists():
            library = load_cases(case)
            if len(library) != 1:
                raise SessionError(f"{case}: holds {len(library)} cases; pass it as cases= with the case id")
            return CaseSource(library[0], persona, str(case))
        library = load_cases()
    except DataError as exc:
        raise SessionError(str(exc)) from None
    return _one([c for c in library if c.id == str(case)], str(case), [c.id for c in library], persona, None)


def _one(found: list[Case], case_id: str, ids: list[str], persona: str | Persona | None, path: str | None) -> CaseSource:
    if found:
        return CaseSource(found[0], persona, path)
    close = difflib.get_close_matches(case_id, ids, n=5, cutoff=0.4)
    hint = f"; closest: {', '.join(close)}" if close else "; `clinic-env cases list` shows them"
    raise SessionError(f"case {case_id!r}: no such case id{' in ' + path if path else ' among the bundled cases'}{hint}")


# ---------------------------------------------------------------------------------------- wording
_PROMPTS = {
    HISTORY: ("History. Ask the patient questions in your own words ('when did it start?', 'any fever?', "
              "'do you smoke?'). Bedside checks (vital signs, ECG, SpO2, glucose) can be done now as well. "
              "Type 'done' when you have finished the history; 'help' or 'hint' at any time."),
    DIFFERENTIAL: ("Differential. Name the diagnoses you are considering, most likely first, by name or ICD-10 "
                   "code ('pneumonia', 'pulmonary embolism', I26.9), one or several per line, at most {n}. "
                   "Include the dangerous ones you must not miss. Type 'done' to commit the list."),
    TESTS: ("Tests. Examine the patient and order investigations by their usual names ('listen to the chest', "
            "'ECG', 'troponin', 'blood culture'); each has a cost. Type 'done' when you are ready to give "
            "your diagnosis."),
    DIAGNOSIS: ("Final diagnosis. Say what you want to tell the patient first (explanation, plan, when to come "
                "back: 'say: ...'), then name ONE diagnosis ('NSTEMI' or I21.4). The consultation ends with it."),
}


def prompt(segment: int, differential_max: int) -> str:
    """The prompt shown when ``segment`` begins."""
    return _PROMPTS[segment].replace("{n}", str(differential_max))


def ending(end_reason: str | None) -> str:
    """The line shown when the episode ends."""
    reason = {"final_diagnosis": "You gave your final diagnosis.", "patient_left": "The patient has left.",
              "max_cycles": "Out of time (cycle budget)."}.get(end_reason or "", "The consultation ended.")
    return f"{reason} The consultation is over: see the feedback."


_HELP = (
    "Type in plain English. Questions: 'when did it start?', 'chest pain', 'any fever?'. Examinations and tests: "
    "'listen to the chest', 'ECG', 'troponin', 'blood culture' (bedside checks such as vital signs and the ECG "
    "also during the history). Diagnoses: 'pneumonia', 'heart attack' or an ICD-10 code (J18.9). Words to the "
    "patient: 'say: ...' (explanations, safety-netting; recorded for the examiner). Move on: 'done' / 'next'. "
    "Commands: help, hint (a next step from the guideline checklist), status, quit (saves and ends). When your "
    "words match nothing, the closest options are listed: type a number to choose one."
)


def classify(text: str, visibility: str, grades: dict[str, str]) -> Line:
    """A transcript line as a :class:`Line` (a result with its grade, looked up by its label)."""
    if visibility == "doctor" or text.startswith("Patient (to the doctor):"):
        return Line("aside", text)
    if text.startswith("Patient:"):
        return Line("patient", text)
    if text.startswith("Result - "):
        body = text[len("Result - "):]
        return Line("result", body, grades.get(body.split(":", 1)[0]))
    if text.startswith(("Doctor: Differential #", "Doctor: Final diagnosis:")):
        return Line("action", text[len("Doctor: "):])
    if text.startswith("Doctor:"):
        return Line("doctor", text)
    return Line("note", text)


class Guide:
    """Help, hints and status for one session's engine (reads it, never writes it).

    Args:
        engine: The session's engine.
        info: The env's description (catalogue, table, layout).
    """

    def __init__(self, engine: Consultation, info: EnvInfo) -> None:
        self.engine, self.info = engine, info
        self._doctor = ThoroughDoctor(info)

    def title(self) -> str:
        """The consultation's heading: the setting and the chief complaint (a case's title or a
        generated case's condition would give the diagnosis away)."""
        case = self.engine.case
        assert case is not None
        return f"{case.setting.capitalize()}: {case.chief_complaint}"

    def grades(self) -> dict[str, str]:
        """Test label -> the grade of its result, from the doctor's own observation."""
        eng, lay, cat = self.engine, self.info.layout, self.info.catalogue
        grid = lay.test_grades(eng.observe(DOCTOR))
        out: dict[str, str] = {}
        for tid in eng.ordered:
            col = cat.test_ids.index(tid)
            levels = grid[:, col]
            if levels.any():
                out[cat.tests[tid].label] = _GRADES[int(levels.argmax())]
        return out

    def command(self, name: str, state: SessionState, pending: list[str]) -> list[Line]:
        """The lines of ``help``, ``hint`` or ``status``."""
        if name == "help":
            return [Line("help", _HELP), Line("prompt", prompt(self.engine.segment, self.engine.differential_max))
                    if self.engine.segment <= DIAGNOSIS else Line("help", "")]
        if name == "hint":
            return [Line("hint", self.hint())]
        cat = self.info.catalogue
        tests = ", ".join(cat.tests[t].label for t in state.tests) or "none"
        dx = ", ".join(state.differential) or "none"
        lines = [Line("status", f"Segment: {state.segment}. Cycle {state.cycle} of {state.max_cycles}"
                                + (f" (the patient will leave in {state.patience_left} cycles)"
                                   if state.patience_left is not None else "") + "."),
                 Line("status", f"Questions asked: {state.questions}. Tests and examinations: {len(state.tests)} "
                                f"({tests}); cost so far ${state.cost_usd:,.0f}."),
                 Line("status", f"Differential: {dx}.")]
        if pending:
            lines.append(Line("status", f"Words to the patient not yet recorded: {' '.join(pending)}"))
        return lines

    def hint(self) -> str:
        """A next step: the thorough doctor's choice in the history and tests, general advice for
        the differential (the guideline's differential of the complaint) and the diagnosis."""
        eng, t, cat = self.engine, self.info.table, self.info.catalogue
        case = eng.case
        assert case is not None
        if eng.segment == DIFFERENTIAL:
            pres = cat.presentations.get(case.presenting_complaint)
            mnm = [cat.diagnoses[c].label for c in (pres.differential if pres else ()) if c in cat.diagnoses
                   and cat.diagnoses[c].must_not_miss]
            base = "List the likeliest diagnosis first and the dangerous ones you must not miss."
            return base + (f" For {pres.label.lower()} the guideline's must-not-miss causes include: "
                           f"{'; '.join(mnm)}." if pres and mnm else "")
        if eng.segment >= DIAGNOSIS:
            return ("Choose the diagnosis your history and results support best, and check you have the tests "
                    "that confirm it. Explain it to the patient and safety-net ('say: ...') before naming it.")
        self._doctor.reset()
        mask = eng.masks[DOCTOR]
        action = self._doctor.act({"observation": eng.observe(DOCTOR), "action_mask": mask}, "doctor_0")
        name = t.names[action]
        if action in (END_SEGMENT, COMMIT_DIFFERENTIAL) or not mask[action]:
            return "The guideline checklist is covered for this segment: type 'done' to move on when you are ready."
        kind, _, item = name.partition(":")
        if kind == "ask":
            h = cat.history[item]
            return f"Consider asking about {h.label.lower()}: \"{h.question}\""
        test = cat.tests[item]
        when = " (a bedside check you can do now)" if eng.segment == HISTORY else ""
        return f"Consider {test.label}{when}; it costs ${test.cost_usd:,.0f}."
