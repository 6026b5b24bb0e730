"""Learning-rate decay for `s2s train`: none, on a plateau of the validation loss, or over the time budget.

A run with a time budget does not know how many steps it will take, so a
step-based schedule cannot end where the budget does; "budget" decays by the
share of the budget spent (counted across resumes, as the budget is), along
a cosine from the set rate to a tenth of it. "plateau" halves the rate after
an epoch whose validation loss is no better, down to 1/32 of it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from s2s.training.config import TrainConfig

PLATEAU_FACTOR, PLATEAU_FLOOR = 0.5, 1 / 32
BUDGET_FLOOR = 0.1
_BUDGET_UPDATE_STEPS = 20  # set the rate every this many steps: a cheap host call, and minutes of budget are thousands of steps


def budget_rate(base: float, spent: float) -> float:
    """The rate after `spent` (0 to 1) of the budget: a cosine from `base` down to `BUDGET_FLOOR * base`."""
    share = min(max(spent, 0.0), 1.0)
    return base * (BUDGET_FLOOR + (1 - BUDGET_FLOOR) * 0.5 * (1 + math.cos(math.pi * share)))


def learning_rate_callbacks(config: TrainConfig, training_seconds: Callable[[], float]) -> list[Any]:
    """The Keras callbacks that carry out `config.learning_rate_decay` (none for a constant rate).

    Args:
        training_seconds: the time budget's clock (training time across resumes), read when the rate is set.
    """
    import keras

    if config.learning_rate_decay == "plateau":
        minimum = config.learning_rate * PLATEAU_FLOOR
        return [keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=PLATEAU_FACTOR, patience=1, min_lr=minimum, verbose=0)]
    if config.learning_rate_decay != "budget":
        return []
    budget = config.max_minutes * 60

    class BudgetDecay(keras.callbacks.Callback):
        def on_train_begin(self, logs: dict | None = None) -> None:
            self.steps = 0

        def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
            if self.steps % _BUDGET_UPDATE_STEPS == 0:
                self.model.optimizer.learning_rate.assign(budget_rate(config.learning_rate, training_seconds() / budget))
            self.steps += 1

    return [BudgetDecay()]
