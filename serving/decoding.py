"""Decoding loops over the exported ONNX models: greedy (numpy or IO binding) and beam search.

- `NumpyGreedy`: each step feeds numpy arrays; sentences that have ended
  leave the batch, so they stop costing work.
- `BoundGreedy`: `decoder_greedy.onnx` under onnxruntime IO binding. States
  and the next input stay where the execution provider keeps them (GPU
  memory with CUDA); only the int64 token ids come back each step.
- `beam_search`: K hypotheses per sentence, scored by log-probability
  divided by length ** `length_penalty`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from s2s import onnx_contract as contract
from s2s.vocab import END_ID, START_ID
from serving.sessions import DecoderSession, EncoderSession


def start_tokens(batch: int, target_vocab: int) -> np.ndarray:
    token = np.zeros((batch, 1, target_vocab), dtype=np.float32)
    token[:, 0, START_ID] = 1.0
    return token


class NumpyGreedy:
    """Greedy decoding through numpy arrays; finished sentences are dropped from later steps."""

    def __init__(self, encoder: EncoderSession, decoder: DecoderSession, target_vocab: int):
        self.encoder, self.decoder, self.target_vocab = encoder, decoder, target_vocab

    def __call__(self, encoder_input: np.ndarray, max_output_length: int) -> list[list[int]]:
        """Target ids of each sentence, without the end token, at most `max_output_length` each."""
        batch = len(encoder_input)
        states = self.encoder(encoder_input)
        token = start_tokens(batch, self.target_vocab)
        results: list[list[int]] = [[] for _ in range(batch)]
        active = np.arange(batch)
        for _ in range(max_output_length):
            probabilities, states = self.decoder(token, states)
            next_ids = probabilities[:, -1, :].argmax(axis=-1)
            running = next_ids != END_ID
            for row, token_id in zip(active[running], next_ids[running], strict=True):
                results[row].append(int(token_id))
            if not running.all():
                active, next_ids = active[running], next_ids[running]
                states = [state[running] for state in states]
                if not len(active):
                    break
            token = np.zeros((len(active), 1, self.target_vocab), dtype=np.float32)
            token[np.arange(len(active)), 0, next_ids] = 1.0
        return results


class BoundGreedy:
    """Greedy decoding with IO binding over `decoder_greedy.onnx`: states and next input never leave the device.

    Args:
        encoder_session, decoder_session: InferenceSessions of encoder.onnx and decoder_greedy.onnx.
        device: "cuda" or "cpu", where the OrtValues live.
    """

    def __init__(self, encoder_session: Any, decoder_session: Any, num_layers: int, target_vocab: int, device: str):
        self.encoder_session, self.decoder_session = encoder_session, decoder_session
        self.states = contract.state_names(num_layers)
        self.next_states = contract.next_state_names(num_layers)
        self.target_vocab = target_vocab
        self.device = device

    def __call__(self, encoder_input: np.ndarray, max_output_length: int) -> list[list[int]]:
        import onnxruntime

        batch = len(encoder_input)
        encoder_binding = self.encoder_session.io_binding()
        encoder_binding.bind_ortvalue_input(contract.ENCODER_INPUT, onnxruntime.OrtValue.ortvalue_from_numpy(encoder_input, self.device, 0))
        for name in self.states:
            encoder_binding.bind_output(name, self.device)
        self.encoder_session.run_with_iobinding(encoder_binding)
        values = dict(zip(self.states, encoder_binding.get_outputs(), strict=True))
        values[contract.DECODER_INPUT] = onnxruntime.OrtValue.ortvalue_from_numpy(start_tokens(batch, self.target_vocab), self.device, 0)
        emitted = np.full((batch, max_output_length), END_ID, dtype=np.int64)
        finished = np.zeros(batch, dtype=bool)
        for step in range(max_output_length):
            binding = self.decoder_session.io_binding()
            for name in (contract.DECODER_INPUT, *self.states):
                binding.bind_ortvalue_input(name, values[name])
            for name in (contract.NEXT_INPUT, *self.next_states):
                binding.bind_output(name, self.device)
            binding.bind_output(contract.NEXT_TOKEN, "cpu")  # only the ids come back to the host
            self.decoder_session.run_with_iobinding(binding)
            outputs = dict(zip([contract.NEXT_INPUT, *self.next_states, contract.NEXT_TOKEN], binding.get_outputs(), strict=True))
            next_ids = outputs[contract.NEXT_TOKEN].numpy()
            emitted[:, step] = np.where(finished, END_ID, next_ids)
            finished |= next_ids == END_ID
            if finished.all():
                break
            values = {
                contract.DECODER_INPUT: outputs[contract.NEXT_INPUT],
                **{name: outputs[next_name] for name, next_name in zip(self.states, self.next_states, strict=True)},
            }
        return [[int(token) for token in row[: _end_of(row)]] for row in emitted]


def _end_of(row: np.ndarray) -> int:
    ends = np.flatnonzero(row == END_ID)
    return int(ends[0]) if len(ends) else len(row)


def beam_search(
    encoder: EncoderSession,
    decoder: DecoderSession,
    encoder_input: np.ndarray,
    target_vocab: int,
    max_output_length: int,
    beam_size: int,
    length_penalty: float = 1.0,
) -> list[tuple[list[int], float]]:
    """Best hypothesis and its score for each sentence.

    A hypothesis's score is its log-probability (the end token's included when
    it ended) divided by its length (tokens, end token included) to the power
    `length_penalty`. Hypotheses still running at `max_output_length` are
    scored as if they ended there. With beam_size 1 this is greedy decoding.
    """
    batch = len(encoder_input)
    states = [np.repeat(state, beam_size, axis=0) for state in encoder(encoder_input)]
    # Only the first beam of each sentence is live at the start, so the K beams do not all repeat one hypothesis.
    scores = np.full((batch, beam_size), -np.inf, dtype=np.float64)
    scores[:, 0] = 0.0
    sequences = np.zeros((batch, beam_size, 0), dtype=np.int64)
    token = start_tokens(batch * beam_size, target_vocab)
    best: list[tuple[list[int], float]] = [([], -np.inf)] * batch
    for step in range(max_output_length):
        probabilities, states = decoder(token, states)
        log_probabilities = np.log(np.maximum(probabilities[:, -1, :].astype(np.float64), 1e-30)).reshape(batch, beam_size, target_vocab)
        totals = scores[:, :, None] + log_probabilities
        length = step + 1
        for sentence in range(batch):  # hypotheses that end here compete for the sentence's best
            for beam in range(beam_size):
                if np.isfinite(totals[sentence, beam, END_ID]):
                    candidate = totals[sentence, beam, END_ID] / length**length_penalty
                    if candidate > best[sentence][1]:
                        best[sentence] = (sequences[sentence, beam].tolist(), float(candidate))
        totals[:, :, END_ID] = -np.inf
        flat = totals.reshape(batch, -1)
        chosen = np.argsort(-flat, axis=1, kind="stable")[:, :beam_size]
        scores = np.take_along_axis(flat, chosen, axis=1)
        parents, next_ids = chosen // target_vocab, chosen % target_vocab
        sequences = np.concatenate([np.take_along_axis(sequences, parents[:, :, None], axis=1), next_ids[:, :, None]], axis=2)
        rows = (np.arange(batch)[:, None] * beam_size + parents).reshape(-1)
        states = [state[rows] for state in states]
        token = np.zeros((batch * beam_size, 1, target_vocab), dtype=np.float32)
        token[np.arange(batch * beam_size), 0, next_ids.reshape(-1)] = 1.0
        # Stop once no running hypothesis can beat a sentence's best: its log-probability only falls, so its score can at
        # most reach score_now / max_output_length ** length_penalty (scores are negative, penalty >= 0).
        bound = scores.max(axis=1) / max_output_length**length_penalty
        if all(best[sentence][1] >= bound[sentence] for sentence in range(batch)):
            break
    for sentence in range(batch):  # running hypotheses at the limit are scored as if they ended there
        for beam in range(beam_size):
            if np.isfinite(scores[sentence, beam]):
                candidate = scores[sentence, beam] / max_output_length**length_penalty
                if candidate > best[sentence][1]:
                    best[sentence] = (sequences[sentence, beam].tolist(), float(candidate))
    return best


def sequence_score(
    encoder: EncoderSession,
    decoder: DecoderSession,
    encoder_input: np.ndarray,
    target_vocab: int,
    ids: list[list[int]],
    max_output_length: int,
    length_penalty: float = 1.0,
) -> list[float]:
    """The beam-search score of given id sequences (forced decoding): for comparing decoders fairly."""
    scores = []
    for index, sequence in enumerate(ids):
        states = encoder(encoder_input[index : index + 1])
        token = start_tokens(1, target_vocab)
        total = 0.0
        ended = len(sequence) < max_output_length
        path = [*sequence, END_ID] if ended else sequence
        for token_id in path:
            probabilities, states = decoder(token, states)
            total += float(np.log(max(float(probabilities[0, -1, token_id]), 1e-30)))
            token = np.zeros_like(token)
            token[0, 0, token_id] = 1.0
        scores.append(total / len(path) ** length_penalty)
    return scores
