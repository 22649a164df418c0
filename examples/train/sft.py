"""Supervised fine-tuning on `dataset export`'s rows with TRL's SFTTrainer.

    pip install -e '.[train]'
    ocaml-ai-ls dataset export data.jsonl --out data/
    python examples/train/sft.py --data data/ --model Qwen/Qwen2.5-Coder-1.5B-Instruct \\
        --out runs/sft

The rows are conversational (`messages`, or `prompt`/`completion`): the trainer
applies the model's chat template, and with prompt-completion rows learns from the
answer only. `provenance` is dropped here (it is for rewards). `--tiny` trains a
random tiny model with a tokenizer built from the rows (no download; the smoke test).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import as_dataset, load_model, load_rows, tiny_model  # noqa: E402


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="dataset export's --out")
    parser.add_argument("--out", type=Path, required=True, help="where the model is saved")
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--model", help="a model name or directory to start from")
    model.add_argument("--tiny", action="store_true", help="a random tiny model (smoke test)")
    parser.add_argument("--split", default="train", help="train (default) or test")
    parser.add_argument("--max-steps", type=int, default=-1)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--learning-rate", type=float, default=2e-5)
    parser.add_argument("--max-length", type=int, default=8192)
    args = parser.parse_args(argv)

    from trl import SFTConfig, SFTTrainer

    rows = [{k: v for k, v in r.items() if k != "provenance"} for r in load_rows(args.data, args.split)]
    net, tokenizer = tiny_model(rows) if args.tiny else load_model(args.model)
    config = SFTConfig(
        output_dir=str(args.out),
        max_steps=args.max_steps,
        num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        max_length=args.max_length,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=args.tiny,
    )
    trainer = SFTTrainer(
        model=net, args=config, train_dataset=as_dataset(rows), processing_class=tokenizer
    )
    trainer.train()
    trainer.save_model(str(args.out))
    history = trainer.state.log_history
    (args.out / "log_history.json").write_text(json.dumps(history, indent=1))
    return {"log_history": history}


if __name__ == "__main__":
    main()
