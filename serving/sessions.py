"""Thin wrappers over onnxruntime sessions of the exported encoder and decoder, fed and fetched by name.

Names come from `s2s.onnx_contract`, never from positions: tf2onnx's output
order changes with the conversion route, the contract's names do not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from s2s import onnx_contract as contract
from s2s.errors import S2SError
from serving.model_info import ModelInfo

CPU = ["CPUExecutionProvider"]


def open_session(path: str | Path, providers: list[Any] | None = None, options: Any = None) -> Any:
    """An onnxruntime InferenceSession, with missing or damaged files reported in one line.

    Raises:
        S2SError: the file is missing or onnxruntime cannot load it.
    """
    import onnxruntime

    path = Path(path)
    if not path.exists():
        raise S2SError(f"{path} does not exist: is {path.parent} the output of s2s export?")
    if options is None:
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only: translator.onnx's overridable default input is intended, not a warning
    try:
        return onnxruntime.InferenceSession(str(path), sess_options=options, providers=providers or CPU)
    except Exception as error:  # onnxruntime raises its own Fail / InvalidGraph / InvalidProtobuf types
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise S2SError(f"cannot load {path}: {first_line}") from None


def model_info(session: Any, path: str | Path) -> ModelInfo:
    """The s2s metadata of a loaded session."""
    return ModelInfo.from_metadata(dict(session.get_modelmeta().custom_metadata_map), str(path))


class EncoderSession:
    """encoder.onnx: one-hot sources -> the (h, c) states of every layer.

    Args:
        session: an InferenceSession of encoder.onnx.
        num_layers: LSTM layers, from the metadata.
    """

    def __init__(self, session: Any, num_layers: int):
        self.session = session
        self.output_names = contract.state_names(num_layers)

    def __call__(self, encoder_input: np.ndarray) -> list[np.ndarray]:
        """States `[h_0, c_0, ...]`, each (batch, latent), of a (batch, time, source_vocab) float32 batch."""
        return self.session.run(self.output_names, {contract.ENCODER_INPUT: encoder_input})


class DecoderSession:
    """decoder.onnx: one step from a one-hot token and states to probabilities and new states."""

    def __init__(self, session: Any, num_layers: int):
        self.session = session
        self.state_names = contract.state_names(num_layers)
        self.output_names = [contract.PROBABILITIES, *contract.next_state_names(num_layers)]

    def __call__(self, token: np.ndarray, states: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """(probabilities (batch, 1, target_vocab), next states) for a (batch, 1, target_vocab) token."""
        feeds = {contract.DECODER_INPUT: token, **dict(zip(self.state_names, states, strict=True))}
        probabilities, *next_states = self.session.run(self.output_names, feeds)
        return probabilities, next_states
