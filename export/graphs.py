"""ONNX graphs built from the converted encoder and decoder: the greedy head, the translator loop, float16.

- `add_greedy_head`: the decoder also returns the argmax token id, which a
  greedy loop feeds straight back as `previous_token`: on a GPU nothing but
  the ids ever needs to reach the host.
- `build_translator`: one graph holding the whole greedy decode: the
  encoder, then an ONNX `Loop` of decoder steps that ends when every
  sentence has emitted the end token or `max_output_length` is reached.
  A host translates a batch with one call and no decoding code.
- `to_float16`: weights and arithmetic in float16 for GPUs, inputs and
  outputs left as they are so the contract does not change.
- `decoder_files`: every decoder file hosts load, made from one step graph.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from s2s import onnx_contract as contract
from s2s.export.step_graph import without_output_copies
from s2s.vocab import END_ID, START_ID

DECODER_PREFIX = "dec/"  # the decoder's names inside translator.onnx, apart from the encoder's


def add_attention_output(decoder: Any, *, half: bool = False) -> Any:
    """A copy of an attention decoder with an `attention` output: float32 (batch, source time), this step's weights.

    The weights are the softmax inside Keras's dot-product attention layer,
    (batch, 1, time) in the converted graph; a Squeeze exposes them. The step
    computes them anyway, so a host that does not fetch them pays nothing.
    An lstm decoder has none and is returned unchanged. `half`: the graph is
    already float16 (an older export being upgraded), so the weights are cast.
    """
    from onnx import TensorProto, helper

    if any(contract.ATTENTION in node.output for node in decoder.graph.node):  # a step graph computes it: only the output is missing
        model = copy.deepcopy(decoder)
        model.graph.output.append(helper.make_tensor_value_info(contract.ATTENTION, TensorProto.FLOAT, ["batch", "source_time"]))
        return model
    softmaxes = [node for node in decoder.graph.node if node.op_type == "Softmax" and "/attention" in node.name]
    if not softmaxes:
        return decoder
    if len(softmaxes) != 1:
        raise RuntimeError(f"expected one attention softmax in the decoder, found {len(softmaxes)}")
    model = copy.deepcopy(decoder)
    graph = model.graph
    graph.initializer.append(helper.make_tensor("s2s_attention_step_axis", TensorProto.INT64, [1], [1]))
    squeezed = "s2s_attention_half" if half else contract.ATTENTION
    graph.node.append(helper.make_node("Squeeze", [softmaxes[0].output[0], "s2s_attention_step_axis"], [squeezed], name="s2s_attention"))
    if half:  # a float16 graph: the contract's outputs stay float32
        graph.node.append(helper.make_node("Cast", [squeezed], [contract.ATTENTION], name="s2s_attention_float32", to=TensorProto.FLOAT))
    graph.output.append(helper.make_tensor_value_info(contract.ATTENTION, TensorProto.FLOAT, ["batch", "source_time"]))
    return model


def add_greedy_head(decoder: Any) -> Any:
    """A copy of decoder.onnx with a `next_token` output: int32 (batch), the argmax of `probabilities`."""
    from onnx import TensorProto, helper

    model = copy.deepcopy(decoder)
    model.graph.node.extend(_argmax_nodes(contract.PROBABILITIES, contract.NEXT_TOKEN, prefix="s2s_greedy"))
    model.graph.output.append(helper.make_tensor_value_info(contract.NEXT_TOKEN, TensorProto.INT32, ["batch"]))
    return model


def decoder_files(step: Any, *, float16: bool, int8: bool) -> dict[str, Any]:
    """The decoder files hosts load, by file name, all made from one step graph (`step_graph.build_step`).

    The float32 and int8 files drop the step's output copies
    (`step_graph.without_output_copies`); the float16 one is converted from
    the step with them, which float16 conversion needs. Export and retrofit
    both take their decoder files from here, so the two cannot drift apart.
    """
    step32 = without_output_copies(step)
    greedy = add_greedy_head(step32)
    files = {contract.DECODER_FILE: step32, contract.DECODER_GREEDY_FILE: greedy}
    if int8:
        files[contract.DECODER_GREEDY_INT8_FILE] = to_int8(greedy)
    if float16:
        files[contract.DECODER_GREEDY_FP16_FILE] = add_greedy_head(to_float16(step))
    return files


def _argmax_nodes(probabilities: str, token: str, prefix: str) -> list[Any]:
    """ArgMax over the vocabulary of (batch, vocab) probabilities, as int32 ids."""
    from onnx import TensorProto, helper

    return [
        helper.make_node("ArgMax", [probabilities], [f"{prefix}_argmax"], axis=-1, keepdims=0, name=f"{prefix}_argmax"),
        helper.make_node("Cast", [f"{prefix}_argmax"], [token], to=TensorProto.INT32, name=f"{prefix}_int32"),
    ]


def build_translator(encoder: Any, decoder: Any, num_layers: int, max_target_length: int) -> Any:
    """translator.onnx: source_ids (and optional max_output_length) -> token_ids (batch, steps), all int32.

    Each sentence's ids end with the end token and are end-token padded after
    it; a sentence still running after `max_output_length` characters gets
    the end token at the next step, so every row holds one. The loop stops as
    soon as every sentence of the batch has ended. An attention decoder reads
    the encoder's `encoder_outputs` and `source_mask` from the outer graph.
    """
    import onnx
    from onnx import TensorProto, helper

    states = contract.state_names(num_layers)
    next_states = contract.next_state_names(num_layers)
    decoder_inputs = {value.name for value in decoder.graph.input}
    memory = [name for name in contract.MEMORY_NAMES if name in decoder_inputs]
    latent = _last_dim(encoder.graph, states[0])

    # The decoder's nodes run inside the loop body; its weights stay in the outer graph, which a body may read.
    prefixed = onnx.compose.add_prefix(decoder, DECODER_PREFIX)
    body_nodes = list(prefixed.graph.node)
    # Body inputs get names of their own: a subgraph may read, but not redefine, the outer h_0, c_0, ...
    rename = {DECODER_PREFIX + name: f"loop_{name}" for name in states}
    rename[DECODER_PREFIX + contract.PREVIOUS_TOKEN] = "loop_token"
    rename.update({DECODER_PREFIX + name: name for name in memory})  # the encoder's outputs, read from the outer graph
    for node in body_nodes:
        node.input[:] = [rename.get(name, name) for name in node.input]

    body_nodes += _argmax_nodes(DECODER_PREFIX + contract.PROBABILITIES, "step_token", prefix="step")
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
        helper.make_node("Identity", ["step_token"], ["token_out"], name="token_out"),
    ]
    body_nodes += [
        helper.make_node("Identity", [DECODER_PREFIX + out], [f"{name}_out"], name=f"{name}_out")
        for name, out in zip(states, next_states, strict=True)
    ]
    body = helper.make_graph(
        body_nodes,
        "greedy_step",
        inputs=[
            helper.make_tensor_value_info("iteration", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("loop_token", TensorProto.INT32, ["batch"]),
            *[helper.make_tensor_value_info(f"loop_{name}", TensorProto.FLOAT, ["batch", latent]) for name in states],
            helper.make_tensor_value_info("finished_in", TensorProto.BOOL, ["batch"]),
        ],
        outputs=[
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("token_out", TensorProto.INT32, ["batch"]),
            *[helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, ["batch", latent]) for name in states],
            helper.make_tensor_value_info("finished_out", TensorProto.BOOL, ["batch"]),
            helper.make_tensor_value_info("emitted", TensorProto.INT32, ["batch"]),
        ],
    )

    main_nodes = [
        *copy.deepcopy(encoder.graph.node),
        helper.make_node("Shape", [contract.SOURCE_IDS], ["input_shape"], name="input_shape"),
        helper.make_node("Slice", ["input_shape", "zero_1d", "one_1d"], ["batch_1d"], name="batch_size"),
        helper.make_node("Expand", ["start_id", "batch_1d"], ["start_tokens"], name="start_tokens"),
        helper.make_node("Expand", ["false_scalar", "batch_1d"], ["none_finished"], name="none_finished"),
        helper.make_node("Cast", [contract.MAX_OUTPUT_LENGTH], ["outer_max_output_length"], to=TensorProto.INT64, name="max_length_64"),
        helper.make_node("Add", ["outer_max_output_length", "one_scalar"], ["trip_count"], name="trip_count"),
        helper.make_node(
            "Loop",
            ["trip_count", "true_scalar", "start_tokens", *states, "none_finished"],
            ["final_token", *[f"final_{name}" for name in states], "final_finished", "ids_by_step"],
            body=body,
            name="greedy_loop",
        ),
        helper.make_node("Transpose", ["ids_by_step"], [contract.TOKEN_IDS], perm=[1, 0], name="token_ids"),
    ]
    constants = [
        helper.make_tensor(contract.MAX_OUTPUT_LENGTH, TensorProto.INT32, [], [max_target_length]),
        helper.make_tensor("zero_1d", TensorProto.INT64, [1], [0]),
        helper.make_tensor("one_1d", TensorProto.INT64, [1], [1]),
        helper.make_tensor("one_scalar", TensorProto.INT64, [], [1]),
        helper.make_tensor("start_id", TensorProto.INT32, [], [START_ID]),
        helper.make_tensor("false_scalar", TensorProto.BOOL, [], [False]),
        helper.make_tensor("true_scalar", TensorProto.BOOL, [], [True]),
        helper.make_tensor("end_id", TensorProto.INT32, [], [END_ID]),
    ]
    graph = helper.make_graph(
        main_nodes,
        "s2s_translator",
        inputs=[
            copy.deepcopy(encoder.graph.input[0]),
            helper.make_tensor_value_info(contract.MAX_OUTPUT_LENGTH, TensorProto.INT32, []),  # optional: its initializer is the default
        ],
        outputs=[helper.make_tensor_value_info(contract.TOKEN_IDS, TensorProto.INT32, ["batch", "steps"])],
        initializer=[*copy.deepcopy(encoder.graph.initializer), *prefixed.graph.initializer, *constants],
    )
    opset = max(entry.version for entry in encoder.opset_import if entry.domain in ("", "ai.onnx"))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="s2s")
    model.ir_version = encoder.ir_version
    onnx.checker.check_model(model)
    return model


def _last_dim(graph: Any, value_name: str) -> int:
    for value in [*graph.output, *graph.input]:
        if value.name == value_name:
            return value.type.tensor_type.shape.dim[-1].dim_value
    raise KeyError(value_name)


def to_int8(model: Any) -> Any:
    """An int8 copy for CPUs: onnxruntime's dynamic quantization, weights int8 per tensor, activations quantized per call.

    LSTM nodes become `DynamicQuantizeLSTM` and MatMuls with constant weights
    `MatMulInteger` (or `DynamicQuantizeMatMul`); attention's products of two
    activations stay float32. Inputs and outputs keep their float32 and int32
    types, so the contract does not change.
    """
    import tempfile
    from pathlib import Path

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as scratch:
        source, target = Path(scratch) / "float32.onnx", Path(scratch) / "int8.onnx"
        onnx.save(model, source)
        logging.getLogger().disabled, was = True, logging.getLogger().disabled  # "consider pre-processing": not for these graphs
        try:
            quantize_dynamic(source, target, weight_type=QuantType.QInt8)
        finally:
            logging.getLogger().disabled = was
        return onnx.load(target)


def to_float16(model: Any) -> Any:
    """A float16 copy for GPUs: weights and arithmetic in float16, float32 inputs and outputs kept."""
    import warnings

    from onnxconverter_common import float16

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "will be truncated": weights below float16's range, expected
        half = float16.convert_float_to_float16(model, keep_io_types=True)
    _retarget_float_casts(half)
    return half


def _retarget_float_casts(model: Any) -> None:
    """Makes `Cast(to=float32)` nodes whose output the converter typed float16 cast to float16.

    tf2onnx writes Keras attention's padding mask as Cast(bool -> float32)
    arithmetic; onnxconverter-common retypes the tensors but not the Cast's
    `to`, and the checker then rejects the file.
    """
    from onnx import TensorProto

    half_values = {value.name for value in model.graph.value_info if value.type.tensor_type.elem_type == TensorProto.FLOAT16}
    for node in model.graph.node:
        if node.op_type == "Cast" and node.output[0] in half_values:
            for attribute in node.attribute:
                if attribute.name == "to" and attribute.i == TensorProto.FLOAT:
                    attribute.i = TensorProto.FLOAT16
