"""`Translator`: batch translation with an exported model, on the GPU when there is one.

>>> translator = Translator("runs/fra-eng/onnx", device="auto")  # doctest: +SKIP
>>> translator.translate_batch(["Go.", "I'm hungry!"])  # doctest: +SKIP
['Va !', "J'ai faim !"]

Input text is normalised with the scheme the model was trained with (read
from its metadata), so a host never re-implements the pipeline's cleaning.

The public face is CTranslate2's: `from_dir`, `translate_batch`,
`translate_iterable`, `translate_file`, `score_batch`, and what the model
and the run are (`info`, `model_id`, `device`, `precision`). The work is
done by `s2s.serving.engine` (decoding), `s2s.serving.windows` (preparing
sources) and `s2s.serving.writer` (files).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from s2s.serving.engine import Engine, sampler_of
from s2s.serving.file_job import FileJob, resolve_window
from s2s.serving.model_info import ModelInfo
from s2s.serving.options import DecodingOptions
from s2s.serving.progress import ProgressCallback
from s2s.serving.results import ScoringResult, TranslationResult
from s2s.serving.stats import TranslationStats
from s2s.serving.windows import prepare_window, sentence_list
from s2s.serving.writer import write_translations


class Translator:
    """An exported model loaded into onnxruntime, ready to translate batches, streams and files.

    Args:
        onnx_dir: output directory of `s2s export`.
        device: "auto" (CUDA if usable, else the CPU with a warning), "cuda" (an error without a usable GPU) or "cpu".
        precision: "float32", "float16" (the *_fp16.onnx files; for GPUs) or "int8" (the *_int8.onnx files; for CPUs).
        io_binding: keep states on the device and feed the argmax back inside the graph (decoder_greedy.onnx);
            None means on for CUDA, off for the CPU.
        inter_threads: batches decoded at once, each on its own thread (CTranslate2's `inter_threads`); 0: one per CPU
            core on the CPU, 1 on a GPU.
        intra_threads: threads inside each onnxruntime call; 0: the cores shared out among the `inter_threads` loops on
            the CPU, onnxruntime's choice otherwise. `intra_op_threads` is its former name, kept for one release.
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
        inter_threads: int = 0,
        intra_threads: int = 0,
        intra_op_threads: int = 0,
        verify: bool = True,
    ):
        self._engine = Engine.open(
            onnx_dir,
            device,
            precision=precision,
            io_binding=io_binding,
            inter_threads=inter_threads,
            intra_threads=intra_threads or intra_op_threads,
            verify=verify,
        )

    @classmethod
    def from_dir(cls, model_dir: str | Path, *, device: str = "auto", precision: str = "float32", **session_options: Any) -> Translator:
        """The translator of an export folder (the output of `s2s export`), as CTranslate2's `Translator(model_path, device)`."""
        return cls(model_dir, device, precision=precision, **session_options)

    @property
    def info(self) -> ModelInfo:
        """The model's metadata: vocabularies, length limits, normalisation, architecture, model id."""
        return self._engine.info

    @property
    def model_id(self) -> str:
        return self._engine.model_id

    @property
    def device(self) -> str:
        """Where the model runs: "cpu" or "cuda", as chosen when it was opened."""
        return self._engine.device

    @property
    def precision(self) -> str:
        return self._engine.precision

    @property
    def onnx_dir(self) -> Path:
        return self._engine.model_dir

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
        decoding = self._decoding(options)
        batch_size = self._engine.batch_size(max_batch_size, batch_type)
        window = prepare_window(self.info, source, stats, decoding.long_lines, target_prefix)
        translated = self._engine.translate_window(window, batch_size, batch_type, decoding, sampler_of(decoding))
        if stats is not None:
            stats.cut_translations += int(translated.cut.sum())
        return translated.results if translated.results is not None else translated.texts

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

        Each result is yielded as soon as its window is decoded, so an
        endless generator works. Greedy decoding reads on into the next
        windows while the last rows of one finish, up to 16 batches per
        decoding loop and one loop's worth more (`s2s.serving.continuous`);
        beam search and the other options read one window ahead.

        Args:
            target_prefix: an iterable of prefixes, one per source, read alongside it.
            max_batch_size, batch_type, options: as for `translate_batch`, which returns the same values.
            window: sentences read and sorted together; 0 means one batch (as many as `max_batch_size`).

        Raises:
            TypeError: a str or bytes in place of an iterable of sentences, or an unknown option.
            ConfigError: a value out of range.
        """
        if source is None or isinstance(source, (str, bytes, bytearray)):
            raise TypeError(f"translate_iterable takes an iterable of str sentences, got {type(source).__name__}; for one sentence, pass [sentence]")
        decoding = self._decoding(options)
        batch_size = self._engine.batch_size(max_batch_size, batch_type)
        size = window or (batch_size if batch_type == "examples" else max(1, batch_size // 16))
        return self._engine.translate_stream(source, target_prefix, batch_size, size, decoding, batch_type=batch_type)

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
        progress: ProgressCallback | None = None,
        **options: Any,
    ) -> TranslationStats:
        """Translates a corpus file, glob or "-" into a file or "-": streamed, ordered, every line accounted for, resumable.

        Output line i belongs to input line i. The output appears (by rename)
        only when complete; a killed run started again with the same
        arguments resumes. See `s2s.serving.writer` for the details.

        Args:
            max_batch_size, batch_type, options: as for `translate_batch`.
            input_format: "text" (the whole line is the source), "tsv" (column `column`, counted from 0; every column is
                kept and the translation appended) or "jsonl" (field `field` of each object; the object is kept and
                `translation`, plus `score`, `hypotheses`, `attention` and `cut` as they apply, are added).
            window: lines read and sorted together; 0 means 16,384 lines or 16 batches, whichever is more (`resolve_window`).
            summary_path: where the run summary JSON goes; default OUTPUT.summary.json (none for "-").
            progress: called as progress(lines_done, seconds, input_bytes_done) after each window, e.g. `Progress()`.

        Raises:
            S2SError: a missing or unreadable input, an output that is a directory or an input, a value out of range.
        """
        decoding = self._decoding(options)
        batch_size = self._engine.batch_size(max_batch_size, batch_type)
        job = FileJob(batch_size, resolve_window(window, batch_size), decoding, input_format, column, field, batch_type)
        return write_translations(self._engine, source_path, output_path, job, summary_path=summary_path, progress=progress)

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
        return self._engine.score_targets(source, target, length_penalty, self._engine.batch_size(max_batch_size))

    def _decoding(self, options: dict[str, Any]) -> DecodingOptions:
        """The checked `DecodingOptions` of a call's keyword arguments.

        Raises:
            TypeError: an unknown option.
            ConfigError: a value out of range for this model.
        """
        return self._engine.validated(DecodingOptions.from_keywords(**options))
