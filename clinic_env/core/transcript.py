"""The consultation transcript, with per-line visibility and cached per-viewer text.

Lines are only stored when they are added; a viewer's text is joined when someone reads it (the
hybrid and text envs' observations) and cached until a line it can see is added, so numeric envs
and ``doctor_env`` never join a transcript.
"""

from __future__ import annotations

from clinic_env.core.text import sanitise

__all__ = ["MAX_TRANSCRIPT_CHARS", "VIEWS", "Transcript"]

#: Longest transcript an observation holds; older lines are dropped first.
MAX_TRANSCRIPT_CHARS = 16384

#: The viewers' line visibilities: the doctor also reads the patient's asides to the doctor,
#: the examiner its own verdicts, the patient only the shared dialogue.
VIEWS: dict[str, tuple[str, ...]] = {
    "doctor": ("all", "doctor"),
    "patient": ("all",),
    "examiner": ("all", "examiner"),
}

# Visibility -> the viewers that read such a line.
_READERS: dict[str, tuple[str, ...]] = {}
for _viewer, _visible in VIEWS.items():
    for _visibility in _visible:
        _READERS[_visibility] = (*_READERS.get(_visibility, ()), _viewer)

_ELLIPSIS = "…\n"


def _window(lines: list[str], chars: int) -> tuple[int, int, str] | None:
    """Where the newest :data:`MAX_TRANSCRIPT_CHARS` characters of ``"\\n".join(lines)`` (``chars``
    long) start at a line boundary: ``(k, skip, text)`` with ``text = "\\n".join(lines[k:])``, the
    view being ``"…\\n" + text[skip:]``; None when everything fits. Only the lines that can
    appear are joined."""
    if chars <= MAX_TRANSCRIPT_CHARS:
        return None
    keep = MAX_TRANSCRIPT_CHARS - len(_ELLIPSIS)
    k, size = len(lines), -1
    while size < keep:
        k -= 1
        size += len(lines[k]) + 1
    text = "\n".join(lines[k:])
    start = len(text) - keep
    cut = text.find("\n", start)
    # The text after the first line break in the kept tail (a single over-long line: all but its
    # first kept character, as the whole-text cut did).
    return k, (cut + 1 if cut >= 0 else start + 1), text


class Transcript:
    """Lines tagged ``all``, ``doctor`` (shown to the doctor only) or ``examiner``."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self._view_lines: dict[str, list[str]] = {v: [] for v in VIEWS}
        # add() only appends (it runs for every line, read or not); the readers catch up lazily.
        self._targets = {vis: tuple(self._view_lines[v] for v in readers) for vis, readers in _READERS.items()}
        self._counted: dict[str, tuple[int, int]] = dict.fromkeys(VIEWS, (0, -1))
        self._cache: dict[str, tuple[int, str]] = {}
        self._clean_lines: dict[str, list[str]] = {v: [] for v in VIEWS}
        self._clean_cache: dict[str, tuple[int, str]] = {}

    def add(self, visibility: str, line: str) -> None:
        """Append a line visible to the viewers whose visibility set holds ``visibility``."""
        self.lines.append((visibility, line))
        for lines in self._targets.get(visibility, ()):
            lines.append(line)

    def _chars(self, viewer: str) -> int:
        """Length of ``"\\n".join`` of the viewer's lines (counted once per line)."""
        lines = self._view_lines[viewer]
        n, chars = self._counted[viewer]
        if n < len(lines):
            chars += sum(map(len, lines[n:])) + len(lines) - n
            self._counted[viewer] = (len(lines), chars)
        return chars

    def view(self, viewer: str) -> str:
        """What ``viewer`` (doctor, patient, examiner) may read, cut to the newest
        :data:`MAX_TRANSCRIPT_CHARS` characters at a line boundary."""
        lines = self._view_lines[viewer]
        hit = self._cache.get(viewer)
        if hit is not None and hit[0] == len(lines):
            return hit[1]
        window = _window(lines, self._chars(viewer))
        text = "\n".join(lines) if window is None else _ELLIPSIS + window[2][window[1]:]
        self._cache[viewer] = (len(lines), text)
        return text

    def clean_view(self, viewer: str) -> str:
        """``sanitise(view(viewer))``, with each line sanitised once (the text envs' messages)."""
        lines, clean = self._view_lines[viewer], self._clean_lines[viewer]
        hit = self._clean_cache.get(viewer)
        if hit is not None and hit[0] == len(lines):
            return hit[1]
        clean.extend(sanitise(line) for line in lines[len(clean):])
        # sanitise maps character by character, so the raw text's cut points hold for the clean one.
        window = _window(lines, self._chars(viewer))
        text = "\n".join(clean) if window is None else _ELLIPSIS + "\n".join(clean[window[0]:])[window[1]:]
        self._clean_cache[viewer] = (len(lines), text)
        return text

    def full(self) -> str:
        """Every line, untruncated (for rendering and records)."""
        return "\n".join(line for _, line in self.lines)
