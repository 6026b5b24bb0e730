"""Verification of an export against the Keras models it came from, as a host would load the files.

- `onnx.checker` on every file;
- numeric parity: encoder states and decoder probabilities and states on
  validation sentences, Keras against ONNX, max absolute difference;
- greedy strings: the Keras reference decoder of `s2s evaluate` against the
  ONNX step-by-step loop and against `translator.onnx`;
- float16: its difference from float32 in probabilities and greedy strings,
  where onnxruntime on this machine can run it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from s2s import onnx_contract as contract
from s2s.vocab import START_ID
from serving.decoding import NumpyGreedy
from serving.sessions import DecoderSession, EncoderSession, open_session

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
    target_vocab: int,
    steps: int = 8,
) -> dict[str, float]:
    """Max abs differences, Keras versus ONNX, over `batches`: encoder states, then `steps` decoder steps fed Keras' greedy tokens."""
    worst = {"encoder_states": 0.0, "decoder_probabilities": 0.0, "decoder_states": 0.0}
    for batch in batches:
        keras_states = [np.asarray(state) for state in keras_encoder(batch, training=False)]
        onnx_states = encoder(batch)
        worst["encoder_states"] = max(
            worst["encoder_states"], *(float(np.abs(a - b).max()) for a, b in zip(keras_states, onnx_states, strict=True))
        )
        token = np.zeros((len(batch), 1, target_vocab), dtype=np.float32)
        token[:, 0, START_ID] = 1.0
        for _ in range(steps):
            keras_probabilities, *next_keras_states = (np.asarray(value) for value in keras_decoder([token, *keras_states], training=False))
            onnx_probabilities, next_onnx_states = decoder(token, keras_states)
            worst["decoder_probabilities"] = max(
                worst["decoder_probabilities"], float(np.abs(keras_probabilities - onnx_probabilities).max())
            )
            worst["decoder_states"] = max(
                worst["decoder_states"], *(float(np.abs(a - b).max()) for a, b in zip(next_keras_states, next_onnx_states, strict=True))
            )
            keras_states = next_keras_states
            next_ids = keras_probabilities[:, -1].argmax(axis=-1)
            token = np.zeros_like(token)
            token[np.arange(len(batch)), 0, next_ids] = 1.0
    return worst


def _batched_strings(sources: list[str], info: Any, ids_of_batch: Callable[[np.ndarray], Any], batch_size: int = 256) -> list[str]:
    """Decoded translations of `sources`, one-hot encoded `batch_size` at a time and passed to `ids_of_batch`."""
    results = []
    for start in range(0, len(sources), batch_size):
        results += [info.target_vocabulary.decode(row) for row in ids_of_batch(info.one_hot(sources[start : start + batch_size]))]
    return results


def onnx_greedy_strings(encoder: EncoderSession, decoder: DecoderSession, sources: list[str], info: Any) -> list[str]:
    """Greedy translations with the step-by-step ONNX loop."""
    loop = NumpyGreedy(encoder, decoder, len(info.target_vocabulary))
    return _batched_strings(sources, info, lambda batch: loop(batch, info.max_target_length))


def translator_strings(translator: Any, sources: list[str], info: Any) -> list[str]:
    """Greedy translations with translator.onnx, one call per batch."""
    return _batched_strings(sources, info, lambda batch: translator.run([contract.TOKEN_IDS], {contract.ENCODER_INPUT: batch})[0])


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


def float16_difference(directory: Path, info: Any, batches: list[np.ndarray], sources: list[str], reference: list[str]) -> dict[str, Any]:
    """Float16 against float32 ONNX: max abs probability difference and greedy string agreement, or why not measured."""
    try:
        encoder16 = EncoderSession(open_session(directory / contract.ENCODER_FP16_FILE), info.num_layers)
        decoder16 = DecoderSession(open_session(directory / contract.DECODER_FP16_FILE), info.num_layers)
        encoder32 = EncoderSession(open_session(directory / contract.ENCODER_FILE), info.num_layers)
        decoder32 = DecoderSession(open_session(directory / contract.DECODER_FILE), info.num_layers)
        worst = 0.0
        for batch in batches:
            token = np.zeros((len(batch), 1, len(info.target_vocabulary)), dtype=np.float32)
            token[:, 0, START_ID] = 1.0
            probabilities32, _ = decoder32(token, encoder32(batch))
            probabilities16, _ = decoder16(token, encoder16(batch))
            worst = max(worst, float(np.abs(probabilities32 - probabilities16).max()))
        strings = onnx_greedy_strings(encoder16, decoder16, sources, info)
    except Exception as error:  # e.g. no float16 LSTM kernel in this onnxruntime build
        return {"measured": False, "reason": str(error).strip().splitlines()[0][:300]}
    return {"measured": True, "max_abs_probability_difference": worst, "greedy_strings": agreement(reference, strings, sources)}
