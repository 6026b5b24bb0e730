"""`s2s translate-beam`: bulk translation as an Apache Beam pipeline (Beam the pipeline framework; beam search is `beam_size`).

    ReadNumberedLines -> KeyByShard -> GroupByKey -> TranslateShard

Lines are spread over a fixed number of shards by a hash of (path, line
number). Each shard is one unit of work: a worker translates its lines in
order with the same engine as `s2s translate` (loaded once per worker
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

One run's rows: a local prefix is locked (`PREFIX.lock`) while a run writes
it. A run deletes `PREFIX.manifest.json` first and writes it last, after the
count and after removing the shards of an earlier run with another shard
count; so a shard set is complete, and one run's, exactly when the manifest
is there, and the manifest lists its shards, row count, inputs and model.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from s2s.config import log_config
from s2s.errors import ConfigError, S2SError
from s2s.locks import exclusive_lock
from s2s.pipelines.config import MAX_SHARDS
from s2s.pipelines.inputs import TRANSLATION_SHARDS, automatic_shards, input_bytes, resolve_inputs
from s2s.pipelines.model_fetch import check_model_id, local_model_dir
from s2s.pipelines.options import beam_options, run_pipeline
from s2s.pipelines.row_counts import count_lines_in
from s2s.pipelines.transforms import ReadNumberedLines, shard_of
from s2s.publish import delete_files, fill_missing, leftover_temporary_files, publish_lines, publish_text
from s2s.serving.config import TranslateConfig, resolve_batch_size
from s2s.serving.file_job import resolve_window

SHARD_SUFFIX = ".tsv"
MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_FORMAT_VERSION = 1
_SHARD_NAME = re.compile(r"-\d{5}-of-\d{5}\.tsv")  # what follows the prefix in a shard's name

logger = logging.getLogger(__name__)
_engines: dict[tuple[str, TranslateConfig], Any] = {}
_engines_lock = threading.Lock()


def shard_path(output_prefix: str, shard: int, num_shards: int) -> str:
    """The file of one shard, named as Beam's text sinks name theirs."""
    return f"{output_prefix}-{shard:05d}-of-{num_shards:05d}{SHARD_SUFFIX}"


def _engine(model: str, model_id: str, config: TranslateConfig) -> Any:
    """The worker process's engine for this model, opened (and fetched, when remote) once."""
    from s2s.serving.engine import Engine

    with _engines_lock:
        key = (model, config)
        if key not in _engines:
            # Beam runs a worker process per core (locally and on Dataflow), so each one decodes on one thread unless told.
            engine = Engine.open(
                local_model_dir(model),
                config.device,
                precision=config.precision,
                inter_threads=config.inter_threads or 1,
                intra_threads=config.intra_threads or 1,
                verify=config.verify,
            )
            check_model_id(model, engine.model_id, model_id)
            _engines[key] = engine
        return _engines[key]


class _TranslateShardFn(beam.DoFn):
    """(shard, [((path, line number), raw line)]) -> the shard's file written whole; yields (shard, rows written)."""

    def __init__(self, model: str, model_id: str, config: TranslateConfig, output_prefix: str, num_shards: int):
        self.model, self.model_id, self.config = model, model_id, config
        self.output_prefix, self.num_shards = output_prefix, num_shards
        self.rows_written = Metrics.counter("s2s", "rows_written")

    def process(self, element: tuple[int, Iterable[tuple[tuple[str, int], bytes]]]) -> Iterator[tuple[int, int]]:
        shard, lines = element
        lines = sorted(lines)
        engine = _engine(self.model, self.model_id, self.config)
        sources = (raw.rstrip(b"\r").decode("utf-8", errors="replace") for _, raw in lines)
        decoding = engine.validated(dataclasses.replace(self.config.decoding(), num_hypotheses=1, return_scores=False, return_attention=False))
        # Windows as translate_file reads them (`resolve_window`): sorted by length, batches carry little padding.
        batch_size = self.config.batch_size
        translations = engine.translate_stream(sources, None, batch_size, resolve_window(self.config.window, batch_size), decoding)
        rows = (f"{path}\t{line_number}\t{translation}" for ((path, line_number), _), translation in zip(lines, translations, strict=True))
        written = publish_lines(shard_path(self.output_prefix, shard, self.num_shards), rows)
        self.rows_written.inc(written)
        yield shard, written


def _keyed_by_shard(line: tuple[str, int, bytes], num_shards: int) -> tuple[int, tuple[tuple[str, int], bytes]]:
    path, line_number, raw = line
    return shard_of(path, line_number, num_shards), ((path, line_number), raw)


def translate_with_pipeline(
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
    from s2s.serving.engine import Engine

    config = config or TranslateConfig()
    if not 0 <= num_shards <= MAX_SHARDS:
        raise ConfigError(f"num_shards must be 0 (automatic) to {MAX_SHARDS}, got {num_shards}")
    options = beam_options(list(pipeline_args or []))
    # Opened here too, to fail fast on a bad model and to learn the model id every worker's copy must carry.
    engine = Engine.open(local_model_dir(model), "cpu" if config.device == "cpu" else "auto", verify=config.verify)
    engine.validated(config.decoding())
    device = engine.device if config.device == "auto" else config.device  # auto: as this machine's onnxruntime finds it
    config = dataclasses.replace(config, batch_size=resolve_batch_size(config.batch_size, device))
    log_config(logger, "translate-beam", config)
    input_files = resolve_inputs(inputs)
    files = [entry["path"] for entry in input_files]
    num_shards = num_shards or automatic_shards(input_bytes(input_files), TRANSLATION_SHARDS)
    logger.info("translating %s into %d shard(s) %s", ", ".join(files), num_shards, shard_path(output_prefix, 0, num_shards))
    translate_shard = _TranslateShardFn(model, engine.model_id, config, output_prefix, num_shards)
    with _owned(output_prefix):
        # From here until the new manifest is written, the prefix holds no manifest: a run killed midway leaves shards
        # that nothing vouches for, never a mix of two runs' shards that looks complete.
        shard_glob = f"{output_prefix}-*{SHARD_SUFFIX}"
        delete_files(manifest_path(output_prefix), *leftover_temporary_files(shard_glob))
        try:
            with run_pipeline(options, f"the translate-beam pipeline over {', '.join(files)}") as pipeline:
                _ = (
                    pipeline
                    | "ReadNumberedLines" >> ReadNumberedLines(files, spread=False)
                    | "KeyByShard" >> beam.Map(_keyed_by_shard, num_shards=num_shards)
                    | "GroupByShard" >> beam.GroupByKey()
                    | "TranslateShard" >> beam.ParDo(translate_shard)
                )
        except BaseException:
            # The runner stops its workers when a step fails; a shard that another worker was still writing then keeps
            # its temporary file (a stopped process runs no cleanup), so the failed run removes them itself.
            delete_files(*leftover_temporary_files(shard_glob))
            raise
        shards = [shard_path(output_prefix, shard, num_shards) for shard in range(num_shards)]
        fill_missing(shards)  # a shard no line hashed to
        rows = check_row_count(files, output_prefix, num_shards)
        stale = sorted(set(_shard_files(output_prefix)) - set(shards))
        if stale:
            logger.info("removing %d shard file(s) of an earlier run with another shard count, such as %s", len(stale), stale[0])
            delete_files(*stale)
        manifest = {
            "format_version": MANIFEST_FORMAT_VERSION,
            "rows": rows,
            "num_shards": num_shards,
            "shards": [shard.rsplit("/", 1)[-1] for shard in shards],
            "inputs": input_files,
            "model_id": engine.model_id,
            "settings": dataclasses.asdict(config),
        }
        publish_text(manifest_path(output_prefix), json.dumps(manifest, indent=2, sort_keys=True))
    return rows


def manifest_path(output_prefix: str) -> str:
    """`PREFIX.manifest.json`: written last, it lists the shards of the one run that wrote them all, and their row count."""
    return f"{output_prefix}{MANIFEST_SUFFIX}"


def _owned(output_prefix: str) -> AbstractContextManager[Any]:
    """`PREFIX.lock` for a local prefix, so two runs cannot write one shard set; object stores have no locks."""
    if FileSystems.get_scheme(output_prefix) is not None:
        return nullcontext()
    lock = Path(output_prefix + ".lock").absolute()
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise S2SError(f"cannot write {output_prefix}: {error.strerror or error}") from None
    return exclusive_lock(lock, f"output {output_prefix} is being written by another s2s translate-beam (pid {{pid}}); wait for it or choose another output")


def _matching(pattern: str) -> list[str]:
    return [metadata.path for metadata in FileSystems.match([pattern])[0].metadata_list]


def _shard_files(output_prefix: str) -> list[str]:
    """Every `PREFIX-SSSSS-of-NNNNN.tsv` under the prefix, whatever its shard count: this run's and any earlier run's."""
    candidates = _matching(f"{output_prefix}-?????-of-?????{SHARD_SUFFIX}")
    return [path for path in candidates if _SHARD_NAME.fullmatch(path[len(output_prefix) :])]



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
