"""`Translator`: batch translation with an exported model, on the GPU when there is one.

>>> translator = Translator("runs/fra-eng/onnx", device="auto")  # doctest: +SKIP
>>> translator.translate_batch(["Go.", "I'm hungry!"])  # doctest: +SKIP
['Va !', "J'ai faim !"]

Input text is normalised with the scheme the model was trained with (read
from its metadata), so a host never re-implements the pipeline's cleaning.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from s2s import onnx_contract as contract
from s2s import output_length
from s2s.config import check_choice
from s2s.errors import ConfigError, InputDataError, InputMissingError, S2SError
from s2s.onehot import gather_rows, ids_array, ids_of_text, texts_of_ids
from s2s.serving.config import DEVICES, PRECISIONS, TranslateConfig, resolve_batch_size
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
from s2s.serving.long_lines import ERROR, SPLIT, TRUNCATE, split_long_line
from s2s.serving.model_info import ModelInfo
from s2s.serving.options import BATCH_TYPES, MAX_OUTPUT_LENGTH_CEILING, DecodingOptions
from s2s.serving.refill import RefillGreedy
from s2s.serving.results import ScoringResult, TranslationResult, joined
from s2s.serving.sessions import (
    DecoderSession,
    EncoderSession,
    check_same_export,
    check_target_vocabulary,
    model_info,
    open_session,
)
from s2s.serving.stats import TranslationStats
from s2s.vocab import UNKNOWN_ID

CUDA_PROVIDER = "CUDAExecutionProvider"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedWindow:
    """A window of normalised sources as ids: all of them in one flat array, with each sentence's start and (cut) length.

    `text` is the normalised sources joined (`ids` are its characters' ids), so a source character can be found by
    position (replace_unknowns); `prefixes` holds each row's forced target ids (target_prefix), or None.
    """

    ids: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    pieces_per_line: np.ndarray | None = None  # when long lines were split: how many consecutive rows make each line
    text: str = ""
    prefixes: list[np.ndarray] | None = None


@dataclass
class SourceWindow:
    """A window of sources on its way through `Translator.translate_windows`, with its own counts and the caller's bookkeeping.

    `counts` receives the window's counters as it is prepared (a file job adds
    them to its run only once the window is written); `tag` comes back as given.
    """

    sources: Sequence[str]
    counts: TranslationStats = field(default_factory=TranslationStats)
    tag: Any = None
    target_prefix: Sequence[str | None] | None = None


@dataclass(frozen=True)
class WindowTranslations:
    """A window's translations, in its order: the best string of each line, whether it was cut, and rich results when asked."""

    texts: list[str]
    cut: np.ndarray  # bool per line: the best translation reached its limit without the end token
    results: list[TranslationResult] | None = None  # with n-best, scores or attention


class Translator:
    """An exported model loaded into onnxruntime, ready to translate batches.

    Args:
        onnx_dir: output directory of `s2s export`.
        device: "auto" (CUDA if usable, else the CPU with a warning), "cuda" (an error without a usable GPU) or "cpu".
        precision: "float32", "float16" (the *_fp16.onnx files; for GPUs) or "int8" (the *_int8.onnx files; for CPUs).
        io_binding: keep states on the device and feed the argmax back inside the graph (decoder_greedy.onnx);
            None means on for CUDA, off for the CPU.
        intra_op_threads: CPU threads per session; 0 lets onnxruntime choose.
        verify: check every model file against the export's SHA256SUMS (a folder without one, or not listing a file, is
            refused); False loads a hand-made folder, with a warning.

    Raises:
        S2SError: a missing or damaged model, metadata without the vocabulary, or `device="cuda"` without a GPU.
    """

    def __init__(
        self,
        onnx_dir: str | Path,
        device: str = "auto",
        *,
        precision: str = "float32",
        io_binding: bool | None = None,
        intra_op_threads: int = 0,
        verify: bool = True,
    ):
        check_choice("device", device, DEVICES)
        check_choice("precision", precision, PRECISIONS)
        self.onnx_dir = Path(onnx_dir)
        if not self.onnx_dir.is_dir():
            raise InputMissingError(f"model directory {self.onnx_dir} does not exist: pass the output of s2s export")
        if precision == "int8" and device == "cuda":
            raise ConfigError("int8 runs on the CPU (onnxruntime's quantized kernels); on a GPU use float16 or float32")
        self.device = "cpu" if precision == "int8" else self._choose_device(device)
        if not verify:
            logger.warning("not verifying %s against its %s (--no-verify): a damaged file would translate wrongly", self.onnx_dir, contract.CHECKSUMS_FILE)
        providers = [CUDA_PROVIDER, "CPUExecutionProvider"] if self.device == "cuda" else ["CPUExecutionProvider"]
        options = _session_options(intra_op_threads)
        # The encoder runs once per batch of hundreds of sources, the decoder once per character: a spinning encoder thread
        # pool would keep a core busy between its calls, in the decoder's way (16% of CPU translation speed on 2 cores).
        encoder_options = _session_options(intra_op_threads, spinning=False)
        # One decoder file per precision: the greedy one (probabilities, states, attention and the argmax) serves every
        # loop, since sessions fetch outputs by name; greedy fetches only the argmax.
        files = contract.PRECISION_FILES[precision]
        encoder_session = open_session(self.onnx_dir / files[0], providers, encoder_options, verify=verify)
        if self.device == "cuda" and CUDA_PROVIDER not in encoder_session.get_providers():
            # onnxruntime-gpu lists its CUDA provider on any machine; a session falls back to the CPU when no device is usable.
            if device == "cuda":
                raise S2SError("--device cuda, but onnxruntime-gpu found no usable CUDA device (check the driver and CUDA_VISIBLE_DEVICES)")
            logger.warning("onnxruntime-gpu is installed but found no usable CUDA device: translating on the CPU")
            self.device, providers = "cpu", ["CPUExecutionProvider"]
            encoder_session = open_session(self.onnx_dir / files[0], providers, encoder_options, verify=verify)
        self.info: ModelInfo = model_info(encoder_session, self.onnx_dir / files[0])
        decoder_session = open_session(self.onnx_dir / files[1], providers, options, verify=verify)
        check_target_vocabulary(decoder_session, self.info, self.onnx_dir / files[1])
        self.encoder = EncoderSession(encoder_session, self.info)
        self.decoder = DecoderSession(decoder_session, self.info)
        self.precision = precision
        self.io_binding = self.device == "cuda" if io_binding is None else io_binding
        opened = {files[0]: encoder_session, files[1]: decoder_session}
        if self.io_binding:
            self._greedy: Any = BoundGreedy(encoder_session, decoder_session, self.info.num_layers, self.info.arch, self.device)
        else:
            self._greedy = NumpyGreedy(self.encoder, self.decoder)
        check_same_export(opened)

    @classmethod
    def from_dir(cls, model_dir: str | Path, *, device: str = "auto", precision: str = "float32", **session_options: Any) -> Translator:
        """The translator of an export folder (the output of `s2s export`), as CTranslate2's `Translator(model_path, device)`."""
        return cls(model_dir, device, precision=precision, **session_options)

    @classmethod
    def from_config(cls, model_dir: str | Path, config: TranslateConfig) -> Translator:
        """The translator a `[translate]` table or the translate flags ask for."""
        config.validate()
        return cls(model_dir, config.device, precision=config.precision, verify=config.verify)

    def resolve_batch_size(self, requested: int) -> int:
        """The batch size to decode with: `requested`, or the device's default for 0 ("automatic").

        Raises:
            S2SError: a negative size.
        """
        return resolve_batch_size(requested, self.device)

    @staticmethod
    def _choose_device(device: str) -> str:
        import onnxruntime

        has_cuda = CUDA_PROVIDER in onnxruntime.get_available_providers()
        if device == "cuda" and not has_cuda:
            raise S2SError(
                "--device cuda, but this onnxruntime has no CUDA provider: install s2s-translate[gpu] (onnxruntime-gpu) on a GPU host"
            )
        if device == "auto" and not has_cuda:
            # The CPU build of onnxruntime is a host's deliberate choice (the cpu extra): worth a log line, not a warning on every run.
            logger.debug("no CUDA provider in this onnxruntime; translating on the CPU")
            return "cpu"
        return "cpu" if device == "cpu" else "cuda"

    @property
    def model_id(self) -> str:
        return self.info.model_id

    def prepare_window(
        self,
        sources: Sequence[str],
        stats: TranslationStats | None = None,
        long_lines: str = SPLIT,
        target_prefix: Sequence[str | None] | None = None,
    ) -> PreparedWindow:
        """Normalises a window of sources and turns it into ids once, counting characters, unknowns and long lines.

        A source longer than max_source_length is split into pieces (translated apart, joined after), cut to
        the limit, or refused, as `long_lines` says. A target prefix applies to a split line's first piece.

        Raises:
            InputDataError: a long source with `long_lines="error"`.
        """
        limit = self.info.max_source_length
        texts = self.info.normalizer.normalize_lines(sources)
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        long = np.flatnonzero(lengths > limit)
        if stats is not None:
            stats.lines += len(texts)
            stats.empty_lines += int((lengths == 0).sum())
            stats.characters += int(lengths.sum())
            stats.long_lines += len(long)
            stats.truncated_lines += len(long) if long_lines == TRUNCATE else 0
        if len(long) and long_lines == ERROR:
            raise InputDataError(
                f"a source of {lengths[long[0]]} characters is longer than the model's {limit} ({texts[long[0]][:40]!r}...): "
                "use --long-lines split or truncate"
            )
        prefixes = None
        if target_prefix is not None:
            if len(target_prefix) != len(texts):
                raise ValueError(f"target_prefix needs one entry per source, got {len(target_prefix)} for {len(texts)} sources")
            vocabulary = self.info.target_vocabulary
            prefix_texts = self.info.normalizer.normalize_lines([prefix or "" for prefix in target_prefix])
            prefixes = [ids_of_text(text, vocabulary) for text in prefix_texts]
        pieces_per_line = None
        if len(long) and long_lines == SPLIT:
            pieces_per_line = np.ones(len(texts), dtype=np.int64)
            pieces: list[str] = []
            piece_prefixes: list[np.ndarray] = []
            previous = 0
            for index in long.tolist():  # Python only for the long lines: short ones are copied a slice at a time
                pieces += texts[previous:index]
                parts = split_long_line(texts[index], limit)
                pieces += parts
                pieces_per_line[index] = len(parts)
                if prefixes is not None:
                    piece_prefixes += prefixes[previous:index] + [prefixes[index]] + [_NO_PREFIX] * (len(parts) - 1)
                previous = index + 1
            texts = pieces + texts[previous:]
            if prefixes is not None:
                prefixes = piece_prefixes + prefixes[previous:]
            lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        text = "".join(texts)
        ids = ids_of_text(text, self.info.source_vocabulary)
        if stats is not None:
            stats.unknown_characters += int((ids == UNKNOWN_ID).sum())
        return PreparedWindow(ids, np.cumsum(lengths) - lengths, np.minimum(lengths, limit), pieces_per_line, text, prefixes)

    def prepare_sources(self, sources: Sequence[str]) -> list[str]:
        """Normalised sources cut to the model's max_source_length: the text the model sees."""
        limit = self.info.max_source_length
        return [text[:limit] for text in self.info.normalizer.normalize_lines(sources)]

    def decoding_options(self, **options: Any) -> DecodingOptions:
        """The checked `DecodingOptions` of keyword arguments: the one place every entry point validates them.

        Raises:
            TypeError: an unknown option.
            ConfigError: a value out of range for this model.
        """
        decoding = DecodingOptions.from_keywords(**options)
        decoding.check(len(self.info.target_vocabulary), has_attention=self.decoder.has_attention)
        return decoding

    def translate_batch(
        self,
        source: Sequence[str],
        target_prefix: Sequence[str | None] | None = None,
        *,
        max_batch_size: int = 0,
        batch_type: str = "examples",
        stats: TranslationStats | None = None,
        **options: Any,
    ) -> list[str] | list[TranslationResult]:
        """Translations of `source`, in order; an empty (or all-whitespace) source gives an empty translation.

        Strings by default. With `num_hypotheses` > 1, `return_scores` or
        `return_attention`, a `TranslationResult` per source instead, as in
        CTranslate2: the n-best hypotheses, best first, with their scores.

        Args:
            target_prefix: per source, text the translation must start with (None or "" for none), as in CTranslate2.
            max_batch_size: per batch, sentences (`batch_type="examples"`) or source characters with padding
                (`"tokens"`, so long and short sentences cost the same memory); 0 for the device's default.
                Sources are sorted by length first so batches carry little padding.
            stats: counters to update (lines, characters, unknown characters, truncations, cut translations).
            options: the decoding options of `DecodingOptions` (max_output_length or max_decoding_length,
                min_output_length or min_decoding_length, beam_size, length_penalty, long_lines, num_hypotheses,
                return_scores, return_attention, replace_unknowns, sampling_topk, sampling_temperature, sampling_seed).

        Raises:
            TypeError: not a list of str sentences, or an unknown option.
            ConfigError: a value out of range, num_hypotheses above beam_size among them.
        """
        source = sentence_list(source, "translate_batch")
        decoding = self.decoding_options(**options)
        batch_size = self._batch_size(max_batch_size, batch_type)
        window = self.prepare_window(source, stats, decoding.long_lines, target_prefix)
        translated = self._translate_window(window, batch_size, batch_type, decoding, _sampler(decoding))
        if stats is not None:
            stats.cut_translations += int(translated.cut.sum())
        return translated.results if translated.results is not None else translated.texts

    def translate_file(
        self,
        source_path: str,
        output_path: str,
        *,
        max_batch_size: int = 0,
        batch_type: str = "examples",
        input_format: str = "text",
        column: int = 0,
        field: str = "source",
        window: int = 0,
        summary_path: str | None = None,
        progress: Any = None,
        **options: Any,
    ) -> TranslationStats:
        """Translates a corpus file, glob or "-" into a file or "-": streamed, ordered, every line accounted for, resumable.

        Output line i belongs to input line i. The output appears (by rename)
        only when complete; a killed run started again with the same
        arguments resumes. See `s2s.serving.files` for the details.

        Args:
            max_batch_size, batch_type, options: as for `translate_batch`.
            input_format: "text" (the whole line is the source), "tsv" (column `column`, counted from 0; every column is
                kept and the translation appended) or "jsonl" (field `field` of each object; the object is kept and
                `translation`, plus `score`, `hypotheses`, `attention` and `cut` as they apply, are added).
            window: lines read and sorted together; 0 means 16 batches.
            summary_path: where the run summary JSON goes; default OUTPUT.summary.json (none for "-").
            progress: a callable(lines_done, seconds, input_bytes_done) called after each window, e.g. `Progress()`.

        Raises:
            S2SError: a missing or unreadable input, an output that is a directory or an input, a value out of range.
        """
        from s2s.serving.files import FileJob, write_translations

        decoding = self.decoding_options(**options)
        batch_size = self._batch_size(max_batch_size, batch_type)
        job = FileJob(batch_size, window or 16 * batch_size, decoding, input_format, column, field, batch_type)
        return write_translations(self, source_path, output_path, job, summary_path=summary_path, progress=progress)

    def translate_iterable(
        self,
        source: Iterable[str],
        target_prefix: Iterable[str | None] | None = None,
        *,
        max_batch_size: int = 0,
        batch_type: str = "examples",
        window: int = 0,
        **options: Any,
    ) -> Iterator[str] | Iterator[TranslationResult]:
        """Translations of a stream of sentences, lazily and in order: as CTranslate2's `translate_iterable`.

        Each result is yielded as soon as its batch is decoded: the first
        arrives after one batch has been read, so an endless generator works.
        The next batch is read and prepared while this one decodes (see
        `translate_windows`), so memory holds two batches.

        Args:
            target_prefix: an iterable of prefixes, one per source, read alongside it.
            window: sentences read and sorted together; 0 means one batch (as many as `max_batch_size`).
            options: as for `translate_batch`, which returns the same values.
        """
        if source is None or isinstance(source, (str, bytes, bytearray)):
            raise TypeError(f"translate_iterable takes an iterable of str sentences, got {type(source).__name__}; for one sentence, pass [sentence]")
        decoding = self.decoding_options(**options)
        batch_size = self._batch_size(max_batch_size, batch_type)
        size = window or (batch_size if batch_type == "examples" else max(1, batch_size // 16))
        lines = iter(source)
        prefixes = iter(target_prefix) if target_prefix is not None else None

        def windows() -> Iterator[SourceWindow]:
            while chunk := list(itertools.islice(lines, size)):
                chunk_prefixes = list(itertools.islice(prefixes, len(chunk))) if prefixes is not None else None
                yield SourceWindow(sentence_list(chunk, "translate_iterable"), target_prefix=chunk_prefixes)

        for _, translated in self.translate_windows(windows(), batch_size, decoding, batch_type=batch_type):
            yield from translated.results if translated.results is not None else translated.texts

    def score_batch(
        self, source: Sequence[str], target: Sequence[str], *, length_penalty: float = 1.0, max_batch_size: int = 0
    ) -> list[ScoringResult]:
        """How likely the model finds each target as the translation of its source, as CTranslate2's `score_batch`.

        Each `ScoringResult` holds the target's characters as the model saw
        them (normalised; the end token last, as `</s>`), the log-probability
        of each, and the score: their sum divided by their count to the power
        `length_penalty`, the beam-search score. Higher is better; 0 is certain.

        Raises:
            TypeError: not lists of str sentences.
            ValueError: the two lists differ in length.
        """
        source, target = sentence_list(source, "score_batch"), sentence_list(target, "score_batch")
        if len(source) != len(target):
            raise ValueError(f"score_batch needs one target per source, got {len(source)} sources and {len(target)} targets")
        vocabulary = self.info.target_vocabulary
        targets = self.info.normalizer.normalize_lines(list(target))
        ids = [ids_of_text(text, vocabulary).tolist() for text in targets]
        limit = MAX_OUTPUT_LENGTH_CEILING  # a given target is scored whole, up to the ceiling every limit keeps
        sources = self.prepare_sources(source)
        batch_size = self.resolve_batch_size(max_batch_size)
        results: list[ScoringResult] = []
        for start in range(0, len(sources), batch_size):
            encoded = self.info.encode(sources[start : start + batch_size])
            token_logs, lengths = sequence_log_probabilities(self.encoder, self.decoder, encoded, ids[start : start + batch_size], limit)
            for row, length in enumerate(lengths.tolist()):
                logs = token_logs[row, :length].tolist()
                characters = [vocabulary.decode([token]) or "\ufffd" for token in ids[start + row][:length]]
                tokens = characters + ([END_TOKEN] if length > len(ids[start + row]) else [])
                results.append(ScoringResult(tokens, logs, sum(logs) / max(length, 1) ** length_penalty))
        return results

    def score(
        self, source: Sequence[str], translations: Sequence[list[int]], *, max_output_length: int | None = None, length_penalty: float = 1.0
    ) -> list[float]:
        """Beam-search scores of given target id sequences for `source` (forced decoding)."""
        limit = max_output_length or MAX_OUTPUT_LENGTH_CEILING
        texts = self.prepare_sources(source)
        return sequence_score(self.encoder, self.decoder, self.info.encode(texts), list(translations), limit, length_penalty)

    def translate_windows(
        self,
        windows: Iterable[SourceWindow],
        batch_size: int,
        options: DecodingOptions,
        phases: dict[str, float] | None = None,
        *,
        batch_type: str = "examples",
    ) -> Iterator[tuple[SourceWindow, WindowTranslations]]:
        """Each window with its translations, in order: the streaming loop under `translate_iterable` and `translate_file`.

        Prefetch: while this thread decodes window k, one host thread takes
        window k+1 from `windows` (reading a file, for a file job) and prepares
        it (normalising, ids), since onnxruntime releases the GIL while it
        runs. `phases` (optional) gathers the seconds spent reading and
        preparing, and decoding; the two overlap. Cut translations are
        counted in each window's `counts`.
        """
        timings = phases if phases is not None else {}
        timings.setdefault("read_and_prepare", 0.0)
        timings.setdefault("decode", 0.0)
        pending = iter(windows)
        sampler = _sampler(options)  # one random stream for the run: windows fall on the same lines, so a rerun repeats it

        def prepare_next() -> tuple[SourceWindow, PreparedWindow] | None:
            started = time.perf_counter()
            window = next(pending, None)
            if window is None:
                return None
            prepared = window, self.prepare_window(window.sources, window.counts, options.long_lines, window.target_prefix)
            timings["read_and_prepare"] += time.perf_counter() - started
            return prepared

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="s2s-prefetch") as host:
            upcoming = host.submit(prepare_next)
            while (prepared := upcoming.result()) is not None:
                window, ready = prepared
                upcoming = host.submit(prepare_next)
                started = time.perf_counter()
                translated = self._translate_window(ready, batch_size, batch_type, options, sampler)
                window.counts.cut_translations += int(translated.cut.sum())
                timings["decode"] += time.perf_counter() - started
                yield window, translated

    # The engine: batches of a prepared window, decoded within per-sentence limits.

    def _batch_size(self, max_batch_size: int, batch_type: str) -> int:
        check_choice("batch_type", batch_type, BATCH_TYPES)
        size = self.resolve_batch_size(max_batch_size)
        if batch_type == "tokens" and not max_batch_size:
            size *= max(1, self.info.max_source_length // 2)  # the examples default, at sentences of half the longest
        return size

    def output_limits(self, lengths: np.ndarray, options: DecodingOptions) -> np.ndarray:
        """Each source's output limit in characters: the explicit `max_output_length`, else one that follows the source."""
        if options.max_output_length is not None:
            return np.full(len(lengths), options.max_output_length, dtype=np.int64)
        return output_length.limits(lengths, self.info.output_length, self.info.max_target_length)

    def _batches(self, window: PreparedWindow, batch_size: int, batch_type: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
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

    def _translate_window(
        self, window: PreparedWindow, batch_size: int, batch_type: str, options: DecodingOptions, sampler: np.random.Generator | None
    ) -> WindowTranslations:
        """The translations of a prepared window, in its order: the model's part of the work, which a host thread may overlap."""
        rows = len(window.lengths)
        limits = self.output_limits(window.lengths, options)
        plain = not options.rich and not options.needs_attention and options.beam_size == 1 and not options.sampling
        plain = plain and not options.min_output_length and window.prefixes is None
        texts = np.full(rows, "", dtype=object)
        cut = np.zeros(rows, dtype=bool)
        results: list[TranslationResult] = [_EMPTY_RESULT] * rows
        if plain and not self.io_binding and batch_type == "examples":  # the CPU's fast path: a pool kept full across batches
            for finished in RefillGreedy(self.encoder, self.decoder).decode(self._batches(window, batch_size, batch_type), limits):
                texts[finished.rows] = texts_of_ids(finished.ids, self.info.target_vocabulary)
                cut[finished.rows] = finished.cut
            return self._joined(window, texts, cut, None)
        for indices, batch in self._batches(window, batch_size, batch_type):
            if plain:  # the fast path: strings and cut flags, no per-hypothesis objects
                ids = self._greedy(batch, limits[indices])
                texts[indices] = texts_of_ids(ids, self.info.target_vocabulary)
                cut[indices] = end_positions(ids) >= limits[indices]  # the loops pad a cut row with end tokens after its limit
                continue
            rules = StepRules(
                limits[indices],
                np.full(len(indices), options.min_output_length, dtype=np.int64) if options.min_output_length else None,
                _prefix_array([window.prefixes[index] for index in indices.tolist()]) if window.prefixes is not None else None,
                Sampling(options.sampling_topk, options.sampling_temperature, sampler) if sampler is not None else None,
                options.needs_attention,
            )
            for index, hypotheses in zip(indices.tolist(), self._search(batch, rules, options), strict=True):
                result = self._result(window, index, hypotheses, options)
                results[index], texts[index], cut[index] = result, result.hypotheses[0], result.cut[0]
        return self._joined(window, texts, cut, results if options.rich else None)

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
        # almost always, and bench_beam.py keeps the cost in view.
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

    @staticmethod
    def _joined(window: PreparedWindow, texts: np.ndarray, cut: np.ndarray, results: list[TranslationResult] | None) -> WindowTranslations:
        """Lines from rows: a split long line's pieces joined (texts with a space, a cut piece cuts the line)."""
        if window.pieces_per_line is None:
            return WindowTranslations(texts.tolist(), cut, results)
        first = np.cumsum(window.pieces_per_line) - window.pieces_per_line
        lines, line_cut = texts[first], np.logical_or.reduceat(cut, first) if len(first) else cut[:0]
        for line in np.flatnonzero(window.pieces_per_line > 1).tolist():  # a split line: its pieces' translations, joined
            lines[line] = " ".join(piece for piece in texts[first[line] : first[line] + window.pieces_per_line[line]] if piece)
        if results is not None:
            pieces = window.pieces_per_line.tolist()
            results = [joined(results[start : start + count]) for start, count in zip(first.tolist(), pieces, strict=True)]
        return WindowTranslations(lines.tolist(), line_cut, results)


_NO_PREFIX = np.zeros(0, dtype=np.int32)
_EMPTY_RESULT = TranslationResult([""], [0.0], None, [False])
END_TOKEN = "</s>"
UNKNOWN_CHARACTER = "\ufffd"


def _prefix_array(prefixes: list[np.ndarray]) -> np.ndarray | None:
    """Per-row forced ids as one (rows, longest) int32 array, -1 after each row's prefix; None when no row has one."""
    longest = max((len(prefix) for prefix in prefixes), default=0)
    if not longest:
        return None
    array = np.full((len(prefixes), longest), -1, dtype=np.int32)
    for row, prefix in enumerate(prefixes):
        array[row, : len(prefix)] = prefix
    return array


def _sampler(options: DecodingOptions) -> np.random.Generator | None:
    return np.random.default_rng(options.sampling_seed) if options.sampling else None


def sentence_list(source: Any, method: str) -> Sequence[str]:
    """`source` as a sequence of str sentences, or a TypeError that says what was passed and what to pass instead.

    A str is a sequence of one-character sentences, None is nothing, and a
    generator can be read only once: each would otherwise give a confusing
    result deep in the loop, or an empty list without a word.
    """
    if source is None or isinstance(source, (str, bytes, bytearray)):
        raise TypeError(f"{method} takes a list of str sentences, got {type(source).__name__}; for one sentence, pass [sentence]")
    if isinstance(source, np.ndarray):
        if source.ndim != 1:
            raise TypeError(f"{method} takes a one-dimensional list of sentences, got an array of shape {source.shape}")
        source = source.tolist()
    if not isinstance(source, Sequence):
        raise TypeError(f"{method} takes a list of sentences, got a {type(source).__name__}: use translate_iterable for a stream")
    for index, sentence in enumerate(source):
        if not isinstance(sentence, str):
            hint = " (decode bytes first)" if isinstance(sentence, (bytes, bytearray)) else ""
            raise TypeError(f"{method} takes str sentences, got {type(sentence).__name__} at index {index}{hint}")
    return source


def _session_options(intra_op_threads: int, *, spinning: bool = True) -> Any:
    """Session options: `intra_op_threads` (0: onnxruntime's choice) and whether idle pool threads spin for the next call."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if intra_op_threads:
        options.intra_op_num_threads = intra_op_threads
    return options
