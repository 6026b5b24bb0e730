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

from dataclasses import dataclass
from typing import Any

import numpy as np

from s2s import onnx_contract as contract
from s2s.onehot import ID_DTYPE, start_tokens
from s2s.serving.sessions import DecoderSession, EncoderSession
from s2s.vocab import END_ID


@dataclass(frozen=True)
class Sampling:
    """Random sampling instead of the argmax: from the `topk` most likely tokens (0: all), probabilities ** (1 / temperature)."""

    topk: int
    temperature: float
    rng: np.random.Generator


@dataclass(frozen=True)
class StepRules:
    """What constrains each row of one batch's decode, besides the model.

    Args:
        limits: (batch,) the most characters a row may emit; a row that reaches it without the end token is cut.
        min_lengths: (batch,) the end token is forbidden until a row has emitted this many characters.
        prefixes: (batch, P) int32 ids forced at the first steps of each row, -1 where a row's prefix has ended.
        sampling: sample instead of taking the argmax (greedy only).
        attention: collect the decoder's attention weights at each step.
    """

    limits: np.ndarray
    min_lengths: np.ndarray | None = None
    prefixes: np.ndarray | None = None
    sampling: Sampling | None = None
    attention: bool = False

    @classmethod
    def up_to(cls, limit: int | np.ndarray, batch: int) -> StepRules:
        """Rules that only limit the length: one limit for every row, or one per row."""
        return cls(np.broadcast_to(np.asarray(limit, dtype=np.int64), (batch,)).copy())

    def forced(self, rows: np.ndarray, step: int) -> np.ndarray | None:
        """The forced id of each of `rows` at `step` (-1: none), or None when no row has one."""
        if self.prefixes is None or step >= self.prefixes.shape[1]:
            return None
        forced = self.prefixes[rows, step]
        return forced if (forced >= 0).any() else None

    def end_forbidden(self, rows: np.ndarray, step: int) -> np.ndarray | None:
        """Which of `rows` may not end at `step` (min_lengths), or None when none."""
        if self.min_lengths is None:
            return None
        forbidden = self.min_lengths[rows] > step
        return forbidden if forbidden.any() else None


@dataclass
class Decoded:
    """A batch's greedy decode: ids, and what a result reports of them."""

    ids: np.ndarray  # (batch, steps) int32, end-token padded after each row's end
    log_probabilities: np.ndarray  # (batch,) summed log-probability, the end token's included when the row ended
    lengths: np.ndarray  # (batch,) tokens scored: characters, plus the end token when the row ended
    cut: np.ndarray  # (batch,) bool: the row reached its limit without the end token
    token_log_probabilities: np.ndarray  # (batch, steps) float32, 0 after the end
    attention: np.ndarray | None = None  # (batch, steps, source time) when asked for


class NumpyGreedy:
    """Greedy decoding (or sampling) through numpy arrays; finished sentences are dropped from later steps."""

    def __init__(self, encoder: EncoderSession, decoder: DecoderSession):
        self.encoder, self.decoder = encoder, decoder

    def __call__(self, source_ids: np.ndarray, max_output_length: int | np.ndarray) -> np.ndarray:
        """Target ids `(batch, steps)`, steps at most the limit, end-token padded after each sentence's end."""
        return self.decode(source_ids, StepRules.up_to(max_output_length, len(source_ids))).ids

    def decode(self, source_ids: np.ndarray, rules: StepRules) -> Decoded:
        """The ids, log-probabilities, lengths, cut flags (and attention) of a batch, each row within its own limit.

        Each row stops at its own limit whatever the batch around it, so a
        sentence translates the same in any batch.
        """
        batch = len(source_ids)
        states, memory = self.encoder(source_ids)
        tokens = start_tokens(batch)
        columns: list[np.ndarray] = []  # one per step taken: memory grows with the output, never with the limit
        token_columns: list[np.ndarray] = []
        attention_columns: list[np.ndarray] = []
        log_probability = np.zeros(batch, dtype=np.float64)
        lengths = rules.limits.astype(np.int64)  # a copy: rows that end early get their own length
        cut = np.zeros(batch, dtype=bool)
        active = np.arange(batch)  # the batch row of each row of the arrays decoded
        running = np.ones(batch, dtype=bool)  # rows of those arrays whose sentence has not ended
        for step in range(int(rules.limits.max(initial=0))):
            probabilities, states, attention = self.decoder(tokens, states, memory, attention=rules.attention)
            tokens = self._choose(probabilities, active, step, rules)
            chosen = probabilities[np.arange(len(tokens)), tokens].astype(np.float64)
            rows = active[running]
            logs = np.log(np.maximum(chosen[running], 1e-30))
            log_probability[rows] += logs
            column, token_column = np.full(batch, END_ID, dtype=ID_DTYPE), np.zeros(batch, dtype=np.float32)
            column[rows], token_column[rows] = tokens[running], logs
            columns.append(column)
            token_columns.append(token_column)
            if attention is not None:
                attention_column = np.zeros((batch, source_ids.shape[1]), dtype=np.float32)
                attention_column[rows] = attention[running]
                attention_columns.append(attention_column)
            ended = running & (tokens == END_ID)
            lengths[active[ended]] = step + 1
            reached = running & ~ended & (step + 1 >= rules.limits[active])
            cut[active[reached]] = True
            running &= ~(ended | reached)
            if not running.any():
                break
            # Ended sentences leave the arrays a quarter at a time: copying the attention memory at every end costs more
            # than decoding a few finished rows along.
            if running.sum() <= 0.75 * len(running):
                active, tokens = active[running], tokens[running]
                states = [state[running] for state in states]
                memory = [value[running] for value in memory]
                running = np.ones(len(active), dtype=bool)
        return Decoded(
            _stacked(columns, batch),
            log_probability,
            lengths,
            cut,
            np.stack(token_columns, axis=1) if token_columns else np.zeros((batch, 0), dtype=np.float32),
            np.stack(attention_columns, axis=1) if attention_columns else None,
        )

    @staticmethod
    def _choose(probabilities: np.ndarray, active: np.ndarray, step: int, rules: StepRules) -> np.ndarray:
        """Each row's next token: argmax or a sample, with the end token masked below min_lengths and prefixes forced."""
        forbidden = rules.end_forbidden(active, step)
        candidates = probabilities
        if forbidden is not None:
            candidates = probabilities.copy()
            candidates[forbidden, END_ID] = 0.0
        tokens = candidates.argmax(axis=-1).astype(ID_DTYPE) if rules.sampling is None else sample(candidates, rules.sampling)
        forced = rules.forced(active, step)
        if forced is not None:
            tokens = np.where(forced >= 0, forced, tokens).astype(ID_DTYPE)
        return tokens


def sample(probabilities: np.ndarray, sampling: Sampling) -> np.ndarray:
    """One token per row drawn from its `topk` most likely tokens (0: all), reweighted by the temperature."""
    weights = probabilities.astype(np.float64)
    if 0 < sampling.topk < weights.shape[1]:
        threshold = -np.partition(-weights, sampling.topk - 1, axis=1)[:, sampling.topk - 1 : sampling.topk]
        weights = np.where(weights >= threshold, weights, 0.0)
    weights = np.power(np.maximum(weights, 0.0), 1.0 / sampling.temperature)
    cumulative = np.cumsum(weights, axis=1)
    draws = sampling.rng.random(len(weights))[:, None] * cumulative[:, -1:]
    tokens = (cumulative <= draws).sum(axis=1)
    return np.minimum(tokens, weights.shape[1] - 1).astype(ID_DTYPE)


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

    def __call__(self, source_ids: np.ndarray, max_output_length: int | np.ndarray) -> np.ndarray:
        """Target ids `(batch, steps)`, each row within its own limit (one for all, or one per row), end-token padded."""
        import onnxruntime

        batch = len(source_ids)
        limits = StepRules.up_to(max_output_length, batch).limits
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
        for step in range(int(limits.max(initial=0))):
            binding = self.decoder_session.io_binding()
            for name in (contract.PREVIOUS_TOKEN, *self.states, *self.memory):
                binding.bind_ortvalue_input(name, values[name])
            for name in produced:
                binding.bind_output(name, self.device)
            self.decoder_session.run_with_iobinding(binding)
            outputs = dict(zip(produced, binding.get_outputs(), strict=True))
            next_ids = outputs[contract.NEXT_TOKEN].numpy()  # the only copy to the host
            columns.append(np.where(finished, END_ID, next_ids).astype(ID_DTYPE))
            finished |= (next_ids == END_ID) | (step + 1 >= limits)
            if finished.all():
                break
            values[contract.PREVIOUS_TOKEN] = outputs[contract.NEXT_TOKEN]
            values.update({name: outputs[next_name] for name, next_name in zip(self.states, self.next_states, strict=True)})
        return _stacked(columns, batch)


def _stacked(columns: list[np.ndarray], batch: int) -> np.ndarray:
    """The step columns as `(batch, steps)` ids: as wide as the longest translation, not as the output limit."""
    return np.stack(columns, axis=1) if columns else np.full((batch, 0), END_ID, dtype=ID_DTYPE)


def end_positions(emitted: np.ndarray) -> np.ndarray:
    """Each row's first end token's step (the row's width if it has none): its length in characters."""
    is_end = emitted == END_ID
    return np.where(is_end.any(axis=1), is_end.argmax(axis=1), emitted.shape[1])


def ids_before_end(emitted: np.ndarray) -> list[list[int]]:
    """Each row's ids before its first end token (the whole row if it has none)."""
    return [row[:end].tolist() for row, end in zip(emitted, end_positions(emitted), strict=True)]


@dataclass(frozen=True)
class Hypothesis:
    """One translation candidate: ids before the end token, its score, whether the limit cut it, and its attention."""

    ids: list[int]
    score: float
    cut: bool = False
    attention: np.ndarray | None = None  # (characters, source time), when asked for


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
    """`search_beams` with one limit for every sentence, as (ids, score) pairs."""
    rules = StepRules.up_to(max_output_length, len(source_ids))
    searched = search_beams(encoder, decoder, source_ids, target_vocab, rules, beam_size, length_penalty, num_hypotheses)
    return [[(hypothesis.ids, hypothesis.score) for hypothesis in hypotheses] for hypotheses in searched]


def search_beams(
    encoder: EncoderSession,
    decoder: DecoderSession,
    source_ids: np.ndarray,
    target_vocab: int,
    rules: StepRules,
    beam_size: int,
    length_penalty: float = 1.0,
    num_hypotheses: int = 1,
) -> list[list[Hypothesis]]:
    """The `num_hypotheses` best hypotheses of each sentence, best first.

    A hypothesis's score is its log-probability (the end token's included when
    it ended) divided by its length (tokens, end token included) to the power
    `length_penalty`. Every step is one decoder call for all sentences' beams
    and a top-k over (batch, beam x vocab).

    A sentence's search ends, as in OpenNMT and CTranslate2, once it holds
    `num_hypotheses` ended hypotheses and the worst of them scores at least
    what its best running one would score if it ended now. Hypotheses still
    running at the sentence's own limit are scored as if they ended there,
    and marked cut. With beam_size 1 this is greedy decoding. `rules` also
    forbid the end token below min_lengths and force prefixes; sampling is
    for greedy decoding only.
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
    history = np.zeros((batch, beam_size, 0, source_ids.shape[1]), dtype=np.float32) if rules.attention else None
    tokens = start_tokens(batch * beam_size)
    ended: list[list[Hypothesis]] = [[] for _ in range(batch)]  # each sentence's best ended ones, best first
    bar = np.full(batch, -np.inf)  # what an ended hypothesis must beat: the worst kept once num_hypotheses are kept
    sentence = np.arange(batch)  # the batch index of each sentence in the arrays decoded
    searching = np.ones(batch, dtype=bool)  # which of those sentences are still searched

    def offer(rows: np.ndarray, candidates: np.ndarray, cut: bool) -> None:
        """Keeps each (row, beam) hypothesis whose score, `candidates[row, beam]`, beats its sentence's bar."""
        rows_of, beams_of = np.nonzero(candidates[rows] > bar[sentence[rows], None])
        for row, beam in zip(rows[rows_of].tolist(), beams_of.tolist(), strict=True):
            number, score = sentence[row], float(candidates[row, beam])
            if score <= bar[number]:  # an earlier beam of this row raised the bar
                continue
            kept = ended[number]
            attention = history[row, beam].copy() if history is not None else None
            kept.append(Hypothesis(sequences[row, beam].tolist(), score, cut, attention))
            kept.sort(key=lambda hypothesis: -hypothesis.score)  # stable: an equal score found earlier stays first
            del kept[num_hypotheses:]
            if len(kept) == num_hypotheses:
                bar[number] = kept[-1].score

    for step in range(int(rules.limits.max(initial=0))):
        rows = len(sentence)
        probabilities, states, attention = decoder(tokens, states, memory, attention=rules.attention)
        log_probabilities = np.log(np.maximum(probabilities.astype(np.float64), 1e-30)).reshape(rows, beam_size, target_vocab)
        totals = scores[:, :, None] + log_probabilities
        forced = rules.forced(sentence, step)
        if forced is not None:  # a prefix: only its token may follow, ending included
            for row in np.flatnonzero(forced >= 0).tolist():
                kept_column = totals[row, :, forced[row]].copy()
                totals[row] = -np.inf
                totals[row, :, forced[row]] = kept_column
        forbidden = rules.end_forbidden(sentence, step)
        if forbidden is not None:
            totals[forbidden, :, END_ID] = -np.inf
        divisor = (step + 1) ** length_penalty
        offer(np.flatnonzero(searching), totals[:, :, END_ID] / divisor, cut=False)  # hypotheses that end here
        totals[:, :, END_ID] = -np.inf
        flat = totals.reshape(rows, -1)
        # The K best continuations: a partial selection, then those K sorted (stable ties: the lower index first).
        chosen = np.argpartition(-flat, beam_size - 1, axis=1)[:, :beam_size]
        chosen = np.take_along_axis(chosen, np.lexsort((chosen, -np.take_along_axis(flat, chosen, axis=1)), axis=1), axis=1)
        scores = np.take_along_axis(flat, chosen, axis=1)
        parents, next_ids = chosen // target_vocab, chosen % target_vocab
        sequences = np.concatenate([np.take_along_axis(sequences, parents[:, :, None], axis=1), next_ids[:, :, None]], axis=2)
        if history is not None:
            step_attention = attention.reshape(rows, beam_size, 1, -1)
            history = np.concatenate(
                [np.take_along_axis(history, parents[:, :, None, None], axis=1), np.take_along_axis(step_attention, parents[:, :, None, None], axis=1)],
                axis=2,
            )
        rows_of_beams = (np.arange(rows)[:, None] * beam_size + parents).reshape(-1)
        states = [state[rows_of_beams] for state in states]
        tokens = next_ids.reshape(-1).astype(ID_DTYPE)
        at_limit = searching & (rules.limits[sentence] <= step + 1)
        if at_limit.any():  # the length limit ends these searches: running hypotheses are scored as if they ended here
            offer(np.flatnonzero(at_limit), scores / (step + 1) ** length_penalty, cut=True)
            searching &= ~at_limit
        searching &= bar[sentence] < scores.max(axis=1) / divisor
        if not searching.any():
            break
        # Finished sentences leave the arrays a quarter at a time: copying the attention memory at every finish would
        # cost more than decoding a few finished rows along (their results no longer change).
        if searching.sum() <= 0.75 * rows:
            keep_beams = np.repeat(searching, beam_size)
            sentence, scores, sequences = sentence[searching], scores[searching], sequences[searching]
            if history is not None:
                history = history[searching]
            states = [state[keep_beams] for state in states]
            memory = [value[keep_beams] for value in memory]
            tokens = tokens[keep_beams]
            searching = np.ones(len(sentence), dtype=bool)
    return ended


def sequence_score(
    encoder: EncoderSession,
    decoder: DecoderSession,
    source_ids: np.ndarray,
    ids: list[list[int]],
    max_output_length: int,
    length_penalty: float = 1.0,
) -> list[float]:
    """The beam-search score of given id sequences (forced decoding), the whole batch in each step."""
    token_logs, lengths = sequence_log_probabilities(encoder, decoder, source_ids, ids, max_output_length)
    return (token_logs.sum(axis=1, dtype=np.float64) / np.maximum(lengths, 1) ** length_penalty).tolist()


def sequence_log_probabilities(
    encoder: EncoderSession, decoder: DecoderSession, source_ids: np.ndarray, ids: list[list[int]], max_output_length: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each given id sequence's per-token log-probabilities `(batch, steps)` (the end token's last, 0 after) and its length.

    A sequence shorter than `max_output_length` is scored with its end token; a longer one is cut there, as decoding would.
    """
    paths = [[*sequence, END_ID] if len(sequence) < max_output_length else list(sequence[:max_output_length]) for sequence in ids]
    lengths = np.array([len(path) for path in paths], dtype=np.int64)
    steps = int(lengths.max(initial=0))
    targets = np.full((len(paths), steps), END_ID, dtype=ID_DTYPE)
    for row, path in enumerate(paths):
        targets[row, : len(path)] = path
    states, memory = encoder(source_ids)
    tokens = start_tokens(len(paths))
    token_logs = np.zeros((len(paths), steps), dtype=np.float64)
    rows = np.arange(len(paths))
    for step in range(steps):
        probabilities, states, _ = decoder(tokens, states, memory)
        chosen = np.log(np.maximum(probabilities[rows, targets[:, step]].astype(np.float64), 1e-30))
        token_logs[:, step] = np.where(step < lengths, chosen, 0.0)
        tokens = targets[:, step]
    return token_logs, lengths
