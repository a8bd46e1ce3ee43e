"""Text templates with seeded values: ``"CRP {40-180} mg/L"``, ``"T {temp} °C"``, ``"{left|right} knee"``.

A placeholder in braces is one of

- ``{lo-hi}``: a number drawn uniformly from [lo, hi], as an integer unless a format follows
  (``{7.10-7.25:.2f}``);
- ``{a|b|c}``: one of the options;
- ``{name}``: a case variable (``side``, ``days``, ``temp``, ``he``...); ``{Name}`` capitalises it.

Everything is drawn from the generator passed in, so a seed fixes the text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

__all__ = ["TemplateError", "draw_value", "render"]

_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
_RANGE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*-\s*(-?\d+(?:\.\d+)?)\s*(?::\s*(\.\d+f))?\s*$")


class TemplateError(ValueError):
    """A placeholder that cannot be filled (names the template and the placeholder)."""


def draw_value(spec: str, rng: np.random.Generator) -> str | None:
    """Draw a value for a range or choice spec; None when ``spec`` is neither."""
    m = _RANGE.match(spec)
    if m:
        lo, hi, fmt = float(m.group(1)), float(m.group(2)), m.group(3)
        if fmt:
            return format(lo + (hi - lo) * rng.random(), fmt)
        return str(int(rng.integers(int(lo), int(hi) + 1)))
    if "|" in spec:
        options = [o.strip() for o in spec.split("|")]
        return options[int(rng.integers(len(options)))]
    return None


def render(template: str, rng: np.random.Generator, variables: Mapping[str, str]) -> str:
    """Fill every placeholder of ``template``.

    Raises:
        TemplateError: For a name that is neither a range, a choice nor a known variable.
    """

    def fill(m: re.Match[str]) -> str:
        spec = m.group(1)
        value = draw_value(spec, rng)
        if value is not None:
            return value
        name = spec.strip()
        if name in variables:
            return variables[name]
        lower = name[:1].lower() + name[1:]
        if lower in variables:
            value = variables[lower]
            return value[:1].upper() + value[1:]
        raise TemplateError(f"template {template!r}: unknown placeholder {{{spec}}}")

    return _PLACEHOLDER.sub(fill, template)
