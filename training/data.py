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

SORTING_WINDOW_BATCHES = 16  # bucket_by_length: batches' worth of shuffled pairs sorted by length together


def split_pairs(spec: DatasetSpec, split: str, config: TrainConfig, *, training: bool) -> int:
    """The pairs a split feeds one pass of training or validation: the training split capped by max_train_pairs."""
    pairs = spec.split_sizes.get(split, 0)
    return min(pairs, config.max_train_pairs) if training and config.max_train_pairs else pairs


def batches_per_epoch(spec: DatasetSpec, config: TrainConfig) -> int:
    """Training batches in one pass over the data (the same with bucket_by_length: only the last window has a part batch)."""
    return max(1, math.ceil(split_pairs(spec, "train", config, training=True) / config.batch_size))


def training_batches(data_dir: str | Path, split: str, spec: DatasetSpec, config: TrainConfig, *, training: bool) -> Any:
    """Batches of `(inputs, decoder_target, sample_weight)` for `model.fit`.

    The records hold padded one-hot rows; read as character ids a pair takes a few hundred bytes, so a split is kept in
    memory after its first pass and later epochs skip reading, decompressing and parsing it (a quarter of a small
    model's training time went there). Batches become one-hot float32 again as the model takes them.

    Args:
        split: "train" (shuffled, optionally capped by max_train_pairs) or "validation".
        training: shuffle and cap; validation batches keep file order.
    """
    tf = import_tensorflow()
    pairs = split_pairs(spec, split, config, training=training)
    id_dtype = tf.int16 if max(len(spec.source_vocabulary), len(spec.target_vocabulary)) <= 2**15 else tf.int32
    dataset = read_examples(data_dir, split, spec, one_hot_dtype="uint8").take(pairs)
    dataset = dataset.map(lambda example: _as_ids(tf, example, config.reverse_source, id_dtype), num_parallel_calls=tf.data.AUTOTUNE)
    # Declaring the size lets Keras show progress and know an epoch's end on the first pass.
    dataset = dataset.cache().apply(tf.data.experimental.assert_cardinality(pairs))
    if training and config.shuffle_buffer:
        dataset = dataset.shuffle(config.shuffle_buffer, seed=config.seed, reshuffle_each_iteration=True)
    if config.bucket_by_length:
        dataset = dataset.batch(config.batch_size * SORTING_WINDOW_BATCHES).flat_map(
            lambda window: _length_sorted_batches(tf, window, config.batch_size)
        )
        if training:  # a window's batches come shortest first: mix them, so no stretch of an epoch sees only short pairs
            dataset = dataset.shuffle(4 * SORTING_WINDOW_BATCHES, seed=config.seed, reshuffle_each_iteration=True)
    else:
        dataset = dataset.batch(config.batch_size)
    arrange = _repeat_vector_tuple if config.arch == REPEAT_VECTOR else _encoder_decoder_tuple
    depths = {"encoder_input": len(spec.source_vocabulary), "decoder_input": len(spec.target_vocabulary), "decoder_target": len(spec.target_vocabulary)}
    dataset = dataset.map(lambda batch: arrange(_as_one_hot(tf, batch, depths)), num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
    return dataset.with_options(_without_autotune_thread(tf))


def _without_autotune_thread(tf: Any) -> Any:
    """Dataset options that turn tf.data's autotuning off, and with it the 3-4 s idle stall it put between epochs.

    Keras makes a new iterator for each epoch and each validation pass. Destroying the old one waits for its autotuning
    thread, which sleeps in `Model::OptimizeLoop` and often only wakes seconds later: in TensorFlow 2.21, 4 of 9 epoch
    boundaries of the demo's model waited 3.5-3.8 s with the process idle (0.08 s of CPU), where an epoch takes 6.5 s.
    Without autotuning the parallel maps run on the CPU count's threads and no boundary waited (0.05 s, 9 of 9); the
    pipeline costs 0.3 s of CPU an epoch once the split is in memory, so there is nothing for the tuner to win.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return options


def reverse_within_length(tf: Any, sequence: Any, length: Any) -> Any:
    """Reverses the real positions of one `(time, ...)` sequence, leaving its padding at the end."""
    return tf.reverse_sequence(sequence[tf.newaxis], tf.reshape(length, [1]), seq_axis=1, batch_axis=0)[0]


def _as_ids(tf: Any, example: dict[str, Any], reverse_source: bool, id_dtype: Any) -> dict[str, Any]:
    """A pair's one-hot rows as character ids, -1 at padding (an all-zero row, which `tf.one_hot` gives back for -1)."""

    def ids(one_hot: Any) -> Any:
        return tf.cast(tf.where(tf.reduce_max(one_hot, axis=-1) > 0, tf.argmax(one_hot, axis=-1, output_type=tf.int32), -1), id_dtype)

    source = ids(example[ENCODER_INPUT])
    if reverse_source:
        source = reverse_within_length(tf, source, example[SOURCE_LENGTH])
    return {
        "encoder_input": source,
        "decoder_input": ids(example[DECODER_INPUT]),
        "decoder_target": ids(example[DECODER_TARGET]),
        "source_length": tf.cast(example[SOURCE_LENGTH], tf.int32),
        "target_length": tf.cast(example[TARGET_LENGTH], tf.int32),
    }


def _length_sorted_batches(tf: Any, window: dict[str, Any], batch_size: int) -> Any:
    """A window of pairs sorted by target length and cut into batches, each trimmed to its longest pair.

    Sorting a window of shuffled pairs at once is what OpenNMT and Marian do; in tf.data it is a few vectorised ops per
    window, where `bucket_by_sequence_length` spent about 90 µs a pair (two seconds of CPU an epoch of 20,000 pairs,
    taken from the train step on 2 cores), and its batches carry 5% less padding than fixed length buckets.
    """
    order = tf.argsort(window["target_length"], stable=True)
    window = {key: tf.gather(value, order) for key, value in window.items()}
    starts = tf.range(0, tf.shape(order)[0], batch_size, dtype=tf.int32)
    return tf.data.Dataset.from_tensor_slices(starts).map(
        lambda start: _trim_padding(tf, {key: value[start : start + batch_size] for key, value in window.items()})
    )


def _trim_padding(tf: Any, batch: dict[str, Any]) -> dict[str, Any]:
    """Cuts a batch's time axes to its longest source and target, so short pairs do not carry long padding."""
    source_steps = tf.reduce_max(batch["source_length"])
    decoder_steps = tf.reduce_max(batch["target_length"]) + 1
    trimmed = dict(batch)
    trimmed["encoder_input"] = batch["encoder_input"][:, :source_steps]
    for key in ("decoder_input", "decoder_target"):
        trimmed[key] = batch[key][:, :decoder_steps]
    return trimmed


def _as_one_hot(tf: Any, batch: dict[str, Any], depths: dict[str, int]) -> dict[str, Any]:
    """A batch of ids as the float32 one-hot rows the model takes, and the sample weight: 1 at a real target step, 0 at padding."""
    one_hot = {key: tf.one_hot(tf.cast(batch[key], tf.int32), depth, dtype=tf.float32) for key, depth in depths.items()}
    return {**one_hot, "sample_weight": tf.cast(batch["decoder_target"] >= 0, tf.float32)}


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
