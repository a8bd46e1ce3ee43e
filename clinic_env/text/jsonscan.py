"""Find the first JSON object or array in a model's reply, in linear time and bounded memory.

Models wrap their JSON in prose, code fences, or stop half-way through it (``max_tokens``). The
old approach tried ``json.JSONDecoder.raw_decode`` at every ``{`` and ``[``, which is quadratic
in the reply (a 4 KB reply of nested brackets took 0.75 s, blocking the event loop for every
other episode). Here one left-to-right scan over the structural characters (brackets, quotes,
backslashes; prose is skipped by a regular expression) pairs each closing bracket with its
opener and records the balanced spans, then at most :data:`MAX_DECODES` of them are decoded,
in order of their start (so the first JSON value in the reply wins, as before):

- a span nested deeper than :data:`MAX_DEPTH` is never decoded (no RecursionError, no deep work);
- a closing bracket that does not match its opener (prose such as ``[see {note]``) ends every
  open span: scanning goes on from there;
- a reply cut off inside an object is closed with exactly the quote and brackets still open.

Every step is O(1) and each decode is linear in its span, so a reply of n characters costs
O(``MAX_DECODES`` x n) at worst, whatever its content.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["MAX_DECODES", "MAX_DEPTH", "MAX_TOKENS", "extract_json"]

#: Deepest nesting decoded (real replies nest 3-4 levels; deeper spans are ignored).
MAX_DEPTH = 32
#: Most candidate spans handed to the JSON decoder per reply.
MAX_DECODES = 16

#: Most structural tokens (brackets and whole strings) scanned per reply (a doctor's action has
#: about 8, a batch of 40 rubric grades about 170).
MAX_TOKENS = 2048

_OPEN = re.compile(r"[{\[]")
# Inside a span: a whole string (escapes included; unterminated runs to the end) or a bracket.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[{}\[\]]', re.S)
_CLOSER = {"}": "{", "]": "["}
_FENCE = "```"
# What can follow an opening bracket in JSON: a cheap filter before decoding ("[see 1]" is prose).
_PLAUSIBLE = re.compile(r'(?:\{\s*["}]|\[\s*["{\[\]\-0-9tfn])')


def _fenced(text: str) -> str:
    """The inside of the first complete code fence (its ``json`` tag dropped), else ``text``."""
    start = text.find(_FENCE)
    if start < 0:
        return text
    end = text.find(_FENCE, start + 3)
    if end < 0:
        return text
    body = text[start + 3 : end]
    if body[:4].lower() == "json":
        body = body[4:]
    return body.strip()


def _decode(span: str) -> Any:
    try:
        value = json.loads(span)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, (dict, list)) else None


def extract_json(reply: str) -> Any:
    """The first JSON object or array in ``reply`` (code fences and prose around it allowed; an
    object cut off mid-way is closed), or None. Linear in ``len(reply)`` (see the module docstring)."""
    if not isinstance(reply, str):
        return None
    text = _fenced(reply.strip())
    # Each open entry: [position, bracket, deepest nesting below it]; spans of the current
    # top-level group wait in ``group`` until it closes (then they are tried in start order).
    stack: list[list[Any]] = []
    group: list[tuple[int, int]] = []
    budget, tokens, pos, n = [MAX_DECODES], 0, 0, len(text)
    in_string = False
    while pos < n and tokens < MAX_TOKENS:
        if not stack:
            m = _OPEN.search(text, pos)
            if m is None:
                break
            stack.append([m.start(), m.group(), 1])
            pos = m.end()
            tokens += 1
            continue
        m = _TOKEN.search(text, pos)
        if m is None:
            break
        tokens += 1
        pos = m.end()
        tok = m.group()
        if tok[0] == '"':
            in_string = len(tok) == 1 or tok[-1] != '"' or (len(tok) > 2 and _escaped_end(tok))
            if in_string:
                break  # an unterminated string runs to the end of the reply
            continue
        if tok in "{[":
            stack.append([m.start(), tok, 1])
            if len(stack) > MAX_DEPTH:
                return None  # nested deeper than any reply we read: refuse rather than dig
            continue
        start, opener, depth = stack.pop()
        if opener != _CLOSER[tok]:
            stack.clear()  # prose, not JSON: drop every open span and go on
            group.clear()
            continue
        group.append((start, m.end()))
        if stack:
            stack[-1][2] = max(stack[-1][2], depth + 1)
            continue
        value = _try(text, group, budget)
        group.clear()
        if value is not None:
            return value
        if budget[0] <= 0:
            return None
    if group:  # spans closed inside an object that never closes
        value = _try(text, group, budget)
        if value is not None:
            return value
    return _repair(text, stack, in_string)


def _escaped_end(tok: str) -> bool:
    """Whether the closing quote of ``tok`` is escaped (an odd run of backslashes before it)."""
    run = len(tok) - 1 - len(tok[:-1].rstrip("\\"))
    return run % 2 == 1


def _try(text: str, spans: list[tuple[int, int]], budget: list[int]) -> Any:
    """Decode ``spans`` in start order (at most ``budget[0]`` decodes; the budget is shared)."""
    for start, end in sorted(spans):
        if budget[0] <= 0:
            return None
        if not _PLAUSIBLE.match(text, start, end):
            continue
        budget[0] -= 1
        value = _decode(text[start:end])
        if value is not None:
            return value
    return None


def _repair(text: str, still_open: list[list[Any]], in_string: bool) -> Any:
    """A reply cut off by max_tokens inside its JSON: close the open string and brackets. Only an
    object that opens the unclosed part is repaired (a stray "[" in prose is not JSON)."""
    if not still_open or still_open[0][1] != "{":
        return None
    start = int(still_open[0][0])
    closers = ["}" if e[1] == "{" else "]" for e in reversed(still_open)]
    value = _decode(text[start:] + ('"' if in_string else "") + "".join(closers))
    if isinstance(value, dict):
        return value
    # A dangling key or comma ('{"action": "ask", "it'): drop the unfinished member.
    cut = text.rfind(",", start)
    if cut > start:
        tail = "".join("}" if e[1] == "{" else "]" for e in reversed(still_open) if e[0] < cut)
        value = _decode(text[start:cut] + tail)
        if isinstance(value, dict):
            return value
    return None
