"""Training that shows its progress and keeps its promises across resumes: log lines, the budget, min_delta, the curves."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from s2s.config import validated
from s2s.errors import ConfigError
from s2s.training.checkpoints import is_better
from s2s.training.config import TrainConfig
from s2s.training.schedules import budget_rate
from s2s.training.train import train

SMALL = {"latent_dim": 32, "optimizer": "adam", "learning_rate": 0.005, "max_train_pairs": 3000, "seed": 1}


def _state(model_dir: Path) -> dict:
    return json.loads((model_dir / "checkpoints" / "state.json").read_text())


def test_the_budget_counts_every_run_of_a_resumed_training_and_progress_is_logged_between_epochs(toy_model, tmp_path: Path, caplog) -> None:
    """A 12-second budget spent, then a resume with the same budget: it stops at its first step (tracing included) instead
    of running 12 more seconds. Progress lines arrive four times a second with loss, pairs/s, time and budget left, and are the
    curves' points. The learning rate decays over the budget, to a tenth of the set rate once it is spent."""
    import keras

    config = TrainConfig(
        **SMALL, epochs=100, early_stopping_patience=0, max_minutes=0.2, log_every_seconds=0.25, learning_rate_decay="budget", label_smoothing=0.1
    )
    caplog.set_level(logging.INFO, logger="s2s")
    first = train(toy_model.data_dir, tmp_path / "model", config)
    spent = _state(tmp_path / "model")["training_seconds"]
    saved = keras.models.load_model(tmp_path / "model" / "checkpoints" / "last.keras")
    assert 0.1 * 0.005 * 0.999 <= float(saved.optimizer.learning_rate) < 0.2 * 0.005  # near the floor once the budget is spent
    assert saved.loss.get_config()["label_smoothing"] == pytest.approx(0.1)
    assert first["stop_reason"].startswith("time budget of 0.2 minutes reached") and 12.0 <= spent < 28.0
    lines = [record.getMessage() for record in caplog.records if "pairs/s" in record.getMessage()]
    assert len(lines) >= 3 and all("min trained" in line and "budget left" in line for line in lines)
    assert float(lines[-1].split("budget left ")[1].split(" min")[0]) < float(lines[0].split("budget left ")[1].split(" min")[0])

    second = train(toy_model.data_dir, tmp_path / "model", config, resume=True)
    state = _state(tmp_path / "model")
    assert second["stop_reason"].startswith("time budget of 0.2 minutes reached during epoch")
    assert state["training_seconds"] - spent < 12.0  # one step (traced anew) and a validation, not another 12 s
    seconds = [row["seconds"] for row in state["history"]]
    assert seconds == sorted(seconds) and seconds[-1] == pytest.approx(state["training_seconds"], abs=0.01)
    points = state["progress"]
    assert len(points) >= 3 and [point["minutes"] for point in points] == sorted(point["minutes"] for point in points)
    assert [point["step"] for point in points] == sorted({point["step"] for point in points})
    assert (tmp_path / "model" / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_early_stopping_needs_an_improvement_of_min_delta(toy_model, tmp_path: Path) -> None:
    """With min_delta 0.9 no epoch after the first improves enough, whatever the loss does: patience 1 stops at epoch 2.
    The best weights still follow any decrease."""
    config = TrainConfig(**SMALL, epochs=10, early_stopping_patience=1, min_delta=0.9, log_every_seconds=0)
    result = train(toy_model.data_dir, tmp_path / "model", config)
    state = _state(tmp_path / "model")
    assert state["epochs_done"] == 2 and result["stop_reason"] == "early stopping: no validation loss better by 90.00% for 1 epochs"
    losses = [row["val_loss"] for row in state["history"]]
    assert state["best_epoch"] == (1 if losses[1] < losses[0] else 0)
    assert state["progress"] == []  # log_every_seconds 0: one line per epoch, no points between


def test_is_better_is_relative_and_takes_the_first_finite_loss() -> None:
    assert is_better(0.5, float("inf"), 0.001) and not is_better(float("nan"), float("inf"), 0.001)
    assert is_better(0.998, 1.0, 0.001) and not is_better(0.9995, 1.0, 0.001)
    assert is_better(0.9999999, 1.0, 0.0) and not is_better(1.0, 1.0, 0.0)
    for bad in ({"min_delta": 1.0}, {"min_delta": -0.1}, {"log_every_seconds": -1.0}, {"learning_rate_decay": "budget"}, {"label_smoothing": 1.0}, {"ema_momentum": 1.0}):
        with pytest.raises(ConfigError):
            validated(TrainConfig(**bad))


def test_the_budget_decay_runs_a_cosine_from_the_rate_to_a_tenth() -> None:
    rates = [budget_rate(0.01, share / 10) for share in range(11)]
    assert rates[0] == pytest.approx(0.01) and rates[5] == pytest.approx(0.0055) and rates[10] == pytest.approx(0.001)
    assert rates == sorted(rates, reverse=True) and budget_rate(0.01, 1.7) == pytest.approx(0.001)


def test_validation_every_n_steps_validates_and_checkpoints_within_an_epoch(toy_model, tmp_path: Path) -> None:
    """3,000 pairs in batches of 64 are 47 steps an epoch: one epoch validated every 20 steps is 3 validations, at steps
    20, 40 and 60 of an endless shuffled stream, each checkpointed with its figures."""
    config = TrainConfig(**SMALL, epochs=1, validate_every_steps=20, early_stopping_patience=0, log_every_seconds=0)
    result = train(toy_model.data_dir, tmp_path / "model", config)
    state = _state(tmp_path / "model")
    assert [row["step"] for row in state["history"]] == [20, 40, 60] and all("val_loss" in row for row in state["history"])
    assert (result["validations"], result["steps"], result["epochs"]) == (3, 60, round(60 / 47, 2))
    assert result["stop_reason"] == "ran all 1 epochs (3 validations)" and state["steps_done"] == 60
    assert state["best_val_loss"] == min(row["val_loss"] for row in state["history"])


def test_a_moving_average_of_the_weights_is_what_validation_measures_and_the_model_keeps(toy_model, tmp_path: Path) -> None:
    """ema_momentum: the saved model holds the optimizer's average of the weights, and its loss on the validation split is
    the val_loss that training recorded; last.keras keeps the raw weights (which differ) to resume from, average included."""
    import keras
    import numpy as np

    from s2s.spec import DatasetSpec
    from s2s.training.data import training_batches

    config = TrainConfig(**SMALL, epochs=2, early_stopping_patience=0, log_every_seconds=0, ema_momentum=0.9)
    train(toy_model.data_dir, tmp_path / "model", config)
    state = _state(tmp_path / "model")
    assert state["best_epoch"] == 1  # the second epoch's average is the better (so it is both best.keras and the model)
    saved = keras.models.load_model(tmp_path / "model" / "model.keras")
    last = keras.models.load_model(tmp_path / "model" / "checkpoints" / "last.keras")
    assert last.optimizer.use_ema and last.optimizer.ema_momentum == pytest.approx(0.9)
    raw = last.get_weights()
    assert any(not np.allclose(a, b) for a, b in zip(raw, saved.get_weights(), strict=True))
    last.optimizer.finalize_variable_values(last.trainable_variables)  # the average, as last.keras carries it
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(last.get_weights(), saved.get_weights(), strict=True))

    validation = training_batches(toy_model.data_dir, "validation", DatasetSpec.load(toy_model.data_dir), config, training=False)
    measured = saved.evaluate(validation, verbose=0, return_dict=True)["loss"]
    assert measured == pytest.approx(state["history"][1]["val_loss"], rel=1e-4)
