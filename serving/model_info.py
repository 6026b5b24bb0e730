"""What a host needs to know about an exported model, read from the ONNX metadata alone.

Vocabularies, special tokens, length limits, the normalisation scheme and
whether sources are reversed all travel inside each `.onnx` file's
`metadata_props`, so a host needs neither spec.json nor the training code.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from s2s import onnx_contract as contract
from s2s import output_length
from s2s.errors import InputDataError
from s2s.onehot import encode_ids
from s2s.serving.options import MAX_OUTPUT_LENGTH_CEILING
from s2s.text import TextNormalizer
from s2s.vocab import Vocabulary


@dataclass(frozen=True)
class ModelInfo:
    """The metadata of one exported model, parsed."""

    source_vocabulary: Vocabulary
    target_vocabulary: Vocabulary
    normalizer: TextNormalizer
    max_source_length: int
    max_target_length: int
    reverse_source: bool
    num_layers: int
    latent_dim: int
    model_id: str
    training_data_sha256: str
    arch: str
    output_length: dict[str, float] | None = None  # the fitted per-sentence output limit; None for exports before it

    def encode(self, sources: Sequence[str]) -> np.ndarray:
        """The encoder input of cleaned sources: int32 ids, cut to max_source_length, reversed if the model was trained so."""
        return encode_ids(sources, self.source_vocabulary, max_length=self.max_source_length, reverse=self.reverse_source)

    @classmethod
    def from_metadata(cls, metadata: dict[str, str], where: str) -> ModelInfo:
        """Parses `metadata_props` (as onnxruntime's `custom_metadata_map` gives them).

        Raises:
            S2SError: a key is missing or malformed (the file is not an s2s export), or the export is of another
                format version (version 1 took one-hot inputs: re-export it with this s2s).
        """
        version = metadata.get(contract.META_FORMAT)
        if version is not None and version != contract.FORMAT_VERSION:
            raise InputDataError(
                f"{where} is an s2s export of format version {version}; this s2s reads version {contract.FORMAT_VERSION} "
                "(integer ids in and out): re-export the model with `s2s export`"
            )
        try:
            info = cls(
                source_vocabulary=Vocabulary.from_list(json.loads(metadata[contract.META_SOURCE_VOCABULARY])),
                target_vocabulary=Vocabulary.from_list(json.loads(metadata[contract.META_TARGET_VOCABULARY])),
                normalizer=TextNormalizer.from_dict(json.loads(metadata[contract.META_NORMALIZATION])),
                max_source_length=int(metadata[contract.META_MAX_SOURCE_LENGTH]),
                max_target_length=int(metadata[contract.META_MAX_TARGET_LENGTH]),
                reverse_source=metadata[contract.META_REVERSE_SOURCE] == "true",
                num_layers=int(metadata[contract.META_NUM_LAYERS]),
                latent_dim=int(metadata[contract.META_LATENT_DIM]),
                model_id=metadata[contract.META_MODEL_ID],
                training_data_sha256=metadata.get(contract.META_TRAINING_DATA, ""),
                arch=metadata[contract.META_ARCH],
                output_length=json.loads(metadata[contract.META_OUTPUT_LENGTH]) if contract.META_OUTPUT_LENGTH in metadata else None,
            )
        except KeyError as error:
            raise InputDataError(f"{where} has no {error.args[0]} in its metadata: it is not an s2s export (re-run s2s export)") from None
        except (ValueError, TypeError) as error:
            raise InputDataError(f"{where} has malformed s2s metadata ({error}): re-run s2s export") from None
        info.validate(where)
        return info

    def validate(self, where: str) -> None:
        """Raises S2SError when a metadata value is out of its range: a damaged or hand-edited file."""
        problems = [
            f"{name} = {value}"
            for name, value in (
                ("max_source_length", self.max_source_length),
                ("max_target_length", self.max_target_length),
                ("num_layers", self.num_layers),
                ("latent_dim", self.latent_dim),
            )
            if value < 1
        ]
        if self.max_target_length > MAX_OUTPUT_LENGTH_CEILING:
            problems.append(f"max_target_length = {self.max_target_length} (at most {MAX_OUTPUT_LENGTH_CEILING})")
        if self.output_length is not None:
            problem = output_length.problem(self.output_length) if isinstance(self.output_length, dict) else "output_length"
            if problem:
                problems.append(problem)
        if self.arch not in (contract.ARCH_ATTENTION, contract.ARCH_LSTM):
            problems.append(f"arch = {self.arch!r}")
        if problems:
            raise InputDataError(f"{where} has s2s metadata out of range ({', '.join(problems)}): re-run s2s export")
