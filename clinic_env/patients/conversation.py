"""Conversation-level guarding and the regenerate-once-then-neutral loop.

A name of the diagnosis can be spread over a whole consultation: a letter a turn, half a word
now and half later, the first letters of successive replies. :class:`ConversationGuard` keeps the
patient's replies as the doctor saw them and checks each new reply *after* them
(``LeakGuard.check(text, asked, history=...)``): the reply that would complete a name is blocked.

:func:`guarded_reply` is the loop every LLM-speaking role uses (the text env's patient, open
mode's patient and measurement agent): generate a reply; if the guard blocks anything, ask once
more with :data:`REGENERATE_NOTE` (which says nothing about what was blocked or why); if the
second reply is blocked too, the guard's neutral answer is used. Every block is returned as an
event ``{"attempt", "reasons"}`` for the episode record.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from clinic_env.patients.leak_guard import FALLBACK_DIAGNOSIS, FALLBACK_FACT, GuardResult, LeakGuard

__all__ = ["NEUTRAL_ANSWER", "REGENERATE_NOTE", "ConversationGuard", "guarded_reply"]

#: What the agent is told when its reply was blocked (never what was blocked, nor why).
REGENERATE_NOTE = "your last reply was not used; answer only what the doctor asked, in your own words"
#: The neutral answer used when the second reply is blocked too.
NEUTRAL_ANSWER = FALLBACK_FACT


class ConversationGuard:
    """A :class:`LeakGuard` with memory: the replies shown so far in one consultation.

    Args:
        guard: The case's guard.
        history: Replies already shown (for example the opening statement is *not* needed: the
            guard allows it anyway).
    """

    def __init__(self, guard: LeakGuard, history: Iterable[str] = ()) -> None:
        self.guard = guard
        self.history: list[str] = list(history)

    def check(self, text: str, asked: Iterable[str] = (), commit: bool = True) -> GuardResult:
        """Check ``text`` after the replies so far; with ``commit``, remember what is shown."""
        result = self.guard.check(text, asked, history=self.history)
        if commit:
            self.remember(result.text)
        return result

    def remember(self, shown: str) -> None:
        """Add a reply the doctor saw (neutral fallbacks carry nothing and are skipped)."""
        if shown and shown not in (FALLBACK_DIAGNOSIS, FALLBACK_FACT):
            self.history.append(shown)


Generate = Callable[[str | None], Awaitable[str] | str]


async def guarded_reply(guard: LeakGuard | ConversationGuard, generate: Generate, asked: Iterable[str],
                        history: Sequence[str] = ()) -> tuple[str, list[dict[str, Any]]]:
    """A reply that passed the guard, regenerated once and then replaced by a neutral answer.

    Args:
        guard: The case's guard (a :class:`ConversationGuard` keeps its own history and learns
            the shown reply).
        generate: Called with ``None`` for the first reply and with :data:`REGENERATE_NOTE` for
            the second; returns the text (a coroutine function or a plain function).
        asked: Ids of the history items asked so far.
        history: Earlier shown replies (used with a plain :class:`LeakGuard`).

    Returns:
        ``(text, events)``: the text to show and one event per blocked attempt
        (``{"attempt": 1|2, "reasons": [...], "outcome": "regenerate"|"neutral"}``).
    """
    asked = list(asked)
    events: list[dict[str, Any]] = []
    note: str | None = None
    for attempt in (1, 2):
        out = generate(note)
        text = await out if inspect.isawaitable(out) else out
        if isinstance(guard, ConversationGuard):
            result = guard.check(text or "", asked, commit=False)
        else:
            result = guard.check(text or "", asked, history=history)
        if not result.blocked:
            if isinstance(guard, ConversationGuard):
                guard.remember(result.text)
            return result.text, events
        events.append({"attempt": attempt, "reasons": list(result.blocked),
                       "outcome": "regenerate" if attempt == 1 else "neutral"})
        note = REGENERATE_NOTE
    return NEUTRAL_ANSWER, events
