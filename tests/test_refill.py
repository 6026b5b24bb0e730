"""The CPU's greedy loop keeps its decoder batch full (serving/refill.py): the same ids as decoding batch by batch."""

from __future__ import annotations

import numpy as np
import pytest

from s2s import onnx_contract as contract
from s2s.serving.decoding import NumpyGreedy, end_positions, ids_before_end
from s2s.serving.refill import RefillGreedy
from s2s.serving.sessions import DecoderSession, open_session
from s2s.serving.windows import prepare_sources


def _batches(ids: np.ndarray, size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Encoder batches by ascending length, as the engine makes them, each cut to its longest source."""
    lengths = (ids > 0).sum(axis=1)
    order = np.argsort(lengths, kind="stable")
    return [(rows, ids[rows][:, : max(1, int(lengths[rows].max()))]) for rows in np.array_split(order, range(size, len(order), size))]


def _decode(decoder: DecoderSession, engine, batches, limits: np.ndarray) -> tuple[list[list[int]], np.ndarray]:
    found: list[list[int]] = [[] for _ in limits]
    cut = np.zeros(len(limits), dtype=bool)
    seen = []
    for finished in RefillGreedy(engine.encoder, decoder).decode(iter(batches), limits):
        for row, ids, was_cut in zip(finished.rows.tolist(), ids_before_end(finished.ids), finished.cut.tolist(), strict=True):
            found[row], cut[row] = ids, was_cut
        seen += finished.rows.tolist()
    assert sorted(seen) == list(range(len(limits)))  # every row comes back, once
    return found, cut


@pytest.mark.parametrize("batch_size", [1, 8, 32])
def test_a_pool_refilled_as_sentences_end_gives_the_ids_of_batch_by_batch_decoding(engine, validation_sources, batch_size: int) -> None:
    """Rows of many lengths and limits (every seventh cut at 2 characters), more rows than the pool (the first batch's
    size) holds: slots are refilled, the pool's memory widens as longer sources arrive and it shrinks at the end, and each
    row still gets exactly its own ids."""
    sources = [*validation_sources[:150], "zz", "a", "0123456789" * 3, "abcdefghijklmnopqrstuvwxyz"]
    ids = engine.info.encode(prepare_sources(engine.info, sources))
    limits = np.where(np.arange(len(sources)) % 7 == 0, 2, 12).astype(np.int64)
    expected = NumpyGreedy(engine.encoder, engine.decoder)(ids, limits)
    found, cut = _decode(engine.decoder, engine, _batches(ids, batch_size), limits)
    assert found == ids_before_end(expected)
    assert cut.tolist() == (end_positions(expected) >= limits).tolist()
    assert cut[::7].any() and not cut.all()


def test_the_bound_step_and_the_plain_step_agree(toy_onnx, engine, validation_sources) -> None:
    """decoder_greedy.onnx runs under IO binding on preallocated arrays; decoder.onnx (no next_token) through session.run
    and a host argmax: the same ids."""
    plain = DecoderSession(open_session(toy_onnx[0] / contract.DECODER_FILE), engine.info)
    assert engine.decoder.has_next_token and not plain.has_next_token
    ids = engine.info.encode(prepare_sources(engine.info, validation_sources[:100]))
    limits = np.full(len(ids), 10, dtype=np.int64)
    bound = _decode(engine.decoder, engine, _batches(ids, 16), limits)
    unbound = _decode(plain, engine, _batches(ids, 16), limits)
    assert bound[0] == unbound[0] and bound[1].tolist() == unbound[1].tolist()


def test_the_pool_memory_narrows_when_its_long_rows_have_left(engine, validation_sources) -> None:
    """Long sources first, then short ones (as at a window's end and the next one's start): the attention memory the steps
    read narrows to the longest source still in the pool, and every row keeps its own ids."""

    class WidthsSeen(DecoderSession):
        def bind_step(self, tokens, states, memory, next_tokens, next_states):
            self.widths.append(memory[0].shape[1])
            return super().bind_step(tokens, states, memory, next_tokens, next_states)

    sources = [*validation_sources[:40], *[source[:2] for source in validation_sources[40:120]]]
    ids = engine.info.encode(prepare_sources(engine.info, sources))
    limits = np.full(len(sources), 12, dtype=np.int64)
    expected = NumpyGreedy(engine.encoder, engine.decoder)(ids, limits)
    decoder = WidthsSeen(engine.decoder.session, engine.info)
    decoder.widths = []
    descending = [(rows[::-1], batch) for rows, batch in _batches(ids, 8)][::-1]
    descending = [(rows, ids[rows][:, : max(1, int((ids[rows] > 0).sum(axis=1).max()))]) for rows, _ in descending]
    found, _ = _decode(decoder, engine, descending, limits)
    assert found == ids_before_end(expected)
    assert decoder.widths[0] == 6 and min(decoder.widths) == 2  # from the toy's 6-character sources down to 2


def test_the_stream_hands_out_the_next_window_before_the_last_one_is_written() -> None:
    """A window bigger than the read-ahead bound (16,384 lines by default against a few thousand rows): the next window's
    batches still come while the last rows of the previous one decode, so the pools never drain at a window's end; a third
    window waits until the first has been handed back."""
    from s2s.serving.continuous import _Stream
    from s2s.serving.refill import Batch, Supply
    from s2s.serving.windows import PreparedWindow

    def window(rows: int) -> tuple[str, PreparedWindow]:
        lengths = np.full(rows, 3, dtype=np.int64)
        return "window", PreparedWindow(np.zeros(3 * rows, dtype=np.int32), np.arange(rows) * 3, lengths)

    def batches_of(prepared: PreparedWindow):
        rows = len(prepared.lengths)
        for start in range(0, rows, 100):
            indices = np.arange(start, min(rows, start + 100))
            yield indices, np.ones((len(indices), 3), dtype=np.int32), np.full(len(indices), 5)

    stream = _Stream(iter([window(300), window(300), window(300)]), batches_of, lambda prepared: True, ahead_rows=256)
    taken = []
    while isinstance(batch := stream.take(False), Batch):
        taken.append(batch)
    assert batch is Supply.NOTHING_YET
    assert [int(batch.rows[0]) for batch in taken] == [0, 100, 200, 300, 400, 500]  # windows 1 and 2, none of window 3
    stream.release()  # window 1 written: room for window 3
    assert int(stream.take(False).rows[0]) == 600
