"""Reinforcement learning on `dataset export`'s prompts with TRL's GRPOTrainer, the
compiler as the reward (`ocaml_ai_ls.rewards`).

    pip install -e '.[train]'
    ocaml-ai-ls dataset export data.jsonl --out data/ --format prompt-completion
    python examples/train/grpo.py --data data/ --model runs/sft --out runs/grpo \\
        [--ces-url http://127.0.0.1:8123] [--workers 2]

Each prompt's completions are graded by CES on the row's before state (its
`provenance` column reaches the reward as a keyword argument): 0 no usable edit,
.25 applies, .5 parses, .75 type-checks, 1 passes. Without `--ces-url` the checks
run in local shadows of the rows' project (`--workers` of them); with it, in a
shared `ocaml-ai-ls ces serve --root PROJECT`. Every batch's rewards are appended to
`OUT/rewards.jsonl`. `--tiny` trains a random tiny model with a tokenizer built from
the rows (no download; the smoke test).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
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


def prompt_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with a `prompt` (messages rows: all but the answer) and their provenance."""
    out = []
    for row in rows:
        prompt = row["prompt"] if "prompt" in row else row["messages"][:-1]
        out.append({"prompt": prompt, "provenance": row["provenance"]})
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    options = parser(__doc__.split("\n")[0], learning_rate=1e-6)
    options.add_argument("--ces-url", help="a `ces serve` URL (default: local shadows)")
    options.add_argument("--workers", type=int, default=2, help="checks at once")
    options.add_argument(
        "--tests",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run the tests (default: as each row says)",
    )
    options.add_argument("--num-generations", type=int, default=4)
    options.add_argument("--max-completion-length", type=int, default=512)
    options.add_argument(
        "--generation-kwargs",
        type=json.loads,
        default=None,
        metavar="JSON",
        help="passed to generation (e.g. temperature, top_p)",
    )
    args = options.parse_args(argv)

    from trl import GRPOConfig, GRPOTrainer

    from ocaml_ai_ls.rewards import Grader, make_reward

    rows = prompt_rows(load_rows(args.data, args.split))
    net, tokenizer = tiny_model(rows) if args.tiny else load_model(args.model)
    args.out.mkdir(parents=True, exist_ok=True)
    grader = Grader(url=args.ces_url, workers=args.workers, tests=args.tests)
    ces = make_reward(grader)
    given: list[float] = []

    def ces_reward(completions: Sequence[Any], **kwargs: Any) -> list[float]:
        rewards = ces(completions, **kwargs)
        given.extend(rewards)
        with (args.out / "rewards.jsonl").open("a") as fh:
            fh.write(json.dumps({"rewards": rewards}) + "\n")
        return rewards

    config = GRPOConfig(
        **trainer_settings(args),
        per_device_train_batch_size=args.num_generations,
        num_generations=args.num_generations,
        max_completion_length=args.max_completion_length,
        generation_kwargs=args.generation_kwargs,
    )
    trainer = GRPOTrainer(
        model=net,
        reward_funcs=[ces_reward],
        args=config,
        train_dataset=as_dataset(rows),
        processing_class=tokenizer,
    )
    try:
        trainer.train()
    finally:
        grader.close()
    return {"log_history": save_run(trainer, args.out), "rewards": given}


if __name__ == "__main__":
    main()
