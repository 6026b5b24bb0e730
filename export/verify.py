"""Verification of an export against the Keras models it came from, as a host would load the files.

- `onnx.checker` on every file;
- numeric parity: encoder states and decoder probabilities and states on
  validation sentences, Keras against ONNX, max absolute difference;
- greedy strings: the Keras reference decoder of `s2s evaluate` against the
  ONNX step-by-step loop and against `translator.onnx`;
- float16 and int8: their difference from float32 in probabilities and greedy strings,
  where onnxruntime on this machine can run it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from s2s import onnx_contract as contract
from s2s.errors import first_line
from s2s.onehot import one_hot, start_tokens, texts_of_ids
from s2s.serving.decoding import NumpyGreedy
from s2s.serving.sessions import DecoderSession, EncoderSession, open_session
from s2s.vocab import PAD_ID

PARITY_TOLERANCE = 1e-4
REQUIRED_AGREEMENT = 0.999


def check_files(paths: list[Path]) -> None:
    """onnx.checker on each file (full check, with shape inference)."""
    import onnx

    for path in paths:
        onnx.checker.check_model(str(path), full_check=True)


def numeric_parity(
    keras_encoder: Any,
    keras_decoder: Any,
    encoder: EncoderSession,
    decoder: DecoderSession,
    batches: list[np.ndarray],
    source_vocab: int,
    target_vocab: int,
    steps: int = 8,
) -> dict[str, float]:
    """Max abs differences, Keras versus ONNX, over id `batches`: encoder outputs, then `steps` decoder steps fed Keras' greedy tokens.

    Encoder outputs at padding positions are left out: attention masks them, and
    Keras and ONNX fill them differently.
    """
    worst = {"encoder_states": 0.0, "decoder_probabilities": 0.0, "decoder_states": 0.0}
    for batch in batches:
        keras_encoded = [np.asarray(value) for value in keras_encoder(one_hot(batch, source_vocab), training=False)]
        keras_states, keras_memory = keras_encoded[: encoder.state_count], keras_encoded[encoder.state_count :]
        onnx_states, onnx_memory = encoder(batch)
        real = batch != PAD_ID
        differences = [np.abs(a - b).max() for a, b in zip(keras_states, onnx_states, strict=True)]
        differences += [np.abs(a - b)[real].max(initial=0.0) for a, b in zip(keras_memory, onnx_memory, strict=True)]
        worst["encoder_states"] = max(worst["encoder_states"], *map(float, differences))
        tokens = start_tokens(len(batch))
        for _ in range(steps):
            keras_inputs = [one_hot(tokens[:, None], target_vocab), *keras_states, *keras_memory]
            keras_probabilities, *next_keras_states = (np.asarray(value) for value in keras_decoder(keras_inputs, training=False))
            keras_probabilities = keras_probabilities[:, -1]
            onnx_probabilities, next_onnx_states, _ = decoder(tokens, keras_states, keras_memory)
            worst["decoder_probabilities"] = max(
                worst["decoder_probabilities"], float(np.abs(keras_probabilities - onnx_probabilities).max())
            )
            worst["decoder_states"] = max(
                worst["decoder_states"], *(float(np.abs(a - b).max()) for a, b in zip(next_keras_states, next_onnx_states, strict=True))
            )
            keras_states = next_keras_states
            tokens = keras_probabilities.argmax(axis=-1).astype(np.int32)
    return worst


def _batched_strings(sources: list[str], info: Any, ids_of_batch: Callable[[np.ndarray], Any], batch_size: int = 256) -> list[str]:
    """Decoded translations of `sources`, encoded to ids `batch_size` at a time and passed to `ids_of_batch`."""
    results = []
    for start in range(0, len(sources), batch_size):
        results += texts_of_ids(np.asarray(ids_of_batch(info.encode(sources[start : start + batch_size]))), info.target_vocabulary)
    return results


def onnx_greedy_strings(encoder: EncoderSession, decoder: DecoderSession, sources: list[str], info: Any) -> list[str]:
    """Greedy translations with the step-by-step ONNX loop."""
    loop = NumpyGreedy(encoder, decoder)
    return _batched_strings(sources, info, lambda batch: loop(batch, info.max_target_length))


def translator_strings(translator: Any, sources: list[str], info: Any) -> list[str]:
    """Greedy translations with translator.onnx, one call per batch."""
    return _batched_strings(sources, info, lambda batch: translator.run([contract.TOKEN_IDS], {contract.SOURCE_IDS: batch})[0])


def agreement(reference: list[str], candidate: list[str], sources: list[str]) -> dict[str, Any]:
    """Share of identical strings, and up to 20 differences."""
    differences = [
        {"source": source, "keras": expected, "onnx": found}
        for source, expected, found in zip(sources, reference, candidate, strict=True)
        if expected != found
    ]
    return {
        "compared": len(sources),
        "identical": len(sources) - len(differences),
        "agreement": round((len(sources) - len(differences)) / max(len(sources), 1), 6),
        "differences": differences[:20],
    }


def variant_difference(
    directory: Path, precision: str, info: Any, batches: list[np.ndarray], sources: list[str], reference: list[str]
) -> dict[str, Any]:
    """A float16 or int8 variant against float32 ONNX: max abs probability difference and greedy string agreement, or why not measured."""
    encoder_file, decoder_file = contract.PRECISION_FILES[precision]
    try:
        encoder_variant = EncoderSession(open_session(directory / encoder_file), info)
        decoder_variant = DecoderSession(open_session(directory / decoder_file), info)
        encoder32 = EncoderSession(open_session(directory / contract.ENCODER_FILE), info)
        decoder32 = DecoderSession(open_session(directory / contract.DECODER_FILE), info)
        worst = 0.0
        for batch in batches:
            tokens = start_tokens(len(batch))
            probabilities32, _, _ = decoder32(tokens, *encoder32(batch))
            probabilities, _, _ = decoder_variant(tokens, *encoder_variant(batch))
            worst = max(worst, float(np.abs(probabilities32 - probabilities).max()))
        strings = onnx_greedy_strings(encoder_variant, decoder_variant, sources, info)
    except Exception as error:  # e.g. no float16 LSTM kernel in this onnxruntime build
        return {"measured": False, "reason": first_line(error)[:300]}
    return {"measured": True, "max_abs_probability_difference": worst, "greedy_strings": agreement(reference, strings, sources)}
