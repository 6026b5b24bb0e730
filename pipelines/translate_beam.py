"""`s2s translate-beam`: bulk translation as an Apache Beam pipeline.

    ReadNumberedLines -> KeyByShard -> GroupByKey -> TranslateShard

Lines are spread over a fixed number of shards by a hash of (path, line
number). Each shard is one unit of work: a worker translates its lines in
order with the same `Translator` as `s2s translate` (loaded once per worker
process) and writes `PREFIX-SSSSS-of-NNNNN.tsv` whole, through a temporary
file and a rename. A retried or repeated shard therefore rewrites the same
file with the same rows instead of adding to it. That is what lets the job run
unchanged on runners that evaluate a step more than once, such as Beam's Dask
runner, where `WriteToText` and `BatchElements` (under RunInference) lose rows;
see `repro/`.

The runner comes from the pipeline options, so the job spreads over a
Dataflow, Flink, Spark or Dask cluster as it does over local processes. The
model may sit on any filesystem Beam reaches (gs://, s3://...): each worker
copies it once and checks its model id against the launcher's.

Output: rows of `path<TAB>line_number<TAB>translation`, one per input line
(empty lines included), sorted by path and line number within each shard.
After the run, the rows written are counted against the lines read; a
difference fails the job.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from s2s.config import log_config
from s2s.errors import S2SError
from s2s.pipelines.atomic_files import fill_missing, publish_lines
from s2s.pipelines.model_fetch import check_model_id, local_model_dir
from s2s.pipelines.options import beam_options, run_pipeline
from s2s.pipelines.prepare import resolve_inputs
from s2s.pipelines.row_counts import count_lines_in
from s2s.pipelines.transforms import ReadNumberedLines, shard_of
from s2s.serving.config import TranslateConfig, resolve_batch_size

SHARD_SUFFIX = ".tsv"
BYTES_PER_SHARD = 4 << 20  # with automatic sharding: about 100,000 short lines, a minute or two of one CPU worker
MAX_AUTOMATIC_SHARDS = 10_000

logger = logging.getLogger(__name__)
_translators: dict[tuple[str, TranslateConfig], Any] = {}
_translators_lock = threading.Lock()


def shard_path(output_prefix: str, shard: int, num_shards: int) -> str:
    """The file of one shard, named as Beam's text sinks name theirs."""
    return f"{output_prefix}-{shard:05d}-of-{num_shards:05d}{SHARD_SUFFIX}"


def automatic_shards(input_bytes: int) -> int:
    """One shard per 4 MiB of input (compressed size for .gz), at least 1: small enough to spread, large enough to batch."""
    return max(1, min(MAX_AUTOMATIC_SHARDS, math.ceil(input_bytes / BYTES_PER_SHARD)))


def _translator(model: str, model_id: str, config: TranslateConfig) -> Any:
    """The worker process's Translator for this model, loaded (and fetched, when remote) once."""
    from s2s.serving.translator import Translator

    with _translators_lock:
        key = (model, config)
        if key not in _translators:
            translator = Translator.from_config(local_model_dir(model), config)
            check_model_id(model, translator.model_id, model_id)
            _translators[key] = translator
        return _translators[key]


class _TranslateShardFn(beam.DoFn):
    """(shard, [((path, line number), raw line)]) -> the shard's file written whole; yields (shard, rows written)."""

    def __init__(self, model: str, model_id: str, config: TranslateConfig, output_prefix: str, num_shards: int):
        self.model, self.model_id, self.config = model, model_id, config
        self.output_prefix, self.num_shards = output_prefix, num_shards
        self.rows_written = Metrics.counter("s2s", "rows_written")

    def process(self, element: tuple[int, Iterable[tuple[tuple[str, int], bytes]]]) -> Iterator[tuple[int, int]]:
        shard, lines = element
        lines = sorted(lines)
        translator = _translator(self.model, self.model_id, self.config)
        sources = (raw.rstrip(b"\r").decode("utf-8", errors="replace") for _, raw in lines)
        translations = translator.translate_iterable(
            sources, max_batch_size=self.config.batch_size, **dataclasses.asdict(self.config.decoding())
        )
        rows = (f"{path}\t{line_number}\t{translation}" for ((path, line_number), _), translation in zip(lines, translations, strict=True))
        written = publish_lines(shard_path(self.output_prefix, shard, self.num_shards), rows)
        self.rows_written.inc(written)
        yield shard, written


def _keyed_by_shard(line: tuple[str, int, bytes], num_shards: int) -> tuple[int, tuple[tuple[str, int], bytes]]:
    path, line_number, raw = line
    return shard_of(path, line_number, num_shards), ((path, line_number), raw)


def translate_beam(
    model: str,
    inputs: list[str],
    output_prefix: str,
    config: TranslateConfig | None = None,
    *,
    num_shards: int = 0,
    pipeline_args: list[str] | None = None,
) -> int:
    """Runs the translation pipeline; returns the number of rows written, once they are counted against the lines read.

    Args:
        model: the output folder of `s2s export`, local or on any filesystem Beam reaches (gs://...).
        num_shards: output files; 0 picks one per 4 MiB of input.

    Raises:
        S2SError: an input is missing or empty, an option is unknown, a decoding value is out of range, or the
            rows written do not match the lines read.
    """
    from s2s.serving.translator import Translator

    config = config or TranslateConfig()
    if num_shards < 0:
        raise S2SError(f"num_shards must be 0 (automatic) or more, got {num_shards}")
    options = beam_options(list(pipeline_args or []))
    # Opened here too, to fail fast on a bad model and to learn the model id every worker's copy must carry.
    translator = Translator.from_dir(local_model_dir(model), device="cpu" if config.device == "cpu" else "auto")
    config.decoding().check(len(translator.info.target_vocabulary))
    device = translator.device if config.device == "auto" else config.device  # auto: as this machine's onnxruntime finds it
    config = dataclasses.replace(config, batch_size=resolve_batch_size(config.batch_size, device))
    log_config(logger, "translate-beam", config)
    input_files = resolve_inputs(inputs)
    files = [entry["path"] for entry in input_files]
    num_shards = num_shards or automatic_shards(sum(entry["bytes"] for entry in input_files))
    logger.info("translating %s into %d shard(s) %s", ", ".join(files), num_shards, shard_path(output_prefix, 0, num_shards))
    translate_shard = _TranslateShardFn(model, translator.model_id, config, output_prefix, num_shards)
    with run_pipeline(options, f"the translate-beam pipeline over {', '.join(files)}") as pipeline:
        _ = (
            pipeline
            | "ReadNumberedLines" >> ReadNumberedLines(files, spread=False)
            | "KeyByShard" >> beam.Map(_keyed_by_shard, num_shards=num_shards)
            | "GroupByShard" >> beam.GroupByKey()
            | "TranslateShard" >> beam.ParDo(translate_shard)
        )
    fill_missing(shard_path(output_prefix, shard, num_shards) for shard in range(num_shards))  # a shard no line hashed to
    return check_row_count(files, output_prefix, num_shards)


def check_row_count(files: list[str], output_prefix: str, num_shards: int) -> int:
    """Counts the rows of the written shards against the input lines; returns the count.

    Checked after the run, whatever the runner: a runner that loses or repeats rows must not end with exit status 0.

    Raises:
        S2SError: fewer or more rows than input lines.
    """
    lines_read = sum(count_lines_in(path) for path in files)  # decompressed by extension, as the pipeline read them
    rows = sum(count_lines_in(shard_path(output_prefix, shard, num_shards)) for shard in range(num_shards))
    if rows != lines_read:
        raise S2SError(
            f"translate-beam wrote {rows} rows for {lines_read} input lines under {output_prefix}: the runner lost or repeated "
            "rows; the output is incomplete"
        )
    logger.info("wrote %d rows in %d shard(s), one per input line", rows, num_shards)
    return rows
