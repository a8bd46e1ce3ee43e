"""Build tiny random-weight checkpoints for serving tests (no downloads).

Runs in the Python that has torch, transformers and tokenizers (the vLLM environment), as a
script: ``python clinic_env/testing/tiny_model.py OUT_DIR [--gptq]``. It writes:

- ``OUT_DIR/target``: a 2-layer Llama (hidden 64, head dim 32) with random weights saved by
  ``save_pretrained``, and a byte-level BPE tokenizer trained in process with ``tokenizers`` on
  the env's own vocabulary, with a chat template;
- ``OUT_DIR/draft``: an EAGLE-3 draft config (``LlamaForCausalLMEagle3``) with
  ``eagle_aux_hidden_state_layer_ids`` (without them vLLM silently collapses acceptance),
  served with ``--load-format dummy``;
- ``OUT_DIR/target-gptq`` (``--gptq``): the same model in GPTQ INT4 format (packed int32
  ``qweight``/``qzeros``, fp16 ``scales``, ``g_idx``; ``quantization_config.quant_method: gptq``).

The weights are random: the model talks nonsense and the draft's acceptance is ~0. The point is
the plumbing: chat, ``n``, seeds, JSON-schema outputs, speculative decoding and metrics.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

HIDDEN, LAYERS, HEADS, KV_HEADS, INTER, MAX_POS = 64, 2, 2, 2, 128, 8192
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
_CORPUS = (
    'You are the doctor. Reply with one JSON object {"action": "ask", "item": "hx.onset", "text": "When did it start?"} '
    "history differential tests diagnosis ask order dx end_segment commit_differential troponin ECG chest pain "
    "fever cough headache abdominal pain the patient says yes no I think it started yesterday morning. "
    "0123456789 {}[]:,.\"'?!-_ abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def build_tokenizer(out: Path) -> int:
    """Train a small byte-level BPE tokenizer and save it with a chat template; returns its vocab size."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = ["<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|pad|>"]
    trainer = trainers.BpeTrainer(vocab_size=1024, special_tokens=special,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([_CORPUS] * 20, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                   pad_token="<|pad|>", unk_token="<|endoftext|>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)
    return int(tok.get_vocab_size())


def build_target(out: Path, vocab: int, seed: int = 0) -> None:
    """A random 2-layer Llama saved with ``save_pretrained``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab, hidden_size=HIDDEN, intermediate_size=INTER, num_hidden_layers=LAYERS,
                         num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, head_dim=HIDDEN // HEADS,
                         max_position_embeddings=MAX_POS, bos_token_id=0, eos_token_id=0, pad_token_id=4,
                         tie_word_embeddings=False, torch_dtype="bfloat16")
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(out, safe_serialization=True)


def build_draft(out: Path, vocab: int) -> None:
    """A hand-written EAGLE-3 draft config (weights come from ``--load-format dummy``)."""
    out.mkdir(parents=True, exist_ok=True)
    config = {
        "architectures": ["LlamaForCausalLMEagle3"], "model_type": "llama", "hidden_size": HIDDEN,
        "intermediate_size": INTER, "num_hidden_layers": 1, "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS, "head_dim": HIDDEN // HEADS, "vocab_size": vocab,
        "draft_vocab_size": vocab, "max_position_embeddings": MAX_POS, "rms_norm_eps": 1e-6,
        "hidden_act": "silu", "rope_theta": 10000.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
        "bos_token_id": 0, "eos_token_id": 0,
        "eagle_config": {"eagle_aux_hidden_state_layer_ids": [0, 1]},
        "eagle_aux_hidden_state_layer_ids": [0, 1],
    }
    (out / "config.json").write_text(json.dumps(config, indent=2))


def build_gptq(src: Path, out: Path, group: int = 32, seed: int = 0) -> None:
    """Rewrite ``src``'s linear layers in GPTQ INT4 format (random codes, small scales)."""
    import torch
    from safetensors.torch import load_file, save_file

    torch.manual_seed(seed)
    shutil.copytree(src, out, dirs_exist_ok=True)
    for f in out.glob("*.safetensors"):
        f.unlink()
    tensors = load_file(str(next(src.glob("*.safetensors"))))
    quantised: dict[str, torch.Tensor] = {}
    for name, w in tensors.items():
        is_linear = name.endswith(".weight") and ".layers." in name and w.dim() == 2
        if not is_linear:
            quantised[name] = w
            continue
        base = name[: -len(".weight")]
        n_out, n_in = w.shape
        codes = torch.randint(0, 16, (n_in, n_out), dtype=torch.int64)
        packed = torch.zeros((n_in // 8, n_out), dtype=torch.int64)
        for j in range(8):
            packed |= codes[j::8] << (4 * j)
        quantised[base + ".qweight"] = packed.to(torch.int32) if packed.max() < 2**31 else (packed - 2**32).to(torch.int32)
        zeros = torch.full((n_in // group, n_out), 8, dtype=torch.int64)
        zpacked = torch.zeros((n_in // group, n_out // 8), dtype=torch.int64)
        for j in range(8):
            zpacked |= zeros[:, j::8] << (4 * j)
        zpacked = torch.where(zpacked >= 2**31, zpacked - 2**32, zpacked)
        quantised[base + ".qzeros"] = zpacked.to(torch.int32)
        quantised[base + ".scales"] = torch.full((n_in // group, n_out), 0.01, dtype=torch.float16)
        quantised[base + ".g_idx"] = torch.arange(n_in, dtype=torch.int32) // group
    fixed = {k: (torch.where(v >= 2**31, v - 2**32, v).to(torch.int32) if v.dtype == torch.int64 else v)
             for k, v in quantised.items()}
    save_file(fixed, str(out / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads((out / "config.json").read_text())
    config["torch_dtype"] = "float16"
    config["dtype"] = "float16"
    config["quantization_config"] = {"quant_method": "gptq", "bits": 4, "group_size": group, "desc_act": False,
                                     "sym": True, "checkpoint_format": "gptq"}
    (out / "config.json").write_text(json.dumps(config, indent=2))


def build_all(out: Path, gptq: bool = False) -> dict[str, str]:
    """Build every checkpoint under ``out``; returns their paths by name."""
    target = out / "target"
    vocab = build_tokenizer(target)
    build_target(target, vocab)
    build_draft(out / "draft", vocab)
    paths = {"target": str(target), "draft": str(out / "draft")}
    if gptq:
        build_gptq(target, out / "target-gptq")
        paths["target_gptq"] = str(out / "target-gptq")
    return paths


def main() -> None:
    """Command-line entry: build the checkpoints and print their paths as JSON."""
    parser = argparse.ArgumentParser(description="Build tiny random-weight checkpoints for vLLM tests.")
    parser.add_argument("out", type=Path)
    parser.add_argument("--gptq", action="store_true", help="also write a GPTQ INT4 copy of the target")
    args = parser.parse_args()
    print(json.dumps(build_all(args.out, args.gptq)))


if __name__ == "__main__":
    main()
