"""Per-epoch checkpoints that make a killed training resumable, with early stopping and a time budget.

After every epoch (or every `validate_every_steps` steps), in this order:
1. `checkpoints/last.keras`: the whole model, optimizer state included;
2. `checkpoints/best.keras` when validation loss improved (the weights' moving average, when training keeps one);
3. `checkpoints/state.json`: epochs done, best loss, patience used, training seconds across resumes, per-epoch history
   and the progress points logged within epochs.
Each is written to a temporary name and renamed, and state.json comes last,
so after a kill at any moment state.json describes files that exist whole.
A resumed run loads last.keras and continues at the next epoch with the
optimizer's step count and moments intact.

Why not Keras's own `BackupAndRestore`, `ModelCheckpoint`, `EarlyStopping`
and `CSVLogger`: the first two save in place, so a kill mid-save leaves a
broken file that the next run loads; `EarlyStopping` starts its patience and
best loss afresh in every process, so a resumed run would stop late; and a
`CSVLogger` row written before a kill repeats after the resume. One callback
keeping all four in `state.json`, written last, has none of these faults.
TensorBoard logging does come from Keras (`keras.callbacks.TensorBoard`).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from s2s.files import read_json
from s2s.publish import atomic_open

CHECKPOINT_DIR = "checkpoints"
LAST = "last.keras"
BEST = "best.keras"
HISTORY_FILE = "history.csv"  # per-epoch figures beside the model, rewritten after each epoch
STATE = "state.json"

logger = logging.getLogger(__name__)


def save_keras_atomically(model: Any, path: Path) -> None:
    """model.save() to a temporary `.keras` name beside `path`, then rename (Keras insists on the suffix)."""
    temp = path.with_name(f".{path.stem}-{os.getpid()}.keras")
    model.save(temp)
    os.replace(temp, path)


@contextmanager
def averaged_weights(model: Any) -> Iterator[None]:
    """Puts the optimizer's moving average of the weights (`ema_momentum`) into `model` for the block, then the weights back.

    Training goes on from the raw weights (last.keras keeps them, with the average in the optimizer's state), while
    best.keras, and so the saved model, holds the average, which is what validation measured.
    """
    if not getattr(model.optimizer, "use_ema", False):
        yield
        return
    weights = model.get_weights()
    model.optimizer.finalize_variable_values(model.trainable_variables)
    try:
        yield
    finally:
        model.set_weights(weights)


class TrainingState:
    """What `checkpoints/state.json` holds: progress, early-stopping bookkeeping and history."""

    def __init__(self, values: dict[str, Any] | None = None):
        values = values or {}
        self.epochs_done: int = values.get("epochs_done", 0)
        self.best_val_loss: float = values.get("best_val_loss", math.inf)
        self.best_epoch: int = values.get("best_epoch", -1)
        self.epochs_without_improvement: int = values.get("epochs_without_improvement", 0)
        self.history: list[dict[str, float]] = values.get("history", [])
        self.config: dict[str, Any] = values.get("config", {})
        self.data_fingerprint: str = values.get("data_fingerprint", "")
        self.finished: bool = values.get("finished", False)
        self.stop_reason: str = values.get("stop_reason", "")
        self.training_seconds: float = values.get("training_seconds", 0.0)  # every run's, so a budget holds across resumes
        self.progress: list[dict[str, float]] = values.get("progress", [])  # {step, minutes, loss, accuracy} per log line
        self.steps_done: int = values.get("steps_done", int(self.progress[-1]["step"]) if self.progress else 0)

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    @classmethod
    def load(cls, directory: Path) -> TrainingState | None:
        path = directory / STATE
        return cls(read_json(path)) if path.exists() else None

    def save(self, directory: Path) -> None:
        with atomic_open(directory / STATE) as stream:
            json.dump(self.to_dict(), stream, indent=2, default=float)


def history_csv(history: list[dict[str, float]]) -> str:
    """The per-epoch metrics as CSV text, one row per epoch."""
    columns = sorted({key for row in history for key in row} - {"epoch"})
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["epoch", *columns])
    for row in history:
        writer.writerow([row["epoch"], *(f"{row[column]:.6g}" if column in row else "" for column in columns)])
    return buffer.getvalue()


def is_better(val_loss: float, best: float, min_delta: float) -> bool:
    """Whether a validation loss improves on the best by at least `min_delta` of it (Keras's min_delta, relative)."""
    return val_loss < best * (1.0 - min_delta) if math.isfinite(best) else math.isfinite(val_loss)


def make_checkpoint_callback(model_dir: Path, state: TrainingState, config: Any) -> Any:
    """A Keras callback writing checkpoints, state and history.csv each epoch, logging progress, stopping early or on budget.

    `config` is the run's TrainConfig: patience, min_delta, the budget, the log interval and the batch size.
    """
    import keras

    checkpoints = model_dir / CHECKPOINT_DIR
    patience, max_minutes = config.early_stopping_patience, config.max_minutes
    unit = config.round_name

    class EpochCheckpoint(keras.callbacks.Callback):
        def on_train_begin(self, logs: dict | None = None) -> None:
            self.started = time.monotonic()
            self.before = state.training_seconds  # earlier runs' time: the budget is the whole training's, not this run's
            self.partial_epoch = False
            self.step = state.steps_done
            self.last_log, self.steps_since_log, self.epoch = self.started, 0, 0

        def elapsed(self) -> float:
            return self.before + time.monotonic() - self.started

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.epoch = epoch
            self.logged_means = {"batches": 0, "loss": 0.0, "accuracy": 0.0}  # the epoch's running means at the last line

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            self.step += 1
            self.steps_since_log += 1
            now = time.monotonic()
            if config.log_every_seconds and now - self.last_log >= config.log_every_seconds:
                self._log_progress(logs or {}, batch + 1, now)
            # A budget is a promise to a scheduler: stop mid-epoch rather than overrun it by most of an epoch.
            # Keras then validates and checkpoints the partial epoch as usual.
            if max_minutes and self.elapsed() >= max_minutes * 60:
                self.partial_epoch = True
                self.model.stop_training = True

        def _log_progress(self, logs: dict, batches: int, now: float) -> None:
            """One line a person or a scheduler can follow, and a point of the curves.

            Keras reports the epoch's running means; the line gives the mean of the batches since the last line, so a
            curve drawn from these points shows where the loss is, not where the epoch's average lags behind.
            """
            before, since = self.logged_means, batches - self.logged_means["batches"]
            interval = {}
            for name in ("loss", "accuracy"):
                mean = float(logs.get(name, math.nan))
                interval[name] = (mean * batches - before[name] * before["batches"]) / since if since > 0 else mean
                self.logged_means[name] = mean
            self.logged_means["batches"] = batches
            loss, accuracy = interval["loss"], interval["accuracy"]
            pairs_per_second = self.steps_since_log * config.batch_size / max(now - self.last_log, 1e-9)
            minutes = self.elapsed() / 60
            left = f", budget left {max(max_minutes - minutes, 0.0):.1f} min" if max_minutes else ""
            logger.info(
                "step %d (%s %d): loss %.4f, accuracy %.4f, about %.0f pairs/s, %.1f min trained%s",
                self.step, unit, self.epoch + 1, loss, accuracy, pairs_per_second, minutes, left,
            )
            state.progress.append({"step": self.step, "minutes": round(minutes, 4), "loss": loss, "accuracy": accuracy})
            self.last_log, self.steps_since_log = now, 0

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = {key: float(value) for key, value in (logs or {}).items()}
            val_loss = logs.get("val_loss", math.inf)
            improved = val_loss < state.best_val_loss  # the best weights are kept on any decrease
            save_keras_atomically(self.model, checkpoints / LAST)
            if is_better(val_loss, state.best_val_loss, config.min_delta):
                state.epochs_without_improvement = 0
            else:  # patience runs on tiny improvements too: a loss falling by 1e-6 an epoch has converged
                state.epochs_without_improvement += 1
            if improved:
                with averaged_weights(self.model):  # the weights that validation measured
                    save_keras_atomically(self.model, checkpoints / BEST)
                state.best_val_loss, state.best_epoch = val_loss, epoch
            state.epochs_done, state.steps_done = epoch + 1, self.step
            state.training_seconds = self.elapsed()
            state.history.append({"epoch": epoch, **logs, "seconds": round(state.training_seconds, 3), "step": self.step})
            if patience and state.epochs_without_improvement >= patience:
                better = f"better by {config.min_delta:.2%}" if config.min_delta else "better"
                state.stop_reason = f"early stopping: no validation loss {better} for {patience} {unit}s"
                self.model.stop_training = True
            elif max_minutes and state.training_seconds >= max_minutes * 60:
                where = f"during {unit} {epoch + 1}" if self.partial_epoch else f"after {unit} {epoch + 1}"
                state.stop_reason = f"time budget of {max_minutes:g} minutes reached {where}"
                self.model.stop_training = True
            state.save(checkpoints)
            with atomic_open(model_dir / HISTORY_FILE) as stream:
                stream.write(history_csv(state.history))
            figures = ", ".join(f"{name} {logs[name]:.4f}" for name in ("loss", "accuracy", "val_loss", "val_accuracy") if name in logs)
            logger.info(
                "%s %d/%s: %s (%.1f min trained)%s",
                unit,
                epoch + 1,
                self.params.get("epochs", "?"),
                figures,
                state.training_seconds / 60,
                ", best so far" if improved else "",
            )

    return EpochCheckpoint()
