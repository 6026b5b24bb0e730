"""Keras inference models to ONNX with tf2onnx, keeping the native ONNX `LSTM` op, with integer ids in.

The trained encoder skips padding with a Keras `Masking` layer. tf2onnx turns
a masked LSTM into a `Loop` of primitive ops: correct, but slow on a GPU. So
the encoder is converted without the mask, from the same trained layers, and
every `LSTM` node (bidirectional ones included) is then fed its optional
`sequence_lens` input, computed in the graph from the ids (the count of
non-padding ids). The ONNX LSTM then stops each sentence at its own length,
and runs the backward direction from that length, which is what the mask did,
and the native op stays.

The Keras models take one-hot rows; contract version 2 takes ids. Each
converted graph therefore gets a lookup in front: `Gather` of a constant
one-hot table (the padding row all zeros) turns `source_ids` or
`previous_token` into the rows the Keras layers were trained on.

tf2onnx names outputs after the conversion route, so outputs are renamed to
the contract's names by running both models on the same input and matching
values, never by position.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from s2s import onnx_contract as contract
from s2s.export.encoder_tail import direct_encoder_outputs
from s2s.onehot import one_hot
from s2s.tensorflow_import import import_tensorflow

if TYPE_CHECKING:
    from s2s.training.model_dir import TrainedModels

OPSET = 17  # the newest opset tf2onnx 1.17 and onnxruntime 1.20+ both cover well; LSTM itself is unchanged since opset 14
SOURCE_ONE_HOT = "s2s_source_one_hot"  # the one-hot rows the Keras encoder takes, looked up from source_ids
TOKEN_ONE_HOT = "s2s_token_one_hot"  # likewise for the decoder, (batch, 1, target_vocab)
STEP_PROBABILITIES = "s2s_step_probabilities"  # the Keras decoder's (batch, 1, target_vocab) output before its time axis goes


def _without_cudnn(model: Any) -> None:
    """Makes every LSTM trace to plain ops: a cuDNN kernel (CudnnRNNV3) cannot be converted."""
    import keras

    for layer in model.layers:
        wrapped = [layer.forward_layer, layer.backward_layer] if isinstance(layer, keras.layers.Bidirectional) else [layer]
        for lstm in wrapped:
            if isinstance(lstm, keras.layers.LSTM):
                lstm.use_cudnn = False


def to_onnx(keras_model: Any, input_names: list[str], input_shapes: list[tuple[int | None, ...]]) -> Any:
    """Converts a functional Keras model with tf2onnx on the CPU; returns the ONNX ModelProto."""
    tf = import_tensorflow()
    import tf2onnx

    _without_cudnn(keras_model)
    signature = [tf.TensorSpec(shape, tf.float32, name=name) for name, shape in zip(input_names, input_shapes, strict=True)]
    with tf.device("/CPU:0"):
        proto, _ = tf2onnx.convert.from_keras(keras_model, input_signature=signature, opset=OPSET)
    return proto


def add_id_lookup(model: Any, one_hot_input: str, ids_input: str, vocab_size: int, *, token_step: bool) -> None:
    """Replaces the float one-hot graph input `one_hot_input` by int32 ids and a `Gather` of the one-hot table.

    With `token_step`, ids are (batch,) and the rows get the decoder's time axis of 1; else ids are (batch, time).
    """
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    table = numpy_helper.from_array(one_hot(np.arange(vocab_size), vocab_size), name=f"{ids_input}_one_hot_table")
    graph.initializer.append(table)
    looked_up = f"{ids_input}_rows" if token_step else one_hot_input
    nodes = [helper.make_node("Gather", [table.name, ids_input], [looked_up], axis=0, name=f"{ids_input}_lookup")]
    if token_step:
        graph.initializer.append(helper.make_tensor(f"{ids_input}_time_axis", TensorProto.INT64, [1], [1]))
        nodes.append(helper.make_node("Unsqueeze", [looked_up, f"{ids_input}_time_axis"], [one_hot_input], name=f"{ids_input}_step"))
    for position, node in enumerate(nodes):
        graph.node.insert(position, node)
    shape = ["batch"] if token_step else ["batch", "time"]
    for index, value in enumerate(graph.input):
        if value.name == one_hot_input:
            graph.input.remove(value)
            graph.input.insert(index, helper.make_tensor_value_info(ids_input, TensorProto.INT32, shape))
            return
    raise RuntimeError(f"the converted graph has no input {one_hot_input}")


def add_sequence_lengths(model: Any) -> int:
    """Feeds every LSTM node the lengths of `source_ids` (its non-padding ids); returns how many nodes it fed."""
    from onnx import TensorProto, helper

    graph = model.graph
    lengths = "s2s_sequence_lengths"
    nodes = [
        helper.make_node("Greater", [contract.SOURCE_IDS, "s2s_pad_id"], ["s2s_id_is_real"], name="s2s_id_is_real"),
        helper.make_node("Cast", ["s2s_id_is_real"], ["s2s_id_is_real_int"], to=TensorProto.INT32, name="s2s_id_is_real_int"),
        helper.make_node("ReduceSum", ["s2s_id_is_real_int", "s2s_time_axis"], [lengths], keepdims=0, name="s2s_sequence_lengths"),
    ]
    graph.initializer.extend(
        [helper.make_tensor("s2s_time_axis", TensorProto.INT64, [1], [1]), helper.make_tensor("s2s_pad_id", TensorProto.INT32, [], [0])]
    )
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


def encoder_output_names(num_layers: int, attention: bool) -> list[str]:
    """encoder.onnx's outputs, in the Keras encoder's order: the states, then (attention) the decoder's memory."""
    return contract.state_names(num_layers) + (list(contract.MEMORY_NAMES) if attention else [])


def convert_encoder(models: TrainedModels, probe_ids: np.ndarray) -> Any:
    """encoder.onnx: `source_ids` -> h_0, c_0, ... (and encoder_outputs, source_mask), native LSTM nodes with in-graph lengths.

    The outputs come straight from the LSTM nodes where that gives the same numbers (`encoder_tail`).

    Args:
        models: the trained models; their masked Keras encoder is the reference for renaming.
        probe_ids: a padded id batch (batch, time) with sentences of different lengths.
    """
    num_layers, keras_encoder = models.num_layers, models.encoder
    maskless = models.maskless_encoder(SOURCE_ONE_HOT)
    source_vocab = maskless.inputs[0].shape[-1]
    model = to_onnx(maskless, [SOURCE_ONE_HOT], [(None, None, source_vocab)])
    add_id_lookup(model, SOURCE_ONE_HOT, contract.SOURCE_IDS, source_vocab, token_step=False)
    if add_sequence_lengths(model) != num_layers:
        raise RuntimeError(f"expected {num_layers} ONNX LSTM nodes in the encoder; tf2onnx produced another structure")
    names = encoder_output_names(num_layers, models.attention)
    expected = keras_outputs(keras_encoder, [one_hot(probe_ids, source_vocab)], names)
    rename_outputs_by_value(model, {contract.SOURCE_IDS: probe_ids}, expected)
    _order_outputs(model, names)
    return direct_encoder_outputs(model, {contract.SOURCE_IDS: probe_ids})


def convert_decoder(
    keras_decoder: Any, num_layers: int, latent_dim: int, probe_memory: list[np.ndarray], probe_states: list[np.ndarray]
) -> Any:
    """decoder.onnx: one step, inputs previous_token, h_0, c_0, ... (and the memory); outputs probabilities, next_h_0, ...

    Args:
        probe_memory: the Keras encoder's encoder_outputs and source_mask for a probe batch (attention), else [].
        probe_states: its states for the same batch.
    """
    target_vocab = keras_decoder.inputs[0].shape[-1]
    state_inputs = contract.state_names(num_layers)
    memory_inputs = list(contract.MEMORY_NAMES) if probe_memory else []
    memory_shapes: list[tuple[int | None, ...]] = [(None, None, latent_dim), (None, None)] if probe_memory else []
    model = to_onnx(
        keras_decoder,
        [TOKEN_ONE_HOT, *state_inputs, *memory_inputs],
        [(None, None, target_vocab)] + [(None, latent_dim)] * len(state_inputs) + memory_shapes,
    )
    _check_native_lstm(model, num_layers, "decoder")
    add_id_lookup(model, TOKEN_ONE_HOT, contract.PREVIOUS_TOKEN, target_vocab, token_step=True)
    batch = probe_states[0].shape[0]
    tokens = np.random.default_rng(0).integers(1, target_vocab, size=batch).astype(np.int32)
    feeds = {
        contract.PREVIOUS_TOKEN: tokens,
        **dict(zip(state_inputs, probe_states, strict=True)),
        **dict(zip(memory_inputs, probe_memory, strict=True)),
    }
    keras_inputs = [one_hot(tokens[:, None], target_vocab), *probe_states, *probe_memory]
    expected = keras_outputs(keras_decoder, keras_inputs, [STEP_PROBABILITIES, *contract.next_state_names(num_layers)])
    rename_outputs_by_value(model, feeds, expected)
    _drop_time_axis(model, STEP_PROBABILITIES, contract.PROBABILITIES, target_vocab)
    _order_outputs(model, [contract.PROBABILITIES, *contract.next_state_names(num_layers)])
    return model


def _drop_time_axis(model: Any, step_output: str, output: str, vocab: int) -> None:
    """Squeezes the decoder's (batch, 1, vocab) output to the contract's (batch, vocab)."""
    from onnx import TensorProto, helper

    graph = model.graph
    graph.initializer.append(helper.make_tensor("s2s_step_axis", TensorProto.INT64, [1], [1]))
    graph.node.append(helper.make_node("Squeeze", [step_output, "s2s_step_axis"], [output], name="s2s_drop_time_axis"))
    for index, value in enumerate(graph.output):
        if value.name == step_output:
            graph.output.remove(value)
            graph.output.insert(index, helper.make_tensor_value_info(output, TensorProto.FLOAT, ["batch", vocab]))
            return
    raise RuntimeError(f"the converted decoder has no output {step_output}")


def _order_outputs(model: Any, names: list[str]) -> None:
    """Puts the graph outputs in the contract's order, so a host that lists them sees h_0, c_0, ... in sequence."""
    outputs = {value.name: value for value in model.graph.output}
    ordered = [outputs[name] for name in names]
    del model.graph.output[:]
    model.graph.output.extend(ordered)


def _check_native_lstm(model: Any, num_layers: int, what: str) -> None:
    found = sum(node.op_type == "LSTM" for node in model.graph.node)
    if found != num_layers:
        raise RuntimeError(f"expected {num_layers} native ONNX LSTM nodes in the {what}, found {found}")
