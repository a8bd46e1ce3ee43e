"""The terminal consultation of ``clinic-env play``: a :class:`PlaySession` at a rich console.

Input is read with :func:`input` (through rich's ``Console.input``), so it works in any terminal or
pseudo-terminal, with readline line editing and history where Python has it. Ctrl-C and end of
input (Ctrl-D) end the consultation like ``quit``: the session is saved and the feedback given,
so nothing typed is lost.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from clinic_env.teaching.feedback import Feedback
from clinic_env.teaching.guide import Line
from clinic_env.teaching.session import PlaySession

__all__ = ["STYLES", "play_in_terminal", "print_feedback", "print_lines"]

#: Rich style per line kind.
STYLES: dict[str, str] = {
    "opening": "bold", "patient": "cyan", "aside": "italic cyan", "result": "green", "action": "bold blue",
    "doctor": "dim", "speech": "magenta", "prompt": "bold yellow", "help": "yellow", "hint": "yellow",
    "status": "white", "error": "red", "option": "red", "note": "dim", "end": "bold",
}


def print_lines(console: Console, lines: tuple[Line, ...]) -> None:
    """Print a reply's lines (the student's own echoed words are left out)."""
    for line in lines:
        if line.kind == "doctor":
            continue
        text = line.text
        if line.kind == "result" and line.grade and line.grade != "normal":
            text = f"{text}  [{line.grade}]"
        console.print(text, style=STYLES.get(line.kind, ""), markup=False, highlight=False, soft_wrap=True)


def print_feedback(console: Console, fb: Feedback) -> None:
    """A terminal summary of the feedback (the Markdown and HTML files hold all of it)."""
    def say(text: str, style: str = "") -> None:
        console.print(text, style=style, markup=False, highlight=False, soft_wrap=True)

    console.rule("Feedback")
    verdict = "correct" if fb.diagnosis_correct else "not the gold diagnosis" if fb.final_diagnosis else "none given"
    say(f"Gold diagnosis: {fb.gold_label} ({fb.gold})", "bold")
    say(f"Your final diagnosis: {fb.final_label}" + (f" ({fb.final_diagnosis})" if fb.final_diagnosis else "")
        + f" - {verdict}")
    got = [e.label for e in fb.evidence if e.done]
    say(f"Confirmatory evidence obtained: {len(got)} of {len(fb.evidence)}"
        + (f" ({', '.join(got)})" if got else ""))
    for line in fb.dangerous:
        say(line, "bold red")
    if fb.must_not_miss_missing:
        say("Must-not-miss diagnoses not in your differential: "
            + ", ".join(f"{m.label} ({m.id})" for m in fb.must_not_miss_missing), "red")
    missed_q = fb.missed_questions
    say(f"Essential questions asked: {len(fb.questions) - len(missed_q)} of {len(fb.questions)}")
    for q in missed_q[:8]:
        say(f"  missed question: {q.label}", "red")
    if len(missed_q) > 8:
        say(f"  ... and {len(missed_q) - 8} more (see the files)")
    say(f"Essential tests ordered: {len(fb.tests) - len(fb.missed_tests)} of {len(fb.tests)}")
    for t in fb.missed_tests:
        say(f"  missed test: {t.label}", "red")
    for t in fb.unnecessary:
        say(f"  not needed: {t.label} ({t.detail})", "yellow")
    for timed in fb.timing:
        if timed.within is not None:
            when = "not done" if timed.cycle is None else f"cycle {timed.cycle}"
            say(f"Time-critical: {timed.label} {when}, due by cycle {timed.within}: "
                + ("in time" if timed.met else "LATE"))
    met = sum(1 for r in fb.rubric if r.met and r.points > 0)
    say(f"Rubric items met: {met} of {sum(1 for r in fb.rubric if r.points > 0)}; "
        f"needing an examiner: {sum(1 for r in fb.rubric if r.met is None)}")
    say(f"Total cost: ${fb.cost_usd:,.0f} (case budget ${fb.budget_usd:,.0f})", "bold")
    score = f"{fb.score:.3f}" if fb.score is not None else "not scored (no diagnosis)"
    say(f"Score: {score}")
    if len(fb.comparison) > 1:
        table = Table(title="Same case, same seed")
        for col in ("doctor", "score", "diagnosis", "correct", "questions", "tests", "cost"):
            table.add_column(col)
        for r in fb.comparison:
            table.add_row(r.doctor, "-" if r.score is None else f"{r.score:.3f}", r.final_diagnosis or "none",
                          "yes" if r.correct else "no", str(r.questions), str(len(r.tests)), f"${r.cost_usd:,.0f}")
        console.print(table)


def play_in_terminal(session: PlaySession, save_dir: str | Path, console: Console | None = None,
                     read: Callable[[str], str] | None = None, compare: bool = True) -> Feedback:
    """Play ``session`` at the console until it ends, is quit, or input ends; then save the session,
    print the feedback and save it (``feedback.md``, ``feedback.html``) in ``save_dir``.

    Args:
        session: A new session.
        save_dir: Folder for ``session.json`` and the feedback files.
        console: Where to print (default: a new rich Console).
        read: Reads one line given a prompt (default: ``console.input``).
        compare: Also play the scripted doctors for the side-by-side table.

    Returns:
        The feedback.
    """
    console = console or Console()
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401  # line editing and history for input(), where available
    reader = read or (lambda prompt: console.input(prompt))
    session.save_dir = Path(save_dir)
    print_lines(console, session.opening.entries)
    while not session.done:
        try:
            text = reader("you> ")
        except (EOFError, KeyboardInterrupt):
            console.print()
            print_lines(console, session.quit().entries)
            break
        if not text.strip():
            continue
        print_lines(console, session.say(text).entries)
    path = session.save()
    feedback = session.feedback(compare=compare)
    md, page = feedback.save(save_dir)
    print_feedback(console, feedback)
    console.print(f"Saved: {path}, {md}, {page}", markup=False, highlight=False, soft_wrap=True)
    return feedback
