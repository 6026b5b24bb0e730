"""Batched greedy decoding with the Keras inference models: the reference the ONNX translator must match.

Unlike the source material's loop (`predict()` per character, one sentence at
a time), this runs a whole batch per step, stops as soon as every sentence of
the batch has emitted the end token, and pads each batch only to its own
longest source.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from s2s.onehot import encode_sources, one_hot, start_tokens
from s2s.spec import DatasetSpec
from s2s.tensorflow_import import import_tensorflow
from s2s.training.config import REPEAT_VECTOR
from s2s.vocab import END_ID


class KerasGreedyDecoder:
    """Greedy translation with a trained MODEL_DIR's Keras models.

    >>> decoder = ModelDir("runs/toy/model").greedy_decoder()  # doctest: +SKIP
    >>> decoder.translate(["abcdef"])  # doctest: +SKIP
    ['cba']
    """

    def __init__(self, spec: DatasetSpec, arch: str, reverse_source: bool, encoder: Any = None, decoder: Any = None, model: Any = None):
        self.spec = spec
        self.arch = arch
        self.reverse_source = reverse_source
        self.encoder, self.decoder, self.model = encoder, decoder, model
        tf = import_tensorflow()
        if arch == REPEAT_VECTOR:
            self._predict = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        else:
            self._encode = tf.function(lambda x: encoder(x, training=False), reduce_retracing=True)
            # Traced once for any batch size: the loop below shrinks the batch as sentences end.
            step_signature = [[tf.TensorSpec(tensor.shape, tensor.dtype) for tensor in decoder.inputs]]
            self._step = tf.function(lambda inputs: decoder(inputs, training=False), input_signature=step_signature)
            self.state_count = len(decoder.outputs) - 1  # probabilities, then h_0, c_0, ...

    def translate(self, sources: Sequence[str], *, batch_size: int = 256, max_output_length: int | None = None) -> list[str]:
        """Greedy translations of already cleaned sources, in order.

        Args:
            batch_size: sentences decoded together.
            max_output_length: most characters per translation; default the spec's longest target.
        """
        max_steps = (max_output_length if max_output_length is not None else self.spec.max_target_length) + 1
        results: list[str] = []
        for start in range(0, len(sources), batch_size):
            batch = encode_sources(
                sources[start : start + batch_size],
                self.spec.source_vocabulary,
                max_length=self.spec.max_source_length,
                reverse=self.reverse_source,
            )
            ids = self._decode_repeat_vector(batch) if self.arch == REPEAT_VECTOR else self._decode_steps(batch, max_steps)
            results += [self.spec.target_vocabulary.decode(row[: max_steps - 1]) for row in ids]
        return results

    def _decode_steps(self, batch: np.ndarray, max_steps: int) -> np.ndarray:
        """Greedy ids `(batch, max_steps)`, end-token padded.

        Sentences that have ended leave the batch a quarter at a time, as in
        the serving loop: one sentence that never emits the end token (an
        undertrained model makes a few) would otherwise keep the whole batch
        decoding to `max_steps`, which made evaluation right after a short
        training several times slower than on a converged model.
        """
        encoded = list(self._encode(batch))
        # The first 2 x num_layers outputs are the states; an attention encoder adds its outputs and mask, fed back every step.
        states, memory = encoded[: self.state_count], encoded[self.state_count :]
        target_size = len(self.spec.target_vocabulary)
        token_ids = start_tokens(len(batch))
        emitted = np.full((len(batch), max_steps), END_ID, dtype=np.int64)
        rows = np.arange(len(batch))  # the batch row of each sentence still decoded
        finished = np.zeros(len(batch), dtype=bool)
        for step in range(max_steps):
            probabilities, *states = self._step([one_hot(token_ids[:, None], target_size), *states, *memory])
            next_ids = np.asarray(probabilities)[:, -1, :].argmax(axis=-1)
            emitted[rows, step] = np.where(finished, END_ID, next_ids)
            finished |= next_ids == END_ID
            if finished.all():
                break
            token_ids = next_ids  # the rows the ONNX decoder's id lookup gathers
            if finished.sum() >= 0.25 * len(rows):
                running = ~finished
                rows, token_ids, finished = rows[running], token_ids[running], finished[running]
                states = [np.asarray(state)[running] for state in states]
                memory = [np.asarray(value)[running] for value in memory]
        return emitted

    def _decode_repeat_vector(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self._predict(batch)).argmax(axis=-1)
