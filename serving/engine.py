"""`Engine`: an export opened in onnxruntime and the loop that decodes windows of sources with it.

`Translator` is the public face (batches, streams, files, scoring); the
file writer and the Beam worker drive the engine directly with checked,
frozen `DecodingOptions`. Nothing here reads or writes files.

Prefetch: while the engine decodes window k, one host thread takes window
k+1 from its source (reading a file, for a file job) and prepares it
(normalising, ids), since onnxruntime releases the GIL while it runs.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from s2s import onnx_contract as contract
from s2s import output_length
from s2s.config import validate_choice
from s2s.errors import ConfigError, InputMissingError, S2SError
from s2s.onehot import gather_rows, ids_array, ids_of_text, texts_of_ids
from s2s.serving.config import DEVICES, PRECISIONS, resolve_batch_size
from s2s.serving.continuous import translate_continuously
from s2s.serving.decoding import (
    BoundGreedy,
    Hypothesis,
    NumpyGreedy,
    Sampling,
    StepRules,
    end_positions,
    ids_before_end,
    search_beams,
    sequence_log_probabilities,
    sequence_score,
)
from s2s.serving.model_info import ModelInfo
from s2s.serving.options import BATCH_TYPES, MAX_OUTPUT_LENGTH_CEILING, DecodingOptions
from s2s.serving.parallel import map_in_parallel, resolve_threads
from s2s.serving.results import ScoringResult, TranslationResult
from s2s.serving.sessions import (
    DecoderSession,
    EncoderSession,
    check_same_export,
    check_target_vocabulary,
    model_info,
    open_session,
)
from s2s.serving.windows import (
    PreparedWindow,
    SourceWindow,
    WindowTranslations,
    joined_lines,
    prepare_sources,
    prepare_window,
    sentence_list,
)
from s2s.vocab import UNKNOWN_ID

CUDA_PROVIDER = "CUDAExecutionProvider"
END_TOKEN = "</s>"
UNKNOWN_CHARACTER = "\ufffd"

logger = logging.getLogger(__name__)

Window = TypeVar("Window", bound=SourceWindow)
_EMPTY_RESULT = TranslationResult([""], [0.0], None, [False])


class Engine:
    """The sessions of one export and the decoding loops over them: greedy (refilled pool, numpy or IO binding) and beam search.

    Open one with `Engine.open`; see `Translator` for what each argument means.
    """

    def __init__(
        self,
        model_dir: Path,
        device: str,
        precision: str,
        io_binding: bool,
        info: ModelInfo,
        encoder: EncoderSession,
        decoder: DecoderSession,
        greedy: Any,
        inter_threads: int = 1,
        intra_threads: int = 0,
    ):
        self.model_dir, self.device, self.precision, self.io_binding = model_dir, device, precision, io_binding
        self.info, self.encoder, self.decoder, self._greedy = info, encoder, decoder, greedy
        self.inter_threads = inter_threads  # batches decoded at once, each on its own thread (`s2s.serving.parallel`)
        self.intra_threads = intra_threads  # threads inside each onnxruntime call; 0: onnxruntime's choice

    @classmethod
    def open(
        cls,
        model_dir: str | Path,
        device: str = "auto",
        *,
        precision: str = "float32",
        io_binding: bool | None = None,
        inter_threads: int = 0,
        intra_threads: int = 0,
        verify: bool = True,
    ) -> Engine:
        """Opens an export folder's encoder and decoder of `precision` on `device`, each checked against its SHA256SUMS.

        Raises:
            S2SError: a missing or damaged model, metadata without the vocabulary, or `device="cuda"` without a GPU.
        """
        validate_choice("device", device, DEVICES)
        validate_choice("precision", precision, PRECISIONS)
        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise InputMissingError(f"model directory {model_dir} does not exist: pass the output of s2s export")
        if precision == "int8" and device == "cuda":
            raise ConfigError("int8 runs on the CPU (onnxruntime's quantized kernels); on a GPU use float16 or float32")
        chosen = "cpu" if precision == "int8" else _choose_device(device)
        if not verify:
            logger.warning("not verifying %s against its %s (--no-verify): a damaged file would translate wrongly", model_dir, contract.CHECKSUMS_FILE)
        providers = [CUDA_PROVIDER, "CPUExecutionProvider"] if chosen == "cuda" else ["CPUExecutionProvider"]
        # Threads are resolved for the device asked for; a GPU that turns out unusable falls back to the CPU with a GPU's
        # single loop, which is correct, only slower.
        inter_threads, intra_threads = resolve_threads(inter_threads, intra_threads, chosen)
        options = session_options(intra_threads)
        # The encoder runs once per batch of hundreds of sources, the decoder once per character: a spinning encoder thread
        # pool would keep a core busy between its calls, in the decoder's way (16% of CPU translation speed on 2 cores).
        encoder_options = session_options(intra_threads, spinning=False)
        # One decoder file per precision: the greedy one (probabilities, states, attention and the argmax) serves every
        # loop, since sessions fetch outputs by name; greedy fetches only the argmax.
        encoder_file, decoder_file = contract.PRECISION_FILES[precision]
        encoder_session = open_session(model_dir / encoder_file, providers, encoder_options, verify=verify)
        if chosen == "cuda" and CUDA_PROVIDER not in encoder_session.get_providers():
            # onnxruntime-gpu lists its CUDA provider on any machine; a session falls back to the CPU when no device is usable.
            if device == "cuda":
                raise S2SError("--device cuda, but onnxruntime-gpu found no usable CUDA device (check the driver and CUDA_VISIBLE_DEVICES)")
            logger.warning("onnxruntime-gpu is installed but found no usable CUDA device: translating on the CPU")
            chosen, providers = "cpu", ["CPUExecutionProvider"]
            encoder_session = open_session(model_dir / encoder_file, providers, encoder_options, verify=verify)
        info = model_info(encoder_session, model_dir / encoder_file)
        decoder_session = open_session(model_dir / decoder_file, providers, options, verify=verify)
        check_target_vocabulary(decoder_session, info, model_dir / decoder_file)
        check_same_export({encoder_file: encoder_session, decoder_file: decoder_session})
        encoder, decoder = EncoderSession(encoder_session, info), DecoderSession(decoder_session, info)
        bound = chosen == "cuda" if io_binding is None else io_binding
        greedy = BoundGreedy(encoder_session, decoder_session, info.num_layers, info.arch, chosen) if bound else NumpyGreedy(encoder, decoder)
        return cls(model_dir, chosen, precision, bound, info, encoder, decoder, greedy, 1 if bound else inter_threads, intra_threads)

    @property
    def model_id(self) -> str:
        return self.info.model_id

    def batch_size(self, max_batch_size: int = 0, batch_type: str = "examples") -> int:
        """Sentences (or source characters, for `batch_type="tokens"`) per batch: `max_batch_size`, or the device's default for 0.

        Raises:
            ConfigError: a negative size or an unknown batch type.
        """
        validate_choice("batch_type", batch_type, BATCH_TYPES)
        size = resolve_batch_size(max_batch_size, self.device)
        if batch_type == "tokens" and not max_batch_size:
            size *= max(1, self.info.max_source_length // 2)  # the examples default, at sentences of half the longest
        return size

    def validated(self, options: DecodingOptions) -> DecodingOptions:
        """`options` once checked against this model: the one place every entry point validates them.

        Raises:
            ConfigError: a value out of range for this model.
        """
        options.validate(len(self.info.target_vocabulary), has_attention=self.decoder.has_attention)
        return options

    def translate_windows(
        self,
        windows: Iterable[Window],
        batch_size: int,
        options: DecodingOptions,
        phases: dict[str, float] | None = None,
        *,
        batch_type: str = "examples",
    ) -> Iterator[tuple[Window, WindowTranslations]]:
        """Each window with its translations, in order: the streaming loop under every entry point but `translate_batch`.

        `phases` (optional) gathers the seconds spent reading and preparing,
        and decoding; the two overlap (see the module docstring). Cut
        translations are counted in each window's `counts`.
        """
        timings = phases if phases is not None else {}
        timings.setdefault("read_and_prepare", 0.0)
        timings.setdefault("decode", 0.0)
        pending = iter(windows)
        sampler = sampler_of(options)  # one random stream for the run: windows fall on the same lines, so a rerun repeats it

        def prepare_next() -> tuple[Window, PreparedWindow] | None:
            started = time.perf_counter()
            window = next(pending, None)
            if window is None:
                return None
            prepared = window, prepare_window(self.info, window.sources, window.counts, options.long_lines, window.target_prefix)
            timings["read_and_prepare"] += time.perf_counter() - started
            return prepared

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="s2s-prefetch") as host:

            def prefetched() -> Iterator[tuple[Window, PreparedWindow]]:
                upcoming = host.submit(prepare_next)
                while (item := upcoming.result()) is not None:
                    upcoming = host.submit(prepare_next)
                    yield item

            def translated_windows() -> Iterator[tuple[Window, WindowTranslations]]:
                if not self._continuous(options, batch_type):
                    for window, ready in prefetched():
                        yield window, self.translate_window(ready, batch_size, batch_type, options, sampler)
                    return
                for window, ready, texts, cut in self._translate_continuously(prefetched(), batch_size, options):
                    if texts is None or cut is None:  # a window with target prefixes: decoded on its own
                        yield window, self.translate_window(ready, batch_size, batch_type, options, sampler)
                    else:
                        yield window, joined_lines(ready, texts, cut, None)

            started = time.perf_counter()
            for window, translated in translated_windows():
                window.counts.cut_translations += int(translated.cut.sum())
                timings["decode"] += time.perf_counter() - started  # the time this loop waited for the window
                yield window, translated
                started = time.perf_counter()

    def translate_stream(
        self,
        sources: Iterable[str],
        target_prefixes: Iterable[str | None] | None,
        batch_size: int,
        window: int,
        options: DecodingOptions,
        *,
        batch_type: str = "examples",
    ) -> Iterator[str] | Iterator[TranslationResult]:
        """Translations of a stream of sentences, lazily and in order, `window` sentences sorted together at a time."""
        lines = iter(sources)
        prefixes = iter(target_prefixes) if target_prefixes is not None else None

        def windows() -> Iterator[SourceWindow]:
            while chunk := list(itertools.islice(lines, window)):
                chunk_prefixes = list(itertools.islice(prefixes, len(chunk))) if prefixes is not None else None
                yield SourceWindow(sentence_list(chunk, "translate_iterable"), target_prefix=chunk_prefixes)

        for _, translated in self.translate_windows(windows(), batch_size, options, batch_type=batch_type):
            yield from translated.results if translated.results is not None else translated.texts

    def translate_window(
        self, window: PreparedWindow, batch_size: int, batch_type: str, options: DecodingOptions, sampler: np.random.Generator | None
    ) -> WindowTranslations:
        """The translations of a prepared window, in its order: the model's part of the work, which a host thread may overlap."""
        rows = len(window.lengths)
        limits = self.output_limits(window.lengths, options)
        plain = _plain(options) and window.prefixes is None
        texts = np.full(rows, "", dtype=object)
        cut = np.zeros(rows, dtype=bool)
        results: list[TranslationResult] = [_EMPTY_RESULT] * rows
        if plain and self._continuous(options, batch_type):  # the CPU's fast path: pools kept full across batches
            [(_, _, decoded_texts, decoded_cut)] = list(self._translate_continuously(iter([(None, window)]), batch_size, options))
            return joined_lines(window, decoded_texts, decoded_cut, None)
        batches = self.batches(window, batch_size, batch_type)
        if plain:  # the fast path: strings and cut flags, no per-hypothesis objects
            for indices, batch in batches:
                ids = self._greedy(batch, limits[indices])
                texts[indices] = texts_of_ids(ids, self.info.target_vocabulary)
                cut[indices] = end_positions(ids) >= limits[indices]  # the loops pad a cut row with end tokens after its limit
            return joined_lines(window, texts, cut, None)

        def search(numbered: tuple[np.ndarray, np.ndarray]) -> list[list[Hypothesis]]:
            indices, batch = numbered
            rules = StepRules(
                limits[indices],
                np.full(len(indices), options.min_output_length, dtype=np.int64) if options.min_output_length else None,
                _prefix_array([window.prefixes[index] for index in indices.tolist()]) if window.prefixes is not None else None,
                Sampling(options.sampling_topk, options.sampling_temperature, sampler) if sampler is not None else None,
                options.needs_attention,
            )
            return self._search(batch, rules, options)

        ordered = list(batches)
        workers = 1 if sampler is not None else self.inter_threads  # one random stream, drawn in batch order, repeats a run
        for (indices, _), found in zip(ordered, map_in_parallel(search, ordered, workers), strict=True):
            for index, hypotheses in zip(indices.tolist(), found, strict=True):
                result = self._result(window, index, hypotheses, options)
                results[index], texts[index], cut[index] = result, result.hypotheses[0], result.cut[0]
        return joined_lines(window, texts, cut, results if options.rich else None)

    def _continuous(self, options: DecodingOptions, batch_type: str) -> bool:
        """Whether windows go to refilled pools that run on from one window into the next: plain greedy, by examples, on
        numpy arrays (the CPU's loop; IO binding on a GPU decodes batch by batch)."""
        return _plain(options) and not self.io_binding and batch_type == "examples"

    def _translate_continuously(
        self, windows: Iterator[tuple[Any, PreparedWindow]], batch_size: int, options: DecodingOptions
    ) -> Iterator[tuple[Any, PreparedWindow, np.ndarray | None, np.ndarray | None]]:
        """`translate_continuously` over this engine's sessions, with `inter_threads` pools of `batch_size` rows."""

        windows_seen = itertools.count()

        def batches_of(window: PreparedWindow) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
            """A window's batches by length, shortest first in every other window and longest first in the others.

            A pool holds the longest rows of a window until they finish, well into the next one; that window starting
            with its own longest rows keeps the pool's memory as narrow as its rows most of the time (a sentence
            translates the same in any order)."""
            limits = self.output_limits(window.lengths, options)
            batches = list(self.batches(window, batch_size, "examples"))
            for indices, ids in batches[::-1] if next(windows_seen) % 2 else batches:
                yield indices, ids, limits[indices]

        vocabulary = self.info.target_vocabulary
        return translate_continuously(
            self.encoder,
            self.decoder,
            windows,
            loops=self.inter_threads,
            slots=batch_size,
            batches_of=batches_of,
            is_plain=lambda window: window.prefixes is None,
            texts_of=lambda ids: np.array(texts_of_ids(ids, vocabulary), dtype=object),
        )

    def output_limits(self, lengths: np.ndarray, options: DecodingOptions) -> np.ndarray:
        """Each source's output limit in characters: the explicit `max_output_length`, else one that follows the source."""
        if options.max_output_length is not None:
            return np.full(len(lengths), options.max_output_length, dtype=np.int64)
        return output_length.limits(lengths, self.info.output_length, self.info.max_target_length)

    def score_targets(self, sources: Sequence[str], targets: Sequence[str], length_penalty: float, batch_size: int) -> list[ScoringResult]:
        """Each target's characters, their log-probabilities and the beam-search score, given its source (forced decoding)."""
        vocabulary = self.info.target_vocabulary
        ids = [ids_of_text(text, vocabulary).tolist() for text in self.info.normalizer.normalize_lines(list(targets))]
        limit = MAX_OUTPUT_LENGTH_CEILING  # a given target is scored whole, up to the ceiling every limit keeps
        texts = prepare_sources(self.info, sources)
        results: list[ScoringResult] = []
        for start in range(0, len(texts), batch_size):
            encoded = self.info.encode(texts[start : start + batch_size])
            token_logs, lengths = sequence_log_probabilities(self.encoder, self.decoder, encoded, ids[start : start + batch_size], limit)
            for row, length in enumerate(lengths.tolist()):
                logs = token_logs[row, :length].tolist()
                characters = [vocabulary.decode([token]) or UNKNOWN_CHARACTER for token in ids[start + row][:length]]
                tokens = characters + ([END_TOKEN] if length > len(ids[start + row]) else [])
                results.append(ScoringResult(tokens, logs, sum(logs) / max(length, 1) ** length_penalty))
        return results

    def score_ids(self, sources: Sequence[str], translations: Sequence[list[int]], *, max_output_length: int | None = None, length_penalty: float = 1.0) -> list[float]:
        """Beam-search scores of given target id sequences for `sources` (forced decoding): what beam search ranks by."""
        limit = max_output_length or MAX_OUTPUT_LENGTH_CEILING
        encoded = self.info.encode(prepare_sources(self.info, sources))
        return sequence_score(self.encoder, self.decoder, encoded, list(translations), limit, length_penalty)

    def batches(self, window: PreparedWindow, batch_size: int, batch_type: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(row indices, int32 encoder input) of a prepared window, by length so batches carry little padding; empty rows left out.

        `batch_type="tokens"` fills each batch up to `batch_size` source characters, padding included. Each batch is
        one gather from the window's ids.
        """
        lengths = window.lengths
        nonempty = np.flatnonzero(lengths)
        order = nonempty[np.argsort(lengths[nonempty], kind="stable")]  # stable: equal lengths keep their order
        start = 0
        while start < len(order):
            if batch_type == "tokens":  # sorted ascending, so a batch's cost is its row count times its last row's length
                following = lengths[order[start : start + batch_size]]
                costs = np.arange(1, len(following) + 1) * following
                count = max(1, int(np.searchsorted(costs, batch_size, side="right")))
            else:
                count = batch_size
            indices = order[start : start + count]
            start += count
            yield indices, gather_rows(window.ids, window.starts[indices], lengths[indices], reverse=self.info.reverse_source)

    def _search(self, batch: np.ndarray, rules: StepRules, options: DecodingOptions) -> list[list[Hypothesis]]:
        """Each sentence's `num_hypotheses` best hypotheses, best first: greedy (or sampled) or beam search."""
        if options.beam_size == 1:
            decoded = NumpyGreedy(self.encoder, self.decoder).decode(batch, rules)
            scores = decoded.log_probabilities / decoded.lengths.astype(np.float64) ** options.length_penalty
            found = []
            for row, ids in enumerate(ids_before_end(decoded.ids)):
                attention = decoded.attention[row, : len(ids)] if decoded.attention is not None else None
                found.append([Hypothesis(ids, float(scores[row]), bool(decoded.cut[row]), attention)])
            return found
        # No greedy pass first to keep its hypothesis as a candidate: on 1,500 corpus sentences it cost 17% of beam 5's time
        # and changed chrF by 0.03 (59.84 without, 59.81 with); beam search finds greedy's path or a better-scoring one
        # almost always, and bench_beam_search.py keeps the cost in view.
        vocab = len(self.info.target_vocabulary)
        return search_beams(self.encoder, self.decoder, batch, vocab, rules, options.beam_size, options.length_penalty, options.num_hypotheses)

    def _result(self, window: PreparedWindow, row: int, hypotheses: list[Hypothesis], options: DecodingOptions) -> TranslationResult:
        """One row's hypotheses as text, with unknowns replaced and attention cut to the source's length when asked."""
        texts = texts_of_ids(ids_array([hypothesis.ids for hypothesis in hypotheses]), self.info.target_vocabulary)
        length = int(window.lengths[row])
        attention = [hypothesis.attention[:, :length] for hypothesis in hypotheses] if options.needs_attention else None
        if options.replace_unknowns and attention is not None:
            texts = [
                self._replace_unknowns(text, hypothesis.ids, weights, window, row)
                for text, hypothesis, weights in zip(texts, hypotheses, attention, strict=True)
            ]
        return TranslationResult(
            texts,
            [hypothesis.score for hypothesis in hypotheses],
            attention if options.return_attention else None,
            [hypothesis.cut for hypothesis in hypotheses],
        )

    def _replace_unknowns(self, text: str, ids: list[int], weights: np.ndarray, window: PreparedWindow, row: int) -> str:
        """`text` with each `<unk>` (U+FFFD) replaced by the source character its step attended to most."""
        steps = [step for step, token in enumerate(ids) if token == UNKNOWN_ID]
        if not steps:
            return text
        length, start = int(window.lengths[row]), int(window.starts[row])
        positions = weights[steps].argmax(axis=1)  # positions in the encoder's input, which is reversed for some models
        characters = iter(window.text[start + (length - 1 - position if self.info.reverse_source else position)] for position in positions.tolist())
        return "".join(next(characters) if character == UNKNOWN_CHARACTER else character for character in text)


def _plain(options: DecodingOptions) -> bool:
    """Greedy's plain case: the argmax up to the end token, strings and cut flags out, nothing else asked."""
    plain = not options.rich and not options.needs_attention and options.beam_size == 1 and not options.sampling
    return plain and not options.min_output_length


def _choose_device(device: str) -> str:
    import onnxruntime

    has_cuda = CUDA_PROVIDER in onnxruntime.get_available_providers()
    if device == "cuda" and not has_cuda:
        raise S2SError("--device cuda, but this onnxruntime has no CUDA provider: install s2s-translate[gpu] (onnxruntime-gpu) on a GPU host")
    if device == "auto" and not has_cuda:
        # The CPU build of onnxruntime is a host's deliberate choice (the cpu extra): worth a log line, not a warning on every run.
        logger.debug("no CUDA provider in this onnxruntime; translating on the CPU")
        return "cpu"
    return "cpu" if device == "cpu" else "cuda"


def _prefix_array(prefixes: list[np.ndarray]) -> np.ndarray | None:
    """Per-row forced ids as one (rows, longest) int32 array, -1 after each row's prefix; None when no row has one."""
    longest = max((len(prefix) for prefix in prefixes), default=0)
    if not longest:
        return None
    array = np.full((len(prefixes), longest), -1, dtype=np.int32)
    for row, prefix in enumerate(prefixes):
        array[row, : len(prefix)] = prefix
    return array


def sampler_of(options: DecodingOptions) -> np.random.Generator | None:
    """One random stream per run, seeded by the options, so a sampled run can be repeated; None without sampling."""
    return np.random.default_rng(options.sampling_seed) if options.sampling else None


def session_options(intra_threads: int, *, spinning: bool = True) -> Any:
    """Session options: `intra_threads` per call (0: onnxruntime's choice) and whether idle pool threads spin for the next call."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if intra_threads:
        options.intra_op_num_threads = intra_threads
    return options
