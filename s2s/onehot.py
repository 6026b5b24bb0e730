"""Text to ids and ids back to text, for every stage (numpy only): character ids, their one-hot for Keras, decoded output.

ONNX contract version 2 takes integer ids, so a host builds `encode_ids`'
small int32 array and never a one-hot one; the Keras models of training and
export verification take `one_hot(ids)`, the same rows the TFRecords hold.
`texts_of_ids` turns a batch of decoded ids back into strings. All are
whole-batch numpy operations: no Python runs per character.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from s2s.vocab import END_ID, PAD_ID, START_ID, UNKNOWN_ID, Vocabulary

ID_DTYPE = np.int32  # the ONNX contract's id type: Int32Array in JavaScript, no BigInt


@lru_cache(maxsize=16)
def _id_of_code_point(vocabulary: Vocabulary) -> np.ndarray:
    """A dense int32 table from code point to id, up to the vocabulary's highest code point; `<unk>` elsewhere."""
    code_points = np.array([ord(char) for char in vocabulary.characters], dtype=np.int64)
    table = np.full(int(code_points.max(initial=0)) + 2, UNKNOWN_ID, dtype=ID_DTYPE)  # the last entry stays <unk>
    table[code_points] = np.arange(len(vocabulary) - len(vocabulary.characters), len(vocabulary), dtype=ID_DTYPE)
    return table


def ids_of_text(text: str, vocabulary: Vocabulary) -> np.ndarray:
    """The ids of every character of `text`, `<unk>` for characters the vocabulary lacks, as one int32 array."""
    codes = np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype=np.uint32)
    table = _id_of_code_point(vocabulary)
    return table.take(np.minimum(codes, len(table) - 1))  # take: several times faster than [] indexing here


def encode_ids(sources: Sequence[str], vocabulary: Vocabulary, *, max_length: int, reverse: bool) -> np.ndarray:
    """Int32 ids `(batch, longest source)` of cleaned sources, each cut to `max_length` characters, 0-padded.

    Characters outside the vocabulary become `<unk>`. With `reverse`, each
    source's characters are reversed before padding (Sutskever et al. 2014),
    so padding always follows the real ids. An empty source is one padding id.
    """
    cut = [source[:max_length] for source in sources]
    lengths = np.fromiter(map(len, cut), dtype=np.int64, count=len(cut))
    steps = int(lengths.max(initial=0)) or 1
    batch = np.full((len(cut), steps), PAD_ID, dtype=ID_DTYPE)
    flat = ids_of_text("".join(cut), vocabulary)
    rows = np.repeat(np.arange(len(cut)), lengths)
    starts = np.cumsum(lengths) - lengths
    columns = np.arange(len(flat)) - np.repeat(starts, lengths)
    if reverse:
        columns = np.repeat(lengths, lengths) - 1 - columns
    batch[rows, columns] = flat
    return batch


def start_tokens(batch: int) -> np.ndarray:
    """The decoder's first input, int32 ids `(batch,)`: the start token for every sentence, in every decoding loop."""
    return np.full(batch, START_ID, dtype=ID_DTYPE)


def gather_rows(flat_ids: np.ndarray, starts: np.ndarray, lengths: np.ndarray, *, reverse: bool) -> np.ndarray:
    """A `(rows, longest)` 0-padded id batch cut out of one flat id array, by each row's start and length.

    How a host encodes a batch of sentences it has already turned into ids
    window by window: one fancy-indexing gather, whatever the row order.
    """
    steps = int(lengths.max(initial=0)) or 1
    columns = np.arange(steps)
    inside = columns < lengths[:, None]
    source = (starts[:, None] + (lengths[:, None] - 1 - columns if reverse else columns))[inside]
    batch = np.full((len(lengths), steps), PAD_ID, dtype=ID_DTYPE)
    batch[inside] = flat_ids.take(source)
    return batch


def one_hot(ids: np.ndarray, vocab_size: int) -> np.ndarray:
    """Float32 one-hot of an id array, with padding (id 0) as an all-zero row, as in the TFRecords."""
    table = np.eye(vocab_size, dtype=np.float32)
    table[PAD_ID] = 0.0
    return table[ids]


def encode_sources(sources: Sequence[str], vocabulary: Vocabulary, *, max_length: int, reverse: bool) -> np.ndarray:
    """Float32 one-hot `(batch, longest source, vocab)` of cleaned sources: the Keras models' encoder input."""
    return one_hot(encode_ids(sources, vocabulary, max_length=max_length, reverse=reverse), len(vocabulary))


_REPLACEMENT = 0xFFFD  # what `<unk>` decodes to, as in `Vocabulary.decode`
_SEPARATOR = ord("\n")  # the end token's character: never inside a decoded text, so it can delimit them


@lru_cache(maxsize=16)
def _code_points_of_ids(vocabulary: Vocabulary) -> np.ndarray:
    """Each id's code point; 0 for the ids that decode to nothing (pad, start, end)."""
    table = np.zeros(len(vocabulary), dtype=np.uint32)
    table[UNKNOWN_ID] = _REPLACEMENT
    table[len(vocabulary) - len(vocabulary.characters) :] = [ord(char) for char in vocabulary.characters]
    return table


def texts_of_ids(ids: np.ndarray, vocabulary: Vocabulary) -> list[str]:
    """`[vocabulary.decode(row) for row in ids]` for a `(batch, steps)` id array, with one string decode for the batch.

    Each row stops at its first end token; pad and start ids are skipped and
    `<unk>` becomes U+FFFD, as `Vocabulary.decode` does.
    """
    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise ValueError(f"texts_of_ids takes a (batch, steps) array, got shape {ids.shape}")
    batch, steps = ids.shape
    if not steps:
        return [""] * batch
    is_end = ids == END_ID
    ends = np.where(is_end.any(axis=1), is_end.argmax(axis=1), steps)
    steps = int(ends.max(initial=0))  # columns past every row's end hold nothing to decode
    ids = ids[:, :steps]
    code_points = np.empty((batch, steps + 1), dtype=np.uint32)
    code_points[:, :steps] = _code_points_of_ids(vocabulary).take(ids)
    code_points[:, steps] = _SEPARATOR
    keep = np.ones((batch, steps + 1), dtype=bool)
    keep[:, :steps] = (np.arange(steps) < ends[:, None]) & (code_points[:, :steps] != 0)
    text = code_points[keep].astype("<u4").tobytes().decode("utf-32-le")
    return text.split("\n")[:batch]


def ids_array(sequences: Sequence[Sequence[int]]) -> np.ndarray:
    """Variable-length id lists as one `(batch, longest)` array, end-token padded: what `texts_of_ids` takes."""
    lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
    array = np.full((len(sequences), int(lengths.max(initial=0))), END_ID, dtype=ID_DTYPE)
    if len(sequences):
        array[np.arange(array.shape[1]) < lengths[:, None]] = np.concatenate([np.asarray(row, dtype=ID_DTYPE) for row in sequences] or [[]])
    return array
