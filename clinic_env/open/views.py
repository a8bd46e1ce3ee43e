"""What each agent of open mode sees: role-structured chat messages built from the transcript.

The transcript is a list of ``{"role", "name", "content"}`` entries: ``role`` is who spoke
(``patient``, ``doctor``, ``measurement``, ``moderator``), ``name`` who produced the words (the
agent, or ``case`` for a scripted role); its first entry is the patient's opening statement.

- the doctor sees its own words as ``assistant`` messages and the patient's replies and the
  results as ``user`` messages; its first ``user`` message holds the presentation and the opening
  (with an ``image_url`` content part when the case has an image);
- the patient sees the doctor's questions as ``user`` messages and its own replies as
  ``assistant``; a test the doctor requested reaches it as a short note with the result;
- the measurement reader sees earlier requests and its answers, then the current request.

Consecutive messages of one role are joined (:func:`merge`), so every chat alternates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["dialogue", "doctor_view", "measurement_view", "merge", "patient_view"]

Message = dict[str, Any]


def merge(messages: Sequence[Message]) -> list[Message]:
    """Join consecutive text messages of the same role (chat templates want alternation)."""
    out: list[Message] = []
    for m in messages:
        if out and out[-1]["role"] == m["role"] and isinstance(out[-1]["content"], str) \
                and isinstance(m["content"], str) and m["role"] != "system":
            out[-1] = {"role": m["role"], "content": f"{out[-1]['content']}\n\n{m['content']}"}
        else:
            out.append(dict(m))
    return out


def doctor_view(system: str, presentation: str, transcript: Sequence[Message], image_url: str | None,
                note: str | None = None) -> list[Message]:
    """The doctor's chat (``note``: a last ``user`` line, e.g. the final-turn note)."""
    first = f"{presentation}\n\nThe patient says: \"{transcript[0]['content']}\""
    content: Any = first
    if image_url:
        content = [{"type": "text", "text": first}, {"type": "image_url", "image_url": {"url": image_url}}]
    msgs: list[Message] = [{"role": "system", "content": system}, {"role": "user", "content": content}]
    for entry in transcript[1:]:
        if entry["role"] == "doctor":
            msgs.append({"role": "assistant", "content": entry["content"]})
        elif entry["role"] in ("patient", "measurement"):
            msgs.append({"role": "user", "content": entry["content"]})
    if note:
        msgs.append({"role": "user", "content": note})
    return merge(msgs)


def patient_view(system: str, transcript: Sequence[Message], note: str | None = None) -> list[Message]:
    """The patient's chat (``note``: the guard's request to answer again)."""
    msgs: list[Message] = [
        {"role": "system", "content": system},
        {"role": "user", "content": "(The doctor greets you and asks what brings you in today.)"},
        {"role": "assistant", "content": transcript[0]["content"]},
    ]
    for i, entry in enumerate(transcript[1:], start=1):
        nxt = transcript[i + 1]["role"] if i + 1 < len(transcript) else None
        if entry["role"] == "doctor" and nxt == "measurement":
            continue  # a test request: the patient hears its result below
        if entry["role"] == "doctor":
            msgs.append({"role": "user", "content": entry["content"]})
        elif entry["role"] == "patient":
            msgs.append({"role": "assistant", "content": entry["content"]})
        elif entry["role"] == "measurement":
            msgs.append({"role": "user", "content": f"(The doctor gets a result. {entry['content']})"})
    if note:
        msgs.append({"role": "user", "content": note})
    return merge(msgs)


def measurement_view(system: str, transcript: Sequence[Message], request: str, note: str | None = None) -> list[Message]:
    """The measurement reader's chat: earlier requests and results, then ``request``."""
    msgs: list[Message] = [{"role": "system", "content": system}]
    for i, entry in enumerate(transcript):
        if entry["role"] == "measurement" and i > 0 and transcript[i - 1]["role"] == "doctor":
            msgs.append({"role": "user", "content": transcript[i - 1]["content"]})
            msgs.append({"role": "assistant", "content": entry["content"]})
    msgs.append({"role": "user", "content": f"Requested: {request}"})
    if note:
        msgs.append({"role": "user", "content": note})
    return merge(msgs)


def dialogue(transcript: Sequence[Message]) -> str:
    """The consultation as ``Role: words`` lines (doctor, patient and results), for the examiner."""
    return "\n".join(f"{e['role'].capitalize()}: {e['content']}" for e in transcript
                     if e["role"] in ("doctor", "patient", "measurement"))
