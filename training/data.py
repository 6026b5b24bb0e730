"""tf.data input for training: the prepared records as (inputs, target, sample weight) batches.

The sample weight is 1 at a real target step and 0 at padding, and the loss
is averaged over the weighted steps only, so padding never leaks into
learning or into the reported accuracy.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from s2s.errors import S2SError, first_line
from s2s.records import DECODER_INPUT, DECODER_TARGET, ENCODER_INPUT, SOURCE_LENGTH, TARGET_LENGTH, read_examples
from s2s.spec import DatasetSpec
from s2s.tensorflow_import import import_tensorflow
from s2s.training.config import REPEAT_VECTOR, TrainConfig

BUCKET_BOUNDARIES = (10, 15, 20, 25, 30, 40, 50, 60, 80)  # decoder steps; the last bucket takes the rest


def split_pairs(spec: DatasetSpec, split: str, config: TrainConfig, *, training: bool) -> int:
    """The pairs a split feeds one pass of training or validation: the training split capped by max_train_pairs."""
    pairs = spec.split_sizes.get(split, 0)
    return min(pairs, config.max_train_pairs) if training and config.max_train_pairs else pairs


def batches_per_epoch(spec: DatasetSpec, config: TrainConfig) -> int:
    """Training batches in one pass over the data (about that many with bucketing, which leaves a part batch per bucket)."""
    return max(1, math.ceil(split_pairs(spec, "train", config, training=True) / config.batch_size))


def training_batches(data_dir: str | Path, split: str, spec: DatasetSpec, config: TrainConfig, *, training: bool) -> Any:
    """Batches of `(inputs, decoder_target, sample_weight)` for `model.fit`.

    Args:
        split: "train" (shuffled, optionally capped by max_train_pairs) or "validation".
        training: shuffle and cap; validation batches keep file order.
    """
    tf = import_tensorflow()
    pairs = split_pairs(spec, split, config, training=training)
    # Declaring the size lets Keras show progress and know an epoch's end on the first pass. One-hot rows stay uint8 through
    # the shuffle buffer and batching (a quarter of float32's bytes to copy) and become float32 a batch at a time.
    dataset = read_examples(data_dir, split, spec, one_hot_dtype="uint8").take(pairs)
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(pairs))
    if training and config.shuffle_buffer:
        dataset = dataset.shuffle(config.shuffle_buffer, seed=config.seed, reshuffle_each_iteration=True)
    dataset = dataset.map(lambda example: _to_model_inputs(tf, example, config.reverse_source), num_parallel_calls=tf.data.AUTOTUNE)
    if config.bucket_by_length:
        dataset = dataset.bucket_by_sequence_length(
            element_length_func=lambda features: tf.cast(features["target_length"], tf.int32) + 1,
            bucket_boundaries=list(BUCKET_BOUNDARIES),
            bucket_batch_sizes=[config.batch_size] * (len(BUCKET_BOUNDARIES) + 1),
        )
        dataset = dataset.map(lambda batch: _trim_padding(tf, batch))
    else:
        dataset = dataset.batch(config.batch_size)
    arrange = _repeat_vector_tuple if config.arch == REPEAT_VECTOR else _encoder_decoder_tuple
    return dataset.map(lambda batch: arrange(_as_float(tf, batch)), num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def reverse_within_length(tf: Any, one_hot: Any, length: Any) -> Any:
    """Reverses the real rows of a `(time, vocab)` one-hot sequence, leaving its padding at the end."""
    return tf.reverse_sequence(one_hot[tf.newaxis], tf.reshape(length, [1]), seq_axis=1, batch_axis=0)[0]


def _to_model_inputs(tf: Any, example: dict[str, Any], reverse_source: bool) -> dict[str, Any]:
    encoder_input = example[ENCODER_INPUT]
    if reverse_source:
        encoder_input = reverse_within_length(tf, encoder_input, example[SOURCE_LENGTH])
    return {
        "encoder_input": encoder_input,
        "decoder_input": example[DECODER_INPUT],
        "decoder_target": example[DECODER_TARGET],
        "sample_weight": tf.reduce_max(example[DECODER_TARGET], axis=-1),  # 1 at real steps (one 1 in the row), 0 at padding
        "source_length": example[SOURCE_LENGTH],
        "target_length": example[TARGET_LENGTH],
    }


def _trim_padding(tf: Any, batch: dict[str, Any]) -> dict[str, Any]:
    """Cuts a batch's time axes to its longest source and target, so short pairs do not carry long padding."""
    source_steps = tf.cast(tf.reduce_max(batch["source_length"]), tf.int32)
    decoder_steps = tf.cast(tf.reduce_max(batch["target_length"]), tf.int32) + 1
    trimmed = dict(batch)
    trimmed["encoder_input"] = batch["encoder_input"][:, :source_steps]
    for key in ("decoder_input", "decoder_target", "sample_weight"):
        trimmed[key] = batch[key][:, :decoder_steps]
    return trimmed


def _as_float(tf: Any, batch: dict[str, Any]) -> dict[str, Any]:
    """The batch's one-hot rows and sample weights as the float32 the model and the loss take."""
    return {
        key: tf.cast(value, tf.float32) if key in ("encoder_input", "decoder_input", "decoder_target", "sample_weight") else value
        for key, value in batch.items()
    }


def _encoder_decoder_tuple(batch: dict[str, Any]) -> tuple[Any, Any, Any]:
    return (batch["encoder_input"], batch["decoder_input"]), batch["decoder_target"], batch["sample_weight"]


def _repeat_vector_tuple(batch: dict[str, Any]) -> tuple[Any, Any, Any]:
    return batch["encoder_input"], batch["decoder_target"], batch["sample_weight"]


def check_records_match_spec(data_dir: str | Path, spec: DatasetSpec) -> None:
    """Reads the first training record and compares its one-hot shapes with spec.json.

    Raises:
        S2SError: the record cannot be read or its shapes differ from the spec's.
    """
    from s2s.records import DECODER_SHAPE, ENCODER_INPUT_SHAPE, record_files

    tf = import_tensorflow()
    description = {key: tf.io.FixedLenFeature([2], tf.int64) for key in (ENCODER_INPUT_SHAPE, DECODER_SHAPE)}
    first = record_files(data_dir, "train")[0]
    try:
        serialized = next(iter(tf.data.TFRecordDataset([first], compression_type="GZIP").take(1)), None)
        if serialized is None:
            return  # an empty shard: nothing to compare
        shapes = tf.io.parse_single_example(serialized, description)
    except (tf.errors.OpError, ValueError) as error:
        raise S2SError(f"cannot read {first}: {first_line(error)}") from None
    expected = {
        ENCODER_INPUT_SHAPE: [spec.max_source_length, len(spec.source_vocabulary)],
        DECODER_SHAPE: [spec.decoder_steps, len(spec.target_vocabulary)],
    }
    for key, shape in expected.items():
        found = shapes[key].numpy().tolist()
        if found != shape:
            raise S2SError(
                f"spec.json does not match the records in {data_dir}: {key} is {found} in {first}, {shape} in the spec; re-run s2s prepare"
            )
