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
from s2s.errors import InputDataError, InputMissingError, S2SError
from s2s.onehot import gather_rows, ids_array, ids_of_text, texts_of_ids
from s2s.serving.config import DEVICES, PRECISIONS, TranslateConfig, resolve_batch_size
from s2s.serving.decoding import BoundGreedy, NumpyGreedy, beam_search, ids_before_end, sequence_score
from s2s.serving.long_lines import ERROR, SPLIT, TRUNCATE, split_long_line
from s2s.serving.model_info import ModelInfo
from s2s.serving.options import DecodingOptions
from s2s.serving.results import TranslationResult, joined
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
    """A window of normalised sources as ids: all of them in one flat array, with each sentence's start and (cut) length."""

    ids: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    pieces_per_line: np.ndarray | None = None  # when long lines were split: how many consecutive rows make each line


@dataclass
class SourceWindow:
    """A window of sources on its way through `Translator.translate_windows`, with its own counts and the caller's bookkeeping.

    `counts` receives the window's counters as it is prepared (a file job adds
    them to its run only once the window is written); `tag` comes back as given.
    """

    sources: Sequence[str]
    counts: TranslationStats = field(default_factory=TranslationStats)
    tag: Any = None


class Translator:
    """An exported model loaded into onnxruntime, ready to translate batches.

    Args:
        onnx_dir: output directory of `s2s export`.
        device: "auto" (CUDA if usable, else the CPU with a warning), "cuda" (an error without a usable GPU) or "cpu".
        precision: "float32", or "float16" (the *_fp16.onnx files; for GPUs).
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
        if device not in DEVICES:
            raise S2SError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
        if precision not in PRECISIONS:
            raise S2SError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.onnx_dir = Path(onnx_dir)
        if not self.onnx_dir.is_dir():
            raise InputMissingError(f"model directory {self.onnx_dir} does not exist: pass the output of s2s export")
        self.device = self._choose_device(device)
        if not verify:
            logger.warning("not verifying %s against its %s (--no-verify): a damaged file would translate wrongly", self.onnx_dir, contract.CHECKSUMS_FILE)
        providers = [CUDA_PROVIDER, "CPUExecutionProvider"] if self.device == "cuda" else ["CPUExecutionProvider"]
        options = _session_options(intra_op_threads)
        half = precision == "float16"
        files = (
            # One float16 decoder: the greedy one serves every loop, since sessions fetch outputs by name.
            (contract.ENCODER_FP16_FILE, contract.DECODER_GREEDY_FP16_FILE, contract.DECODER_GREEDY_FP16_FILE)
            if half
            else (contract.ENCODER_FILE, contract.DECODER_FILE, contract.DECODER_GREEDY_FILE)
        )
        encoder_session = open_session(self.onnx_dir / files[0], providers, options, verify=verify)
        if self.device == "cuda" and CUDA_PROVIDER not in encoder_session.get_providers():
            # onnxruntime-gpu lists its CUDA provider on any machine; a session falls back to the CPU when no device is usable.
            if device == "cuda":
                raise S2SError("--device cuda, but onnxruntime-gpu found no usable CUDA device (check the driver and CUDA_VISIBLE_DEVICES)")
            logger.warning("onnxruntime-gpu is installed but found no usable CUDA device: translating on the CPU")
            self.device, providers = "cpu", ["CPUExecutionProvider"]
            encoder_session = open_session(self.onnx_dir / files[0], providers, options, verify=verify)
        self.info: ModelInfo = model_info(encoder_session, self.onnx_dir / files[0])
        decoder_session = open_session(self.onnx_dir / files[1], providers, options, verify=verify)
        check_target_vocabulary(decoder_session, self.info, self.onnx_dir / files[1])
        self.encoder = EncoderSession(encoder_session, self.info)
        self.decoder = DecoderSession(decoder_session, self.info)
        self.precision = precision
        self.io_binding = self.device == "cuda" if io_binding is None else io_binding
        opened = {files[0]: encoder_session, files[1]: decoder_session}
        if self.io_binding:
            if files[2] not in opened:  # float16 has one decoder file, already open: no second session of it
                opened[files[2]] = open_session(self.onnx_dir / files[2], providers, options, verify=verify)
            greedy_session = opened[files[2]]
            self._greedy: Any = BoundGreedy(encoder_session, greedy_session, self.info.num_layers, self.info.arch, self.device)
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

    def prepare_window(self, sources: Sequence[str], stats: TranslationStats | None = None, long_lines: str = SPLIT) -> PreparedWindow:
        """Normalises a window of sources and turns it into ids once, counting characters, unknowns and long lines.

        A source longer than max_source_length is split into pieces (translated apart, joined after), cut to
        the limit, or refused, as `long_lines` says.

        Raises:
            S2SError: a long source with `long_lines="error"`.
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
        pieces_per_line = None
        if len(long) and long_lines == SPLIT:
            pieces_per_line = np.ones(len(texts), dtype=np.int64)
            pieces: list[str] = []
            previous = 0
            for index in long.tolist():  # Python only for the long lines: short ones are copied a slice at a time
                pieces += texts[previous:index]
                parts = split_long_line(texts[index], limit)
                pieces += parts
                pieces_per_line[index] = len(parts)
                previous = index + 1
            texts = pieces + texts[previous:]
            lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        ids = ids_of_text("".join(texts), self.info.source_vocabulary)
        if stats is not None:
            stats.unknown_characters += int((ids == UNKNOWN_ID).sum())
        return PreparedWindow(ids, np.cumsum(lengths) - lengths, np.minimum(lengths, limit), pieces_per_line)

    def prepare_sources(self, sources: Sequence[str]) -> list[str]:
        """Normalised sources cut to the model's max_source_length: the text the model sees."""
        limit = self.info.max_source_length
        return [text[:limit] for text in self.info.normalizer.normalize_lines(sources)]

    def translate_batch(
        self,
        source: Sequence[str],
        *,
        max_batch_size: int = 0,
        max_output_length: int | None = None,
        beam_size: int = 1,
        length_penalty: float = 1.0,
        long_lines: str = SPLIT,
        stats: TranslationStats | None = None,
        num_hypotheses: int = 1,
        return_scores: bool = False,
    ) -> list[str] | list[TranslationResult]:
        """Translations of `source`, in order; an empty (or all-whitespace) source gives an empty translation.

        Strings by default. With `num_hypotheses` > 1 or `return_scores`, a
        `TranslationResult` per source instead, as in CTranslate2: the n-best
        hypotheses from beam search, best first, with their scores.

        Args:
            max_batch_size: sentences decoded together, 0 for the device's default; sources are sorted by length first
                so batches carry little padding.
            max_output_length: most characters per translation; default the model's max_target_length.
            beam_size: 1 for greedy decoding, K for beam search over K hypotheses.
            length_penalty: beam scores are log-probability / length ** length_penalty.
            long_lines: a source over the model's max_source_length is "split" at sentence ends (the translations
                joined), "truncate"d, or an "error".
            stats: counters to update (lines, characters, unknown characters, truncations).
            num_hypotheses: translations per source, at most `beam_size`; a split long line's k-th hypothesis joins
                its pieces' k-th ones and is scored by their mean.
            return_scores: return `TranslationResult`s even for one hypothesis, for their scores.

        Raises:
            S2SError: a value out of range, num_hypotheses above beam_size among them.
        """
        source = sentence_list(source, "translate_batch")
        options = DecodingOptions(max_output_length, beam_size, length_penalty, long_lines)
        options.check(len(self.info.target_vocabulary))
        batch_size = self.resolve_batch_size(max_batch_size)
        if num_hypotheses == 1 and not return_scores:
            return self.translate_texts(source, batch_size, options, stats)
        if not 1 <= num_hypotheses <= beam_size:
            raise S2SError(f"num_hypotheses must be between 1 and beam_size ({beam_size}), got {num_hypotheses}: raise beam_size")
        return self.translate_window_results(self.prepare_window(source, stats, long_lines), batch_size, options, num_hypotheses)

    def translate_file(
        self,
        source_path: str,
        output_path: str,
        *,
        max_batch_size: int = 0,
        max_output_length: int | None = None,
        beam_size: int = 1,
        length_penalty: float = 1.0,
        long_lines: str = SPLIT,
        input_format: str = "text",
        column: int = 0,
        window: int = 0,
        summary_path: str | None = None,
        progress: Any = None,
    ) -> TranslationStats:
        """Translates a corpus file, glob or "-" into a file or "-": streamed, ordered, every line accounted for, resumable.

        Output line i is the translation of input line i. The output appears
        (by rename) only when complete; a killed run started again with the
        same arguments resumes. See `s2s.serving.files` for the details.

        Args:
            max_batch_size, max_output_length, beam_size, length_penalty, long_lines: as for `translate_batch`.
            input_format: "text" (the whole line is the source) or "tsv" (column `column`, counted from 0).
            window: lines read and sorted together; 0 means 16 batches.
            summary_path: where the run summary JSON goes; default OUTPUT.summary.json (none for "-").
            progress: a callable(lines_done, seconds, input_bytes_done) called after each window, e.g. `Progress()`.

        Raises:
            S2SError: a missing or unreadable input, an output that is a directory or an input, a value out of range.
        """
        from s2s.serving.files import FileJob, write_translations

        batch_size = self.resolve_batch_size(max_batch_size)
        options = DecodingOptions(max_output_length, beam_size, length_penalty, long_lines)
        job = FileJob(batch_size, window or 16 * batch_size, options, input_format, column)
        return write_translations(self, source_path, output_path, job, summary_path=summary_path, progress=progress)

    def translate_texts(
        self, source: Sequence[str], batch_size: int, options: DecodingOptions, stats: TranslationStats | None
    ) -> list[str]:
        """`translate_batch` with its values already resolved and checked: the loop every caller ends in."""
        return self.translate_window(self.prepare_window(source, stats, options.long_lines), batch_size, options)

    def translate_window(self, window: PreparedWindow, batch_size: int, options: DecodingOptions) -> list[str]:
        """The translations of a prepared window, in its order: the model's part of the work, which a host thread may overlap."""
        limit = self.output_limit(options.max_output_length)
        results = np.full(len(window.lengths), "", dtype=object)
        for indices, batch in self.encoded_batches(window, batch_size):
            ids = self._decode(batch, limit, options.beam_size, options.length_penalty)
            results[indices] = texts_of_ids(ids, self.info.target_vocabulary)
        if window.pieces_per_line is None:
            return results.tolist()
        first = np.cumsum(window.pieces_per_line) - window.pieces_per_line
        lines = results[first]
        for line in np.flatnonzero(window.pieces_per_line > 1).tolist():  # a split line: its pieces' translations, joined
            lines[line] = " ".join(piece for piece in results[first[line] : first[line] + window.pieces_per_line[line]] if piece)
        return lines.tolist()

    def translate_window_results(
        self, window: PreparedWindow, batch_size: int, options: DecodingOptions, num_hypotheses: int
    ) -> list[TranslationResult]:
        """`translate_window` with each source's n-best hypotheses and their scores."""
        limit = self.output_limit(options.max_output_length)
        vocabulary = self.info.target_vocabulary
        results = [TranslationResult([""], [0.0])] * len(window.lengths)
        for indices, batch in self.encoded_batches(window, batch_size):
            decoded = self._decode_hypotheses(batch, limit, options.beam_size, options.length_penalty, num_hypotheses)
            for index, hypotheses in zip(indices.tolist(), decoded, strict=True):
                texts = texts_of_ids(ids_array([ids for ids, _ in hypotheses]), vocabulary)
                results[index] = TranslationResult(texts, [score for _, score in hypotheses])
        if window.pieces_per_line is None:
            return results
        first = (np.cumsum(window.pieces_per_line) - window.pieces_per_line).tolist()
        return [joined(results[start : start + pieces]) for start, pieces in zip(first, window.pieces_per_line.tolist(), strict=True)]

    def output_limit(self, max_output_length: int | None) -> int:
        """Most characters per translation: `max_output_length`, or the model's max_target_length when None."""
        return self.info.max_target_length if max_output_length is None else max_output_length

    def encoded_batches(self, window: PreparedWindow, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(row indices, int32 encoder input) of a prepared window, by length so batches carry little padding; empty rows left out.

        Each batch is one gather from the window's ids.
        """
        lengths = window.lengths
        nonempty = np.flatnonzero(lengths)
        order = nonempty[np.argsort(lengths[nonempty], kind="stable")]  # stable: equal lengths keep their order
        for start in range(0, len(order), batch_size):
            indices = order[start : start + batch_size]
            yield indices, gather_rows(window.ids, window.starts[indices], lengths[indices], reverse=self.info.reverse_source)

    def _decode(self, batch: Any, limit: int, beam_size: int, length_penalty: float) -> np.ndarray:
        """Target ids `(batch, steps)`, end-token padded."""
        if beam_size == 1:
            return self._greedy(batch, limit)
        return ids_array([hypotheses[0][0] for hypotheses in self._decode_hypotheses(batch, limit, beam_size, length_penalty, 1)])

    def _decode_hypotheses(
        self, batch: Any, limit: int, beam_size: int, length_penalty: float, num_hypotheses: int
    ) -> list[list[tuple[list[int], float]]]:
        """Each sentence's `num_hypotheses` best (ids before the end token, score), best first."""
        # The greedy hypothesis is scored as the numpy loop decodes it, and stays a candidate of beam search, so beam search
        # never returns a worse-scoring best translation than greedy.
        greedy, log_probability, lengths = NumpyGreedy(self.encoder, self.decoder).with_log_probabilities(batch, limit)
        greedy_scores = (log_probability / lengths.astype(np.float64) ** length_penalty).tolist()
        greedy_ids = ids_before_end(greedy)
        if beam_size == 1:
            return [[(ids, score)] for ids, score in zip(greedy_ids, greedy_scores, strict=True)]
        vocab = len(self.info.target_vocabulary)
        searched = beam_search(self.encoder, self.decoder, batch, vocab, limit, beam_size, length_penalty, num_hypotheses)
        merged = []
        for hypotheses, ids, score in zip(searched, greedy_ids, greedy_scores, strict=True):
            if all(found != ids for found, _ in hypotheses):
                hypotheses = sorted([*hypotheses, (ids, score)], key=lambda hypothesis: -hypothesis[1])[:num_hypotheses]
            merged.append(hypotheses)
        return merged

    def score(
        self, source: Sequence[str], translations: Sequence[list[int]], *, max_output_length: int | None = None, length_penalty: float = 1.0
    ) -> list[float]:
        """Beam-search scores of given target id sequences for `source` (forced decoding)."""
        limit = self.output_limit(max_output_length)
        texts = self.prepare_sources(source)
        return sequence_score(self.encoder, self.decoder, self.info.encode(texts), list(translations), limit, length_penalty)

    def score_batch(self, source: Sequence[str], target: Sequence[str], *, length_penalty: float = 1.0) -> list[float]:
        """How likely the model finds each target as the translation of its source, as CTranslate2's `score_batch`.

        The score is the beam-search score: the log-probability of the
        normalised target's characters and the end token, divided by that
        length to the power `length_penalty`. Higher is better; 0 is certain.

        Raises:
            TypeError: a plain string instead of a list of sentences.
            ValueError: the two lists differ in length.
        """
        source, target = sentence_list(source, "score_batch"), sentence_list(target, "score_batch")
        if len(source) != len(target):
            raise ValueError(f"score_batch needs one target per source, got {len(source)} sources and {len(target)} targets")
        vocabulary = self.info.target_vocabulary
        targets = self.info.normalizer.normalize_lines(list(target))
        ids = [ids_of_text(text, vocabulary).tolist() for text in targets]
        longest = max((len(row) for row in ids), default=0)
        return self.score(source, ids, max_output_length=max(longest + 1, self.info.max_target_length), length_penalty=length_penalty)

    def translate_iterable(self, source: Iterable[str], *, max_batch_size: int = 0, window: int = 0, **decoding: Any) -> Iterator[str]:
        """Translations of a stream of sentences, lazily and in order: as CTranslate2's `translate_iterable`.

        Reads `window` sentences (default 16 batches) at a time, and the next
        window while this one decodes (see `translate_windows`), so memory
        holds two windows whatever the stream's length.

        Args:
            decoding: max_output_length, beam_size, length_penalty, long_lines, as for `translate_batch`.
        """
        if source is None or isinstance(source, (str, bytes, bytearray)):
            raise TypeError(f"translate_iterable takes an iterable of str sentences, got {type(source).__name__}; for one sentence, pass [sentence]")
        batch_size = self.resolve_batch_size(max_batch_size)
        options = DecodingOptions(**decoding)
        options.check(len(self.info.target_vocabulary))
        lines = iter(source)
        size = window or 16 * batch_size
        windows = (SourceWindow(chunk) for chunk in iter(lambda: list(itertools.islice(lines, size)), []))
        for _, translations in self.translate_windows(windows, batch_size, options):
            yield from translations

    def translate_windows(
        self, windows: Iterable[SourceWindow], batch_size: int, options: DecodingOptions, phases: dict[str, float] | None = None
    ) -> Iterator[tuple[SourceWindow, list[str]]]:
        """Each window with its translations, in order: the streaming loop under `translate_iterable` and `translate_file`.

        Prefetch: while this thread decodes window k, one host thread takes
        window k+1 from `windows` (reading a file, for a file job) and prepares
        it (normalising, ids), since onnxruntime releases the GIL while it
        runs. `phases` (optional) gathers the seconds spent reading and
        preparing, and decoding; the two overlap.
        """
        timings = phases if phases is not None else {}
        timings.setdefault("read_and_prepare", 0.0)
        timings.setdefault("decode", 0.0)
        pending = iter(windows)

        def prepare_next() -> tuple[SourceWindow, PreparedWindow] | None:
            started = time.perf_counter()
            window = next(pending, None)
            if window is None:
                return None
            prepared = window, self.prepare_window(window.sources, window.counts, options.long_lines)
            timings["read_and_prepare"] += time.perf_counter() - started
            return prepared

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="s2s-prefetch") as host:
            upcoming = host.submit(prepare_next)
            while (prepared := upcoming.result()) is not None:
                window, ready = prepared
                upcoming = host.submit(prepare_next)
                started = time.perf_counter()
                translations = self.translate_window(ready, batch_size, options)
                timings["decode"] += time.perf_counter() - started
                yield window, translations

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


def _session_options(intra_op_threads: int) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    if intra_op_threads:
        options.intra_op_num_threads = intra_op_threads
    return options
