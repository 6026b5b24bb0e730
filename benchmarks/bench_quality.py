"""Quality per training minute: training recipes side by side, the same data and the same wall-clock budget.

Each row trains with the real `s2s train` code on one prepared dataset, one
after the other, for `--minutes` of wall-clock time (the `max_minutes`
budget, which stops mid-epoch if need be), then is scored with the same
greedy Keras decoder on the same test sources. Same minutes, not the same
epochs: what a lever buys on this machine.

- `--compare architectures`: `lstm` against `attention` at the same latent
  size (256, about 0.73 M parameters each), each with the settings that suit
  it (`lstm` reads its source reversed, as the old shipped model did), on
  the shipped model's recipe.
- `--compare levers`: a base recipe (`--config FILE`'s [train] table, by
  default configs/demo.toml) against the same recipe with one lever each:
  label smoothing, a learning-rate decay (on a plateau, or over the budget),
  a moving average of the weights (validated and kept instead of the raw
  ones), half and double the batch size, dropout, and a model twice as wide
  with dropout.

Prints one row per recipe: epochs run, best validation loss, test BLEU and
chrF, and the chrF difference from the first row.

    python benchmarks/bench_quality.py --data runs/demo/data --compare levers [--minutes 8] [--eval-sources 1000]
    python benchmarks/bench_quality.py --data runs/fra-eng/data --compare architectures [--minutes 12]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

from s2s.config import load_config
from s2s.training.config import ATTENTION, LSTM, EvaluateConfig, TrainConfig
from s2s.training.evaluate import evaluate
from s2s.training.train import train

REPO = Path(__file__).resolve().parents[1]


def architectures(minutes: float) -> dict[str, TrainConfig]:
    """The shipped model's recipe (configs/fra-eng.toml) for each architecture, stopped by the wall-clock budget alone."""
    return {
        arch: TrainConfig(
            arch=arch,
            latent_dim=256,
            batch_size=128,
            optimizer="adam",
            learning_rate=0.002,
            reverse_source=arch == LSTM,
            bucket_by_length=True,
            epochs=1000,
            early_stopping_patience=0,
            max_minutes=minutes,
            seed=1,
        )
        for arch in (LSTM, ATTENTION)
    }


def levers(base: TrainConfig, minutes: float) -> dict[str, TrainConfig]:
    """`base` stopped by the budget alone, and `base` with one lever each."""
    base = dataclasses.replace(base, epochs=1000, early_stopping_patience=0, max_minutes=minutes)
    variants: dict[str, dict[str, Any]] = {
        "base": {},
        "label smoothing 0.1": {"label_smoothing": 0.1},
        "decay on plateau": {"learning_rate_decay": "plateau"},
        "decay over the budget": {"learning_rate_decay": "budget"},
        "weight average (EMA 0.999)": {"ema_momentum": 0.999},
        "weight average (EMA 0.99)": {"ema_momentum": 0.99},
        f"batch {base.batch_size // 2}": {"batch_size": base.batch_size // 2},
        f"batch {base.batch_size * 2}": {"batch_size": base.batch_size * 2},
        "dropout 0.1": {"dropout": 0.1},
        "dropout 0.3": {"dropout": 0.3},
        f"latent {base.latent_dim * 2}, dropout 0.3": {"latent_dim": base.latent_dim * 2, "dropout": 0.3},
    }
    return {name: dataclasses.replace(base, **changes) for name, changes in variants.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a prepared dataset (s2s prepare output)")
    parser.add_argument("--compare", choices=("levers", "architectures"), default="levers")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "demo.toml", help="the base recipe of --compare levers")
    parser.add_argument("--only", nargs="*", help="run only these rows (by name), e.g. base 'label smoothing 0.1'")
    parser.add_argument("--minutes", type=float, default=8.0, help="training budget of each row")
    parser.add_argument("--eval-sources", type=int, default=1000, help="distinct test sources decoded for BLEU and chrF")
    args = parser.parse_args()

    if args.compare == "architectures":
        recipes = architectures(args.minutes)
    else:
        recipes = levers(load_config(TrainConfig, "train", args.config, {}), args.minutes)
    if args.only:
        recipes = {name: config for name, config in recipes.items() if name in args.only}
    rows = {}
    with tempfile.TemporaryDirectory() as scratch:
        for index, (name, config) in enumerate(recipes.items()):
            model_dir = Path(scratch) / str(index)
            started = time.time()
            summary = train(args.data, model_dir, config)
            report = evaluate(model_dir, args.data, EvaluateConfig(limit=args.eval_sources))
            rows[name] = {
                "epochs": summary["epochs"],
                "val_loss": summary["best_val_loss"],
                "bleu": report["overall"]["bleu"],
                "chrf": report["overall"]["chrf"],
                "sources": report["sources"],
            }
            print(f"{name}: {rows[name]} ({time.time() - started:.0f} s with evaluation)", flush=True)

    first = next(iter(rows.values()))
    print(f"\n{args.minutes:g} minutes of training each, {first['sources']} test sources, greedy decoding\n")
    print("| recipe | epochs | best validation loss | test BLEU | test chrF | chrF against the first row |")
    print("|---|---|---|---|---|---|")
    for name, row in rows.items():
        print(
            f"| {name} | {row['epochs']} | {row['val_loss']:.3f} | {row['bleu']:.2f} | {row['chrf']:.2f} | "
            f"{row['chrf'] - first['chrf']:+.2f} |"
        )


if __name__ == "__main__":
    main()
