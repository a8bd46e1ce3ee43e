"""clinic_env.load_cases on the hostile inputs of test_hostile: a DataError naming the file, fast,
never another exception (RecursionError, MemoryError, AttributeError)."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import pytest

from clinic_env.schema import DataError, load_cases

# The hostile inputs are test_hostile's own (one definition of each file).
_spec = importlib.util.spec_from_file_location("_hostile_inputs", Path(__file__).with_name("test_hostile.py"))
assert _spec and _spec.loader
_module = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("_hostile_inputs", _module)
_spec.loader.exec_module(_module)
_hostile = _module._hostile

NAMES = ("bomb", "deep_json", "deep_jsonl", "deep_yaml", "dup_keys", "empty_jsonl", "empty_yaml", "upper_missing",
         "not_utf8", "long_int", "wrong_shape", "huge", "fifo", "folder_as_file")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _hostile(tmp_path_factory.mktemp("api") / "in")


@pytest.mark.parametrize("name", NAMES)
def test_load_cases_refuses_with_a_data_error_naming_the_file(inputs: dict[str, Path], name: str) -> None:
    path = inputs[name]
    start = time.monotonic()
    with pytest.raises(DataError) as info:
        load_cases(path)
    assert time.monotonic() - start < 5.0
    first = str(info.value).splitlines()[0]
    assert path.name in first and len(first) <= 1000, first
