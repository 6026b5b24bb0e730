"""Settings of `s2s train` and `s2s evaluate`: the `[train]` and `[evaluate]` tables of a config file, overridden by flags."""

from __future__ import annotations

from dataclasses import dataclass

from s2s.config import setting
from s2s.errors import ConfigError
from s2s.spec import SPLITS

ATTENTION = "attention"
LSTM = "lstm"
REPEAT_VECTOR = "repeat-vector"
ARCHITECTURES = (ATTENTION, LSTM, REPEAT_VECTOR)
STEP_DECODER_ARCHITECTURES = (ATTENTION, LSTM)  # trained with teacher forcing, decoded one step at a time
OPTIMIZERS = ("rmsprop", "adam")
LEARNING_RATE_DECAYS = ("none", "plateau", "budget")

# Settings that may change when a run is resumed; every other one must match the checkpoint.
RESUMABLE_SETTINGS = frozenset({"epochs", "max_minutes", "early_stopping_patience", "min_delta", "log_every_seconds", "shuffle_buffer"})


@dataclass(frozen=True)
class TrainConfig:
    """The model and how it is fitted.

    The architecture defaults to attention: with the same data and parameter
    count it scored chrF 57 where the source material's lstm_seq2seq scored 35.
    The other defaults are the source material's (latent 256, one layer each
    side, RMSprop, batch 64), plus early stopping on validation loss.
    """

    arch: str = setting(
        ATTENTION,
        "attention (bidirectional encoder, dot-product attention), lstm (the source material's lstm_seq2seq) "
        "or repeat-vector (RepeatVector + TimeDistributed)",
        ARCHITECTURES,
    )
    latent_dim: int = setting(
        256, "width of the (h, c) states: decoder LSTM units; attention's encoder has latent_dim / 2 units each direction", at_least=1
    )
    num_layers: int = setting(1, "stacked LSTM layers in the encoder and in the decoder; layer i's final state seeds decoder layer i", at_least=1, at_most=8)
    dropout: float = setting(0.0, "dropout on each LSTM layer's inputs, in [0, 1)", at_least=0, below=1)
    batch_size: int = setting(64, "pairs per batch", at_least=1)
    epochs: int = setting(100, "the most epochs to run; early stopping usually ends sooner", at_least=1)
    optimizer: str = setting("rmsprop", "rmsprop (the source material's) or adam", OPTIMIZERS)
    learning_rate: float = setting(0.001, "the optimizer's step size", above=0)
    learning_rate_decay: str = setting(
        "none",
        "none: a constant rate; plateau: halved after an epoch without a better validation loss (down to 1/32); budget: "
        "cosine decay to a tenth over max_minutes",
        LEARNING_RATE_DECAYS,
    )
    label_smoothing: float = setting(0.0, "share of each target's probability spread over the other characters (0: none)", at_least=0, below=1)
    ema_momentum: float = setting(
        0.0,
        "keep an exponential moving average of the weights with this momentum (e.g. 0.999, about the last 1,000 steps); "
        "validation, the best checkpoint and the saved model use the average; 0: none",
        at_least=0,
        below=1,
        zero="none",
    )
    reverse_source: bool = setting(False, "feed source characters last to first (Sutskever et al. 2014)")
    early_stopping_patience: int = setting(5, "stop after this many epochs without a better validation loss; 0 never stops early", at_least=0)
    min_delta: float = setting(
        0.001, "early stopping: a validation loss counts as better only when at least this fraction below the best; 0: any decrease",
        at_least=0,
        below=1,
    )
    max_minutes: float = setting(
        0.0, "training time budget, counted across resumes: stop once spent, mid-epoch if need be; 0 means no budget",
        at_least=0,
        zero="no budget",
    )
    validate_every_steps: int = setting(
        0,
        "validate, checkpoint and count early stopping every N training steps instead of at each epoch's end (for long "
        "epochs and short budgets; epochs then bounds the steps, and patience counts validations); 0: each epoch's end",
        at_least=0,
        zero="each epoch's end",
    )
    log_every_seconds: float = setting(30.0, "a progress line (loss, accuracy, pairs/s, time and budget left) this often; 0: per epoch", at_least=0, zero="per epoch"
    )
    bucket_by_length: bool = setting(False, "batch pairs of similar length (sorted within windows of 16 batches) and trim each batch's padding")
    shuffle_buffer: int = setting(
        1_000_000,
        "training pairs held for shuffling each epoch (as character ids, under 1 KB a pair); a split this size or smaller is "
        "shuffled whole, which matters because corpora such as Tatoeba's come sorted by length; 0: file order",
        at_least=0,
        zero="file order",
    )
    max_train_pairs: int = setting(0, "use only the first N training pairs in file order; 0 uses all", at_least=0, zero="all")
    seed: int = setting(0, "weights, shuffling and dropout seed")
    deterministic: bool = setting(False, "make TensorFlow ops deterministic: repeatable runs, somewhat slower")

    @property
    def round_name(self) -> str:
        """What one round of Keras's fit is, in logs and stop reasons: an epoch, or N steps ending in a validation."""
        return "validation" if self.validate_every_steps else "epoch"

    def validate(self) -> None:
        """The rules between settings (each setting's own range is declared with it and checked by `s2s.config.validated`).

        Raises:
            ConfigError: the first rule broken.
        """
        if self.arch == ATTENTION and self.latent_dim % 2:
            raise ConfigError(f"latent_dim must be even for arch = attention (half per direction), got {self.latent_dim}")
        if self.learning_rate_decay == "budget" and not self.max_minutes:
            raise ConfigError("learning_rate_decay = budget decays over max_minutes: set max_minutes too")
        if self.bucket_by_length and self.arch == REPEAT_VECTOR:
            raise ConfigError("bucket_by_length needs arch = attention or lstm: repeat-vector emits a fixed number of steps")


@dataclass(frozen=True)
class EvaluateConfig:
    """Settings of `s2s evaluate` and the chain's `[evaluate]` table: which split is scored, and how."""

    split: str = setting("test", "the split to score", SPLITS)
    batch_size: int = setting(256, "sentences decoded together", at_least=1)
    limit: int = setting(0, "score only the first N distinct sources; 0 scores all", at_least=0, zero="all")
    max_output_length: int = setting(0, "most characters per translation; 0 uses the spec's longest target", at_least=0, zero="the spec's")
