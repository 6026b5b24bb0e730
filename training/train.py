"""`s2s train`: fit the model on prepared TFRecords and write a model directory (its files: see `ModelDir`)."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from s2s.config import log_config, validated
from s2s.errors import S2SError
from s2s.publish import atomic_open
from s2s.records import record_files
from s2s.spec import MANIFEST_FILE, SPEC_FILE, DatasetSpec
from s2s.tensorflow_import import import_tensorflow
from s2s.training.checkpoints import BEST, CHECKPOINT_DIR, LAST, TrainingState, make_checkpoint_callback, save_keras_atomically
from s2s.training.config import RESUMABLE_SETTINGS, STEP_DECODER_ARCHITECTURES, TrainConfig
from s2s.training.data import batches_per_epoch, check_records_match_spec, training_batches
from s2s.training.model import build_inference_models, build_training_model
from s2s.training.model_dir import CURVES_FILE, DECODER_FILE, ENCODER_FILE, MODEL_FILE, ModelDir
from s2s.training.schedules import learning_rate_callbacks

logger = logging.getLogger(__name__)


def train(data_dir: str | Path, model_dir: str | Path, config: TrainConfig, *, resume: bool = False) -> dict[str, Any]:
    """Fits the model and writes MODEL_DIR; returns a summary (epochs, best validation loss, seconds).

    Raises:
        S2SError: the data directory is not a prepared dataset, MODEL_DIR holds an
            unfinished run and `resume` is False, or the checkpoint does not match.
    """
    started = time.time()
    validated(config)
    data_dir, model_dir = Path(data_dir), Path(model_dir)
    spec = DatasetSpec.load(data_dir)
    for split in ("train", "validation"):
        record_files(data_dir, split)
        if not spec.split_sizes.get(split):
            raise S2SError(f"the {split} split of {data_dir} is empty: prepare more data or raise its fraction")
    check_records_match_spec(data_dir, spec)
    fingerprint = data_fingerprint(data_dir)
    state = _load_or_start(model_dir, config, fingerprint, resume)
    log_config(logger, "train", config)  # once the arguments are known good: a bad one is the only line printed

    tf = import_tensorflow()
    import keras

    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    if state.epochs_done:
        model = keras.models.load_model(model_dir / CHECKPOINT_DIR / LAST)
        logger.info("resuming after %s %d", config.round_name, state.epochs_done)
    else:
        model = compiled_training_model(spec, config)
    train_batches = training_batches(data_dir, "train", spec, config, training=True)
    validation_batches = training_batches(data_dir, "validation", spec, config, training=False)
    rounds, steps_per_round, epoch_batches = config.epochs, None, batches_per_epoch(spec, config)
    if config.validate_every_steps:  # a "round" of Keras's fit is then N steps of an endless stream of shuffled epochs
        steps_per_round = config.validate_every_steps
        rounds = math.ceil(config.epochs * epoch_batches / steps_per_round)
        train_batches = train_batches.repeat()
    checkpoint = make_checkpoint_callback(model_dir, state, config)
    callbacks = [
        checkpoint,
        keras.callbacks.TensorBoard(log_dir=str(model_dir / "logs"), write_graph=False),
        *learning_rate_callbacks(config, checkpoint.elapsed),  # the budget's own clock, counted across resumes
    ]
    if config.ema_momentum:  # validation measures the averaged weights, swapped in for it and back out after
        callbacks.append(keras.callbacks.SwapEMAWeights())
    # Bucketed batches have no known count per epoch, and Keras warns at every epoch's end that the data "ran out".
    warnings.filterwarnings("ignore", message="Your input ran out of data")
    if state.epochs_done < rounds:
        model.fit(
            train_batches,
            validation_data=validation_batches,
            epochs=rounds,
            steps_per_epoch=steps_per_round,
            initial_epoch=state.epochs_done,
            callbacks=callbacks,
            shuffle=False,  # the tf.data pipeline shuffles
            verbose="auto" if sys.stdout.isatty() else 0,  # a progress bar on a terminal; a job log gets the progress lines
        )
    if not state.stop_reason:
        state.stop_reason = f"ran all {config.epochs} epochs" + (f" ({rounds} validations)" if steps_per_round else "")
    if not (model_dir / CHECKPOINT_DIR / BEST).exists():
        raise S2SError("training never reached a finite validation loss: lower the learning rate or check the data")
    best = keras.models.load_model(model_dir / CHECKPOINT_DIR / BEST)
    _write_model_dir(best, model_dir, data_dir, config, state)
    state.finished = True
    state.save(model_dir / CHECKPOINT_DIR)
    return {
        "model_dir": str(model_dir),
        "epochs": state.epochs_done if not steps_per_round else round(state.steps_done / epoch_batches, 2),
        "validations": len(state.history),
        "steps": state.steps_done,
        "best_epoch": state.best_epoch + 1,
        "best_val_loss": state.best_val_loss,
        "best_val_accuracy": state.history[state.best_epoch].get("val_accuracy") if state.history else None,
        "stop_reason": state.stop_reason,
        "seconds": round(time.time() - started, 1),
    }


def data_fingerprint(data_dir: Path) -> str:
    """SHA-256 of the dataset's spec.json and manifest.json: what a resumed run must be fed again."""
    digest = hashlib.sha256()
    for name in (SPEC_FILE, MANIFEST_FILE):
        path = data_dir / name
        if path.exists():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _load_or_start(model_dir: Path, config: TrainConfig, fingerprint: str, resume: bool) -> TrainingState:
    checkpoints = model_dir / CHECKPOINT_DIR
    try:
        state = TrainingState.load(checkpoints)
    except (OSError, ValueError) as error:
        raise S2SError(f"cannot read {checkpoints}/state.json ({error}); start again in a new output directory") from None
    settings = dataclasses.asdict(config)
    if resume:
        if state is None or not (checkpoints / LAST).exists():
            raise S2SError(f"nothing to resume in {model_dir}: no checkpoint there; run without --resume")
        defaults = dataclasses.asdict(TrainConfig())  # a checkpoint from before a setting existed ran on its default
        changed = sorted(
            key for key in settings if key not in RESUMABLE_SETTINGS and state.config.get(key, defaults[key]) != settings[key]
        )
        if changed:
            raise S2SError(
                f"cannot resume: the checkpoint was trained with other settings ({', '.join(changed)}); "
                "use the original settings or a new output directory"
            )
        if state.data_fingerprint != fingerprint:
            raise S2SError("cannot resume: the data directory changed since the checkpoint (spec or manifest differ)")
        state.config, state.finished, state.stop_reason = settings, False, ""
        return state
    if state is not None and state.epochs_done and not state.finished:
        raise S2SError(f"{model_dir} holds an unfinished training run: pass --resume to continue it, or choose a new output directory")
    if checkpoints.exists():
        shutil.rmtree(checkpoints)
    checkpoints.mkdir(parents=True, exist_ok=True)
    return TrainingState({"config": settings, "data_fingerprint": fingerprint})


def compiled_training_model(spec: DatasetSpec, config: TrainConfig) -> Any:
    """The teacher-forced model compiled as `s2s train` fits it (benchmarks time the same step)."""
    import keras

    model = build_training_model(len(spec.source_vocabulary), len(spec.target_vocabulary), spec.decoder_steps, config)
    optimizer_class = keras.optimizers.Adam if config.optimizer == "adam" else keras.optimizers.RMSprop
    # use_ema: the optimizer updates a moving average of every weight after each step (Polyak averaging)
    averaging = {"use_ema": True, "ema_momentum": config.ema_momentum} if config.ema_momentum else {}
    model.compile(
        optimizer=optimizer_class(learning_rate=config.learning_rate, **averaging),
        # mean over real steps only
        loss=keras.losses.CategoricalCrossentropy(reduction="mean_with_sample_weight", label_smoothing=config.label_smoothing),
        weighted_metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )
    # Keras's TensorFlow trainer would create the optimizer's slots inside the first traced train step, and a
    # tf.function that creates variables is traced twice: built here, the train step is traced once (3 s less at start).
    model.optimizer.build(model.trainable_variables)
    return model


def _write_model_dir(model: Any, model_dir: Path, data_dir: Path, config: TrainConfig, state: TrainingState) -> None:
    save_keras_atomically(model, model_dir / MODEL_FILE)
    if config.arch in STEP_DECODER_ARCHITECTURES:
        encoder, decoder = build_inference_models(model, config.num_layers)
        save_keras_atomically(encoder, model_dir / ENCODER_FILE)
        save_keras_atomically(decoder, model_dir / DECODER_FILE)
    with atomic_open(model_dir / SPEC_FILE) as stream:
        stream.write((data_dir / SPEC_FILE).read_text(encoding="utf-8"))
    ModelDir(model_dir).write_settings(config, data_dir, state.data_fingerprint)
    _plot_curves(state, model_dir / CURVES_FILE)


def _plot_curves(state: TrainingState, path: Path) -> None:
    """Loss and accuracy against minutes of training: training at every progress line, validation at each epoch's end.

    Points per log interval, not per epoch, so that a run of a few minutes (one partial epoch) still draws a curve.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epoch_minutes = [row.get("seconds", 0.0) / 60 for row in state.history]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, metric in zip(axes, ("loss", "accuracy"), strict=True):
        # Progress points where there are some (an epoch's mean would lag behind them); else one point per epoch.
        points = [(point["minutes"], point[metric]) for point in state.progress if metric in point]
        label = f"training {metric} (mean since the last point)"
        if not points:
            points = [(minutes, row[metric]) for minutes, row in zip(epoch_minutes, state.history, strict=True) if metric in row]
            label = f"training {metric} (each epoch's mean)"
        if points:
            axis.plot(*zip(*points, strict=True), "-", marker=".", label=label)
        validation = [(minutes, row[f"val_{metric}"]) for minutes, row in zip(epoch_minutes, state.history, strict=True) if f"val_{metric}" in row]
        if validation:
            axis.plot(*zip(*validation, strict=True), "--", marker="o", label=f"validation {metric} (each epoch's end)")
        axis.set_xlabel("minutes of training")
        axis.set_xlim(left=0)
        axis.set_title(metric)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    with atomic_open(path, "wb") as stream:
        figure.savefig(stream, format="png", dpi=100)
    plt.close(figure)
