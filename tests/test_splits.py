"""Benchmark splits: sizes, determinism across processes, disjoint parts, errors and the CLI."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import clinic_env
from clinic_env import splits
from clinic_env.generate import CaseGenerator, load_knowledge

_DIGEST = """
import hashlib, json
from clinic_env import splits
h = hashlib.sha256()
for case in splits.load("held-out-dx-v1", "all") + splits.load("generated-v1", "all"):
    h.update(json.dumps(case.model_dump(mode="json"), sort_keys=True).encode())
print(h.hexdigest(), ",".join(sorted(splits.held_out_diagnoses())))
"""


def _content(case: clinic_env.Case) -> str:
    """A patient's content without the fields that name the seed."""
    return json.dumps(case.model_dump(mode="json", exclude={"id", "source"}), sort_keys=True)


def _env(**extra: str) -> dict[str, str]:
    keep = {k: os.environ[k] for k in ("PATH", "PYTHONPATH") if k in os.environ}
    return {"LITELLM_LOCAL_MODEL_COST_MAP": "True", **keep, **extra}


def test_names() -> None:
    assert splits.names() == ["bundled-v1", "generated-v1", "held-out-dx-v1"]


def test_bundled_v1_is_the_library_in_every_part(cases: list[clinic_env.Case]) -> None:
    ids = [c.id for c in cases]
    for part in splits.PARTS:
        assert [c.id for c in splits.load("bundled-v1", part)] == ids


def test_generated_v1_sizes_and_conditions() -> None:
    n_conditions = len(load_knowledge().conditions)
    train, test = splits.load("generated-v1", "train"), splits.load("generated-v1", "test")
    assert len(train) == len(splits.TRAIN_SEEDS) * n_conditions >= 20 * n_conditions
    assert len(test) == len(splits.TEST_SEEDS) * n_conditions == 5 * n_conditions
    assert set(Counter(c.gold_diagnosis for c in train).values()) == {len(splits.TRAIN_SEEDS)}
    assert set(Counter(c.gold_diagnosis for c in test).values()) == {len(splits.TEST_SEEDS)}
    assert {c.gold_diagnosis for c in train} == {c.gold_diagnosis for c in test}
    assert [c.id for c in splits.load("generated-v1", "all")] == [c.id for c in train + test]


def test_generated_v1_train_and_test_are_different_patients() -> None:
    train, test = splits.load("generated-v1", "train"), splits.load("generated-v1", "test")
    assert not {c.id for c in train} & {c.id for c in test}
    assert len({c.id for c in train + test}) == len(train) + len(test)
    assert not {_content(c) for c in train} & {_content(c) for c in test}


def test_generated_v1_is_the_generator_with_the_documented_seeds() -> None:
    gen = CaseGenerator()
    train = {c.id: c for c in splits.load("generated-v1", "train")}
    test = {c.id: c for c in splits.load("generated-v1", "test")}
    for cid in sorted(gen.kb.conditions)[::25]:
        for seeds, part in ((splits.TRAIN_SEEDS, train), (splits.TEST_SEEDS, test)):
            for seed in seeds[:: len(seeds) - 1]:
                case = gen.generate(cid, seed=seed).case
                assert part[case.id] == case


def test_held_out_dx_v1_test_diagnoses_are_unseen_in_training() -> None:
    held = splits.held_out_diagnoses()
    train, test = splits.load("held-out-dx-v1", "train"), splits.load("held-out-dx-v1", "test")
    train_dx = {c.gold_diagnosis for c in train}
    assert {c.gold_diagnosis for c in test} == held
    assert not train_dx & held
    all_dx = {c.gold_diagnosis for c in splits.load("generated-v1", "all")}
    assert train_dx | held == all_dx
    assert 0.1 * len(all_dx) <= len(held) <= 0.3 * len(all_dx)
    # The same patients as generated-v1: train patients of the kept diagnoses; every patient of the held-out ones.
    gen_train = {c.id for c in splits.load("generated-v1", "train")}
    gen_test = {c.id for c in splits.load("generated-v1", "test")}
    assert {c.id for c in train} == {c.id for c in splits.load("generated-v1", "train") if c.gold_diagnosis not in held}
    per_dx = len(splits.TRAIN_SEEDS) + len(splits.TEST_SEEDS)
    assert set(Counter(c.gold_diagnosis for c in test).values()) == {per_dx}
    assert {c.id for c in test} <= gen_train | gen_test
    assert {c.id for c in test} & gen_test == {c.id for c in splits.load("generated-v1", "test")
                                              if c.gold_diagnosis in held}


def test_splits_are_deterministic_across_processes() -> None:
    # Another process with another hash seed builds the same cases and the same held-out diagnoses.
    res = subprocess.run([sys.executable, "-c", _DIGEST], capture_output=True, text=True, timeout=300,
                         env=_env(PYTHONHASHSEED="12345"))
    assert res.returncode == 0, res.stderr
    here = io.StringIO()
    with contextlib.redirect_stdout(here):
        exec(_DIGEST, {})
    assert res.stdout == here.getvalue()


def test_load_returns_a_fresh_list() -> None:
    first = splits.load("bundled-v1", "train")
    first.clear()
    assert splits.load("bundled-v1", "train")


@pytest.mark.parametrize(("name", "part", "needle"), [
    ("nope-v1", "train", "bundled-v1, generated-v1, held-out-dx-v1"),
    ("generated-v1", "dev", "train, test, all"),
])
def test_unknown_name_or_part_names_the_known_ones(name: str, part: str, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        splits.load(name, part)
    with pytest.raises(splits.SplitError, match=needle):
        splits.parse_spec(f"{name}:{part}")


@pytest.mark.parametrize("spec", ["generated-v1", "generated-v1:test:x", ":test", ""])
def test_malformed_spec(spec: str) -> None:
    with pytest.raises(splits.SplitError):
        splits.parse_spec(spec)


def test_parse_spec() -> None:
    assert splits.parse_spec("held-out-dx-v1:all") == ("held-out-dx-v1", "all")


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "clinic_env", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600, env=_env())


@pytest.mark.parametrize(("args", "needle"), [
    (["--split", "generated-v1"], "expected NAME:PART"),
    (["--split", "nope:test"], "known: bundled-v1"),
    (["--split", "bundled-v1:dev"], "known: train, test, all"),
    (["--split", "bundled-v1:test", "--cases", "."], "exclusive"),
])
def test_cli_rejects_bad_splits(tmp_path: Path, args: list[str], needle: str) -> None:
    res = _cli("run", *args, "--doctor", "random", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert res.returncode == 2
    assert needle in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "out").exists()


def test_cli_plays_the_split(tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = _cli("run", "--split", "bundled-v1:test", "--doctor", "random", "--max-cycles", "3", "--out", str(out),
               cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["case_id"] for r in records) == sorted(c.id for c in splits.load("bundled-v1", "test"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["split"] == "bundled-v1:test" and summary["cases"] == len(records)
