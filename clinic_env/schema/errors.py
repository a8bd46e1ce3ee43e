"""Error types for clinic-env data files.

Every problem names the file, the field path inside it and the offending value, so that a user
can fix a malformed case, persona, rubric or catalogue without reading a traceback.
"""

from __future__ import annotations

import reprlib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DataError", "Problem"]


# A bounded repr: a huge or deeply nested value (an expanded alias bomb) is never formatted whole.
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, 80, 80
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 6
MAX_LINE = 800  # characters of one printed problem (file 200, field 120, message 300, value 60)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _short(value: object, limit: int = 60) -> str:
    try:
        text = _REPR.repr(value)
    except (RecursionError, MemoryError, ValueError):
        text = f"<{type(value).__name__}>"
    return _clip(text, limit)


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a data file.

    Attributes:
        file: The file (or a label such as ``<memory>``) the problem was found in.
        field: Dotted path of the field, e.g. ``history.hx.onset.criticality``.
        message: What is wrong.
        value: The offending value (shown shortened), or ``None`` when no value applies.
    """

    file: str
    field: str
    message: str
    value: object = None

    def __str__(self) -> str:
        where = f"{_clip(self.file, 200)}: {_clip(self.field, 120)}" if self.field else _clip(self.file, 200)
        shown = "" if self.value is None else f" (got {_short(self.value)})"
        line = f"{where}: {_clip(self.message, 300)}{shown}"
        return _clip(line, MAX_LINE).replace("\n", " ")


class DataError(ValueError):
    """A data file (case, persona, rubric, catalogue) failed to load or validate.

    Attributes:
        problems: Every problem found, each naming file, field and value.
    """

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        head = "; ".join(str(p) for p in self.problems[:5])
        more = f" (and {len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
        super().__init__(head + more)

    @classmethod
    def single(cls, file: str | Path, field: str, message: str, value: object = None) -> DataError:
        """Build an error holding one problem."""
        return cls([Problem(str(file), field, message, value)])
