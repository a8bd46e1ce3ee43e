"""Reading peers' files record by record: a broken record is reported (line, field) and skipped.

Files are read through the bounded loader (:mod:`clinic_env.schema.safe_read`: size limit, JSON
nesting depth checked before parsing) when it is installed; the whole file failing (missing, too
large, not UTF-8, empty) raises :class:`~clinic_env.schema.errors.DataError`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from clinic_env.importers.build import ImportReport
from clinic_env.schema.errors import DataError

__all__ = ["read_csv_rows", "read_jsonl_records", "read_source_text"]

_MAX_BYTES = 64 * 1024 * 1024


def read_source_text(path: Path) -> str:
    """The file's text (bounded); raises :class:`DataError` naming the file and the problem."""
    try:
        from clinic_env.schema.safe_read import read_text
    except ImportError:  # the bounded loader not installed: the same checks, simpler
        return _read_plain(path)
    return read_text(path)


def _read_plain(path: Path) -> str:
    if not path.is_file():
        raise DataError.single(path, "", "not a regular file")
    if path.stat().st_size > _MAX_BYTES:
        raise DataError.single(path, "", f"file larger than {_MAX_BYTES} bytes")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError.single(path, "", f"cannot read file: {exc}") from None
    if not text.strip():
        raise DataError.single(path, "", "empty file")
    return text


def _load_line(raw: str, path: Path, n: int) -> Any:
    try:
        from clinic_env.schema.safe_read import load_json
    except ImportError:
        return json.loads(raw)
    return load_json(raw, path, n)


def read_jsonl_records(path: Path, report: ImportReport) -> Iterator[tuple[int, dict[str, Any], str]]:
    """``(line number, record, raw line)`` for each JSON-object line; other lines are reported and skipped."""
    for n, raw in enumerate(read_source_text(path).splitlines(), 1):
        if not raw.strip():
            continue
        report.records += 1
        try:
            record = _load_line(raw, path, n)
        except (json.JSONDecodeError, DataError, RecursionError) as exc:
            msg = exc.problems[0].message if isinstance(exc, DataError) and exc.problems else str(exc)
            report.skip(n, "(record)", f"not valid JSON: {msg}"[:200])
            continue
        if not isinstance(record, dict):
            report.skip(n, "(record)", f"not a JSON object but {type(record).__name__}")
            continue
        yield n, record, raw


def read_csv_rows(path: Path, report: ImportReport) -> Iterator[tuple[int, dict[str, str], str]]:
    """``(row number counting the header as 1, row, raw text)`` of a CSV file with a header row."""
    text = read_source_text(path)
    csv.field_size_limit(1024 * 1024)
    reader = csv.DictReader(io.StringIO(text))
    row_no = 1
    try:
        for row in reader:
            row_no += 1
            report.records += 1
            if None in row or any(v is None for v in row.values()):
                report.skip(row_no, "(row)", "wrong number of columns")
                continue
            yield row_no, {str(k): str(v) for k, v in row.items()}, ",".join(row.values())
    except csv.Error as exc:
        report.skip(row_no + 1, "(row)", f"not valid CSV: {exc}")
