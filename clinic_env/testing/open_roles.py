"""A loopback script that plays every open-mode role (:mod:`clinic_env.open.prompts`) from the
request's system message, for tests and benchmarks of ``clinic-env run --mode open``.

Each reply is a pure function of the request, so concurrent episodes get the replies sequential
ones would:

- **doctor** (a system message with ``DIAGNOSIS READY``): counts its own earlier turns (the
  assistant messages) and asks ``questions`` history questions, then writes ``tests``
  ``REQUEST TEST:`` lines, then ``DIAGNOSIS READY: <diagnosis>`` (at once when told it is the last
  turn). The diagnosis is ``diagnosis`` (default: the first entry of ``GUESSES`` whose words the
  dialogue holds, else ``GUESSES[0]``), so a run has some right and some wrong answers;
- **patient**: the first sentence of the fact line sharing most words with the question (the
  first non-demographic line for an open question), else that it has not noticed;
- **measurement** reader: ``RESULTS: <the data line sharing most words with the request>`` or
  ``RESULTS: NORMAL READINGS``;
- **moderator**: ``Yes`` when every word of the correct diagnosis is in the doctor's, else ``No``;
- **examiner**: coverage as a JSON object (a fact counts when most of its words are in the
  dialogue); a rubric item ``{"explanation", "criteria_met": true}``; a batch of items a JSON
  object of every listed id to true.

Serve it as its own process: ``python -m clinic_env.testing.open_roles --port P --latency-ms 100``.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["GUESSES", "QUESTIONS", "TESTS", "main", "make_open_script", "open_reply"]

QUESTIONS = (
    "What brings you in today, and when did it start?",
    "Have you noticed any other symptoms along with it?",
    "Do you have any other illnesses, and do you take any medicines?",
    "Do you smoke or drink alcohol, and what work do you do?",
)
TESTS = ("Vital_Signs", "Complete_Blood_Count", "Chest_X-Ray", "Basic_Metabolic_Panel")
#: (diagnosis, words that make the scripted doctor choose it).
GUESSES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Community-acquired pneumonia", ("cough", "fever", "sputum")),
    ("Myasthenia gravis", ("double", "vision", "eyelids")),
    ("Pulmonary embolism", ("breath", "chest", "leg")),
    ("Acute appendicitis", ("abdominal", "abdomen", "belly")),
)
_WORD = re.compile(r"[a-z0-9]+")
_OPEN_QUESTION = re.compile(r"(?i)\b(brings you|tell me|what happened|how can i help)\b")
_STOP = frozenset({"and", "any", "are", "did", "does", "for", "have", "has", "how", "the", "was", "what", "when",
                   "with", "you", "your", "other"})  # words of two letters or fewer are dropped anyway


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 2}


def _text(content: Any) -> str:
    if isinstance(content, list):  # parts: text and image_url
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content or "")


def _parts(request: dict[str, Any]) -> tuple[str, str, list[dict[str, Any]]]:
    msgs = [m for m in request.get("messages") or [] if isinstance(m, dict)]
    system = next((_text(m.get("content")) for m in msgs if m.get("role") == "system"), "")
    user = next((_text(m.get("content")) for m in reversed(msgs) if m.get("role") == "user"), "")
    return system, user, msgs


def _listed(system: str) -> list[str]:
    """The ``- line`` items of a system message."""
    return [line[2:].strip() for line in system.splitlines() if line.startswith("- ")]


def _best(lines: Sequence[str], query: str) -> str | None:
    asked = _words(query)
    scored = [(len(asked & _words(line.split(":", 1)[-1] + " " + line.split(":", 1)[0])), -i, line)
              for i, line in enumerate(lines)]
    top = max(scored, default=(0, 0, ""))
    return top[2] if top[0] > 0 else None


def _doctor(msgs: list[dict[str, Any]], user: str, questions: int, tests: int, diagnosis: str | None) -> str:
    turn = sum(1 for m in msgs if m.get("role") == "assistant")
    if turn < questions and "last turn" not in user:
        return QUESTIONS[turn % len(QUESTIONS)]
    if turn < questions + tests and "last turn" not in user:
        return f"REQUEST TEST: {TESTS[(turn - questions) % len(TESTS)]}"
    if diagnosis is None:
        heard = _words(" ".join(_text(m.get("content")) for m in msgs if m.get("role") != "system"))
        diagnosis = next((dx for dx, cues in GUESSES if heard & set(cues)), GUESSES[0][0])
    return f"DIAGNOSIS READY: {diagnosis}"


def _coverage(user: str) -> str:
    dialogue, _, facts = user.partition("\nFacts:\n")
    said = _words(dialogue)
    out: dict[str, bool] = {}
    for line in facts.splitlines():
        fid, sep, text = line.partition(": ")
        if sep:
            words = _words(text)
            out[fid.strip()] = bool(words) and len(words & said) * 2 >= len(words)
    return json.dumps(out)


def open_reply(request: dict[str, Any], questions: int = 3, tests: int = 2, diagnosis: str | None = None) -> str:
    """Answer as whichever open-mode role the system message addresses (see the module docstring)."""
    system, user, msgs = _parts(request)
    if "DIAGNOSIS READY" in system:
        return _doctor(msgs, user, questions, tests, diagnosis)
    if "patient" in system.lower() and "What you know about yourself" in system:
        lines = _listed(system.split("What you know about yourself", 1)[1])
        line = _best(lines, user)
        if line is None and _OPEN_QUESTION.search(user):  # "what brings you in": the complaint's line
            line = next((x for x in lines if not x.lower().startswith("demographics")), None)
        if line is None:
            return "I have not noticed anything like that."
        fact = line.split(":", 1)[-1].strip()
        return re.split(r"(?<=[.!?])\s", fact, maxsplit=1)[0]
    if "RESULTS:" in system:
        line = _best(_listed(system), user)
        return f"RESULTS: {line}" if line else "RESULTS: NORMAL READINGS"
    if "Same disease?" in user:
        correct = re.search(r"Correct diagnosis: (.*)", user)
        doctor = re.search(r"Doctor's diagnosis: (.*)", user)
        same = correct and doctor and _words(correct.group(1)) <= _words(doctor.group(1))
        return "Yes" if same else "No"
    if "\nFacts:\n" in user:
        return _coverage(user)
    if "criteria_met" in system or "rubric item" in system:
        ids = re.findall(r"^\s*([\w.\-]+)\s*[:)]", user, re.M) if '"criteria_met"' not in system else []
        if ids and "each" in system.lower():
            return json.dumps(dict.fromkeys(ids, True))
        return json.dumps({"explanation": "The doctor did this.", "criteria_met": True})
    return "OK"


def make_open_script(questions: int = 3, tests: int = 2, diagnosis: str | None = None,
                     ) -> Callable[[dict[str, Any]], str]:
    """:func:`open_reply` with its doctor's question and test counts (and diagnosis) fixed."""
    def reply(request: dict[str, Any]) -> str:
        return open_reply(request, questions, tests, diagnosis)

    return reply


def main(argv: Sequence[str] | None = None) -> None:
    """Serve :func:`open_reply` on loopback in this process until interrupted."""
    from clinic_env.testing.openai_server import OpenAITestServer

    parser = argparse.ArgumentParser(description="Loopback server playing every open-mode role.")
    parser.add_argument("--port", type=int, default=8012)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--questions", type=int, default=3)
    parser.add_argument("--tests", type=int, default=2)
    parser.add_argument("--log", default=None, help="append each request's messages as a JSON line here")
    args = parser.parse_args(argv)
    script = make_open_script(args.questions, args.tests)
    if args.log:
        log = open(args.log, "a", encoding="utf-8")  # noqa: SIM115 - open for the server's lifetime

        def logged(request: dict[str, Any]) -> str:
            log.write(json.dumps({"messages": request.get("messages")}) + "\n")
            log.flush()
            return script(request)

        reply: Callable[[dict[str, Any]], str] = logged
    else:
        reply = script
    server = OpenAITestServer(reply, latency=args.latency_ms / 1000.0, port=args.port)
    server.serve_until_interrupted()


if __name__ == "__main__":
    main()
