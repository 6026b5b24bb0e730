"""`tf.train.Example` protos and GZIP TFRecord files, written without TensorFlow.

`s2s prepare` writes its dataset on every Beam worker. Importing TensorFlow
there for two small jobs, a protobuf message and a file framing, cost each
worker process about 7 seconds and several hundred megabytes, and made every
Dataflow, Flink or Dask worker image carry TensorFlow. The protobuf library
(which Beam already needs) serialises the same messages from the schema below,
a copy of TensorFlow's `example.proto` and `feature.proto` in a private
descriptor pool, so it never clashes with TensorFlow's own classes in a process
that has both. The framing is TFRecord's: length, masked CRC-32C of the
length, data, masked CRC-32C of the data (google-crc32c). Training reads the
files with TensorFlow's own `TFRecordDataset`; tests check both halves against
TensorFlow's writer byte for byte.
"""

from __future__ import annotations

import functools
import gzip
import io
import struct
from collections.abc import Iterable
from typing import IO, Any

import google_crc32c
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_CRC_MASK_DELTA = 0xA282EAD8
# TensorFlow's GZIP record writer compresses at zlib's default level; Python's gzip module would default to 9 (slower).
_ZLIB_DEFAULT_LEVEL = 6


@functools.cache
def example_messages() -> dict[str, Any]:
    """The message classes of TensorFlow's Example schema by name: Example, Features, Feature, BytesList, Int64List, FloatList."""
    field = descriptor_pb2.FieldDescriptorProto
    schema = descriptor_pb2.FileDescriptorProto(name="s2s/tensorflow_example.proto", package="tensorflow", syntax="proto3")

    def add_message(name: str, *fields: tuple[str, int, int, str]) -> descriptor_pb2.DescriptorProto:
        message = schema.message_type.add(name=name)
        for field_name, number, kind, type_name in fields:
            label = field.LABEL_REPEATED if field_name in ("value", "feature") else field.LABEL_OPTIONAL
            added = message.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                added.type_name = type_name
        return message

    add_message("BytesList", ("value", 1, field.TYPE_BYTES, ""))
    add_message("FloatList", ("value", 1, field.TYPE_FLOAT, ""))
    add_message("Int64List", ("value", 1, field.TYPE_INT64, ""))
    feature = add_message(
        "Feature",
        ("bytes_list", 1, field.TYPE_MESSAGE, ".tensorflow.BytesList"),
        ("float_list", 2, field.TYPE_MESSAGE, ".tensorflow.FloatList"),
        ("int64_list", 3, field.TYPE_MESSAGE, ".tensorflow.Int64List"),
    )
    feature.oneof_decl.add(name="kind")
    for member in feature.field:
        member.oneof_index = 0
    features = add_message("Features", ("feature", 1, field.TYPE_MESSAGE, ".tensorflow.Features.FeatureEntry"))
    entry = features.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=field.TYPE_MESSAGE, label=field.LABEL_OPTIONAL, type_name=".tensorflow.Feature")
    add_message("Example", ("features", 1, field.TYPE_MESSAGE, ".tensorflow.Features"))

    pool = descriptor_pool.DescriptorPool()
    pool.Add(schema)
    names = ("Example", "Features", "Feature", "BytesList", "Int64List", "FloatList")
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"tensorflow.{name}")) for name in names}


def framed(record: bytes) -> bytes:
    """One record as a TFRecord file holds it."""
    length = struct.pack("<Q", len(record))
    return b"".join((length, struct.pack("<I", _masked_crc(length)), record, struct.pack("<I", _masked_crc(record))))


def write_gzip_records(stream: IO[bytes], records: Iterable[bytes]) -> int:
    """Writes the records to `stream` as one GZIP TFRecord file; returns how many. The bytes depend on the records alone
    (no time or file name in the gzip header), so a retried write gives the same file."""
    count = 0
    with gzip.GzipFile(filename="", mode="wb", fileobj=stream, compresslevel=_ZLIB_DEFAULT_LEVEL, mtime=0) as packed:
        for record in records:
            packed.write(framed(record))
            count += 1
    return count


def gzip_records(records: Iterable[bytes]) -> bytes:
    """The bytes of a GZIP TFRecord file of these records (an empty shard's file: `gzip_records(())`)."""
    stream = io.BytesIO()
    write_gzip_records(stream, records)
    return stream.getvalue()


def _masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _CRC_MASK_DELTA) & 0xFFFFFFFF
