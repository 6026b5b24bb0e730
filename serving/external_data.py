"""Finds tensors an ONNX file keeps in external data files, without the `onnx` package (a translation host has only onnxruntime).

s2s exports never write external data: every weight is inside the `.onnx`
file, which `SHA256SUMS` covers. A file that points elsewhere would make
onnxruntime read whatever path it names (relative to the working directory,
since hosts load models from verified bytes), unchecked. So a host refuses
such a file, and this module is how it tells: a walk over the protobuf wire
format of the few messages that can hold a tensor, skipping the weights'
bytes without reading them.
"""

from __future__ import annotations

from collections.abc import Iterator

# Field numbers from onnx.proto3 (ONNX IR version 10), for the messages on the way to every TensorProto.
_MODEL_GRAPH, _MODEL_FUNCTIONS = 7, 25
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_SPARSE_INITIALIZER = 1, 5, 15
_FUNCTION_NODE = 7
_NODE_ATTRIBUTE = 5
_ATTRIBUTE_TENSOR, _ATTRIBUTE_GRAPH, _ATTRIBUTE_TENSORS, _ATTRIBUTE_GRAPHS = 5, 6, 10, 11
_ATTRIBUTE_SPARSE_TENSOR, _ATTRIBUTE_SPARSE_TENSORS = 22, 23
_SPARSE_VALUES, _SPARSE_INDICES = 1, 2
_TENSOR_NAME, _TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION = 8, 13, 14
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL

_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32 = 0, 1, 2, 5


class MalformedModel(ValueError):
    """The bytes are not a well-formed protobuf message."""


def _varint(data: memoryview, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(data) or shift > 63:
            raise MalformedModel("a varint runs past the end of the file")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7


def _fields(data: memoryview, start: int, end: int) -> Iterator[tuple[int, int, int, int, int]]:
    """(field number, wire type, varint value, start, end) of each field of the message in data[start:end]."""
    position = start
    while position < end:
        key, position = _varint(data, position)
        field, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, position = _varint(data, position)
            yield field, wire, value, position, position
        elif wire == _LENGTH_DELIMITED:
            size, position = _varint(data, position)
            if position + size > end:
                raise MalformedModel("a field runs past the end of its message")
            yield field, wire, 0, position, position + size
            position += size
        elif wire == _FIXED64:
            position += 8
        elif wire == _FIXED32:
            position += 4
        else:
            raise MalformedModel(f"wire type {wire} (groups are not used by ONNX)")


def _tensor(data: memoryview, start: int, end: int) -> str | None:
    name, external = "", False
    for field, wire, value, begin, finish in _fields(data, start, end):
        if field == _TENSOR_NAME and wire == _LENGTH_DELIMITED:
            name = bytes(data[begin:finish]).decode("utf-8", errors="replace")
        elif (field == _TENSOR_DATA_LOCATION and wire == _VARINT and value == _EXTERNAL) or field == _TENSOR_EXTERNAL_DATA:
            external = True
    return (name or "an unnamed tensor") if external else None


def _sparse(data: memoryview, start: int, end: int) -> str | None:
    for field, wire, _, begin, finish in _fields(data, start, end):
        if field in (_SPARSE_VALUES, _SPARSE_INDICES) and wire == _LENGTH_DELIMITED and (found := _tensor(data, begin, finish)):
            return found
    return None


def _attribute(data: memoryview, start: int, end: int) -> str | None:
    readers = {
        _ATTRIBUTE_TENSOR: _tensor,
        _ATTRIBUTE_TENSORS: _tensor,
        _ATTRIBUTE_GRAPH: _graph,
        _ATTRIBUTE_GRAPHS: _graph,
        _ATTRIBUTE_SPARSE_TENSOR: _sparse,
        _ATTRIBUTE_SPARSE_TENSORS: _sparse,
    }
    for field, wire, _, begin, finish in _fields(data, start, end):
        if wire == _LENGTH_DELIMITED and field in readers and (found := readers[field](data, begin, finish)):
            return found
    return None


def _nodes_of(data: memoryview, start: int, end: int, node_field: int) -> str | None:
    for field, wire, _, begin, finish in _fields(data, start, end):
        if field == node_field and wire == _LENGTH_DELIMITED:
            for inner, inner_wire, _, first, last in _fields(data, begin, finish):
                if inner == _NODE_ATTRIBUTE and inner_wire == _LENGTH_DELIMITED and (found := _attribute(data, first, last)):
                    return found
    return None


def _graph(data: memoryview, start: int, end: int) -> str | None:
    for field, wire, _, begin, finish in _fields(data, start, end):
        if wire != _LENGTH_DELIMITED:
            continue
        if field == _GRAPH_INITIALIZER and (found := _tensor(data, begin, finish)):
            return found
        if field == _GRAPH_SPARSE_INITIALIZER and (found := _sparse(data, begin, finish)):
            return found
    return _nodes_of(data, start, end, _GRAPH_NODE)  # Constant nodes and the bodies of Loop, If and Scan


def external_tensor(model_bytes: bytes) -> str | None:
    """The name of the first tensor whose data lives outside the model file, or None when every tensor is inside.

    Raises:
        MalformedModel: the bytes are not a protobuf message (onnxruntime would refuse them too).
    """
    data = memoryview(model_bytes)
    for field, wire, _, begin, finish in _fields(data, 0, len(data)):
        if wire != _LENGTH_DELIMITED:
            continue
        if field == _MODEL_GRAPH and (found := _graph(data, begin, finish)):
            return found
        if field == _MODEL_FUNCTIONS and (found := _nodes_of(data, begin, finish, _FUNCTION_NODE)):
            return found
    return None
