"""Teaching: a student plays a case in plain English and learns from the feedback.

- :class:`PlaySession` (:mod:`clinic_env.teaching.session`): one consultation, ``say(text) -> Reply``;
  the API of ``clinic-env play`` and of the web page;
- :class:`Feedback` (:mod:`clinic_env.teaching.feedback`): what the student did and missed, with
  the scripted doctors on the same case side by side; Markdown and HTML;
- :mod:`clinic_env.teaching.terminal`: the terminal consultation of ``clinic-env play``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clinic_env.teaching.guide import Line, LineKind, SessionError
from clinic_env.teaching.session import PlaySession, Reply, SessionState

if TYPE_CHECKING:
    from clinic_env.teaching.feedback import Feedback

__all__ = ["Feedback", "Line", "LineKind", "PlaySession", "Reply", "SessionError", "SessionState"]


def __getattr__(name: str) -> Any:
    """Lazy :class:`Feedback` (it imports the rollout machinery only when used)."""
    if name == "Feedback":
        from clinic_env.teaching.feedback import Feedback

        return Feedback
    raise AttributeError(f"module 'clinic_env.teaching' has no attribute {name!r}")
