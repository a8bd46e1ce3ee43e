"""Error types for clinic-env data files.

Every problem names the file, the field path inside it and the offending value, so that a user
can fix a malformed case, persona, rubric or catalogue without reading a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["DataError", "Problem"]


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
        where = f"{self.file}: {self.field}" if self.field else self.file
        shown = "" if self.value is None else f" (got {_short(self.value)})"
        return f"{where}: {self.message}{shown}"


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
