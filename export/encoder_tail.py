"""The converted encoder's outputs taken straight from its LSTM nodes, without tf2onnx's copies in between.

tf2onnx turns a Keras Bidirectional LSTM's outputs into ONNX as each
direction sliced out of the `LSTM` op's outputs (`Slice`, `Squeeze`), the two
halves concatenated (`Concat`) and the sequence put batch-first
(`Transpose`): four copies of the encoder's memory, about 5% of a CPU
encoder call. The op's outputs are laid out (time, direction, batch,
hidden) and (direction, batch, hidden), so one `Transpose` to batch-first
with the directions next to the hidden units, and a `Reshape` that joins the
last two axes, give the same arrays: the forward half, then the backward
one. Likewise the source mask comes from the ids (`Greater` than padding)
instead of a max over the one-hot rows.

`direct_encoder_outputs` adds those candidates, keeps each one that gives
its output bit for bit on a probe batch, and drops what no output reads any
more. Whatever does not match stays as converted, so the rewrite can only
remove work, never change a number; a graph it cannot shorten (one it has
already rewritten) comes back as it was.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from s2s import onnx_contract as contract

PREFIX = "s2s_direct/"
# (perm, shape) per LSTM output: Y (time, directions, batch, hidden) and Y_h, Y_c (directions, batch, hidden) made
# batch-first with the directions beside the hidden units, then those two axes joined: (batch, time, 2 x hidden), (batch, 2 x hidden).
BATCH_FIRST = (([2, 0, 1, 3], "sequence_shape"), ([1, 0, 2], "state_shape"), ([1, 0, 2], "state_shape"))


def direct_encoder_outputs(model: Any, feeds: dict[str, np.ndarray]) -> Any:
    """A copy of the converted encoder `model` whose outputs come straight from its LSTM nodes where that is bit-identical.

    Args:
        model: the converted encoder, outputs already named and ordered as the contract says.
        feeds: a probe batch (`source_ids` with sentences of different lengths) to compare outputs on.
    """
    from onnx import TensorProto, helper

    from s2s.export.convert import run_onnx

    candidate = copy.deepcopy(model)
    graph = candidate.graph
    taken = {node.name for node in graph.node} | {name for node in graph.node for name in [*node.input, *node.output]}
    taken |= {tensor.name for tensor in graph.initializer}

    def unused(name: str) -> str:  # an export made by this module already has these names: a second pass gets new ones
        count, fresh = 0, name
        while fresh in taken:
            count += 1
            fresh = f"{name}_{count}"
        taken.add(fresh)
        return fresh

    shapes = {"sequence_shape": unused(f"{PREFIX}sequence_shape"), "state_shape": unused(f"{PREFIX}state_shape")}
    pad_id = unused(f"{PREFIX}pad_id")
    graph.initializer.extend(
        [
            helper.make_tensor(shapes["sequence_shape"], TensorProto.INT64, [3], [0, 0, -1]),
            helper.make_tensor(shapes["state_shape"], TensorProto.INT64, [2], [0, -1]),
            helper.make_tensor(pad_id, TensorProto.INT32, [], [0]),
        ]
    )
    options: list[str] = []
    lstms = [node for node in graph.node if node.op_type == "LSTM"]
    for index, lstm in enumerate(lstms):
        for position, (perm, shape) in enumerate(BATCH_FIRST):
            if position >= len(lstm.output) or not lstm.output[position]:
                continue
            name, batch_first = unused(f"{PREFIX}lstm{index}_output{position}"), unused(f"{PREFIX}lstm{index}_output{position}_batch_first")
            graph.node.extend(
                [
                    helper.make_node("Transpose", [lstm.output[position]], [batch_first], perm=perm, name=batch_first),
                    helper.make_node("Reshape", [batch_first, shapes[shape]], [name], name=name),
                ]
            )
            options.append(name)
    mask, real = unused(f"{PREFIX}source_mask"), unused(f"{PREFIX}source_mask_bool")
    graph.node.extend(
        [
            helper.make_node("Greater", [contract.SOURCE_IDS, pad_id], [real], name=real),
            helper.make_node("Cast", [real], [mask], to=TensorProto.FLOAT, name=mask),
        ]
    )
    options.append(mask)
    outputs = [value.name for value in graph.output]
    graph.output.extend(helper.make_empty_tensor_value_info(name) for name in options)
    values = run_onnx(candidate, feeds)

    chosen = {}
    for output in outputs:
        same = [name for name in options if name not in chosen.values() and _identical(values[name], values[output])]
        if same:
            chosen[output] = same[0]
    del graph.output[len(outputs) :]
    retired = {output: unused(f"{PREFIX}replaced/{output}") for output in chosen}
    for node in graph.node:
        node.output[:] = [retired.get(name, name) for name in node.output]
        node.input[:] = [retired.get(name, name) for name in node.input]
    for output, name in chosen.items():
        for node in graph.node:
            node.output[:] = [output if value == name else value for value in node.output]
    _drop_unread(candidate)
    if len(graph.node) >= len(model.graph.node):  # nothing saved (outputs already straight from the LSTM): keep the model
        return model

    after = run_onnx(candidate, feeds)  # the converted outputs are in `values` already, from the same nodes
    if not all(_identical(after[name], values[name]) for name in outputs):
        return model
    return candidate


def _identical(first: np.ndarray, second: np.ndarray) -> bool:
    return first.shape == second.shape and first.dtype == second.dtype and np.array_equal(first, second)


def _drop_unread(model: Any) -> None:
    """Removes nodes none of whose outputs is read by another node or is a graph output, until none is left."""
    graph = model.graph
    while True:
        read = {name for node in graph.node for name in node.input} | {value.name for value in graph.output}
        unread = [node for node in graph.node if not any(name in read for name in node.output if name)]
        if not unread:
            break
        for node in unread:
            graph.node.remove(node)
    used = {name for node in graph.node for name in node.input}
    kept = [tensor for tensor in graph.initializer if tensor.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
