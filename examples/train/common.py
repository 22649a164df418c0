"""What both examples share: their common options, reading `dataset export`'s rows,
the trainer settings they agree on, saving the run, and a tiny model.

`tiny_model` builds a randomly initialised causal LM and a tokenizer trained on the
rows themselves, in code, with nothing downloaded: the smoke test runs the real
trainers on it. For real use, pass `--model` a small open code model (e.g.
`Qwen/Qwen2.5-Coder-1.5B-Instruct`, from the hub or a local directory).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

#: A chat template in the shape of the usual ones, for the tokenizer built from data.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>{{ message['content'] }}<|end|>"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
SPECIAL = ["<|pad|>", "<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]


def parser(description: str, learning_rate: float) -> argparse.ArgumentParser:
    """The options both trainers take; each adds its own."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", type=Path, required=True, help="dataset export's --out")
    parser.add_argument("--out", type=Path, required=True, help="where the model is saved")
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--model", help="a model name or directory to start from")
    model.add_argument("--tiny", action="store_true", help="a random tiny model (smoke test)")
    parser.add_argument("--split", default="train", help="train (default) or test")
    parser.add_argument("--max-steps", type=int, default=-1)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--learning-rate", type=float, default=learning_rate)
    return parser


def trainer_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The TRL config both trainers are given: a log line per step, no checkpoints,
    no tracker, the CPU for the tiny model."""
    return {
        "output_dir": str(args.out),
        "max_steps": args.max_steps,
        "num_train_epochs": args.epochs,
        "learning_rate": args.learning_rate,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "use_cpu": args.tiny,
    }


def save_run(trainer: Any, out: Path) -> list[dict[str, Any]]:
    """The trained model and the trainer's log (`log_history.json`), in `out`."""
    trainer.save_model(str(out))
    history: list[dict[str, Any]] = trainer.state.log_history
    (out / "log_history.json").write_text(json.dumps(history, indent=1))
    return history


def load_rows(data: Path, split: str) -> list[dict[str, Any]]:
    """The rows of `DIR/<split>.jsonl` as `dataset export` wrote them."""
    path = data / f"{split}.jsonl"
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def as_dataset(rows: list[dict[str, Any]]) -> Any:
    """A `datasets.Dataset`; `provenance` is kept whole (a JSON string would do too,
    but the reward reads it as it is)."""
    from datasets import Dataset

    return Dataset.from_list(rows)


def row_texts(rows: list[dict[str, Any]]) -> list[str]:
    texts = []
    for row in rows:
        for key in ("messages", "prompt", "completion"):
            for message in row.get(key, []):
                texts.append(message["content"])
    return texts


def tiny_model(rows: list[dict[str, Any]], vocab_size: int = 600, layers: int = 2) -> Any:
    """(model, tokenizer): a random Llama-shaped model a few hundred kB big and a
    byte-level BPE tokenizer trained on the rows, with a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(row_texts(rows), trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<|pad|>",
        eos_token="<|end|>",
        bos_token="<|endoftext|>",
        additional_special_tokens=SPECIAL[2:],
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=16384,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return LlamaForCausalLM(config), tokenizer


def load_model(name: str) -> Any:
    """(model, tokenizer) of a model name or directory (for real use)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(name), AutoTokenizer.from_pretrained(name)


def finite_losses(log_history: list[dict[str, Any]]) -> list[float]:
    import math

    return [e["loss"] for e in log_history if "loss" in e and math.isfinite(e["loss"])]
