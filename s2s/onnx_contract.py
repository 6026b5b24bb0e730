"""The ONNX contract between `s2s export` and every host: file names, tensor names, metadata keys.

Export writes it and serving reads it, both from this module, and hosts in
other languages read the same names from the README and from each file's
metadata. Everything a host needs to encode text and decode ids is in the
`metadata_props` of each file, so no Python, TensorFlow or spec.json is
needed beside the models.

Files (in ONNX_DIR):

| file | inputs | outputs |
|---|---|---|
| `encoder.onnx` | `encoder_input` float32 (batch, time, source_vocab) | `h_0`, `c_0`, ... float32 (batch, latent) |
| `decoder.onnx` | `decoder_input` float32 (batch, 1, target_vocab), `h_0`, `c_0`, ... | `probabilities` (batch, 1, target_vocab), `next_h_0`, `next_c_0`, ... |
| `decoder_greedy.onnx` | as decoder.onnx | as decoder.onnx, plus `next_token` int64 (batch) and `next_input` float32 (batch, 1, target_vocab) |
| `translator.onnx` | `encoder_input`, optional `max_output_length` int64 scalar | `token_ids` int64 (batch, steps), end-token padded |
| `*_fp16.onnx` | float16 variants of encoder and decoders for GPUs, same names, float32 inputs and outputs |

`encoder_input` is the one-hot source, padding rows all zero at the end;
the encoder derives each sentence's length from it.
"""

from __future__ import annotations

ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"
DECODER_GREEDY_FILE = "decoder_greedy.onnx"
TRANSLATOR_FILE = "translator.onnx"
ENCODER_FP16_FILE = "encoder_fp16.onnx"
DECODER_FP16_FILE = "decoder_fp16.onnx"
DECODER_GREEDY_FP16_FILE = "decoder_greedy_fp16.onnx"
MODEL_CARD_FILE = "MODEL_CARD.md"

ENCODER_INPUT = "encoder_input"
DECODER_INPUT = "decoder_input"
PROBABILITIES = "probabilities"
NEXT_TOKEN = "next_token"
NEXT_INPUT = "next_input"
MAX_OUTPUT_LENGTH = "max_output_length"
TOKEN_IDS = "token_ids"


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
META_PRECISION = "s2s.precision"  # float32 or float16
META_INPUTS = "s2s.inputs"  # JSON {name: description}
META_OUTPUTS = "s2s.outputs"  # JSON {name: description}
FORMAT_VERSION = "1"
