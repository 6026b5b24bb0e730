"""Per-epoch checkpoints that make a killed training resumable, with early stopping and a time budget.

After every epoch, in this order:
1. `checkpoints/last.keras`: the whole model, optimizer state included;
2. `checkpoints/best.keras` when validation loss improved;
3. `checkpoints/state.json`: epochs done, best loss, patience used, per-epoch history.
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
from pathlib import Path
from typing import Any

from s2s.files import atomic_open, read_json

CHECKPOINT_DIR = "checkpoints"
LAST = "last.keras"
BEST = "best.keras"
STATE = "state.json"

logger = logging.getLogger(__name__)


def save_keras_atomically(model: Any, path: Path) -> None:
    """model.save() to a temporary `.keras` name beside `path`, then rename (Keras insists on the suffix)."""
    temp = path.with_name(f".{path.stem}-{os.getpid()}.keras")
    model.save(temp)
    os.replace(temp, path)


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


def make_checkpoint_callback(model_dir: Path, state: TrainingState, patience: int, max_minutes: float) -> Any:
    """A Keras callback writing checkpoints, state and history.csv each epoch, and stopping early or on budget."""
    import keras

    checkpoints = model_dir / CHECKPOINT_DIR

    class EpochCheckpoint(keras.callbacks.Callback):
        def on_train_begin(self, logs: dict | None = None) -> None:
            self.started = time.monotonic()
            self.partial_epoch = False

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            # A budget is a promise to a scheduler: stop mid-epoch rather than overrun it by most of an epoch.
            # Keras then validates and checkpoints the partial epoch as usual.
            if max_minutes and time.monotonic() - self.started >= max_minutes * 60:
                self.partial_epoch = True
                self.model.stop_training = True

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = {key: float(value) for key, value in (logs or {}).items()}
            val_loss = logs.get("val_loss", math.inf)
            improved = val_loss < state.best_val_loss
            save_keras_atomically(self.model, checkpoints / LAST)
            if improved:
                save_keras_atomically(self.model, checkpoints / BEST)
                state.best_val_loss, state.best_epoch, state.epochs_without_improvement = val_loss, epoch, 0
            else:
                state.epochs_without_improvement += 1
            state.epochs_done = epoch + 1
            state.history.append({"epoch": epoch, **logs, "seconds": round(time.monotonic() - self.started, 3)})
            if patience and state.epochs_without_improvement >= patience:
                state.stop_reason = f"early stopping: no better validation loss for {patience} epochs"
                self.model.stop_training = True
            elif max_minutes and time.monotonic() - self.started >= max_minutes * 60:
                where = f"during epoch {epoch + 1}" if self.partial_epoch else f"after epoch {epoch + 1}"
                state.stop_reason = f"time budget of {max_minutes:g} minutes reached {where}"
                self.model.stop_training = True
            state.save(checkpoints)
            with atomic_open(model_dir / "history.csv") as stream:
                stream.write(history_csv(state.history))
            figures = ", ".join(f"{name} {logs[name]:.4f}" for name in ("loss", "accuracy", "val_loss", "val_accuracy") if name in logs)
            logger.info(
                "epoch %d/%s: %s (%.0f s)%s",
                epoch + 1,
                self.params.get("epochs", "?"),
                figures,
                time.monotonic() - self.started,
                ", best so far" if improved else "",
            )

    return EpochCheckpoint()
