"""Keras inference models to ONNX with tf2onnx, keeping the native ONNX `LSTM` op.

The trained encoder skips padding with a Keras `Masking` layer. tf2onnx turns
a masked LSTM into a `Loop` of primitive ops: correct, but slow on a GPU. So
the encoder is converted without the mask, from the same trained layers, and
every `LSTM` node is then fed its optional `sequence_lens` input, computed in
the graph from the one-hot input (the number of rows that are not all zero).
The ONNX LSTM then stops each sentence at its own length, which is what the
mask did, and the native op stays.

tf2onnx names outputs after the conversion route, so outputs are renamed to
the contract's names by running both models on the same input and matching
values, never by position.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from s2s import onnx_contract as contract
from s2s.tensorflow_import import import_tensorflow
from training.model import ENCODER_INPUT, encoder_lstm_name

OPSET = 17  # the newest opset tf2onnx 1.17 and onnxruntime 1.20+ both cover well; LSTM itself is unchanged since opset 14


def _without_cudnn(model: Any) -> None:
    """Makes every LSTM trace to plain ops: a cuDNN kernel (CudnnRNNV3) cannot be converted."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.LSTM):
            layer.use_cudnn = False


def maskless_encoder(training_model: Any, num_layers: int) -> Any:
    """The encoder from the trained layers with no Masking layer; ONNX `sequence_lens` replaces it."""
    import keras

    source_vocab = training_model.get_layer(ENCODER_INPUT).output.shape[-1]
    encoder_input = keras.Input(shape=(None, source_vocab), name=contract.ENCODER_INPUT)
    sequence, outputs = encoder_input, []
    for layer in range(num_layers):
        sequence, state_h, state_c = training_model.get_layer(encoder_lstm_name(layer))(sequence)
        outputs += [state_h, state_c]
    encoder = keras.Model(encoder_input, outputs, name="s2s_encoder_maskless")
    _without_cudnn(encoder)
    return encoder


def to_onnx(keras_model: Any, input_names: list[str], input_shapes: list[tuple[int | None, ...]]) -> Any:
    """Converts a functional Keras model with tf2onnx on the CPU; returns the ONNX ModelProto."""
    tf = import_tensorflow()
    import tf2onnx

    _without_cudnn(keras_model)
    signature = [tf.TensorSpec(shape, tf.float32, name=name) for name, shape in zip(input_names, input_shapes, strict=True)]
    with tf.device("/CPU:0"):
        proto, _ = tf2onnx.convert.from_keras(keras_model, input_signature=signature, opset=OPSET)
    return proto


def add_sequence_lengths(model: Any) -> int:
    """Feeds every LSTM node the lengths of the one-hot `encoder_input`; returns how many nodes it fed.

    length[b] = sum over time of max over vocabulary of encoder_input[b, t, :]
    """
    from onnx import TensorProto, helper

    graph = model.graph
    lengths = "s2s_sequence_lengths"
    nodes = [
        helper.make_node("ReduceMax", [contract.ENCODER_INPUT], ["s2s_row_is_real"], axes=[2], keepdims=0, name="s2s_row_is_real"),
        helper.make_node("ReduceSum", ["s2s_row_is_real", "s2s_time_axis"], ["s2s_length_float"], keepdims=0, name="s2s_length_float"),
        helper.make_node("Cast", ["s2s_length_float"], [lengths], to=TensorProto.INT32, name="s2s_sequence_lengths"),
    ]
    graph.initializer.append(helper.make_tensor("s2s_time_axis", TensorProto.INT64, [1], [1]))
    fed = 0
    for node in graph.node:
        if node.op_type == "LSTM":
            while len(node.input) < 5:
                node.input.append("")
            node.input[4] = lengths
            fed += 1
    for position, node in enumerate(nodes):
        graph.node.insert(position, node)
    return fed


def rename_outputs_by_value(model: Any, feeds: dict[str, np.ndarray], expected: dict[str, np.ndarray], tolerance: float = 1e-4) -> None:
    """Renames each graph output to the name of the `expected` array it reproduces.

    Raises:
        RuntimeError: an output matches no expected array, or two match the same.
    """
    outputs = run_onnx(model, feeds)
    renames: dict[str, str] = {}
    for onnx_name, value in outputs.items():
        candidates = [
            (float(np.max(np.abs(value - reference))), name)
            for name, reference in expected.items()
            if reference.shape == value.shape and name not in renames.values()
        ]
        difference, name = min(candidates, default=(np.inf, ""))
        if difference > tolerance:
            raise RuntimeError(f"ONNX output {onnx_name} matches no Keras output (closest differs by {difference:.2e})")
        renames[onnx_name] = name
    rename_values(model, renames)


def rename_values(model: Any, renames: dict[str, str]) -> None:
    """Renames tensors everywhere in the graph: node inputs and outputs, graph inputs and outputs."""
    graph = model.graph
    for node in graph.node:
        for index, name in enumerate(node.input):
            if name in renames:
                node.input[index] = renames[name]
        for index, name in enumerate(node.output):
            if name in renames:
                node.output[index] = renames[name]
    for value in [*graph.input, *graph.output]:
        if value.name in renames:
            value.name = renames[value.name]


def run_onnx(model: Any, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Runs a ModelProto on the CPU with onnxruntime; returns outputs by name."""
    import onnxruntime

    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=True))


def keras_outputs(keras_model: Any, inputs: list[np.ndarray], names: list[str]) -> dict[str, np.ndarray]:
    """Runs a Keras model; returns its outputs under `names`, in the model's output order."""
    values = keras_model(inputs if len(inputs) > 1 else inputs[0], training=False)
    values = values if isinstance(values, (list, tuple)) else [values]
    return {name: np.asarray(value) for name, value in zip(names, values, strict=True)}


def convert_encoder(training_model: Any, keras_encoder: Any, num_layers: int, probe: np.ndarray) -> Any:
    """encoder.onnx: native LSTM nodes with in-graph sequence lengths, outputs h_0, c_0, ...

    Args:
        keras_encoder: the masked Keras encoder of `s2s train`, the reference for renaming.
        probe: a padded one-hot batch (batch, time, source_vocab) with sentences of different lengths.
    """
    maskless = maskless_encoder(training_model, num_layers)
    model = to_onnx(maskless, [contract.ENCODER_INPUT], [(None, None, probe.shape[-1])])
    if add_sequence_lengths(model) != num_layers:
        raise RuntimeError(f"expected {num_layers} ONNX LSTM nodes in the encoder; tf2onnx produced another structure")
    expected = keras_outputs(keras_encoder, [probe], contract.state_names(num_layers))
    rename_outputs_by_value(model, {contract.ENCODER_INPUT: probe}, expected)
    return model


def convert_decoder(keras_decoder: Any, num_layers: int, latent_dim: int, probe_states: list[np.ndarray]) -> Any:
    """decoder.onnx: one step, inputs decoder_input and h_0, c_0, ...; outputs probabilities and next_h_0, ..."""
    target_vocab = keras_decoder.inputs[0].shape[-1]
    state_inputs = contract.state_names(num_layers)
    model = to_onnx(
        keras_decoder, [contract.DECODER_INPUT, *state_inputs], [(None, None, target_vocab)] + [(None, latent_dim)] * len(state_inputs)
    )
    _check_native_lstm(model, num_layers, "decoder")
    batch = probe_states[0].shape[0]
    rng = np.random.default_rng(0)
    token = np.eye(target_vocab, dtype=np.float32)[rng.integers(0, target_vocab, size=(batch, 1))]
    feeds = {contract.DECODER_INPUT: token, **dict(zip(state_inputs, probe_states, strict=True))}
    expected = keras_outputs(keras_decoder, [token, *probe_states], [contract.PROBABILITIES, *contract.next_state_names(num_layers)])
    rename_outputs_by_value(model, feeds, expected)
    return model


def _check_native_lstm(model: Any, num_layers: int, what: str) -> None:
    found = sum(node.op_type == "LSTM" for node in model.graph.node)
    if found != num_layers:
        raise RuntimeError(f"expected {num_layers} native ONNX LSTM nodes in the {what}, found {found}")
