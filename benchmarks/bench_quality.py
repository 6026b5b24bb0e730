"""Quality per training minute: `lstm` against `attention`, the same data and the same wall-clock budget.

Both architectures are trained with the real `s2s train` code on one prepared
dataset, one after the other, each for `--minutes` of wall-clock time (the
`max_minutes` budget, which stops mid-epoch if need be), at the same latent
size (256, about 0.73 M parameters each). Each gets the settings that suit it:
`lstm` reads its source reversed (Sutskever et al. 2014), as the old shipped
model did; attention reads every position and needs no reversal. Then both
are scored with the same greedy Keras decoder on the same test sources.

Prints one row per architecture and the attention / lstm ratio: epochs run,
best validation loss, test BLEU and chrF. This is the honest answer to "what
does attention buy on a CPU?": the same minutes, not the same epochs.

    python benchmarks/bench_quality.py --data runs/fra-eng/data [--minutes 12] [--eval-sources 1000]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from s2s.training.config import ATTENTION, LSTM, EvaluateConfig, TrainConfig
from s2s.training.evaluate import evaluate
from s2s.training.train import train


def settings(arch: str, minutes: float) -> TrainConfig:
    """The shipped model's recipe (configs/fra-eng.toml) for `arch`, stopped by the wall-clock budget alone."""
    return TrainConfig(
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a prepared dataset (s2s prepare output)")
    parser.add_argument("--minutes", type=float, default=12.0, help="training budget of each architecture")
    parser.add_argument("--eval-sources", type=int, default=1000, help="distinct test sources decoded for BLEU and chrF")
    args = parser.parse_args()

    rows = {}
    with tempfile.TemporaryDirectory() as scratch:
        for arch in (LSTM, ATTENTION):
            model_dir = Path(scratch) / arch
            summary = train(args.data, model_dir, settings(arch, args.minutes))
            report = evaluate(model_dir, args.data, EvaluateConfig(limit=args.eval_sources))
            rows[arch] = {
                "epochs": summary["epochs"],
                "val_loss": summary["best_val_loss"],
                "bleu": report["overall"]["bleu"],
                "chrf": report["overall"]["chrf"],
            }
            print(f"{arch}: {rows[arch]}", flush=True)

    print(f"\n{args.minutes:g} minutes of training each, {args.eval_sources} test sources, greedy decoding\n")
    print("| arch | epochs | best validation loss | test BLEU | test chrF |")
    print("|---|---|---|---|---|")
    for arch, row in rows.items():
        print(f"| {arch} | {row['epochs']} | {row['val_loss']:.3f} | {row['bleu']:.2f} | {row['chrf']:.2f} |")
    lstm, attention = rows[LSTM], rows[ATTENTION]
    print(
        f"| attention / lstm | | {attention['val_loss'] / lstm['val_loss']:.2f}x | "
        f"{attention['bleu'] / max(lstm['bleu'], 1e-9):.2f}x | {attention['chrf'] / max(lstm['chrf'], 1e-9):.2f}x |"
    )


if __name__ == "__main__":
    main()
