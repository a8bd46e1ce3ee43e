"""The consultation transcript, with per-line visibility and cached per-viewer text."""

from __future__ import annotations

__all__ = ["MAX_TRANSCRIPT_CHARS", "Transcript"]

#: Longest transcript an observation holds; older lines are dropped first.
MAX_TRANSCRIPT_CHARS = 16384


class Transcript:
    """Lines tagged ``all``, ``doctor`` (shown to the doctor only) or ``examiner``."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self._cache: dict[tuple[str, ...], str] = {}

    def add(self, visibility: str, line: str) -> None:
        """Append a line visible to ``visibility`` viewers."""
        self.lines.append((visibility, line))
        self._cache.clear()

    def view(self, visible: tuple[str, ...]) -> str:
        """The text of the lines whose visibility is in ``visible``, cut to the newest
        :data:`MAX_TRANSCRIPT_CHARS` characters at a line boundary."""
        text = self._cache.get(visible)
        if text is None:
            text = "\n".join(line for vis, line in self.lines if vis in visible)
            if len(text) > MAX_TRANSCRIPT_CHARS:
                tail = text[-(MAX_TRANSCRIPT_CHARS - 2) :]
                cut = tail.find("\n")
                text = "…\n" + (tail[cut + 1 :] if cut >= 0 else tail[1:])
            self._cache[visible] = text
        return text

    def full(self) -> str:
        """Every line, untruncated (for rendering and records)."""
        return "\n".join(line for _, line in self.lines)
