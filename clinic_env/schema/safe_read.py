"""Bounded reading of data files (YAML, JSON, JSONL): a hostile file is refused, never expanded.

Every data file the package reads from a user goes through :func:`read_documents` (or
:func:`read_text` for formats parsed elsewhere, such as CSV). The limits below bound the time and
memory one file can cost; each refusal is a :class:`~clinic_env.schema.errors.DataError` naming the
file, the place (line) and the limit.

========================  ==========  ==================================================================
Limit                     Value       Why
========================  ==========  ==================================================================
``MAX_FILE_BYTES``        16 MiB      the largest bundled file is under 1 MiB; a bigger one is refused
                                      by ``os.stat`` before a byte is read
``MAX_DEPTH``             64          nesting of mappings and lists (YAML and JSON); the bundled data
                                      nests under 10; checked before parsing for JSON, so a 100,000-deep
                                      file cannot reach the recursion limit
``MAX_ALIASES``           1,000       YAML alias (``*name``) uses per file
``MAX_NODES``             1,000,000   values per JSON document (per line in JSONL)
``MAX_YAML_NODES``        200,000     values per YAML file, counting every alias as the full copy it
                                      stands for: an alias bomb is refused before anything walks the
                                      expanded tree; a YAML file over 256 KiB is counted from the
                                      parser's events first, so no node graph past the limit is built
                                      (YAML nodes cost ~400 bytes each)
========================  ==========  ==================================================================

Other refusals: a path that is not a regular file (folder, FIFO, device, socket: decided with
``os.stat``, so a FIFO is never opened for reading), an unreadable or non-UTF-8 file, an empty file
or one holding only whitespace or comments, a JSONL file with no records, and a YAML mapping that
defines the same key twice (the key and both lines are named). Suffixes are matched
case-insensitively (``.YAML`` is YAML).
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from clinic_env.schema.errors import DataError

__all__ = [
    "DATA_SUFFIXES",
    "MAX_ALIASES",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "MAX_YAML_NODES",
    "data_format",
    "load_json",
    "load_jsonl",
    "load_yaml",
    "read_documents",
    "read_text",
]

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 64
MAX_ALIASES = 1_000
MAX_NODES = 1_000_000
MAX_YAML_NODES = 200_000
_SCAN_YAML_ABOVE = 256 * 1024
DATA_SUFFIXES = (".yaml", ".yml", ".json", ".jsonl")
_FORMATS = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".jsonl": "jsonl"}


def data_format(path: Path) -> str | None:
    """``yaml``, ``json`` or ``jsonl`` from the file's suffix (any case), or ``None``."""
    return _FORMATS.get(path.suffix.lower())


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def _check_stat(path: Path, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise DataError.single(path, "", f"not a regular file ({_kind(st.st_mode)}); give a data file")
    if st.st_size > MAX_FILE_BYTES:
        raise DataError.single(path, "", f"file too large: {st.st_size:,} bytes, the limit is "
                                         f"{MAX_FILE_BYTES:,} bytes ({MAX_FILE_BYTES // 2**20} MiB)")


def read_text(path: Path) -> str:
    """The UTF-8 text of a regular file of at most ``MAX_FILE_BYTES``; an empty file is an error.

    Raises:
        DataError: Missing, not a regular file, too large, unreadable, not UTF-8 or empty.
    """
    try:
        _check_stat(path, os.stat(path))
        # O_NONBLOCK: a file swapped for a FIFO after the stat still cannot block the open.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise DataError.single(path, "", "no such file") from None
    except OSError as exc:
        raise DataError.single(path, "", f"cannot read file: {exc.strerror or exc}") from None
    try:
        _check_stat(path, os.fstat(fd))
        with os.fdopen(fd, "rb", closefd=False) as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise DataError.single(path, "", f"cannot read file: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(raw) > MAX_FILE_BYTES:
        raise DataError.single(path, "", f"file too large: over {MAX_FILE_BYTES:,} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError.single(path, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not text.strip():
        raise DataError.single(path, "", "empty file")
    return text.removeprefix("\ufeff")


# ------------------------------------------------------------------------------------------- YAML

class _LimitError(yaml.YAMLError):
    """A YAML file went past one of the module's limits."""


def _check_graph(root: Node) -> None:
    """Depth, alias uses and expanded size of a composed YAML node graph, without expanding it.

    An alias is the same node object reached again, so the expanded size of every node is computed
    once (post-order, iteratively) and an alias adds it: a billion-laughs file costs a few dozen
    steps here and is refused before the constructor or any later code walks the expanded tree.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    aliases = 0
    stack: list[tuple[Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, children_done = stack.pop()
        line = node.start_mark.line + 1 if node.start_mark else 0
        key = id(node)
        if children_done:
            value = node.value
            size = 1
            if isinstance(value, list):
                for child in _children(value):
                    size += sizes[id(child)]
            sizes[key] = size
            open_nodes.discard(key)
            if size > MAX_YAML_NODES:
                raise _LimitError(f"line {line}: more than {MAX_YAML_NODES:,} values once aliases are expanded "
                                  "(an alias bomb?)")
            continue
        if key in sizes or key in open_nodes:
            aliases += 1
            if aliases > MAX_ALIASES:
                raise _LimitError(f"line {line}: more than {MAX_ALIASES:,} alias uses")
            if key in open_nodes:
                raise _LimitError(f"line {line}: an alias refers to a node that contains it (recursive alias)")
            continue
        if depth > MAX_DEPTH:
            raise _LimitError(f"line {line}: nested deeper than {MAX_DEPTH} levels")
        if isinstance(node.value, list):
            open_nodes.add(key)
            stack.append((node, depth, True))
            stack.extend((child, depth + 1, False) for child in _children(node.value))
        else:
            sizes[key] = 1


def _children(value: list[Any]) -> list[Node]:
    """The child nodes of a sequence (nodes) or mapping (key/value node pairs)."""
    out: list[Node] = []
    for item in value:
        if isinstance(item, tuple):
            out.extend(item)
        else:
            out.append(item)
    return out


class _StrictConstructor(SafeConstructor):
    """The safe constructor, except that a key defined twice in one mapping is an error."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=deep)
                line = key_node.start_mark.line + 1
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: the base class reports it
                    continue
                if first is not None:
                    raise ConstructorError(None, None, f"duplicate key {_clip(repr(key))} (first defined at line {first})",
                                           key_node.start_mark)
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


_Parser: Any
try:
    from yaml.cyaml import CParser as _Parser  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - PyYAML without libyaml: the pure-Python parser and composer
    class _PyParser(Reader, Scanner, Parser, Composer):
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            Composer.__init__(self)

    _Parser = _PyParser


class _BoundedLoader(_Parser, _StrictConstructor, Resolver):  # type: ignore[misc]
    """libyaml's parser and composer, a bounds check of the node graph, then the strict constructor."""

    def __init__(self, stream: str) -> None:
        _Parser.__init__(self, stream)
        _StrictConstructor.__init__(self)
        Resolver.__init__(self)

    def get_single_node(self) -> Node | None:
        node: Node | None = _Parser.get_single_node(self)
        if node is not None:
            _check_graph(node)
        return node


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _count_events(text: str) -> None:
    """Count a large file's values from the parser's events (nothing kept) before composing it."""
    count = 0
    for event in yaml.parse(text, Loader=_EventLoader):
        if isinstance(event, _NODE_EVENTS):
            count += 1
            if count > MAX_YAML_NODES:
                line = event.start_mark.line + 1 if event.start_mark else 0
                raise _LimitError(f"line {line}: more than {MAX_YAML_NODES:,} values")


_EventLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NODE_EVENTS = (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent, yaml.AliasEvent)


def load_yaml(text: str, file: str | Path = "<yaml>") -> Any:
    """Parse one YAML document within the limits (aliases, expanded size, depth, duplicate keys)."""
    loader = _BoundedLoader(text)
    try:
        if len(text) > _SCAN_YAML_ABOVE:
            _count_events(text)
        return loader.get_single_data()
    except _LimitError as exc:
        raise DataError.single(file, "", f"refused: {exc}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise DataError.single(file, "", f"not valid YAML: {where}{_clip(problem)}") from None
    except (yaml.YAMLError, ValueError, OverflowError, RecursionError) as exc:
        # ValueError: e.g. an integer of more than 4,300 digits or an impossible date.
        raise DataError.single(file, "", f"not valid YAML: {_clip(str(exc))}") from None
    finally:
        loader.dispose()


# ------------------------------------------------------------------------------------------- JSON

# A complete string, a bracket or comma, or a lone quote (an unterminated string: stop there).
_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},]|"', re.DOTALL)


def _check_json_shape(text: str, file: str | Path, line: int | None = None) -> None:
    """Depth and value count from the brackets outside strings, before ``json.loads`` sees them."""
    opened = text.count("[") + text.count("{")
    if opened <= MAX_DEPTH and opened + text.count(",") < MAX_NODES:
        return
    depth = values = 0
    for match in _JSON_TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            values += 1
            if depth > MAX_DEPTH:
                at = line if line is not None else text.count("\n", 0, match.start()) + 1
                raise DataError.single(file, "", f"refused: line {at}: nested deeper than {MAX_DEPTH} levels")
        elif token in "]}":
            depth -= 1
        elif token == ",":
            values += 1
        elif token == '"' and len(token) == 1:
            return  # unterminated string: json.loads reports it
        if values > MAX_NODES:
            raise DataError.single(file, "", f"refused: more than {MAX_NODES:,} values")


def load_json(text: str, file: str | Path = "<json>", line: int | None = None) -> Any:
    """Parse one JSON value within the limits (depth checked before parsing)."""
    _check_json_shape(text, file, line)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        at = f"line {line}, column {exc.colno}" if line is not None else f"line {exc.lineno}, column {exc.colno}"
        raise DataError.single(file, "", f"not valid JSON: {at}: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:
        raise DataError.single(file, "", f"not valid JSON{f' (line {line})' if line else ''}: {_clip(str(exc))}") from None


def load_jsonl(text: str, file: str | Path = "<jsonl>") -> list[Any]:
    """Parse JSON Lines (blank lines skipped); a file with no record is an error."""
    docs = [load_json(raw, file, n) for n, raw in enumerate(text.splitlines(), 1) if raw.strip()]
    if not docs:
        raise DataError.single(file, "", "no records (empty JSONL)")
    return docs


def read_documents(path: Path, fmt: str | None = None) -> list[Any]:
    """Parse a YAML, JSON or JSONL file into a list of documents (one per JSONL line), bounded.

    Args:
        path: The file.
        fmt: ``yaml``, ``json`` or ``jsonl``; default from the suffix (any case).

    Raises:
        DataError: Any of the refusals in the module docstring, or a syntax error (line named).
    """
    path = Path(path)
    kind = fmt or data_format(path)
    if kind is None:
        raise DataError.single(path, "", f"unknown data file type {_clip(path.suffix)!r} (expected one of "
                                         f"{', '.join(DATA_SUFFIXES)})")
    text = read_text(path)
    if kind == "jsonl":
        return load_jsonl(text, path)
    if kind == "json":
        return [load_json(text, path)]
    doc = load_yaml(text, path)
    if doc is None:
        raise DataError.single(path, "", "empty file (no YAML document)")
    return [doc]
