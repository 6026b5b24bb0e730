"""The ONNX contract between `s2s export` and every host: file names, tensor names, metadata keys.

Export writes it and serving reads it, both from this module, and hosts in
other languages read the same names from the README and from each file's
metadata. Everything a host needs to encode text and decode ids is in the
`metadata_props` of each file, so no Python, TensorFlow or spec.json is
needed beside the models.

Files (in ONNX_DIR), format version 2: ids in, ids out. `(attention)` marks
what only `s2s.arch = attention` models have.

| file | inputs | outputs |
|---|---|---|
| `encoder.onnx` | `source_ids` int32 (batch, time) | `h_0`, `c_0`, ... float32 (batch, latent); (attention) `encoder_outputs` float32 (batch, time, latent), `source_mask` float32 (batch, time) |
| `decoder.onnx` | `previous_token` int32 (batch), `h_0`, `c_0`, ...; (attention) `encoder_outputs`, `source_mask` | `probabilities` float32 (batch, target_vocab), `next_h_0`, `next_c_0`, ...; (attention) `attention` float32 (batch, time) |
| `decoder_greedy.onnx` | as decoder.onnx | as decoder.onnx, plus `next_token` int32 (batch), the argmax |
| `translator.onnx` | `source_ids`, optional `max_output_length` int32 scalar | `token_ids` int32 (batch, steps), end-token padded |
| `encoder_fp16.onnx`, `decoder_greedy_fp16.onnx` | float16 variants for GPUs, same names and types; the greedy decoder also serves beam search, which fetches only `probabilities` and the states |
| `encoder_int8.onnx`, `decoder_greedy_int8.onnx` | int8 variants for CPUs (onnxruntime dynamic quantization: `DynamicQuantizeLSTM`, `MatMulInteger`), same names and types |

`attention` holds this step's attention weights over the source positions
(each row sums to 1; padding gets 0). It was added to format 2 without a
version change: a host that does not fetch it is unaffected. Exports made
before it lack it, and `return_attention` then says so.

`s2s.output_length` (JSON `{"slope", "intercept"}`) is the output limit a
host should apply per sentence: `min(4096, ceil(slope * source characters +
intercept))` (see `s2s.output_length`); exports before it lack the key.

`source_ids` are vocabulary ids with 0 (`<pad>`) after each sentence's end;
the encoder looks up their one-hot rows and derives each sentence's length
in the graph. The decoder's `encoder_outputs` and `source_mask` are the
encoder's outputs, passed back unchanged at every step.

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
