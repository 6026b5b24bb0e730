"""`spec.json`: the facts about a prepared dataset that every later stage reads.

Training builds its model from it, export copies it into the ONNX metadata and
serving encodes input with it. Nothing downstream re-derives a vocabulary or a
length limit on its own, so nothing can drift between stages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from s2s import vocab as vocab_module
from s2s.errors import S2SError
from s2s.files import read_json
from s2s.publish import write_json
from s2s.text import TextNormalizer
from s2s.vocab import Vocabulary

SPEC_FILE = "spec.json"
MANIFEST_FILE = "manifest.json"
TRAIN, VALIDATION, TEST = "train", "validation", "test"
SPLITS = (TRAIN, VALIDATION, TEST)
RECORD_SUFFIX = ".tfrecord.gz"
SPEC_FORMAT_VERSION = 1


def record_pattern(split: str) -> str:
    """The file name glob of one split's TFRecord shards, relative to the data directory."""
    return f"{split}-*-of-*{RECORD_SUFFIX}"


@dataclass(frozen=True)
class DatasetSpec:
    """Vocabularies, lengths, normalisation and split sizes of one prepared dataset.

    `max_source_length` is the encoder's time steps (the longest kept source,
    in characters). The decoder runs `max_target_length + 1` steps: its input
    is the start token followed by the target, its output the target followed
    by the end token.
    """

    source_vocabulary: Vocabulary
    target_vocabulary: Vocabulary
    max_source_length: int
    max_target_length: int
    normalizer: TextNormalizer
    split_sizes: dict[str, int] = field(default_factory=dict)

    @property
    def decoder_steps(self) -> int:
        """Time steps of the decoder input and target: the target plus start or end token."""
        return self.max_target_length + 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": SPEC_FORMAT_VERSION,
            "source_vocabulary": self.source_vocabulary.to_list(),
            "target_vocabulary": self.target_vocabulary.to_list(),
            "special_tokens": {
                "pad": {"token": vocab_module.PAD, "id": vocab_module.PAD_ID},
                "start": {"token": vocab_module.START, "id": vocab_module.START_ID},
                "end": {"token": vocab_module.END, "id": vocab_module.END_ID},
                "unknown": {"token": vocab_module.UNKNOWN, "id": vocab_module.UNKNOWN_ID},
            },
            "max_source_length": self.max_source_length,
            "max_target_length": self.max_target_length,
            "decoder_steps": self.decoder_steps,
            "normalization": self.normalizer.to_dict(),
            "split_sizes": dict(self.split_sizes),
            "records": {split: record_pattern(split) for split in SPLITS},
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DatasetSpec:
        if values.get("format_version") != SPEC_FORMAT_VERSION:
            raise S2SError(f"spec format {values.get('format_version')!r} is not {SPEC_FORMAT_VERSION}: re-run s2s prepare")
        return cls(
            source_vocabulary=Vocabulary.from_list(values["source_vocabulary"]),
            target_vocabulary=Vocabulary.from_list(values["target_vocabulary"]),
            max_source_length=int(values["max_source_length"]),
            max_target_length=int(values["max_target_length"]),
            normalizer=TextNormalizer.from_dict(values["normalization"]),
            split_sizes={str(key): int(value) for key, value in values.get("split_sizes", {}).items()},
        )

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / SPEC_FILE
        write_json(path, self.to_dict())
        return path

    @classmethod
    def load(cls, directory: str | Path) -> DatasetSpec:
        """Reads `spec.json` from a data or model directory.

        Raises:
            S2SError: the file is missing or malformed.
        """
        path = Path(directory) / SPEC_FILE
        try:
            return cls.from_dict(read_json(path))
        except FileNotFoundError:
            raise S2SError(f"{path} does not exist: is {directory} the output of s2s prepare?") from None
        except (ValueError, KeyError, TypeError) as error:
            raise S2SError(f"{path} is malformed ({error}): re-run s2s prepare") from None
