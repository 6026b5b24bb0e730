"""The batched greedy decoding loop over the ONNX encoder and one-step decoder, in numpy.

Each step feeds the argmax of the last step back as a one-hot token. A
sentence that has emitted the end token keeps emitting it, and the loop ends
when all have or when `max_steps` is reached.
"""

from __future__ import annotations

import numpy as np

from s2s.vocab import END_ID, START_ID
from serving.sessions import DecoderSession, EncoderSession


def greedy_ids(
    encoder: EncoderSession, decoder: DecoderSession, encoder_input: np.ndarray, target_vocab: int, max_steps: int
) -> np.ndarray:
    """Token ids (batch, steps <= max_steps) of a one-hot batch, end-token padded after each sentence's end.

    Every row holds the end token: a sentence still running at the last step
    gets it there, so a translation has at most `max_steps - 1` characters.
    """
    batch = len(encoder_input)
    states = encoder(encoder_input)
    token = np.zeros((batch, 1, target_vocab), dtype=np.float32)
    token[:, 0, START_ID] = 1.0
    emitted = np.full((batch, max_steps), END_ID, dtype=np.int64)
    finished = np.zeros(batch, dtype=bool)
    rows = np.arange(batch)
    for step in range(max_steps):
        probabilities, states = decoder(token, states)
        next_ids = probabilities[:, -1, :].argmax(axis=-1) if step < max_steps - 1 else np.full(batch, END_ID)
        emitted[:, step] = np.where(finished, END_ID, next_ids)
        finished |= next_ids == END_ID
        if finished.all():
            return emitted[:, : step + 1]
        token.fill(0.0)
        token[rows, 0, next_ids] = 1.0
    emitted[:, -1] = END_ID  # the limit: sentences still running end here
    return emitted
