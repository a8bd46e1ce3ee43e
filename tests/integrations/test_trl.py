"""TRL hand-off: the environment_factory's tools play a consultation, the reward functions, the
dataset rows, and GRPOTrainer accepting the factory (skipped without trl unless required)."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

import clinic_env
from clinic_env.integrations.trl import (
    INSTRUCTION,
    ClinicDoctorTools,
    first_move_reward,
    format_reward,
    rows_from_split,
)
from clinic_env.testing.scripted import clinic_reply

_CALL = {"ask": "ask", "order": "order", "end_segment": "end_segment", "commit_differential": "commit_differential"}


def test_tools_play_a_whole_consultation(small_cases: list[clinic_env.Case]) -> None:
    case = small_cases[0]
    tools = ClinicDoctorTools(cases=small_cases)
    prompt = tools.reset(case_id=case.id, seed=2, prompt=[{"role": "user", "content": INSTRUCTION}])
    assert "Status: segment=history" in prompt
    for _ in range(100):
        reply = json.loads(clinic_reply({"messages": tools.env.messages()}))
        action, item = reply["action"], reply["item"]
        if action == "dx":
            segment = tools.env.engine.segment
            out = tools.diagnose(item) if segment == 3 else tools.propose_diagnosis(item)
        elif action in ("ask", "order"):
            out = getattr(tools, action)(item)
        else:
            out = getattr(tools, _CALL[action])()
        if tools.done:
            break
        assert out
    assert tools.done and "ended" in out
    assert tools.get_reward() == pytest.approx(tools.total) and tools.get_reward() != 0
    with pytest.raises(ValueError, match="ended"):
        tools.ask("hx.onset")
    # A second reset starts afresh.
    tools.reset(case_id=case.id, seed=2)
    assert not tools.done and tools.get_reward() == 0


def test_unknown_item_is_reported_not_raised(small_cases: list[clinic_env.Case]) -> None:
    tools = ClinicDoctorTools(cases=small_cases)
    tools.reset(case_id=small_cases[0].id, seed=0)
    out = tools.ask("hx.no_such_item")
    assert out.startswith("Not understood") and tools.get_reward() < 0


def test_format_reward_partial_credit() -> None:
    completions = ['{"action": "ask", "item": "hx.onset", "text": ""}', 'ok {"action": "dance"}', "{ broken",
                   "no json at all", [{"role": "assistant", "content": '{"action": "dx", "item": "I21.0"}'}]]
    assert format_reward([None] * 5, completions) == [1.0, 0.5, 0.25, 0.0, 1.0]


def test_rows_and_first_move_reward() -> None:
    rows = rows_from_split("bundled-v1:train", seeds=(0, 1), limit=2)
    assert len(rows) == 4 and rows[0]["prompt"][0]["content"] == INSTRUCTION
    assert {r["seed"] for r in rows} == {0, 1} and rows[0]["case_id"] == rows[1]["case_id"]
    good = '{"action": "ask", "item": "", "text": "What brings you in today?"}'
    rewards = first_move_reward([r["prompt"] for r in rows[:2]], ["gibberish", good],
                                case_id=[r["case_id"] for r in rows[:2]], seed=[0, 0],
                                split=[r["split"] for r in rows[:2]])
    assert len(rewards) == 2 and rewards[0] < 0  # an unusable reply costs the step penalty


_HAS_TRL = importlib.util.find_spec("trl") is not None and importlib.util.find_spec("torch") is not None
_REQUIRED = os.environ.get("CLINIC_ENV_REQUIRE_TRAINERS") == "1"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "train_grpo_trl.py"


@pytest.mark.skipif(not _HAS_TRL and not _REQUIRED, reason="trl/torch not installed (make test-trainers)")
def test_grpo_trainer_takes_the_factory(tmp_path: Path) -> None:
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from clinic_env.integrations.trl import dataset_from_split

    spec = importlib.util.spec_from_file_location("train_grpo_trl", EXAMPLE)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    path = example.tiny_model(tmp_path)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    config = GRPOConfig(output_dir=str(tmp_path / "out"), max_steps=1, per_device_train_batch_size=2,
                        num_generations=2, max_completion_length=8, report_to="none", use_cpu=True, bf16=False)
    trainer = GRPOTrainer(model=model, processing_class=tok, args=config, reward_funcs=[format_reward],
                          train_dataset=dataset_from_split("bundled-v1:train", limit=2),
                          environment_factory=ClinicDoctorTools.factory("bundled-v1:train"))
    names = {t.__name__ for t in trainer.tools}
    assert {"ask", "order", "propose_diagnosis", "commit_differential", "end_segment", "diagnose"} <= names
    assert "get_reward" not in names and "ClinicDoctorTools" in trainer.reward_func_names


@pytest.mark.skipif(not _HAS_TRL and not _REQUIRED, reason="trl/torch not installed (make test-trainers)")
def test_tiny_training_example_prints_rewards_that_vary() -> None:
    import subprocess
    import sys

    res = subprocess.run([sys.executable, str(EXAMPLE), "--tiny"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["steps"] == 3 and out["reward_std"] > 0 and out["model"] == "tiny"


def test_example_without_a_model_is_a_usage_error() -> None:
    import subprocess
    import sys

    res = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "--tiny" in res.stderr and "Traceback" not in res.stderr
