"""The decoder step written directly in ONNX operators, from the weights of the tf2onnx conversion.

tf2onnx's decoder is correct but carries what a step does not need:

- the previous token enters as a one-hot row that the `LSTM` op multiplies
  by its 4 x latent x vocabulary input weights: a fifth of the step's
  multiply-adds, where looking up one row of those weights gives the same
  numbers (one-hot times a matrix is a column of it);
- Unsqueeze/Transpose/Squeeze around a one-step `LSTM`, a Concat copy before
  the attention projection, and Keras's Tensordot as Shape -> Gather ->
  Concat -> Reshape around every Dense: nodes that onnxruntime on a GPU
  places on the CPU, forcing copies each step and ruling out CUDA graphs.

`build_step` reads the trained weights out of the converted graph and writes
the same computation with none of that: per gate a `Gather` of (one-hot
table x input weights + both biases) and a `MatMul` of the recurrent
weights, the rest of the LSTM cell as element-wise ops, attention as two
batched `MatMul`s, the projection as two `MatMul`s (context and decoder
output) added, and the output `Dense`.
Attention's scores, mask and softmax work on (batch, time), where
onnxruntime's element-wise kernels and Softmax run over contiguous rows.
Every shape follows from the inputs; the graph holds no Shape,
ConstantOfShape or Reshape node. The inputs, outputs and their names are the
contract's, unchanged: hosts cannot tell the difference except by speed.

Export checks the result against Keras as before (states, probabilities,
greedy strings); `retrofit` rebuilds an older export's decoder files from
their own weights.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np

from s2s import onnx_contract as contract
from s2s.training.model_dir import ATTENTION_PROJECTION, SOFTMAX

SHAPE_OPS = frozenset({"Shape", "ConstantOfShape", "Size", "Reshape", "Expand", "Range"})  # shape arithmetic a step never needs
STEP_PREFIX = "s2s_step/"  # every constant and node of a step graph is named under it
GATES = "iofc"  # ONNX's LSTM gate order: input, output, forget, cell
KERAS_MASK_VALUE = 1.0e9  # Keras attention subtracts this from the scores of padding positions (float32)


class StepGraphError(RuntimeError):
    """The converted decoder does not have the structure `build_step` knows how to rewrite."""


@dataclass(frozen=True)
class LayerWeights:
    """One decoder LSTM layer as the step multiplies it: matrices (input, 4 x latent), gates in ONNX's order (i, o, f, c)."""

    recurrent: np.ndarray  # (latent, 4 x latent): h x recurrent
    input_table: np.ndarray | None = None  # layer 0: (vocab, 4 x latent), one-hot row x input weights + both biases
    input_weights: np.ndarray | None = None  # layers above: (input, 4 x latent)
    bias: np.ndarray | None = None  # layers above: (4 x latent,), both biases summed


@dataclass(frozen=True)
class StepWeights:
    """A decoder step's trained weights, from tf2onnx's decoder (`converted_weights`) or a step graph (`step_graph_weights`)."""

    layers: list[LayerWeights]
    output: tuple[np.ndarray, np.ndarray]  # the output Dense: (latent, vocab) kernel, (vocab,) bias
    projection: tuple[np.ndarray, np.ndarray] | None = None  # attention's tanh Dense: (2 x latent, latent) kernel, (latent,) bias


def build_step(decoder: Any, num_layers: int, *, attention: bool) -> Any:
    """A decoder step (ModelProto) with decoder.onnx's inputs and outputs, built from the converted decoder's weights.

    Args:
        decoder: tf2onnx's decoder.onnx (with or without the `attention` output); its opset and IR version are kept.
        num_layers: decoder LSTM layers.
        attention: the model attends over `encoder_outputs` (arch attention).

    Raises:
        StepGraphError: the graph is not a stack of forward LSTMs with default activations, or a Dense is missing.
    """
    return step_from_weights(converted_weights(decoder, num_layers, attention=attention), decoder)


def rebuild_step(step: Any, num_layers: int, *, attention: bool) -> Any:
    """The step graph of today's layout, from the weights of a step graph of any s2s version (see `step_graph_weights`)."""
    return step_from_weights(step_graph_weights(step, num_layers, attention=attention), step)


def is_step_graph(model: Any) -> bool:
    """Whether `model` is a step graph written by `build_step` (of any s2s version), not tf2onnx's decoder."""
    return any(tensor.name.startswith(STEP_PREFIX) for tensor in model.graph.initializer)


def converted_weights(decoder: Any, num_layers: int, *, attention: bool) -> StepWeights:
    """The step's weights read out of tf2onnx's decoder: its LSTM nodes, one-hot table and Dense layers.

    Raises:
        StepGraphError: the graph is not a stack of forward LSTMs with default activations, or a Dense is missing.
    """
    from onnx import numpy_helper

    weights = {tensor.name: numpy_helper.to_array(tensor) for tensor in decoder.graph.initializer}
    lstms = [node for node in decoder.graph.node if node.op_type == "LSTM"]
    if len(lstms) != num_layers:
        raise StepGraphError(f"expected {num_layers} LSTM nodes in the decoder, found {len(lstms)}")
    one_hot_table = _previous_token_table(decoder, weights)
    layers = []
    for layer, node in enumerate(lstms):
        input_weights, recurrent, bias = _lstm_weights(node, weights)
        if layer == 0:  # one-hot row x input weights = one column of them: a lookup, biases folded in
            layers.append(LayerWeights(recurrent=recurrent.T, input_table=(one_hot_table @ input_weights.T + bias).astype(np.float32)))
        else:
            layers.append(LayerWeights(recurrent=recurrent.T, input_weights=input_weights.T, bias=bias))
    projection = None
    if attention:
        projection = _dense(decoder, weights, ATTENTION_PROJECTION)
        latent = layers[-1].recurrent.shape[0]
        if projection[0].shape != (2 * latent, latent):
            raise StepGraphError(f"the attention projection is {projection[0].shape}, expected {(2 * latent, latent)}")
    return StepWeights(layers, _dense(decoder, weights, SOFTMAX), projection)


def step_graph_weights(step: Any, num_layers: int, *, attention: bool) -> StepWeights:
    """The weights of a step graph by their constants' names, which every s2s version has kept.

    Exports before one product per gate stored each layer's matrices whole,
    (input, 4 x latent); since, one (input, latent) constant per gate,
    suffixed `_i`, `_o`, `_f`, `_c`. Either way the numbers are the trained
    ones, so a step rebuilt from them computes what the old one did.

    Raises:
        StepGraphError: a constant the step needs is missing (not a step graph, or another number of layers).
    """
    from onnx import numpy_helper

    arrays = {tensor.name.removeprefix(STEP_PREFIX): numpy_helper.to_array(tensor) for tensor in step.graph.initializer}

    def matrix(name: str) -> np.ndarray:
        if name in arrays:
            return arrays[name]
        parts = [arrays.get(f"{name}_{gate}") for gate in GATES]
        if any(part is None for part in parts):
            raise StepGraphError(f"the step graph has no constant {STEP_PREFIX}{name}, whole or per gate")
        return np.concatenate(parts, axis=-1)

    layers = [LayerWeights(recurrent=matrix("layer0_recurrent"), input_table=matrix("layer0_input_table"))]
    layers += [
        LayerWeights(recurrent=matrix(f"layer{layer}_recurrent"), input_weights=matrix(f"layer{layer}_input"), bias=matrix(f"layer{layer}_bias"))
        for layer in range(1, num_layers)
    ]
    projection = None
    if attention:
        projection = (np.concatenate([matrix("projection_context"), matrix("projection_output")]), matrix("projection_bias"))
    return StepWeights(layers, (matrix("output"), matrix("output_bias")), projection)


def step_from_weights(weights: StepWeights, template: Any) -> Any:
    """The step graph (ModelProto) of `weights`, with `template`'s opset and IR version."""
    from onnx import TensorProto, helper

    num_layers = len(weights.layers)
    vocab = weights.output[0].shape[1]
    latent = weights.layers[-1].recurrent.shape[0]
    builder = _Builder()
    states = contract.state_names(num_layers)
    next_states = contract.next_state_names(num_layers)

    layer_input = None
    for layer, layer_weights in enumerate(weights.layers):
        hidden = layer_weights.recurrent.shape[0]
        h, c = states[2 * layer], states[2 * layer + 1]
        gates = []
        # One product per gate (ONNX's order: input, output, forget, cell), each followed by its own activation: no Split
        # copying a (batch, 4 x latent) product apart, and onnxruntime fuses each MatMul + Add + activation into one
        # FusedGemm. Each output element is the same sum as in one 4 x latent product: the same numbers, bit for bit.
        for index, (gate, activation) in enumerate(zip(GATES, ("Sigmoid", "Sigmoid", "Sigmoid", "Tanh"), strict=True)):
            columns = slice(index * hidden, (index + 1) * hidden)
            recurrent_part = builder.matmul(h, layer_weights.recurrent[:, columns], f"layer{layer}_recurrent_{gate}")
            if layer_weights.input_table is not None:
                table = builder.constant(f"layer{layer}_input_table_{gate}", layer_weights.input_table[:, columns])
                summed = builder.node("Add", [builder.node("Gather", [table, contract.PREVIOUS_TOKEN], axis=0), recurrent_part])
            else:
                input_part = builder.matmul(layer_input, layer_weights.input_weights[:, columns], f"layer{layer}_input_{gate}")
                bias = builder.constant(f"layer{layer}_bias_{gate}", layer_weights.bias[columns])
                summed = builder.node("Add", [builder.node("Add", [input_part, recurrent_part]), bias])
            gates.append(builder.node(activation, [summed]))
        input_gate, output_gate, forget_gate, cell_gate = gates
        cell = builder.node("Add", [builder.node("Mul", [forget_gate, c]), builder.node("Mul", [input_gate, cell_gate])])
        builder.publish(cell, next_states[2 * layer + 1])
        layer_input = builder.node("Mul", [output_gate, builder.node("Tanh", [cell])])
        builder.publish(layer_input, next_states[2 * layer])

    output_input = layer_input
    if weights.projection is not None:
        output_input = _attention(builder, weights.projection, layer_input, latent)
    output_weights, output_bias = weights.output
    logits = builder.node("Add", [builder.matmul(output_input, output_weights, "output"), builder.constant("output_bias", output_bias)])
    builder.node("Softmax", [logits], output=contract.PROBABILITIES, axis=-1)

    float_input = helper.make_tensor_value_info
    inputs = [
        float_input(contract.PREVIOUS_TOKEN, TensorProto.INT32, ["batch"]),
        *[float_input(name, TensorProto.FLOAT, ["batch", latent]) for name in states],
    ]
    outputs = [
        float_input(contract.PROBABILITIES, TensorProto.FLOAT, ["batch", vocab]),
        *[float_input(name, TensorProto.FLOAT, ["batch", latent]) for name in next_states],
    ]
    if weights.projection is not None:
        inputs += [
            float_input(contract.ENCODER_OUTPUTS, TensorProto.FLOAT, ["batch", "source_time", latent]),
            float_input(contract.SOURCE_MASK, TensorProto.FLOAT, ["batch", "source_time"]),
        ]
        outputs.append(float_input(contract.ATTENTION, TensorProto.FLOAT, ["batch", "source_time"]))
    graph = helper.make_graph(builder.nodes, "s2s_decoder_step", inputs, outputs, initializer=builder.initializers)
    model = helper.make_model(graph, opset_imports=list(template.opset_import), producer_name="s2s")
    model.ir_version = template.ir_version
    import onnx

    onnx.checker.check_model(model, full_check=True)
    return model


def without_output_copies(model: Any) -> Any:
    """A copy of a step graph whose nodes write its outputs themselves: no `publish` Identity copying them each step.

    The Identity nodes copy the states and the attention weights at every
    step (about 1% of a CPU step at batch 64). float16 conversion needs them
    (see `_Builder.publish`), so `build_step` keeps them and the float32
    files drop them here: the numbers are the same, bit for bit.
    """
    model = copy.deepcopy(model)
    graph = model.graph
    outputs = {value.name for value in graph.output}
    produced = {name for node in graph.node for name in node.output}
    copies = [node for node in graph.node if node.op_type == "Identity" and node.output[0] in outputs and node.input[0] in produced - outputs]
    renamed = {node.input[0]: node.output[0] for node in copies}
    for node in copies:
        graph.node.remove(node)
    for node in graph.node:
        for names in (node.input, node.output):
            for index, name in enumerate(names):
                names[index] = renamed.get(name, name)
    return model


def shape_nodes(model: Any) -> list[str]:
    """The op types of nodes that compute shapes at run time (`SHAPE_OPS`), which a CUDA graph step cannot hold."""
    return [node.op_type for node in model.graph.node if node.op_type in SHAPE_OPS]


def _attention(builder: _Builder, dense: tuple[np.ndarray, np.ndarray], query: str, latent: int) -> str:
    """Luong dot attention over `encoder_outputs`, padding masked as Keras does, then the tanh projection; returns its output."""
    step_axis = builder.constant("step_axis", np.array([1], dtype=np.int64))
    column_axis = builder.constant("column_axis", np.array([2], dtype=np.int64))
    # Scores as (batch, time, latent) x (batch, latent, 1): encoder_outputs is read as it lies, with no transposed copy.
    # The rest works on (batch, time): with a trailing axis of 1, onnxruntime's element-wise kernels go one element per
    # call and Softmax over axis 1 transposes; on the last axis of a 2-D tensor both run as contiguous rows.
    scores = builder.node("Squeeze", [builder.node("MatMul", [contract.ENCODER_OUTPUTS, builder.node("Unsqueeze", [query, column_axis])]), column_axis])
    # Keras's scores - 1e9 x (1 - mask), as scores + (mask - 1) x 1e9: the same numbers (x + 0 is x, x + -1e9 is x - 1e9).
    one = builder.constant("one", np.float32(1.0))
    padding_bias = builder.node("Mul", [builder.node("Sub", [contract.SOURCE_MASK, one]), builder.constant("mask_value", np.float32(KERAS_MASK_VALUE))])
    masked = builder.node("Add", [scores, padding_bias])
    step_weights = builder.node("Softmax", [masked], axis=-1)  # (batch, time)
    builder.publish(step_weights, contract.ATTENTION)
    context = builder.node(
        "Squeeze", [builder.node("MatMul", [builder.node("Unsqueeze", [step_weights, step_axis]), contract.ENCODER_OUTPUTS]), step_axis]
    )  # (batch, latent)
    projection, bias = dense
    # Keras concatenates (context, decoder output) before the Dense: two products of its halves, added, copy nothing.
    summed = builder.node(
        "Add", [builder.matmul(context, projection[:latent], "projection_context"), builder.matmul(query, projection[latent:], "projection_output")]
    )
    return builder.node("Tanh", [builder.node("Add", [summed, builder.constant("projection_bias", bias)])])


def _previous_token_table(decoder: Any, weights: dict[str, np.ndarray]) -> np.ndarray:
    """The one-hot table that `previous_token` is looked up in: (vocab, vocab), its padding row zero."""
    for node in decoder.graph.node:
        if node.op_type == "Gather" and node.input[1] == contract.PREVIOUS_TOKEN and node.input[0] in weights:
            return weights[node.input[0]].astype(np.float32)
    raise StepGraphError("the decoder does not look previous_token up in a one-hot table")


def _lstm_weights(node: Any, weights: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(W (4H, input), R (4H, H), the two biases summed (4H,)) of a forward, default-activation ONNX LSTM node."""
    attributes = {attribute.name: attribute for attribute in node.attribute}
    direction = attributes["direction"].s.decode() if "direction" in attributes else "forward"
    activations = [name.decode().lower() for name in attributes["activations"].strings] if "activations" in attributes else []
    if direction != "forward" or activations not in ([], ["sigmoid", "tanh", "tanh"]) or "clip" in attributes:
        raise StepGraphError(f"{node.name}: only forward LSTMs with the default activations and no clip can be rewritten")
    if attributes.get("input_forget") is not None and attributes["input_forget"].i:
        raise StepGraphError(f"{node.name}: input_forget is not supported")
    input_weights, recurrent = weights[node.input[1]][0], weights[node.input[2]][0]
    hidden = recurrent.shape[-1]
    bias = weights[node.input[3]][0] if len(node.input) > 3 and node.input[3] else np.zeros(8 * hidden, dtype=np.float32)
    return input_weights, recurrent, (bias[: 4 * hidden] + bias[4 * hidden :]).astype(np.float32)


def _dense(decoder: Any, weights: dict[str, np.ndarray], layer: str) -> tuple[np.ndarray, np.ndarray]:
    """(kernel (in, out), bias (out,)) of the Keras Dense named `layer`, from its MatMul and bias Add in the converted graph."""
    kernel = bias = None
    for node in decoder.graph.node:
        if f"/{layer}" not in node.name:
            continue
        constants = [weights[name] for name in node.input if name in weights]
        if node.op_type == "MatMul" and constants and constants[0].ndim == 2:
            kernel = constants[0]
        elif node.op_type == "Add" and constants and constants[0].ndim == 1:
            bias = constants[0]
    if kernel is None or bias is None:
        raise StepGraphError(f"no Dense layer {layer!r} (MatMul and bias Add) in the converted decoder")
    return kernel.astype(np.float32), bias.astype(np.float32)


class _Builder:
    """Collects nodes and initializers under generated names (`s2s_step/...`)."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def _name(self, hint: str) -> str:
        self._count += 1
        return f"{STEP_PREFIX}{hint}_{self._count}"

    def constant(self, hint: str, value: np.ndarray | np.floating) -> str:
        from onnx import numpy_helper

        name = f"{STEP_PREFIX}{hint}"
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name=name))
        return name

    def node(self, op_type: str, inputs: list[str], output: str | None = None, **attributes: Any) -> str:
        from onnx import helper

        name = self._name(op_type.lower())
        output = output or name
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=name, **attributes))
        return output

    def publish(self, value: str, output: str) -> None:
        """Makes `value` the graph output `output` through an Identity, so that nodes inside read `value`, never an output.

        float16 conversion keeps outputs float32 with a Cast at the end; a node
        reading the output itself would then mix float32 into float16 arithmetic.
        """
        self.node("Identity", [value], output=output)

    def matmul(self, value: str, matrix: np.ndarray, hint: str) -> str:
        return self.node("MatMul", [value, self.constant(hint, matrix.astype(np.float32))])
