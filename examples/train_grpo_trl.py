"""Multi-turn GRPO on clinic-env with TRL's ``environment_factory`` (CPU smoke run with ``--tiny``).

    python examples/train_grpo_trl.py --tiny          # 3 steps on a tiny random model built now
    python examples/train_grpo_trl.py --model Qwen/Qwen3-0.6B --split generated-v1:train --steps 200

Needs ``pip install "clinic-env[trl]"`` (TRL 1.16+, transformers 5.2+, a torch). The doctor's
actions are the tools of :class:`clinic_env.integrations.trl.ClinicDoctorTools`; the reward is the
env's (``get_reward``) plus :func:`~clinic_env.integrations.trl.format_reward`, a partial credit
for the reply's form, so that an untrained model's group is not all equal. ``--tiny`` builds a
2-layer random Llama with :mod:`clinic_env.testing.tiny_model`, gives its tokenizer a chat template
that renders tool calls (Qwen3's, as TRL ships it), trains a few steps on CPU and prints ONE JSON
line: ``{"steps", "reward_mean", "reward_std", "seconds", ...}``. A random model never calls a
tool correctly, so the run checks the plumbing, not learning.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def tiny_model(out: Path) -> str:
    """Build the tiny random model with a tool-calling chat template; returns its folder."""
    from transformers import AutoTokenizer
    from trl.chat_template_utils import qwen3_chat_template

    from clinic_env.testing.tiny_model import build_target, build_tokenizer

    target = out / "target"
    vocab = build_tokenizer(target)
    build_target(target, vocab)
    tok = AutoTokenizer.from_pretrained(target)
    tok.chat_template = qwen3_chat_template
    tok.padding_side = "left"
    tok.save_pretrained(target)
    return str(target)


def main(argv: list[str] | None = None) -> int:
    """Train; print one JSON line with the reward mean and std."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny random model, CPU, a few steps")
    parser.add_argument("--model", help="a model id or folder (ignored with --tiny)")
    parser.add_argument("--split", default="bundled-v1:train")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--cases", type=int, default=4, help="cases of the split to train on (0 = all)")
    parser.add_argument("--generations", type=int, default=4, help="G: rollouts per prompt")
    parser.add_argument("--max-completion", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not args.tiny and not args.model:
        parser.error("give --tiny or --model")
    if args.steps < 1 or args.generations < 2:
        parser.error("--steps must be >= 1 and --generations >= 2")
    try:
        import torch
        from trl import GRPOConfig, GRPOTrainer
    except ImportError as exc:
        print(f"error: {exc.name} is missing: pip install 'clinic-env[trl]' (and a CPU torch)", file=sys.stderr)
        return 2
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from clinic_env.integrations.trl import ClinicDoctorTools, dataset_from_split, format_reward

    warnings.filterwarnings("ignore")
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="clinic-grpo-") as tmp:
        path = tiny_model(Path(tmp)) if args.tiny else args.model
        tok = AutoTokenizer.from_pretrained(path)
        tok.padding_side = "left"
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        dataset = dataset_from_split(args.split, seeds=(args.seed,), limit=args.cases or None)
        config = GRPOConfig(
            output_dir=str(Path(tmp) / "out"), max_steps=args.steps, per_device_train_batch_size=args.generations,
            num_generations=args.generations, max_completion_length=args.max_completion, temperature=1.0,
            learning_rate=1e-4, logging_steps=1, report_to="none", save_strategy="no", seed=args.seed,
            use_cpu=args.tiny, bf16=False, max_tool_calling_iterations=4, disable_tqdm=True,
        )
        trainer = GRPOTrainer(model=model, processing_class=tok, args=config, train_dataset=dataset,
                              reward_funcs=[format_reward], environment_factory=ClinicDoctorTools.factory(args.split))
        trainer.train()
        logs = [h for h in trainer.state.log_history if "reward" in h]
    rewards = [float(h["reward"]) for h in logs]
    stds = [float(h.get("reward_std", 0.0)) for h in logs]
    print(json.dumps({
        "steps": len(logs), "reward_mean": round(sum(rewards) / len(rewards), 4) if rewards else None,
        "reward_std": round(sum(stds) / len(stds), 4) if stds else None, "reward_per_step": rewards,
        "reward_std_per_step": stds, "seconds": round(time.perf_counter() - start, 1), "model": "tiny" if args.tiny else path,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
