"""Decoding loops over the exported ONNX models: greedy (numpy or IO binding) and beam search.

All loops speak contract version 2: int32 source ids in, int32 token ids fed
back, and the encoder's memory (attention) passed unchanged to every step.

- `NumpyGreedy`: each step feeds numpy arrays; sentences that have ended
  leave the batch, so they stop costing work.
- `BoundGreedy`: `decoder_greedy.onnx` under onnxruntime IO binding. States,
  memory and the next token stay where the execution provider keeps them
  (GPU memory with CUDA); only a copy of the int32 ids comes back each step.
- `beam_search`: K hypotheses per sentence, scored by log-probability
  divided by length ** `length_penalty`, the whole batch in each step; it
  returns the N best ended ones (n-best), best first.
- `sequence_score`: the same score for given id sequences (forced decoding).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from s2s import onnx_contract as contract
from s2s.onehot import ID_DTYPE, start_tokens
from s2s.serving.sessions import DecoderSession, EncoderSession
from s2s.vocab import END_ID


class NumpyGreedy:
    """Greedy decoding through numpy arrays; finished sentences are dropped from later steps."""

    def __init__(self, encoder: EncoderSession, decoder: DecoderSession):
        self.encoder, self.decoder = encoder, decoder

    def __call__(self, source_ids: np.ndarray, max_output_length: int) -> np.ndarray:
        """Target ids `(batch, steps)`, steps at most `max_output_length`, end-token padded after each sentence's end."""
        return self.with_log_probabilities(source_ids, max_output_length)[0]

    def with_log_probabilities(self, source_ids: np.ndarray, max_output_length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The ids, each sentence's summed log-probability (its end token's included) and its length in tokens (likewise).

        What beam search needs to keep the greedy hypothesis as a candidate
        without scoring it in a second pass.
        """
        batch = len(source_ids)
        states, memory = self.encoder(source_ids)
        tokens = start_tokens(batch)
        columns: list[np.ndarray] = []  # one per step taken: memory grows with the output, never with the limit
        log_probability = np.zeros(batch, dtype=np.float64)
        lengths = np.full(batch, max_output_length, dtype=np.int64)
        active = np.arange(batch)  # the batch row of each row of the arrays decoded
        running = np.ones(batch, dtype=bool)  # rows of those arrays whose sentence has not ended
        for step in range(max_output_length):
            probabilities, states = self.decoder(tokens, states, memory)
            tokens = probabilities.argmax(axis=-1).astype(ID_DTYPE)
            chosen = probabilities[np.arange(len(tokens)), tokens].astype(np.float64)
            rows = active[running]
            log_probability[rows] += np.log(np.maximum(chosen[running], 1e-30))
            column = np.full(batch, END_ID, dtype=ID_DTYPE)
            column[rows] = tokens[running]
            columns.append(column)
            ended = running & (tokens == END_ID)
            lengths[active[ended]] = step + 1
            running &= ~ended
            if not running.any():
                break
            # Ended sentences leave the arrays a quarter at a time: copying the attention memory at every end costs more
            # than decoding a few finished rows along.
            if running.sum() <= 0.75 * len(running):
                active, tokens = active[running], tokens[running]
                states = [state[running] for state in states]
                memory = [value[running] for value in memory]
                running = np.ones(len(active), dtype=bool)
        return _stacked(columns, batch), log_probability, lengths


class BoundGreedy:
    """Greedy decoding with IO binding over `decoder_greedy.onnx`: states, memory and ids never leave the device.

    Args:
        encoder_session, decoder_session: InferenceSessions of encoder.onnx and decoder_greedy.onnx.
        device: "cuda" or "cpu", where the OrtValues live.
    """

    def __init__(self, encoder_session: Any, decoder_session: Any, num_layers: int, arch: str, device: str):
        self.encoder_session, self.decoder_session = encoder_session, decoder_session
        self.states = contract.state_names(num_layers)
        self.memory = contract.memory_names(arch)
        self.next_states = contract.next_state_names(num_layers)
        self.device = device

    def __call__(self, source_ids: np.ndarray, max_output_length: int) -> np.ndarray:
        """Target ids `(batch, steps)`, steps at most `max_output_length`, end-token padded after each sentence's end."""
        import onnxruntime

        batch = len(source_ids)
        encoder_binding = self.encoder_session.io_binding()
        encoder_binding.bind_ortvalue_input(contract.SOURCE_IDS, onnxruntime.OrtValue.ortvalue_from_numpy(source_ids, self.device, 0))
        encoded = [*self.states, *self.memory]
        for name in encoded:
            encoder_binding.bind_output(name, self.device)
        self.encoder_session.run_with_iobinding(encoder_binding)
        values = dict(zip(encoded, encoder_binding.get_outputs(), strict=True))
        values[contract.PREVIOUS_TOKEN] = onnxruntime.OrtValue.ortvalue_from_numpy(start_tokens(batch), self.device, 0)
        columns: list[np.ndarray] = []
        finished = np.zeros(batch, dtype=bool)
        produced = [contract.NEXT_TOKEN, *self.next_states]
        for _ in range(max_output_length):
            binding = self.decoder_session.io_binding()
            for name in (contract.PREVIOUS_TOKEN, *self.states, *self.memory):
                binding.bind_ortvalue_input(name, values[name])
            for name in produced:
                binding.bind_output(name, self.device)
            self.decoder_session.run_with_iobinding(binding)
            outputs = dict(zip(produced, binding.get_outputs(), strict=True))
            next_ids = outputs[contract.NEXT_TOKEN].numpy()  # the only copy to the host
            columns.append(np.where(finished, END_ID, next_ids).astype(ID_DTYPE))
            finished |= next_ids == END_ID
            if finished.all():
                break
            values[contract.PREVIOUS_TOKEN] = outputs[contract.NEXT_TOKEN]
            values.update({name: outputs[next_name] for name, next_name in zip(self.states, self.next_states, strict=True)})
        return _stacked(columns, batch)


def _stacked(columns: list[np.ndarray], batch: int) -> np.ndarray:
    """The step columns as `(batch, steps)` ids: as wide as the longest translation, not as the output limit."""
    return np.stack(columns, axis=1) if columns else np.full((batch, 0), END_ID, dtype=ID_DTYPE)


def ids_before_end(emitted: np.ndarray) -> list[list[int]]:
    """Each row's ids before its first end token (the whole row if it has none)."""
    is_end = emitted == END_ID
    ends = np.where(is_end.any(axis=1), is_end.argmax(axis=1), emitted.shape[1])
    return [row[:end].tolist() for row, end in zip(emitted, ends, strict=True)]


def beam_search(
    encoder: EncoderSession,
    decoder: DecoderSession,
    source_ids: np.ndarray,
    target_vocab: int,
    max_output_length: int,
    beam_size: int,
    length_penalty: float = 1.0,
    num_hypotheses: int = 1,
) -> list[list[tuple[list[int], float]]]:
    """The `num_hypotheses` best hypotheses of each sentence, best first, each with its score.

    A hypothesis's score is its log-probability (the end token's included when
    it ended) divided by its length (tokens, end token included) to the power
    `length_penalty`. Every step is one decoder call for all sentences' beams
    and a top-k over (batch, beam x vocab).

    A sentence's search ends, as in OpenNMT and CTranslate2, once it holds
    `num_hypotheses` ended hypotheses and the worst of them scores at least
    what its best running one would score if it ended now. Hypotheses still
    running at `max_output_length` are scored as if they ended there. With
    beam_size 1 this is greedy decoding.
    """
    if not 1 <= num_hypotheses <= beam_size:
        raise ValueError(f"num_hypotheses must be between 1 and beam_size ({beam_size}), got {num_hypotheses}")
    batch = len(source_ids)
    states, memory = encoder(source_ids)
    states = [np.repeat(state, beam_size, axis=0) for state in states]
    memory = [np.repeat(value, beam_size, axis=0) for value in memory]  # the beams of one sentence share it: never reordered
    # Only the first beam of each sentence is live at the start, so the K beams do not all repeat one hypothesis.
    scores = np.full((batch, beam_size), -np.inf, dtype=np.float64)
    scores[:, 0] = 0.0
    sequences = np.zeros((batch, beam_size, 0), dtype=ID_DTYPE)
    tokens = start_tokens(batch * beam_size)
    ended: list[list[tuple[float, list[int]]]] = [[] for _ in range(batch)]  # each sentence's best ended ones, best first
    bar = np.full(batch, -np.inf)  # what an ended hypothesis must beat: the worst kept once num_hypotheses are kept
    sentence = np.arange(batch)  # the batch index of each sentence in the arrays decoded
    searching = np.ones(batch, dtype=bool)  # which of those sentences are still searched

    def offer(rows: np.ndarray, candidates: np.ndarray) -> None:
        """Keeps each (row, beam) hypothesis whose score, `candidates[row, beam]`, beats its sentence's bar."""
        rows_of, beams_of = np.nonzero(candidates[rows] > bar[sentence[rows], None])
        for row, beam in zip(rows[rows_of].tolist(), beams_of.tolist(), strict=True):
            number, score = sentence[row], float(candidates[row, beam])
            if score <= bar[number]:  # an earlier beam of this row raised the bar
                continue
            kept = ended[number]
            kept.append((score, sequences[row, beam].tolist()))
            kept.sort(key=lambda hypothesis: -hypothesis[0])  # stable: an equal score found earlier stays first
            del kept[num_hypotheses:]
            if len(kept) == num_hypotheses:
                bar[number] = kept[-1][0]

    for step in range(max_output_length):
        rows = len(sentence)
        probabilities, states = decoder(tokens, states, memory)
        log_probabilities = np.log(np.maximum(probabilities.astype(np.float64), 1e-30)).reshape(rows, beam_size, target_vocab)
        totals = scores[:, :, None] + log_probabilities
        divisor = (step + 1) ** length_penalty
        offer(np.flatnonzero(searching), totals[:, :, END_ID] / divisor)  # hypotheses that end here
        totals[:, :, END_ID] = -np.inf
        flat = totals.reshape(rows, -1)
        # The K best continuations: a partial selection, then those K sorted (stable ties: the lower index first).
        chosen = np.argpartition(-flat, beam_size - 1, axis=1)[:, :beam_size]
        chosen = np.take_along_axis(chosen, np.lexsort((chosen, -np.take_along_axis(flat, chosen, axis=1)), axis=1), axis=1)
        scores = np.take_along_axis(flat, chosen, axis=1)
        parents, next_ids = chosen // target_vocab, chosen % target_vocab
        sequences = np.concatenate([np.take_along_axis(sequences, parents[:, :, None], axis=1), next_ids[:, :, None]], axis=2)
        rows_of_beams = (np.arange(rows)[:, None] * beam_size + parents).reshape(-1)
        states = [state[rows_of_beams] for state in states]
        tokens = next_ids.reshape(-1).astype(ID_DTYPE)
        searching &= bar[sentence] < scores.max(axis=1) / divisor
        if not searching.any():
            break
        # Finished sentences leave the arrays a quarter at a time: copying the attention memory at every finish would
        # cost more than decoding a few finished rows along (their results no longer change).
        if searching.sum() <= 0.75 * rows:
            keep_beams = np.repeat(searching, beam_size)
            sentence, scores, sequences = sentence[searching], scores[searching], sequences[searching]
            states = [state[keep_beams] for state in states]
            memory = [value[keep_beams] for value in memory]
            tokens = tokens[keep_beams]
            searching = np.ones(len(sentence), dtype=bool)
    else:  # the length limit ended the search: running hypotheses are scored as if they ended there
        offer(np.flatnonzero(searching), scores / max_output_length**length_penalty)
    return [[(ids, score) for score, ids in kept] for kept in ended]


def sequence_score(
    encoder: EncoderSession,
    decoder: DecoderSession,
    source_ids: np.ndarray,
    ids: list[list[int]],
    max_output_length: int,
    length_penalty: float = 1.0,
) -> list[float]:
    """The beam-search score of given id sequences (forced decoding), the whole batch in each step."""
    paths = [[*sequence, END_ID] if len(sequence) < max_output_length else list(sequence) for sequence in ids]
    lengths = np.array([len(path) for path in paths], dtype=np.int64)
    steps = int(lengths.max(initial=0))
    targets = np.full((len(paths), steps), END_ID, dtype=ID_DTYPE)
    for row, path in enumerate(paths):
        targets[row, : len(path)] = path
    states, memory = encoder(source_ids)
    tokens = start_tokens(len(paths))
    totals = np.zeros(len(paths), dtype=np.float64)
    rows = np.arange(len(paths))
    for step in range(steps):
        probabilities, states = decoder(tokens, states, memory)
        chosen = np.log(np.maximum(probabilities[rows, targets[:, step]].astype(np.float64), 1e-30))
        totals += np.where(step < lengths, chosen, 0.0)
        tokens = targets[:, step]
    return (totals / np.maximum(lengths, 1) ** length_penalty).tolist()
