"""`ModelDir`: the output of `s2s train`, as the one hand-off the later stages read.

Evaluation, export and the chain runner open a trained model through this
class, never through training's file names, checkpoint layout or layer names,
so training can change how it works without breaking them.

| file | content |
|---|---|
| `model.keras` | the training model with the best validation loss |
| `encoder.keras`, `decoder.keras` | inference encoder and one-step decoder built from its layers (attention and lstm archs) |
| `spec.json` | a copy of the dataset's spec: vocabularies, lengths, normalisation |
| `train_config.json` | the resolved training settings, the data folder and its fingerprint |
| `history.csv`, `training_curves.png` | per-epoch loss and accuracy, training and validation |
| `logs/` | TensorBoard logs |
| `checkpoints/` | last and best checkpoints and `state.json`, which `--resume` continues from |
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from s2s.config import build_config
from s2s.errors import S2SError, first_line
from s2s.files import read_json
from s2s.publish import write_json
from s2s.spec import SPEC_FILE, DatasetSpec
from s2s.tensorflow_import import import_tensorflow
from s2s.training.checkpoints import CHECKPOINT_DIR, LAST, TrainingState
from s2s.training.config import STEP_DECODER_ARCHITECTURES, TrainConfig
from s2s.training.decoding import KerasGreedyDecoder
from s2s.training.model import ATTENTION_PROJECTION as ATTENTION_PROJECTION  # the layer names export reads weights by
from s2s.training.model import SOFTMAX as SOFTMAX

MODEL_FILE = "model.keras"
ENCODER_FILE = "encoder.keras"
DECODER_FILE = "decoder.keras"
CONFIG_FILE = "train_config.json"
CURVES_FILE = "training_curves.png"


@dataclass(frozen=True)
class TrainedSettings:
    """`train_config.json`, typed: the settings a model was trained with and the data it was trained on."""

    config: TrainConfig
    data_dir: str
    data_fingerprint: str


@dataclass(frozen=True)
class TrainedModels:
    """The Keras models of a finished run: the training model and, for step-decoder archs, the inference pair."""

    model: Any
    encoder: Any
    decoder: Any

    def maskless_encoder(self, input_name: str) -> Any:
        """The encoder rebuilt from the trained layers without its Masking layer (ONNX export feeds lengths instead)."""
        from s2s.training.model import build_maskless_encoder

        return build_maskless_encoder(self.model, self.num_layers, input_name)

    @property
    def num_layers(self) -> int:
        return (len(self.encoder.outputs) - (2 if self.attention else 0)) // 2

    @property
    def attention(self) -> bool:
        from s2s.training.model import has_attention

        return has_attention(self.model)


class ModelDir:
    """A trained model's folder.

    >>> model_dir = ModelDir("runs/toy/model")  # doctest: +SKIP
    >>> model_dir.settings().config.arch  # doctest: +SKIP
    'attention'
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __fspath__(self) -> str:
        return str(self.path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINT_DIR

    def settings(self) -> TrainedSettings:
        """The typed `train_config.json`.

        Raises:
            S2SError: the file is missing (an unfinished or foreign folder) or holds unknown or malformed settings.
        """
        path = self.path / CONFIG_FILE
        if not path.exists():
            raise S2SError(f"{path} does not exist: is {self.path} the output of a finished s2s train?")
        values = dict(read_json(path))
        data_dir, fingerprint = str(values.pop("data_dir", "")), str(values.pop("data_fingerprint", ""))
        return TrainedSettings(build_config(TrainConfig, values, where=str(path)), data_dir, fingerprint)

    def write_settings(self, config: TrainConfig, data_dir: Path, data_fingerprint: str) -> None:
        write_json(self.path / CONFIG_FILE, {**dataclasses.asdict(config), "data_dir": str(data_dir), "data_fingerprint": data_fingerprint})

    def spec(self) -> DatasetSpec:
        return DatasetSpec.load(self.path)

    def training_state(self) -> TrainingState | None:
        """Progress and history from `checkpoints/state.json`; None for a folder that never trained."""
        return TrainingState.load(self.checkpoints)

    def can_resume(self) -> bool:
        """Whether an unfinished run with a checkpoint is here, which `s2s train --resume` would continue."""
        try:
            state = self.training_state()
        except (OSError, ValueError):
            return False
        return state is not None and not state.finished and (self.checkpoints / LAST).exists()

    def load(self, *, step_decoder: bool = True) -> TrainedModels:
        """The trained Keras models, checked against spec.json.

        Args:
            step_decoder: also load the inference encoder and decoder, refusing archs that have none.

        Raises:
            S2SError: a file is missing or damaged, the arch has no step decoder, or spec.json does not match the model.
        """
        arch = self.settings().config.arch
        if step_decoder and arch not in STEP_DECODER_ARCHITECTURES:
            raise S2SError(
                f"this needs arch {' or '.join(STEP_DECODER_ARCHITECTURES)}, which decode step by step; {self.path} is {arch}"
            )
        spec = self.spec()
        models = [self._load_keras(MODEL_FILE)]
        if step_decoder:
            models += [self._load_keras(ENCODER_FILE), self._load_keras(DECODER_FILE)]
            source_size, target_size = models[1].inputs[0].shape[-1], models[2].inputs[0].shape[-1]
            if (source_size, target_size) != (len(spec.source_vocabulary), len(spec.target_vocabulary)):
                raise S2SError(
                    f"{self.path / SPEC_FILE} does not match the model: vocabularies of {len(spec.source_vocabulary)} and "
                    f"{len(spec.target_vocabulary)} tokens, model inputs of {source_size} and {target_size}"
                )
        else:
            models += [None, None]
        return TrainedModels(*models)

    def greedy_decoder(self, models: TrainedModels | None = None) -> KerasGreedyDecoder:
        """A `KerasGreedyDecoder` over these models: the reference that evaluation scores and the ONNX export must match.

        Args:
            models: models already loaded by `load()`, to share rather than load again.

        Raises:
            S2SError: a file is missing or damaged.
        """
        settings = self.settings().config
        if settings.arch in STEP_DECODER_ARCHITECTURES:
            models = models or self.load()
            return KerasGreedyDecoder(self.spec(), settings.arch, settings.reverse_source, encoder=models.encoder, decoder=models.decoder)
        return KerasGreedyDecoder(self.spec(), settings.arch, settings.reverse_source, model=self.load(step_decoder=False).model)

    def _load_keras(self, name: str) -> Any:
        path = self.path / name
        if not path.exists():
            raise S2SError(f"{path} does not exist: is {self.path} the output of a finished s2s train?")
        import_tensorflow()
        import keras

        try:
            return keras.models.load_model(path, compile=False)
        except Exception as error:  # Keras raises ValueError, OSError or zip errors for damaged files
            raise S2SError(f"cannot load {path}: {first_line(error)}") from None


def report_name(split: str, suffix: str) -> str:
    """The file name of a split's evaluation report: `eval-test.json`, `eval-test.md`."""
    return f"eval-{split}.{suffix}"
