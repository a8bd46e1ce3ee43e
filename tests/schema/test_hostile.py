"""Hostile data files: every command that takes a path exits 2 within 5 s and 500 MB, one line per
problem naming the file, never a traceback (issue 11, item 6)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from clinic_env.schema import DataError
from clinic_env.schema.safe_read import MAX_FILE_BYTES, load_json, load_yaml, read_documents

LIMIT_BYTES = 500 * 2**20
TIMEOUT_S = 5.0


def _bomb() -> str:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        prev, name = chr(96 + i), chr(97 + i)
        lines.append(f"{name}: &{name} [{', '.join(['*' + prev] * 9)}]")
    return "\n".join(lines) + "\n"


def _hostile(folder: Path) -> dict[str, Path]:
    """Each hostile input by name (files, a FIFO, a missing path)."""
    folder.mkdir()
    files = {
        "bomb": ("bomb.yaml", _bomb()),
        "deep_json": ("deep.json", "[" * 100_000 + "]" * 100_000),
        "deep_jsonl": ("deep.jsonl", '{"a":' * 100_000 + "1" + "}" * 100_000 + "\n"),
        "deep_yaml": ("deep.yaml", "- " * 100_000 + "x\n"),
        "dup_keys": ("dup.yaml", "id: a\ntitle: x\nid: b\n"),
        "empty_jsonl": ("empty.jsonl", "\n\n"),
        "empty_yaml": ("empty.yaml", "# nothing\n"),
        "upper_missing": ("CASE.YAML", "id: c-1\nspecialty: cardiology\nhistory: {}\ngold_diagnosis: I21.9\n"),
        "not_utf8": ("latin1.yaml", "name: caf\xe9\n"),
        "long_int": ("long.json", '{"id": ' + "9" * 100_000 + "}"),
        "wrong_shape": ("shape.json", '{"cases": [1, "two", null, [3]]}'),
    }
    out: dict[str, Path] = {}
    for name, (fname, text) in files.items():
        path = folder / fname
        path.write_bytes(text.encode("latin-1" if name == "not_utf8" else "utf-8"))
        out[name] = path
    huge = folder / "huge.yaml"
    with huge.open("wb") as fh:  # sparse: no disk used
        fh.truncate(MAX_FILE_BYTES + 1)
    out["huge"] = huge
    fifo = folder / "fifo.yaml"
    os.mkfifo(fifo)
    out["fifo"] = fifo
    out["folder_as_file"] = folder / "sub.json"
    out["folder_as_file"].mkdir()
    out["missing"] = folder / "missing.yaml"
    return out


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT_BYTES, LIMIT_BYTES))


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "clinic_env.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=TIMEOUT_S, preexec_fn=_limit, stdin=subprocess.DEVNULL, check=False)


COMMANDS: dict[str, Callable[[Path, Path], list[str]]] = {
    "validate": lambda f, t: ["validate", str(f)],
    "cases list": lambda f, t: ["cases", "list", "--cases", str(f)],
    "run": lambda f, t: ["run", "--cases", str(f), "--doctor", "random", "--out", str(t / "run")],
    "tournament": lambda f, t: ["tournament", "--cases", str(f), "--doctor", "random", "--out", str(t / "tour")],
    "play": lambda f, t: ["play", "some-case", "--cases", str(f), "--save", str(t / "play")],
    "cases export": lambda f, t: ["cases", "export", "some-case", "--cases", str(f)],
    "cases import": lambda f, t: ["cases", "import", str(f), str(t / "imported.yaml")],
    "rubrics import": lambda f, t: ["rubrics", "import", str(f), str(t / "bank.yaml")],
}
# Every hostile input through validate; the ones that hurt the process (size, depth, aliases,
# special files) through every other command too.
PAIRS = [("validate", name) for name in (
    "bomb", "deep_json", "deep_jsonl", "deep_yaml", "dup_keys", "empty_jsonl", "empty_yaml", "upper_missing",
    "not_utf8", "long_int", "wrong_shape", "huge", "fifo", "folder_as_file", "missing")]
PAIRS += [(cmd, name) for cmd in COMMANDS if cmd != "validate" for name in ("bomb", "deep_json", "fifo", "huge")]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], subprocess.CompletedProcess[str]]:
    root = tmp_path_factory.mktemp("hostile")
    inputs = _hostile(root / "in")

    def one(pair: tuple[str, str]) -> subprocess.CompletedProcess[str]:
        cmd, name = pair
        work = root / f"{cmd.replace(' ', '_')}-{name}"
        work.mkdir()
        return _cli(COMMANDS[cmd](inputs[name], work), work)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(PAIRS, pool.map(one, PAIRS), strict=True))


@pytest.mark.parametrize(("cmd", "name"), PAIRS)
def test_hostile_input_exits_2_naming_the_file(results: dict[tuple[str, str], subprocess.CompletedProcess[str]],
                                               cmd: str, name: str) -> None:
    proc = results[(cmd, name)]
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines and all(len(line) <= 1000 for line in lines)
    stem = {"folder_as_file": "sub.json", "missing": "missing.yaml"}.get(name)
    expected = stem or {"bomb": "bomb.yaml", "deep_json": "deep.json", "fifo": "fifo.yaml", "huge": "huge.yaml"}.get(name, "")
    assert expected in proc.stderr or name not in ("bomb", "deep_json", "fifo", "huge", "folder_as_file", "missing"), proc.stderr


def test_validate_names_missing_fields_of_a_clear_case(results: dict[tuple[str, str], subprocess.CompletedProcess[str]]) -> None:
    err = results[("validate", "upper_missing")].stderr
    assert "CASE.YAML" in err and "cannot tell" not in err
    for field in ("demographics", "chief_complaint", "differential"):
        assert f"{field}: Field required" in err


def test_validate_duplicate_case_ids_across_files(tmp_path: Path) -> None:
    from clinic_env.schema import load_cases
    from clinic_env.schema.validate import validate_paths

    case = load_cases()[0].model_dump(mode="json", exclude_none=True)
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_text(yaml.safe_dump(case), encoding="utf-8")
    count, problems = validate_paths([tmp_path])
    assert count == 2 and any("duplicate case id" in str(p) and "b.yaml" in str(p) for p in problems)


def test_bounded_reader_messages() -> None:
    with pytest.raises(DataError, match="alias"):
        load_yaml(_bomb(), "bomb.yaml")
    with pytest.raises(DataError, match=r"duplicate key 'id' \(first defined at line 1\)"):
        load_yaml("id: a\nx: 1\nid: b\n", "d.yaml")
    with pytest.raises(DataError, match="nested deeper than 64"):
        load_json("[" * 100_000 + "]" * 100_000, "d.json")
    with pytest.raises(DataError, match="more than 200,000 values"):
        load_yaml("- 0\n" * 300_000, "flat.yaml")  # counted from events: no 300,000-node graph built
    with pytest.raises(DataError, match="recursive alias"):
        load_yaml("a: &a [*a]\n", "r.yaml")
    assert load_yaml("a: &x [1]\nb: *x\nc: {<<: {q: 1}, r: 2}\n") == {"a": [1], "b": [1], "c": {"q": 1, "r": 2}}


def test_upper_case_suffix_is_read(tmp_path: Path) -> None:
    path = tmp_path / "X.JSONL"
    path.write_text('{"a": 1}\n{"a": 2}\n', encoding="utf-8")
    assert read_documents(path) == [{"a": 1}, {"a": 2}]
