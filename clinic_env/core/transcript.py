"""The consultation transcript, with per-line visibility and cached per-viewer text."""

from __future__ import annotations

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


class Transcript:
    """Lines tagged ``all``, ``doctor`` (shown to the doctor only) or ``examiner``."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self._view_lines: dict[str, list[str]] = {v: [] for v in VIEWS}
        self._cache: dict[str, str] = {}

    def add(self, visibility: str, line: str) -> None:
        """Append a line visible to the viewers whose visibility set holds ``visibility``."""
        self.lines.append((visibility, line))
        for viewer, visible in VIEWS.items():
            if visibility in visible:
                self._view_lines[viewer].append(line)
                self._cache.pop(viewer, None)

    def view(self, viewer: str) -> str:
        """What ``viewer`` (doctor, patient, examiner) may read, cut to the newest
        :data:`MAX_TRANSCRIPT_CHARS` characters at a line boundary."""
        text = self._cache.get(viewer)
        if text is None:
            text = "\n".join(self._view_lines[viewer])
            if len(text) > MAX_TRANSCRIPT_CHARS:
                tail = text[-(MAX_TRANSCRIPT_CHARS - 2) :]
                cut = tail.find("\n")
                text = "…\n" + (tail[cut + 1 :] if cut >= 0 else tail[1:])
            self._cache[viewer] = text
        return text

    def full(self) -> str:
        """Every line, untruncated (for rendering and records)."""
        return "\n".join(line for _, line in self.lines)
