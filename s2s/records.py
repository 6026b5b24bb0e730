"""The TFRecord schema: how one sentence pair is written, and how tf.data reads it back.

Writer (the prepare pipeline) and readers (training, evaluation, export
verification) live together in the shared layer so they cannot drift apart,
and no stage imports another to read the dataset. One record is a
`tf.train.Example` holding:

| feature                 | type        | content                                                        |
|-------------------------|-------------|----------------------------------------------------------------|
| `encoder_input`         | bytes       | uint8 one-hot, row-major `(max_source_length, source_vocab)`   |
| `decoder_input`         | bytes       | uint8 one-hot `(decoder_steps, target_vocab)`: `\\t` + target  |
| `decoder_target`        | bytes       | uint8 one-hot `(decoder_steps, target_vocab)`: target + `\\n`  |
| `encoder_input_shape`   | int64 x 2   | the shape of `encoder_input`                                   |
| `decoder_shape`         | int64 x 2   | the shape of `decoder_input` and `decoder_target`              |
| `source_length`         | int64       | characters in the cleaned source                               |
| `target_length`         | int64       | characters in the cleaned target (decoder steps used: + 1)     |
| `source_text`           | bytes       | the cleaned source, UTF-8                                      |
| `target_text`           | bytes       | the cleaned target, UTF-8                                      |

Padding rows are all zeros (the pad id is never hot), which is what lets the
model find a sequence's length from its one-hot input alone. uint8 one-hot
under GZIP costs little: the zeros compress away.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from s2s.errors import S2SError
from s2s.spec import DatasetSpec, record_pattern
from s2s.tensorflow_import import import_tensorflow
from s2s.tfrecord_io import example_messages
from s2s.vocab import END_ID, START_ID, Vocabulary

if TYPE_CHECKING:
    tf = import_tensorflow()

ENCODER_INPUT = "encoder_input"
DECODER_INPUT = "decoder_input"
DECODER_TARGET = "decoder_target"
ENCODER_INPUT_SHAPE = "encoder_input_shape"
DECODER_SHAPE = "decoder_shape"
SOURCE_LENGTH = "source_length"
TARGET_LENGTH = "target_length"
SOURCE_TEXT = "source_text"
TARGET_TEXT = "target_text"


def one_hot(ids: list[int], steps: int, depth: int) -> np.ndarray:
    """A `(steps, depth)` uint8 matrix with a 1 at (t, ids[t]); rows past len(ids) stay zero."""
    matrix = np.zeros((steps, depth), dtype=np.uint8)
    matrix[np.arange(len(ids)), ids] = 1
    return matrix


class ExampleEncoder:
    """Serialises cleaned pairs into `tf.train.Example` bytes for one dataset spec.

    Args:
        source_vocabulary, target_vocabulary: the dataset's vocabularies.
        max_source_length: encoder time steps.
        max_target_length: longest target; the decoder gets one more step.
    """

    def __init__(self, source_vocabulary: Vocabulary, target_vocabulary: Vocabulary, max_source_length: int, max_target_length: int):
        self._messages = example_messages()  # TensorFlow's schema through protobuf alone: no TensorFlow on a Beam worker
        self.source_vocabulary = source_vocabulary
        self.target_vocabulary = target_vocabulary
        self.encoder_shape = (max_source_length, len(source_vocabulary))
        self.decoder_shape = (max_target_length + 1, len(target_vocabulary))

    def encode(self, source: str, target: str) -> bytes:
        """The serialised Example of one cleaned pair."""
        source_ids = self.source_vocabulary.encode(source)
        target_ids = self.target_vocabulary.encode(target)
        messages = self._messages
        features = {
            ENCODER_INPUT: _bytes(messages, one_hot(source_ids, *self.encoder_shape).tobytes()),
            DECODER_INPUT: _bytes(messages, one_hot([START_ID, *target_ids], *self.decoder_shape).tobytes()),
            DECODER_TARGET: _bytes(messages, one_hot([*target_ids, END_ID], *self.decoder_shape).tobytes()),
            ENCODER_INPUT_SHAPE: _int64(messages, self.encoder_shape),
            DECODER_SHAPE: _int64(messages, self.decoder_shape),
            SOURCE_LENGTH: _int64(messages, [len(source)]),
            TARGET_LENGTH: _int64(messages, [len(target)]),
            SOURCE_TEXT: _bytes(messages, source.encode("utf-8")),
            TARGET_TEXT: _bytes(messages, target.encode("utf-8")),
        }
        # deterministic: map entries in key order, so a dataset's bytes do not depend on a worker's hash seed
        return messages["Example"](features=messages["Features"](feature=features)).SerializeToString(deterministic=True)


def _bytes(messages: dict[str, Any], value: bytes) -> object:
    return messages["Feature"](bytes_list=messages["BytesList"](value=[value]))


def _int64(messages: dict[str, Any], values: Any) -> object:
    return messages["Feature"](int64_list=messages["Int64List"](value=list(values)))


def record_files(data_dir: str | Path, split: str) -> list[str]:
    """The TFRecord shards of one split, sorted.

    Raises:
        S2SError: the split has no shard in `data_dir`.
    """
    tf = import_tensorflow()

    files = sorted(tf.io.gfile.glob(str(Path(data_dir) / record_pattern(split))))
    if not files:
        raise S2SError(f"no {split} records ({record_pattern(split)}) in {data_dir}: is it the output of s2s prepare?")
    return files


def read_examples(data_dir: str | Path, split: str, spec: DatasetSpec, *, one_hot_dtype: str = "float32") -> tf.data.Dataset:
    """Every feature of one split as a dict of tensors, one element per pair, in file order.

    One-hot features come back as `one_hot_dtype` (float32, or the stored
    uint8, a quarter of the bytes to shuffle and batch) of their stored shape;
    texts as tf.string; lengths as int64 scalars.
    """
    tf = import_tensorflow()

    encoder_shape = (spec.max_source_length, len(spec.source_vocabulary))
    decoder_shape = (spec.decoder_steps, len(spec.target_vocabulary))
    description = {
        ENCODER_INPUT: tf.io.FixedLenFeature([], tf.string),
        DECODER_INPUT: tf.io.FixedLenFeature([], tf.string),
        DECODER_TARGET: tf.io.FixedLenFeature([], tf.string),
        ENCODER_INPUT_SHAPE: tf.io.FixedLenFeature([2], tf.int64),
        DECODER_SHAPE: tf.io.FixedLenFeature([2], tf.int64),
        SOURCE_LENGTH: tf.io.FixedLenFeature([], tf.int64),
        TARGET_LENGTH: tf.io.FixedLenFeature([], tf.int64),
        SOURCE_TEXT: tf.io.FixedLenFeature([], tf.string),
        TARGET_TEXT: tf.io.FixedLenFeature([], tf.string),
    }

    def parse(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        example = tf.io.parse_single_example(serialized, description)
        for key, shape in ((ENCODER_INPUT, encoder_shape), (DECODER_INPUT, decoder_shape), (DECODER_TARGET, decoder_shape)):
            example[key] = tf.cast(tf.reshape(tf.io.decode_raw(example[key], tf.uint8), shape), one_hot_dtype)
        return example

    files = record_files(data_dir, split)
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP", num_parallel_reads=None)
    return dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def load_references(data_dir: str | Path, split: str, limit: int = 0) -> tuple[list[str], list[list[str]]]:
    """Distinct sources of a split in file order, each with all its reference translations.

    Evaluation, export verification and the chain's smoke translation all
    score against every reference of a source, so they read a split this way.
    """
    tf = import_tensorflow()

    # The texts alone, parsed a few thousand records at a time: the one-hot features stay unparsed (reading them as
    # read_examples does took 20 s for a split of 14,000 toy pairs, this takes under one).
    texts = {SOURCE_TEXT: tf.io.FixedLenFeature([], tf.string), TARGET_TEXT: tf.io.FixedLenFeature([], tf.string)}
    dataset = tf.data.TFRecordDataset(record_files(data_dir, split), compression_type="GZIP").batch(4096)
    references: dict[str, list[str]] = {}
    for batch in dataset.map(lambda serialized: tf.io.parse_example(serialized, texts)).as_numpy_iterator():
        for source, target in zip(batch[SOURCE_TEXT].tolist(), batch[TARGET_TEXT].tolist(), strict=True):
            references.setdefault(source.decode("utf-8"), []).append(target.decode("utf-8"))
    sources = list(references)[: limit or None]
    return sources, [references[source] for source in sources]
