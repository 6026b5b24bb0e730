"""A real toy model for end-to-end tests: the reverse-first-3 task, prepared, trained and kept for the session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipelines.config import PrepareConfig
from pipelines.prepare import prepare
from pipelines.synth import write_corpus
from training.config import TrainConfig
from training.train import train

IN_PROCESS = ["--direct_num_workers=1", "--direct_running_mode=in_memory"]  # no worker processes to start: faster tests

# The default encoder-decoder architecture; Adam at a higher rate than the default RMSprop gets it to 100% in a few epochs on 2 cores.
TOY_TRAINING = TrainConfig(latent_dim=128, optimizer="adam", learning_rate=0.005, epochs=8, early_stopping_patience=0, batch_size=64)


@dataclass(frozen=True)
class ToyModel:
    corpus: Path
    data_dir: Path
    model_dir: Path
    summary: dict


def build_toy_model(root: Path, pairs: int = 20_000) -> ToyModel:
    corpus = write_corpus("reverse-first-3", pairs, root / "rf3.tsv", seed=7)
    data_dir = root / "data"
    prepare([str(corpus)], str(data_dir), PrepareConfig(min_char_count=1, validation_fraction=0.05, test_fraction=0.05), IN_PROCESS)
    model_dir = root / "model"
    summary = train(data_dir, model_dir, TOY_TRAINING)
    return ToyModel(corpus, data_dir, model_dir, summary)
