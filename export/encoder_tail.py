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
remove work, never change a number.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from s2s import onnx_contract as contract

PREFIX = "s2s_direct/"


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
    graph.initializer.extend(
        [
            helper.make_tensor(f"{PREFIX}sequence_shape", TensorProto.INT64, [3], [0, 0, -1]),
            helper.make_tensor(f"{PREFIX}state_shape", TensorProto.INT64, [2], [0, -1]),
            helper.make_tensor(f"{PREFIX}pad_id", TensorProto.INT32, [], [0]),
        ]
    )
    options: list[str] = []
    for index, node in enumerate(node for node in list(graph.node) if node.op_type == "LSTM"):
        for position, (perm, shape) in enumerate((([2, 0, 1, 3], "sequence_shape"), ([1, 0, 2], "state_shape"), ([1, 0, 2], "state_shape"))):
            if position >= len(node.output) or not node.output[position]:
                continue
            name = f"{PREFIX}lstm{index}_output{position}"
            graph.node.extend(
                [
                    helper.make_node("Transpose", [node.output[position]], [f"{name}_batch_first"], perm=perm, name=f"{name}_batch_first"),
                    helper.make_node("Reshape", [f"{name}_batch_first", f"{PREFIX}{shape}"], [name], name=name),
                ]
            )
            options.append(name)
    mask = f"{PREFIX}source_mask"
    graph.node.extend(
        [
            helper.make_node("Greater", [contract.SOURCE_IDS, f"{PREFIX}pad_id"], [f"{mask}_bool"], name=f"{mask}_bool"),
            helper.make_node("Cast", [f"{mask}_bool"], [mask], to=TensorProto.FLOAT, name=mask),
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
    retired = {output: f"{PREFIX}replaced/{output}" for output in chosen}
    for node in graph.node:
        node.output[:] = [retired.get(name, name) for name in node.output]
        node.input[:] = [retired.get(name, name) for name in node.input]
    for output, name in chosen.items():
        for node in graph.node:
            node.output[:] = [output if value == name else value for value in node.output]
    _drop_unread(candidate)

    before, after = run_onnx(model, feeds), run_onnx(candidate, feeds)
    if not all(_identical(after[name], before[name]) for name in outputs):
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
