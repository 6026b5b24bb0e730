"""The ONNX contract between `s2s export` and every host: file names, tensor names, metadata keys.

Export writes it and serving reads it, both from this module. Hosts in
other languages read the same names from docs/onnx-contract.md, the one
description of the files, tensors and metadata keys (a test checks that it
and this module agree), and from each file's metadata: everything a host
needs to encode text and decode ids is in the `metadata_props` of each file,
so no Python, TensorFlow or spec.json is needed beside the models.

Ids are int32: onnxruntime-node takes an `Int32Array` where int64 would need
a `BigInt64Array` and BigInt conversions in the JavaScript host, and int32
halves the bytes that cross to a GPU. Vocabularies are far below 2**31.
"""

from __future__ import annotations

import json
from typing import Any

ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"
DECODER_GREEDY_FILE = "decoder_greedy.onnx"
TRANSLATOR_FILE = "translator.onnx"
ENCODER_FP16_FILE = "encoder_fp16.onnx"
DECODER_GREEDY_FP16_FILE = "decoder_greedy_fp16.onnx"
ENCODER_INT8_FILE = "encoder_int8.onnx"
DECODER_GREEDY_INT8_FILE = "decoder_greedy_int8.onnx"
# (encoder, decoder) per precision: the greedy decoder serves every loop, since hosts fetch outputs by name.
PRECISION_FILES = {
    "float32": (ENCODER_FILE, DECODER_GREEDY_FILE),
    "float16": (ENCODER_FP16_FILE, DECODER_GREEDY_FP16_FILE),
    "int8": (ENCODER_INT8_FILE, DECODER_GREEDY_INT8_FILE),
}
MODEL_CARD_FILE = "MODEL_CARD.md"
CHECKSUMS_FILE = "SHA256SUMS"  # `sha256sum -c SHA256SUMS` format: hosts verify the files before loading them

SOURCE_IDS = "source_ids"
PREVIOUS_TOKEN = "previous_token"
ENCODER_OUTPUTS = "encoder_outputs"
SOURCE_MASK = "source_mask"
MEMORY_NAMES = (ENCODER_OUTPUTS, SOURCE_MASK)  # what an attention decoder reads at every step, unchanged
PROBABILITIES = "probabilities"
NEXT_TOKEN = "next_token"
ATTENTION = "attention"  # (attention) this step's weights over the source positions, float32 (batch, time)
MAX_OUTPUT_LENGTH = "max_output_length"
TOKEN_IDS = "token_ids"

ARCH_ATTENTION = "attention"
ARCH_LSTM = "lstm"


def state_names(num_layers: int) -> list[str]:
    """Decoder state inputs and encoder outputs, in order: h_0, c_0, h_1, c_1, ..."""
    return [f"{kind}_{layer}" for layer in range(num_layers) for kind in ("h", "c")]


def next_state_names(num_layers: int) -> list[str]:
    """Decoder state outputs, in the order of `state_names`."""
    return [f"next_{name}" for name in state_names(num_layers)]


# metadata_props keys; JSON values are marked
META_FORMAT = "s2s.format_version"
META_S2S_VERSION = "s2s.version"
META_MODEL_ID = "s2s.model_id"  # SHA-256 of the trained weights, the same in every file of one export
META_TRAINING_DATA = "s2s.training_data_sha256"
META_SOURCE_VOCABULARY = "s2s.source_vocabulary"  # JSON list, index = id
META_TARGET_VOCABULARY = "s2s.target_vocabulary"  # JSON list, index = id
META_SPECIAL_TOKENS = "s2s.special_tokens"  # JSON {"pad": {"token", "id"}, "start": ..., "end": ..., "unknown": ...}
META_MAX_SOURCE_LENGTH = "s2s.max_source_length"
META_MAX_TARGET_LENGTH = "s2s.max_target_length"
META_NORMALIZATION = "s2s.normalization"  # JSON {"name", "version", "fold_quotes"}
META_REVERSE_SOURCE = "s2s.reverse_source"  # "true": feed source characters last to first
META_NUM_LAYERS = "s2s.num_layers"
META_LATENT_DIM = "s2s.latent_dim"
META_ROLE = "s2s.role"  # encoder, decoder, decoder_greedy, translator
META_PRECISION = "s2s.precision"  # float32, float16 or int8
META_INPUTS = "s2s.inputs"  # JSON {name: description}
META_OUTPUTS = "s2s.outputs"  # JSON {name: description}
META_OUTPUT_LENGTH = "s2s.output_length"  # JSON {"slope", "intercept"}: the per-sentence output limit, see s2s.output_length
META_ARCH = "s2s.arch"  # attention or lstm: whether the decoder takes encoder_outputs and source_mask
FORMAT_VERSION = "2"


def memory_names(arch: str) -> list[str]:
    """The encoder outputs after the states that the decoder takes back at every step, for an architecture."""
    return list(MEMORY_NAMES) if arch == ARCH_ATTENTION else []


def metadata_props(values: dict[str, Any]) -> dict[str, str]:
    """Encodes metadata values as the strings ONNX `metadata_props` hold: JSON for lists and dicts, true/false for booleans.

    The writer lives beside the keys so that export (which writes) and every
    host (which reads, in `s2s.serving.model_info` and in other languages)
    share one definition of the encoding.
    """
    encoded = {}
    for key, value in values.items():
        if isinstance(value, (list, dict)):
            encoded[key] = json.dumps(value, ensure_ascii=False)
        elif isinstance(value, bool):
            encoded[key] = "true" if value else "false"
        else:
            encoded[key] = str(value)
    return encoded
