"""ONNX graphs built from the converted encoder and decoder: the greedy head, the translator loop, float16.

- `add_greedy_head`: the decoder also returns the argmax token id and its
  one-hot, so a greedy loop on a GPU feeds `next_input` straight back
  without moving anything through the host.
- `build_translator`: one graph holding the whole greedy decode: the
  encoder, then an ONNX `Loop` of decoder steps that ends when every
  sentence has emitted the end token or `max_output_length` is reached.
  A host translates a batch with one call and no decoding code.
- `to_float16`: weights and arithmetic in float16 for GPUs, inputs and
  outputs left float32 so the contract does not change.
"""

from __future__ import annotations

import copy
from typing import Any

from s2s import onnx_contract as contract
from s2s.vocab import END_ID, START_ID


def add_greedy_head(decoder: Any) -> Any:
    """A copy of decoder.onnx with `next_token` (int64, batch) and `next_input` (float32, batch x 1 x vocab) outputs."""
    from onnx import TensorProto, helper

    model = copy.deepcopy(decoder)
    graph = model.graph
    vocab = _last_dim(graph, contract.PROBABILITIES)
    graph.initializer.extend(_greedy_constants(vocab))
    graph.node.extend(_greedy_nodes(contract.PROBABILITIES, contract.NEXT_TOKEN, contract.NEXT_INPUT, prefix="s2s_greedy"))
    graph.output.extend(
        [
            helper.make_tensor_value_info(contract.NEXT_TOKEN, TensorProto.INT64, ["batch"]),
            helper.make_tensor_value_info(contract.NEXT_INPUT, TensorProto.FLOAT, ["batch", 1, vocab]),
        ]
    )
    return model


def _greedy_constants(vocab: int) -> list[Any]:
    """The initializers `_greedy_nodes` reads; a graph using the nodes adds these once."""
    from onnx import TensorProto, helper

    return [
        helper.make_tensor("s2s_last_step_index", TensorProto.INT64, [], [-1]),
        helper.make_tensor("s2s_vocab_size", TensorProto.INT64, [], [vocab]),
        helper.make_tensor("s2s_one_hot_values", TensorProto.FLOAT, [2], [0.0, 1.0]),
        helper.make_tensor("s2s_time_axis_1", TensorProto.INT64, [1], [1]),
    ]


def _greedy_nodes(probabilities: str, token: str, one_hot: str, prefix: str) -> list[Any]:
    """ArgMax over the last time step's probabilities, then its one-hot with a time axis of 1."""
    from onnx import helper

    return [
        helper.make_node("Gather", [probabilities, "s2s_last_step_index"], [f"{prefix}_last_step"], axis=1, name=f"{prefix}_last_step"),
        helper.make_node("ArgMax", [f"{prefix}_last_step"], [token], axis=-1, keepdims=0, name=f"{prefix}_argmax"),
        helper.make_node(
            "OneHot", [token, "s2s_vocab_size", "s2s_one_hot_values"], [f"{prefix}_one_hot"], axis=-1, name=f"{prefix}_one_hot"
        ),
        helper.make_node("Unsqueeze", [f"{prefix}_one_hot", "s2s_time_axis_1"], [one_hot], name=f"{prefix}_unsqueeze"),
    ]


def build_translator(encoder: Any, decoder: Any, num_layers: int, max_target_length: int) -> Any:
    """translator.onnx: encoder_input (and optional max_output_length) -> token_ids (batch, steps).

    Each sentence's ids end with the end token and are end-token padded after
    it; a sentence still running after `max_output_length` characters gets
    the end token at the next step, so every row holds one. The loop stops as
    soon as every sentence of the batch has ended.
    """
    import onnx
    from onnx import TensorProto, helper

    states = contract.state_names(num_layers)
    next_states = contract.next_state_names(num_layers)
    target_vocab = _last_dim(decoder.graph, contract.PROBABILITIES)
    latent = _last_dim(encoder.graph, states[0])

    # The decoder's nodes run inside the loop body; its weights stay in the outer graph, which a body may read.
    body_nodes = [_prefixed_node(node, "dec/") for node in decoder.graph.node]
    decoder_initializers = []
    for initializer in decoder.graph.initializer:
        renamed = copy.deepcopy(initializer)
        renamed.name = "dec/" + initializer.name
        decoder_initializers.append(renamed)
    # Body inputs get names of their own: a subgraph may read, but not redefine, the outer h_0, c_0, ...
    rename = {"dec/" + name: f"loop_{name}" for name in states}
    rename["dec/" + contract.DECODER_INPUT] = "loop_token"
    for node in body_nodes:
        node.input[:] = [rename.get(name, name) for name in node.input]

    body_nodes += _greedy_nodes("dec/" + contract.PROBABILITIES, "step_token", "step_next_input", prefix="step")
    body_nodes += [
        helper.make_node("Equal", ["iteration", "outer_max_output_length"], ["is_last_step"], name="is_last_step"),
        helper.make_node("Where", ["is_last_step", "end_id", "step_token"], ["limited_token"], name="end_at_the_limit"),
        helper.make_node("Where", ["finished_in", "end_id", "limited_token"], ["emitted"], name="emit_end_after_finish"),
        helper.make_node("Equal", ["limited_token", "end_id"], ["just_ended"], name="just_ended"),
        helper.make_node("Or", ["finished_in", "just_ended"], ["finished_out"], name="finished_out"),
        helper.make_node("Cast", ["finished_out"], ["finished_int"], to=TensorProto.INT32, name="finished_int"),
        helper.make_node("ReduceMin", ["finished_int"], ["all_finished_int"], keepdims=0, name="all_finished"),
        helper.make_node("Cast", ["all_finished_int"], ["all_finished"], to=TensorProto.BOOL, name="all_finished_bool"),
        helper.make_node("Not", ["all_finished"], ["cond_out"], name="continue_loop"),
        helper.make_node("Identity", ["step_next_input"], ["token_out"], name="token_out"),
    ]
    body_nodes += [
        helper.make_node("Identity", ["dec/" + out], [f"{name}_out"], name=f"{name}_out")
        for name, out in zip(states, next_states, strict=True)
    ]
    body = helper.make_graph(
        body_nodes,
        "greedy_step",
        inputs=[
            helper.make_tensor_value_info("iteration", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("loop_token", TensorProto.FLOAT, ["batch", 1, target_vocab]),
            *[helper.make_tensor_value_info(f"loop_{name}", TensorProto.FLOAT, ["batch", latent]) for name in states],
            helper.make_tensor_value_info("finished_in", TensorProto.BOOL, ["batch"]),
        ],
        outputs=[
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("token_out", TensorProto.FLOAT, ["batch", 1, target_vocab]),
            *[helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, ["batch", latent]) for name in states],
            helper.make_tensor_value_info("finished_out", TensorProto.BOOL, ["batch"]),
            helper.make_tensor_value_info("emitted", TensorProto.INT64, ["batch"]),
        ],
    )

    encoder_nodes = [copy.deepcopy(node) for node in encoder.graph.node]
    encoder_initializers = [copy.deepcopy(initializer) for initializer in encoder.graph.initializer]
    start = [0.0] * target_vocab
    start[START_ID] = 1.0
    main_nodes = [
        *encoder_nodes,
        helper.make_node("Shape", [contract.ENCODER_INPUT], ["input_shape"], name="input_shape"),
        helper.make_node("Slice", ["input_shape", "zero_1d", "one_1d"], ["batch_1d"], name="batch_size"),
        helper.make_node("Concat", ["batch_1d", "one_1d", "vocab_1d"], ["start_shape"], axis=0, name="start_shape"),
        helper.make_node("Expand", ["start_row", "start_shape"], ["start_input"], name="start_input"),
        helper.make_node("Expand", ["false_scalar", "batch_1d"], ["none_finished"], name="none_finished"),
        helper.make_node("Identity", [contract.MAX_OUTPUT_LENGTH], ["outer_max_output_length"], name="outer_max_output_length"),
        helper.make_node("Add", [contract.MAX_OUTPUT_LENGTH, "one_scalar"], ["trip_count"], name="trip_count"),
        helper.make_node(
            "Loop",
            ["trip_count", "true_scalar", "start_input", *states, "none_finished"],
            ["final_token", *[f"final_{name}" for name in states], "final_finished", "ids_by_step"],
            body=body,
            name="greedy_loop",
        ),
        helper.make_node("Transpose", ["ids_by_step"], [contract.TOKEN_IDS], perm=[1, 0], name="token_ids"),
    ]
    constants = [
        helper.make_tensor(contract.MAX_OUTPUT_LENGTH, TensorProto.INT64, [], [max_target_length]),
        helper.make_tensor("zero_1d", TensorProto.INT64, [1], [0]),
        helper.make_tensor("one_1d", TensorProto.INT64, [1], [1]),
        helper.make_tensor("one_scalar", TensorProto.INT64, [], [1]),
        helper.make_tensor("vocab_1d", TensorProto.INT64, [1], [target_vocab]),
        helper.make_tensor("start_row", TensorProto.FLOAT, [1, 1, target_vocab], start),
        helper.make_tensor("false_scalar", TensorProto.BOOL, [], [False]),
        helper.make_tensor("true_scalar", TensorProto.BOOL, [], [True]),
        helper.make_tensor("end_id", TensorProto.INT64, [], [END_ID]),
        *_greedy_constants(target_vocab),
    ]
    graph = helper.make_graph(
        main_nodes,
        "s2s_translator",
        inputs=[
            copy.deepcopy(encoder.graph.input[0]),
            helper.make_tensor_value_info(contract.MAX_OUTPUT_LENGTH, TensorProto.INT64, []),  # optional: its initializer is the default
        ],
        outputs=[helper.make_tensor_value_info(contract.TOKEN_IDS, TensorProto.INT64, ["batch", "steps"])],
        initializer=[*encoder_initializers, *decoder_initializers, *constants],
    )
    opset = max(entry.version for entry in encoder.opset_import if entry.domain in ("", "ai.onnx"))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="s2s")
    model.ir_version = encoder.ir_version
    onnx.checker.check_model(model)
    return model


def _prefixed_node(node: Any, prefix: str) -> Any:
    renamed = copy.deepcopy(node)
    renamed.name = prefix + node.name
    renamed.input[:] = [prefix + name if name else name for name in node.input]
    renamed.output[:] = [prefix + name if name else name for name in node.output]
    return renamed


def _last_dim(graph: Any, value_name: str) -> int:
    for value in [*graph.output, *graph.input]:
        if value.name == value_name:
            return value.type.tensor_type.shape.dim[-1].dim_value
    raise KeyError(value_name)


def to_float16(model: Any) -> Any:
    """A float16 copy for GPUs: weights and arithmetic in float16, float32 inputs and outputs kept."""
    import warnings

    from onnxconverter_common import float16

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "will be truncated": weights below float16's range, expected
        return float16.convert_float_to_float16(model, keep_io_types=True)
