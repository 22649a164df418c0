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

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    as_dataset,
    load_model,
    load_rows,
    parser,
    save_run,
    tiny_model,
    trainer_settings,
)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    options = parser(__doc__.split("\n")[0], learning_rate=2e-5)
    options.add_argument("--batch-size", type=int, default=1)
    options.add_argument("--max-length", type=int, default=8192)
    args = options.parse_args(argv)

    from trl import SFTConfig, SFTTrainer

    rows = [
        {k: v for k, v in r.items() if k != "provenance"} for r in load_rows(args.data, args.split)
    ]
    net, tokenizer = tiny_model(rows) if args.tiny else load_model(args.model)
    config = SFTConfig(
        **trainer_settings(args),
        per_device_train_batch_size=args.batch_size,
        max_length=args.max_length,
    )
    trainer = SFTTrainer(
        model=net, args=config, train_dataset=as_dataset(rows), processing_class=tokenizer
    )
    trainer.train()
    return {"log_history": save_run(trainer, args.out)}


if __name__ == "__main__":
    main()
