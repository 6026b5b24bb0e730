"""One-hot encoding of cleaned sources for the encoder, shared by the Keras reference decoder and serving (numpy only)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from s2s.vocab import Vocabulary


def encode_sources(sources: Sequence[str], vocabulary: Vocabulary, *, max_length: int, reverse: bool) -> np.ndarray:
    """Float32 one-hot `(batch, longest source, vocab)` of cleaned sources, each cut to `max_length` characters.

    Characters outside the vocabulary become `<unk>`. With `reverse`, each
    source's characters are reversed before padding (Sutskever et al. 2014),
    so padding always follows the real rows. An empty source is one all-zero row.
    """
    ids = [vocabulary.encode(source[:max_length]) for source in sources]
    if reverse:
        ids = [row[::-1] for row in ids]
    steps = max((len(row) for row in ids), default=0) or 1
    batch = np.zeros((len(ids), steps, len(vocabulary)), dtype=np.float32)
    for index, row in enumerate(ids):
        batch[index, np.arange(len(row)), row] = 1.0
    return batch
