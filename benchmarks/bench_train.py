"""Training throughput: TFRecords through tf.data versus in-memory numpy arrays, and length bucketing.

1. The same model fitted for the same epochs on the same pairs, once fed by
   `training.data.training_batches` from the GZIP TFRecords and once from
   numpy arrays held in memory (the source material's way). Prints
   examples/s for both and their ratio (goal: records at least 0.9x numpy).
2. Padded batches versus length-bucketed, trimmed batches: both trained
   until the validation loss the padded run reaches after its last epoch;
   prints the training time each needed (validation passes excluded) and
   the speed-up.

    python benchmarks/bench_train.py --data runs/fra-eng/data [--pairs 8000] [--epochs 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from s2s.config import load_config
from s2s.spec import DatasetSpec
from s2s.tensorflow_import import import_tensorflow
from s2s.training.checkpoints import CHECKPOINT_DIR, TrainingState
from s2s.training.config import TrainConfig
from s2s.training.data import split_pairs, training_batches
from s2s.training.train import compiled_training_model, train


def compiled_model(spec: DatasetSpec, config: TrainConfig):
    import keras

    keras.utils.set_random_seed(config.seed)
    return compiled_training_model(spec, config)


class EpochTimer:
    """Keras callback recording (training seconds so far, val_loss) at each epoch end; validation time is left out."""

    def __init__(self) -> None:
        import keras

        outer = self

        class Callback(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                outer.started = time.perf_counter()
                outer.validating = 0.0
                outer.points = []

            def on_test_begin(self, logs=None):
                outer.test_started = time.perf_counter()

            def on_test_end(self, logs=None):
                outer.validating += time.perf_counter() - outer.test_started

            def on_epoch_end(self, epoch, logs=None):
                outer.points.append((time.perf_counter() - outer.started - outer.validating, (logs or {}).get("val_loss")))

        self.callback = Callback()


def records_versus_numpy(data_dir: Path, spec: DatasetSpec, config: TrainConfig, epochs: int) -> None:
    batches = training_batches(data_dir, "train", spec, config, training=True)
    arrays = [[], [], [], []]
    for (encoder_input, decoder_input), target, weight in batches:
        for store, value in zip(arrays, (encoder_input, decoder_input, target, weight), strict=True):
            store.append(value.numpy())
    encoder_input, decoder_input, target, weight = (np.concatenate(parts) for parts in arrays)
    pairs = len(target)
    figures = {}
    for name in ("numpy", "records"):
        model = compiled_model(spec, config)
        warm = (encoder_input[: config.batch_size], decoder_input[: config.batch_size])
        model.train_on_batch(warm, target[: config.batch_size], sample_weight=weight[: config.batch_size])  # build and trace first
        started = time.perf_counter()
        if name == "numpy":
            model.fit(
                [encoder_input, decoder_input],
                target,
                sample_weight=weight,
                batch_size=config.batch_size,
                epochs=epochs,
                shuffle=True,
                verbose=0,
            )
        else:
            model.fit(batches, epochs=epochs, verbose=0)
        figures[name] = pairs * epochs / (time.perf_counter() - started)
    print(f"\n1. Input pipeline: {pairs} pairs x {epochs} epochs, latent {config.latent_dim}, batch {config.batch_size}, padded batches")
    print(f"{'input':<36} {'examples/s':>10}")
    print(f"{'in-memory numpy arrays (reference)':<36} {figures['numpy']:>10.0f}")
    print(f"{'TFRecords via tf.data (s2s train)':<36} {figures['records']:>10.0f}")
    print(f"ratio records / numpy: {figures['records'] / figures['numpy']:.2f} (goal at least 0.90)")


def bucketing_speedup(data_dir: Path, spec: DatasetSpec, config: TrainConfig, epochs: int) -> None:
    runs = {}
    for bucketed in (False, True):
        run_config = dataclasses.replace(config, bucket_by_length=bucketed)
        model = compiled_model(spec, run_config)
        timer = EpochTimer()
        extra = 3 if bucketed else 0  # the bucketed run may need a little more to reach the same loss
        model.fit(
            training_batches(data_dir, "train", spec, run_config, training=True),
            validation_data=training_batches(data_dir, "validation", spec, run_config, training=False),
            epochs=epochs + extra,
            callbacks=[timer.callback],
            verbose=0,
        )
        runs[bucketed] = timer.points
    target = runs[False][-1][1]
    reached = next(((seconds, loss) for seconds, loss in runs[True] if loss <= target), None)
    print(f"\n2. Length bucketing: time to the validation loss padded batches reach after {epochs} epochs ({target:.4f})")
    print(f"{'batches':<36} {'seconds':>8} {'val loss':>9} {'epochs':>7}")
    print(f"{'padded to the longest (reference)':<36} {runs[False][-1][0]:>8.1f} {target:>9.4f} {len(runs[False]):>7}")
    if reached is None:
        best = min(loss for _, loss in runs[True])
        print(f"{'bucketed by length, trimmed':<36} did not reach it in {len(runs[True])} epochs (best {best:.4f})")
        return
    epochs_needed = [point[0] for point in runs[True]].index(reached[0]) + 1
    print(f"{'bucketed by length, trimmed':<36} {reached[0]:>8.1f} {reached[1]:>9.4f} {epochs_needed:>7}")
    print(f"speed-up at equal validation loss: {runs[False][-1][0] / reached[0]:.2f}x")


def step_overhead(data_dir: Path, spec: DatasetSpec, config: TrainConfig, epochs: int) -> None:
    config = dataclasses.replace(config, epochs=epochs, early_stopping_patience=0, max_minutes=0.0, validate_every_steps=0)
    pairs = split_pairs(spec, "train", config, training=True)
    with tempfile.TemporaryDirectory() as scratch:
        train(data_dir, Path(scratch) / "model", config)
        history = TrainingState.load(Path(scratch) / "model" / CHECKPOINT_DIR).history
    ours_epochs = [later - earlier for earlier, later in itertools.pairwise(row["seconds"] for row in history)]

    pipeline = training_batches(data_dir, "train", spec, config, training=True)
    for _ in pipeline:  # the first pass reads the records and fills s2s train's in-memory copy
        pass
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in pipeline:
        pass
    pipeline_wall, pipeline_cpu = time.perf_counter() - wall, time.process_time() - cpu
    in_memory = pipeline.cache()
    for _ in in_memory:  # fill the cache: the bare run's batches are tensors in memory, the same ones each epoch
        pass
    model = compiled_model(spec, config)
    ends: list[float] = []
    import keras

    timer = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: ends.append(time.perf_counter()))
    model.fit(in_memory, epochs=epochs, callbacks=[timer], shuffle=False, verbose=0)
    bare_epochs = [later - earlier for earlier, later in itertools.pairwise(ends)]
    bare, ours = pairs / min(bare_epochs), pairs / min(ours_epochs)
    # On a shared machine an epoch can lose a third of its speed to the host: the median says how often the fastest repeats.
    bare_median, ours_median = pairs / statistics.median(bare_epochs), pairs / statistics.median(ours_epochs)
    print(f"\n3. Step overhead: {pairs} pairs, the fastest of {epochs - 1} epochs after the first, arch {config.arch}, latent {config.latent_dim}, "
          f"batch {config.batch_size}, bucketed {config.bucket_by_length}")
    print(f"{'run':<58} {'pairs/s':>8}  seconds of each epoch")
    print(f"{'bare train step on the same batches in memory (reference)':<58} {bare:>8.0f}  {' '.join(f'{t:.2f}' for t in bare_epochs)}")
    print(f"{'s2s train (records, validation, checkpoints, callbacks)':<58} {ours:>8.0f}  {' '.join(f'{t:.2f}' for t in ours_epochs)}")
    print(f"overhead: {1 - ours / bare:.1%} of the bare step's speed lost (goal: below 15%); "
          f"by each run's median epoch {1 - ours_median / bare_median:.1%} ({bare_median:.0f} against {ours_median:.0f} pairs/s)")
    print(f"s2s train's input pipeline alone, one epoch after the first: {pipeline_cpu:.2f} s of CPU in {pipeline_wall:.2f} s, "
          f"against {min(bare_epochs):.2f} s for the bare step's fastest epoch")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="runs/fra-eng/data", help="output of s2s prepare (s2s run --config configs/fra-eng.toml writes runs/fra-eng/data)")
    parser.add_argument("--pairs", type=int, default=8000, help="training pairs used")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--latent-dim", type=int, default=256)
    parser.add_argument("--compare", nargs="+", choices=("records", "bucketing", "overhead"), default=["records", "bucketing", "overhead"])
    parser.add_argument("--config", type=Path, default=Path(__file__).resolve().parents[1] / "configs" / "demo.toml", help="the recipe of --compare overhead")
    args = parser.parse_args()
    import_tensorflow()
    data_dir = Path(args.data)
    spec = DatasetSpec.load(data_dir)
    config = TrainConfig(latent_dim=args.latent_dim, max_train_pairs=args.pairs, shuffle_buffer=args.pairs)
    print(f"s2s train benchmark: {data_dir}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}")
    if "records" in args.compare:
        records_versus_numpy(data_dir, spec, config, args.epochs)
    if "bucketing" in args.compare:
        bucketing_speedup(data_dir, spec, config, args.epochs)
    if "overhead" in args.compare:
        recipe = load_config(TrainConfig, "train", args.config, {})
        step_overhead(data_dir, spec, dataclasses.replace(recipe, max_train_pairs=args.pairs), max(args.epochs, 2))


if __name__ == "__main__":
    main()
