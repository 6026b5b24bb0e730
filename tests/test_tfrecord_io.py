"""Prepare's records, written without TensorFlow, are the bytes TensorFlow's own Example and TFRecord writer give."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np

from s2s.records import ENCODER_INPUT, SOURCE_TEXT, TARGET_LENGTH, ExampleEncoder
from s2s.tfrecord_io import framed, gzip_records
from s2s.vocab import Vocabulary


def _encoder() -> ExampleEncoder:
    return ExampleEncoder(Vocabulary.from_characters("abcé"), Vocabulary.from_characters("xyz"), max_source_length=5, max_target_length=4)


def test_an_example_is_the_bytes_tensorflow_serialises() -> None:
    import tensorflow as tf

    encoded = _encoder().encode("abé", "zy")
    example = tf.train.Example.FromString(encoded)
    assert example.SerializeToString(deterministic=True) == encoded
    features = example.features.feature
    assert features[SOURCE_TEXT].bytes_list.value == ["abé".encode()] and features[TARGET_LENGTH].int64_list.value == [2]
    rows = np.frombuffer(features[ENCODER_INPUT].bytes_list.value[0], dtype=np.uint8).reshape(5, -1)
    assert rows.sum(axis=1).tolist() == [1, 1, 1, 0, 0]


def test_a_record_file_is_tensorflows_framing_under_gzip_and_reads_back(tmp_path: Path) -> None:
    import tensorflow as tf

    records = [_encoder().encode(source, target) for source, target in (("a", "x"), ("bc", "yz"), ("", "z"))] + [b"", b"\x00" * 300]
    with tf.io.TFRecordWriter(str(tmp_path / "tf.tfrecord")) as writer:
        for record in records:
            writer.write(record)
    assert b"".join(framed(record) for record in records) == (tmp_path / "tf.tfrecord").read_bytes()
    packed = gzip_records(records)
    assert packed == gzip_records(records) and gzip.decompress(packed) == (tmp_path / "tf.tfrecord").read_bytes()
    (tmp_path / "ours.tfrecord.gz").write_bytes(packed)
    read = [bytes(record.numpy()) for record in tf.data.TFRecordDataset([str(tmp_path / "ours.tfrecord.gz")], compression_type="GZIP")]
    assert read == records
    (tmp_path / "empty.tfrecord.gz").write_bytes(gzip_records(()))
    assert list(tf.data.TFRecordDataset([str(tmp_path / "empty.tfrecord.gz")], compression_type="GZIP")) == []


def test_encoding_records_imports_no_tensorflow() -> None:
    import subprocess

    probe = (
        "import sys; from s2s.records import ExampleEncoder; from s2s.vocab import Vocabulary; from s2s.tfrecord_io import gzip_records; "
        "e = ExampleEncoder(Vocabulary.from_characters('a'), Vocabulary.from_characters('b'), 2, 2); gzip_records([e.encode('a', 'b')]); "
        "print('tensorflow' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
