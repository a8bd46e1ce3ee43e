"""Doctor specs: what a ``--doctor`` names, and how to build the policy it names.

A spec is, optionally prefixed by ``LABEL=`` (the name recorded in every episode record):

==========================  ====================================================================
``random``, ``info-gain``   a built-in policy (:data:`clinic_env.policies.BUILTIN_POLICIES`)
``my-doctor``               an installed plugin of the ``clinic_env.policies`` entry-point group
``package.module:Name``     an importable module's attribute
``path/to/file.py:Name``    a Python file's attribute (the file is imported as a fresh module)
==========================  ====================================================================

The attribute is a policy class taking ``(info, seed)`` or ``(info)`` (``info`` is the env's
:class:`~clinic_env.envs.setup.EnvInfo`), or any factory with that signature returning an object
with ``act(observation, agent) -> int``. A policy without ``reset(seed)`` is built afresh for every
episode, so an episode never depends on the ones before it.

:func:`parse_doctor_spec` classifies a spec without running any of its code (the tournament's
parent process never imports a submission it isolates); :func:`load_doctor_spec` imports it.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Literal

from clinic_env.competition.errors import DoctorSpecError
from clinic_env.envs.setup import EnvInfo
from clinic_env.policies import BUILTIN_POLICIES, Policy, available_policies, known_policy, make_policy

__all__ = ["DoctorSpec", "PolicyFactory", "load_doctor_spec", "parse_doctor_spec"]

#: Builds a doctor for an env: ``factory(info, seed)``.
PolicyFactory = Callable[[EnvInfo, "int | None"], Policy]
SpecKind = Literal["builtin", "entry_point", "module", "file"]

_LABEL = re.compile(r"^([A-Za-z0-9_.\-]+)=(.+)$")
_FORMS = "a built-in name, an installed plugin, module:attr or path/to/file.py:Name"


@dataclass(frozen=True)
class DoctorSpec:
    """A parsed ``--doctor`` spec.

    Attributes:
        name: The doctor's name in records and leaderboards (the label, else the spec as given).
        target: The spec without its label.
        kind: ``builtin``, ``entry_point``, ``module`` or ``file``.
    """

    name: str
    target: str
    kind: SpecKind

    @property
    def text(self) -> str:
        """The spec as it would be given on the command line (``LABEL=`` only when it differs)."""
        return self.target if self.name == self.target else f"{self.name}={self.target}"

    @property
    def builtin(self) -> bool:
        """Whether the spec names a policy shipped with clinic_env (trusted: played in-process by default)."""
        return self.kind == "builtin"


def parse_doctor_spec(text: str) -> DoctorSpec:
    """Classify a doctor spec without importing or running any of its code.

    Args:
        text: ``[LABEL=]NAME``, ``[LABEL=]module:attr`` or ``[LABEL=]path/to/file.py:Name``.

    Returns:
        The spec; a file spec's path must exist and a module spec's top-level package must be importable.

    Raises:
        DoctorSpecError: The spec names nothing loadable.
    """
    label, target = None, text.strip()
    match = _LABEL.match(target)
    if match and ":" not in match.group(1):
        label, target = match.group(1), match.group(2)
    name = label or target
    if not target:
        raise DoctorSpecError(f"empty doctor spec {text!r}; give {_FORMS}")
    if target.startswith(("llm:", "vllm:")):
        raise DoctorSpecError(f"doctor {text!r}: llm:MODEL doctors play in text mode; use `clinic-env run` for them")
    if ":" in target:
        where, attr = target.rsplit(":", 1)
        if not where or not all(part.isidentifier() for part in attr.split(".")):
            raise DoctorSpecError(f"doctor {text!r}: {attr!r} is not an attribute name; give {_FORMS}")
        if where.endswith(".py") or "/" in where or "\\" in where:
            if not Path(where).is_file():
                raise DoctorSpecError(f"doctor {text!r}: no such file {where!r}")
            return DoctorSpec(name, target, "file")
        if not all(part.isidentifier() for part in where.split(".")):
            raise DoctorSpecError(f"doctor {text!r}: {where!r} is neither a module name nor a .py file")
        if importlib.util.find_spec(where.split(".")[0]) is None:
            raise DoctorSpecError(f"doctor {text!r}: no module named {where.split('.')[0]!r}")
        return DoctorSpec(name, target, "module")
    if known_policy(target):  # a built-in (or its alias) wins over a plugin of the same name, as in make_policy
        plugins = {ep.name for ep in entry_points(group="clinic_env.policies")}
        kind: SpecKind = "entry_point" if target in plugins and target not in BUILTIN_POLICIES else "builtin"
        return DoctorSpec(name, target, kind)
    raise DoctorSpecError(f"unknown doctor {text!r}; give {_FORMS} (available names: {', '.join(available_policies())})")


def load_doctor_spec(spec: str | DoctorSpec) -> PolicyFactory:
    """Import a doctor spec's code and return a factory ``(info, seed) -> Policy``.

    Raises:
        DoctorSpecError: Unknown spec, a module or file that fails to import (the exception is
            named), a missing attribute, or an attribute that does not build a policy.
    """
    parsed = spec if isinstance(spec, DoctorSpec) else parse_doctor_spec(spec)
    if parsed.kind in ("builtin", "entry_point"):
        target = parsed.target

        def by_name(info: EnvInfo, seed: int | None) -> Policy:
            return make_policy(target, info, seed=seed)

        return by_name
    where, attr = parsed.target.rsplit(":", 1)
    module = _import_file(parsed, Path(where)) if parsed.kind == "file" else _import_module(parsed, where)
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            public = sorted(n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n)))
            raise DoctorSpecError(f"doctor {parsed.name!r}: {where} has no attribute {attr!r} "
                                  f"(callables there: {', '.join(public) or 'none'})")
        obj = getattr(obj, part)
    if not callable(obj):
        raise DoctorSpecError(f"doctor {parsed.name!r}: {attr!r} is a {type(obj).__name__}, not a class or factory")
    return _factory(parsed.name, obj)


def _import_module(spec: DoctorSpec, where: str) -> Any:
    try:
        return importlib.import_module(where)
    except Exception as exc:  # the submission's own import error, named for its author
        raise DoctorSpecError(f"doctor {spec.name!r}: importing {where} failed: {type(exc).__name__}: {exc}") from exc


def _import_file(spec: DoctorSpec, path: Path) -> Any:
    resolved = path.resolve()
    # A distinct module name per file, so two submissions called policy.py do not shadow each other.
    stem, digest = re.sub(r"\W", "_", resolved.stem), hashlib.sha1(str(resolved).encode()).hexdigest()[:8]
    name = f"_clinic_doctor_{stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    module_spec = importlib.util.spec_from_file_location(name, resolved)
    if module_spec is None or module_spec.loader is None:
        raise DoctorSpecError(f"doctor {spec.name!r}: cannot import {path} as Python")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up while it executes
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise DoctorSpecError(f"doctor {spec.name!r}: importing {path} failed: {type(exc).__name__}: {exc}") from exc
    return module


def _call(name: str, obj: Callable[..., Any], info: EnvInfo, seed: int | None) -> Any:
    """``obj(info, seed=seed)``, ``obj(info, seed)`` or ``obj(info)``: the first its signature accepts."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):  # some C callables have no signature: the documented minimum
        return obj(info)
    for args, kwargs in (((info,), {"seed": seed}), ((info, seed), {}), ((info,), {})):
        try:
            sig.bind(*args, **kwargs)
        except TypeError:
            continue
        return obj(*args, **kwargs)
    raise DoctorSpecError(f"doctor {name!r}: {getattr(obj, '__name__', obj)!r}{sig} takes neither (info, seed) nor (info)")


class _FreshEachEpisode:
    """A policy without ``reset``: rebuilt with the episode's seed at every reset."""

    def __init__(self, make: Callable[[int | None], Any], first: Any) -> None:
        self._make, self._policy = make, first

    def reset(self, seed: int | None = None) -> None:
        self._policy = self._make(seed)

    def act(self, observation: dict[str, Any], agent: str) -> int:
        action: int = self._policy.act(observation, agent)
        return action


def _factory(name: str, obj: Callable[..., Any]) -> PolicyFactory:
    def build(info: EnvInfo, seed: int | None) -> Policy:
        policy = _call(name, obj, info, seed)
        if not callable(getattr(policy, "act", None)):
            raise DoctorSpecError(f"doctor {name!r}: built a {type(policy).__name__}, which has no act(observation, agent)")
        if callable(getattr(policy, "reset", None)):
            built: Policy = policy
            return built
        return _FreshEachEpisode(lambda s: _call(name, obj, info, s), policy)

    return build
